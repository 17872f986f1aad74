// The syscall seam (test/seam/, ARCHITECTURE.md "The syscall seam"): mac.c and win.c compiled
// on this machine with gcc against small fakes of the macOS and Windows calls they make, and
// run through the fault cases of issue 12. Needs gcc on Linux (CI has it); skipped with the
// reason elsewhere.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const gcc = spawnSync('gcc', ['--version']).status === 0
// The fakes stand on glibc and Linux calls (renameat2, O_PATH, a reserved field of struct stat):
// on a Mac or Windows the real platform code runs instead, so the seam is Linux's business.
const skip =
  process.platform !== 'linux'
    ? 'the seam runs macOS and Windows code on Linux (glibc); on this OS the real code is tested'
    : gcc
      ? false
      : 'gcc is not installed: the seam programs are C, built here by gcc'
const flags = ['-std=gnu11', '-Wall', '-Wextra', '-Werror', '-O1', '-I', path.join(root, 'src/native')]

/** Compiles the platform files with the seam's forced include, links them with the fake and
 * the test program, runs it, and returns its TAP output (throws with it on failure). */
function build(name: string, platform: string[], seamDir: string, linkExtra: string[]): string {
  const extra: string[] = []
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `clonefile-seam-${name}-`))
  try {
    const objs: string[] = []
    for (const file of platform) {
      const obj = path.join(out, path.basename(file, '.c') + '.o')
      execFileSync('gcc', [...flags, ...extra, '-include', path.join(seamDir, `seam-${name}.h`), '-I', seamDir, '-c', '-o', obj, path.join(root, file)], { stdio: 'pipe' })
      objs.push(obj)
    }
    const exe = path.join(out, `${name}-test`)
    execFileSync('gcc', [...flags, ...linkExtra, '-o', exe, path.join(seamDir, `${name}-test.c`), path.join(seamDir, `${name}-fake.c`), path.join(root, 'test/seam/seam.c'), ...objs, '-ldl'], { stdio: 'pipe' })
    const run = spawnSync(exe, { encoding: 'utf8' })
    if (run.status !== 0) throw new Error(`${name} seam: exit ${run.status}\n${run.stdout}${run.stderr}`)
    return run.stdout
  } finally {
    fs.rmSync(out, { recursive: true, force: true })
  }
}

describe('the syscall seam: macOS and Windows code run against fakes', () => {
  it('mac.c + posix.c: dangling symlink at dst, no RENAME_EXCL/link, immutable flag, specials, links, dedupe by verify-then-swap', { skip }, () => {
    const tap = build('mac', ['src/native/mac.c', 'src/native/posix.c'], path.join(root, 'test/seam/mac'), [])
    assert.doesNotMatch(tap, /^not ok/m, tap)
    assert.match(tap, /^1\.\.\d+$/m)
  })

  it('win.c: Node fds, misaligned ranges, dirty source, SET_SPARSE refused, dangling symlink, long paths, Win32 errors', { skip }, () => {
    const seamDir = path.join(root, 'test/seam/win')
    // The test program and the fake include the fake <windows.h> too.
    const tap = build('win', ['src/native/win.c'], seamDir, ['-I', seamDir])
    assert.doesNotMatch(tap, /^not ok/m, tap)
    assert.match(tap, /^1\.\.\d+$/m)
  })
})
