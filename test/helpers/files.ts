import { createHash, randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import { fileURLToPath } from 'node:url'

export function writeRandom(path: string, size: number): Buffer {
  const data = randomBytes(size)
  fs.writeFileSync(path, data)
  return data
}

export function sha(path: string): string {
  return createHash('sha256').update(fs.readFileSync(path)).digest('hex')
}

/** Names in a directory, to prove nothing (no temporary, no partial file) was left behind. */
export function entries(dir: string): string[] {
  return fs.readdirSync(dir).sort()
}

export const repo = fileURLToPath(new URL('../../..', import.meta.url))
export const cli = `${repo}/bin/clonefile.js`

export interface Ran {
  status: number | null
  stdout: string
  stderr: string
}

/** Runs node code (an ES module body) in a child process, as another user or without the addon. */
export function runNode(code: string, opts: { env?: Record<string, string>; asUser?: number; cwd?: string } = {}): Ran {
  const node = process.execPath
  const args = ['--input-type=module', '-e', code]
  const [cmd, argv] = opts.asUser === undefined
    ? [node, args]
    : ['setpriv', [`--reuid=${opts.asUser}`, `--regid=${opts.asUser}`, '--clear-groups', node, ...args]]
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, ...opts.env }, cwd: opts.cwd ?? repo })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

export function runCli(args: string[], cwd?: string): Ran {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: cwd ?? repo })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

export const libUrl = new URL('../../src/index.js', import.meta.url).href

/** atime and mtime in nanoseconds, mode and owner: what clone() promises to keep. */
export function metadata(path: string) {
  const st = fs.lstatSync(path, { bigint: true })
  return { mode: st.mode, uid: st.uid, gid: st.gid, atimeNs: st.atimeNs, mtimeNs: st.mtimeNs, size: st.size }
}

export function xattrs(path: string): Record<string, string> {
  const r = spawnSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', path], { encoding: 'utf8' })
  const out: Record<string, string> = {}
  for (const line of r.stdout.split('\n')) {
    const m = /^([^#=][^=]*)=(.*)$/.exec(line)
    if (m?.[1] !== undefined && !m[1].startsWith('security.selinux')) out[m[1]] = m[2] ?? ''
  }
  return out
}
