// Races for the adversarial tests: another process changing a tree while an operation walks it.
import { spawn } from 'node:child_process'

/** A python process exchanging each pair of paths (renameat2 RENAME_EXCHANGE) in a tight loop. */
export function swapper(pairs: Array<[string, string]>): { stop: () => void } {
  const child = spawn('python3', ['-c', `
import ctypes, json, sys
libc = ctypes.CDLL(None, use_errno=True)
pairs = [(a.encode(), b.encode()) for a, b in json.loads(sys.argv[1])]
while True:
    for a, b in pairs:
        libc.renameat2(-100, a, -100, b, 2)
`, JSON.stringify(pairs)], { stdio: 'ignore' })
  return { stop: () => child.kill('SIGKILL') }
}
