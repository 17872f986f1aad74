// The walker (src/walk.ts) through its users: trees deeper than any recursive walk or PATH_MAX
// allows are cloned, measured and removed; dst inside src through a bind mount is refused
// before anything is written. (A directory swapped for a symlink mid-walk, 200 times for each
// operation that walks: test/adversarial/hardening.test.ts, issue 11 #2.)
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, test } from 'node:test'
import { CWD, requireNative } from '../src/binding.js'
import { cloneTree, cloneTreeSync, usage } from '../src/index.js'
import { removeTreeAt } from '../src/remove.js'
import { allShared } from './helpers/fiemap.js'
import { bindMount, freshDir, needMount } from './helpers/mounts.js'

// Python with directory descriptors: bash's `cd` re-reads its whole logical path at every step
// (minutes for 1,800 levels), and open(2) of a path past PATH_MAX fails.
const PY_MAKE = `
import os, sys
root, levels, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.mkdir(root)
fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
for i in range(levels + 1):
    f = os.open('f', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(f, (b'end\\n' if i == levels else str(i).encode()))
    os.close(f)
    if i == levels: break
    os.mkdir(name, dir_fd=fd)
    nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
`
const PY_DIGEST = `
import hashlib, os, stat, sys
out = []
stack = [(os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY), '')]
while stack:
    fd, rel = stack.pop()
    for e in sorted(os.listdir(fd)):
        st = os.stat(e, dir_fd=fd, follow_symlinks=False)
        p = rel + '/' + e
        if stat.S_ISDIR(st.st_mode):
            out.append('%s d %o' % (p, st.st_mode))
            stack.append((os.open(e, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd), p))
        else:
            f = os.open(e, os.O_RDONLY, dir_fd=fd)
            out.append('%s f %o %s' % (p, st.st_mode, hashlib.sha256(os.read(f, 1 << 20)).hexdigest()))
            os.close(f)
    os.close(fd)
print('\\n'.join(sorted(out)))
`

/** Makes `levels` nested directories named `name` under `root`, each with a small file `f`; the number of files. */
function deepTree(root: string, levels: number, name: string): number {
  execFileSync('python3', ['-c', PY_MAKE, root, String(levels), name])
  return levels + 1
}

/** Every entry of a tree with its type, mode and (files) content hash, however deep. */
function listing(root: string): string[] {
  return execFileSync('python3', ['-c', PY_DIGEST, root], { maxBuffer: 1 << 28 }).toString().split('\n').filter((l) => l !== '')
}

const LEVELS = 1800
const LONG = 'L'.repeat(250)
const LONG_LEVELS = 40 // 40 × 251 bytes: a 10 KiB path

for (const [title, levels, name] of [[`${LEVELS} levels`, LEVELS, 'd'], [`paths over 8 KiB (${LONG_LEVELS} levels of 250-byte names)`, LONG_LEVELS, LONG]] as const) {
  describe(`walker: a tree of ${title}`, () => {
    for (const variant of ['cloneTree', 'cloneTreeSync'] as const) {
      test(`${variant} clones it (every file shares its blocks), usage() measures it, and its removal leaves nothing`, async (t) => {
        const m = await needMount(t, 'xfs')
        if (m === undefined) return
        const dir = freshDir(m)
        const src = path.join(dir, 'src')
        const files = deepTree(src, levels, name)
        const dst = path.join(dir, 'dst')
        const r = variant === 'cloneTree' ? await cloneTree(src, dst) : cloneTreeSync(src, dst)
        assert.equal(r.files, files)
        assert.equal(r.directories, levels + 1)
        assert.equal(r.cloned.files, files)
        const entries = listing(src)
        assert.equal(entries.length, 2 * levels + 1)
        assert.deepEqual(listing(dst), entries)
        assert.ok(allShared(path.join(dst, 'f')), 'the top file shares its blocks')
        const u = await usage(dst)
        assert.equal(u.set.files, files)
        assert.equal(u.set.apparent, r.cloned.bytes)
        const binding = requireNative('test')
        removeTreeAt(binding, { dir: CWD, name: dst }, dst)
        assert.equal(fs.existsSync(dst), false)
        assert.deepEqual(fs.readdirSync(dir).sort(), ['src'])
      })
    }
  })
}

describe('walker, issue 11 #12: dst inside src through a bind mount', () => {
  for (const variant of ['cloneTree', 'cloneTreeSync'] as const) {
    test(`${variant} refuses it before anything is written, with EINVAL`, async (t) => {
      const m = await needMount(t, 'xfs')
      if (m === undefined) return
      const dir = freshDir(m)
      const src = path.join(dir, 'src')
      fs.mkdirSync(path.join(src, 'inner'), { recursive: true })
      fs.writeFileSync(path.join(src, 'inner', 'f'), 'x')
      const bound = await bindMount({ ...m, dir: path.join(src, 'inner') })
      try {
        const dst = path.join(bound, 'copy')
        const attempt = () => (variant === 'cloneTree' ? cloneTree(src, dst) : Promise.resolve().then(() => cloneTreeSync(src, dst)))
        await assert.rejects(attempt(), { code: 'EINVAL', message: /into itself/ })
        assert.deepEqual(fs.readdirSync(path.join(src, 'inner')), ['f'])
      } finally {
        execFileSync('umount', [bound])
      }
    })
  }
})
