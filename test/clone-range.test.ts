import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { spawnSync } from 'node:child_process'
import { cloneRange, cloneRangeSync } from '../src/clone-range.js'
import type { CloneError } from '../src/types.js'
import { extentsOf, sharedBytes } from './helpers/fiemap.js'
import { entries, repo, sha, writeRandom } from './helpers/files.js'
import { makeSocket, mkfifo } from './helpers/trees.js'
import { freshDir, needMount } from './helpers/mounts.js'
import type { FsKind } from './helpers/mounts.js'

const K = 4096

/** Bytes of `file` between `from` and `to` that FIEMAP marks shared. */
function sharedIn(file: string, from: number, to: number): number {
  return extentsOf(file)
    .filter((e) => e.shared)
    .reduce((n, e) => n + Math.max(0, Math.min(to, e.logical + e.length) - Math.max(from, e.logical)), 0)
}

for (const kind of ['xfs', 'btrfs'] as FsKind[]) {
  describe(`cloneRange on ${kind}`, () => {
    it('shares exactly the range, into a new file and into an existing one at an offset', async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      const src = join(dir, 'src')
      const data = writeRandom(src, 64 * K)
      const r = await cloneRange(src, join(dir, 'new'), { srcOffset: 8 * K, length: 16 * K }, { mode: 'always' })
      assert.deepEqual(r, { method: 'clone', size: 16 * K })
      assert.deepEqual(fs.readFileSync(join(dir, 'new')), data.subarray(8 * K, 24 * K))
      assert.equal(sharedBytes(join(dir, 'new')), 16 * K)

      const existing = join(dir, 'existing')
      const old = writeRandom(existing, 32 * K)
      const fh = await open(existing, 'r+')
      try {
        cloneRangeSync(src, fh, { srcOffset: 0, dstOffset: 4 * K, length: 8 * K }, { mode: 'always' })
      } finally {
        await fh.close()
      }
      const now = fs.readFileSync(existing)
      assert.deepEqual(now.subarray(0, 4 * K), old.subarray(0, 4 * K), 'bytes before the range untouched')
      assert.deepEqual(now.subarray(4 * K, 12 * K), data.subarray(0, 8 * K))
      assert.deepEqual(now.subarray(12 * K), old.subarray(12 * K), 'bytes after the range untouched')
      assert.equal(sharedIn(existing, 4 * K, 12 * K), 8 * K)
      assert.equal(sharedIn(existing, 12 * K, 32 * K), 0)
    })

    it('length 0 clones to the end of the source, an unaligned tail included', async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      const src = join(dir, 'src')
      const data = writeRandom(src, 10 * K + 100)
      const r = cloneRangeSync(src, join(dir, 'tail'), { srcOffset: 4 * K }, { mode: 'always' })
      assert.deepEqual(r, { method: 'clone', size: 6 * K + 100 })
      assert.deepEqual(fs.readFileSync(join(dir, 'tail')), data.subarray(4 * K))
    })

    it("a misaligned range: 'always' names the block size and aligned offsets; 'auto' copies", async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      const src = join(dir, 'src')
      const data = writeRandom(src, 64 * K)
      assert.throws(() => cloneRangeSync(src, join(dir, 'x'), { srcOffset: 100, length: 8 * K }, { mode: 'always' }), (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, 'EINVAL')
        assert.equal(e.syscall, 'ioctl_ficlonerange')
        assert.match(e.message, /block size 4096/)
        assert.match(e.message, /srcOffset 100 -> 0 or 4096/)
        return true
      })
      assert.deepEqual(entries(dir), ['src'], 'the destination it created is gone again')
      const r = await cloneRange(src, join(dir, 'y'), { srcOffset: 100, length: 8 * K })
      assert.equal(r.method, 'copy')
      assert.equal(r.fallback?.code, 'EINVAL')
      assert.deepEqual(fs.readFileSync(join(dir, 'y')), data.subarray(100, 100 + 8 * K))
      assert.equal(sharedBytes(join(dir, 'y')), 0)
    })

    it("'auto' with offsets misaligned alike clones the aligned middle and copies head and tail", async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      const src = join(dir, 'src')
      const data = writeRandom(src, 64 * K)
      const dst = join(dir, 'dst')
      writeRandom(dst, 64 * K)
      const r = await cloneRange(src, dst, { srcOffset: 100, dstOffset: 100, length: 3 * K })
      assert.equal(r.method, 'clone')
      assert.equal(r.size, 3 * K)
      assert.match(r.fallback?.message ?? '', /^4096 bytes not aligned to the block were copied \(EINVAL/)
      assert.deepEqual(fs.readFileSync(dst).subarray(100, 100 + 3 * K), data.subarray(100, 100 + 3 * K))
      assert.equal(sharedIn(dst, K, 3 * K), 2 * K, 'the aligned middle is shared')
      assert.equal(sharedIn(dst, 0, K) + sharedIn(dst, 3 * K, 64 * K), 0, 'head and tail are copies')
    })

    it("mode 'never' copies the range", async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      const src = join(dir, 'src')
      const data = writeRandom(src, 16 * K)
      const r = await cloneRange(src, join(dir, 'c'), { length: 8 * K }, { mode: 'never' })
      assert.deepEqual(r, { method: 'copy', size: 8 * K })
      assert.deepEqual(fs.readFileSync(join(dir, 'c')), data.subarray(0, 8 * K))
      assert.equal(sharedBytes(join(dir, 'c')), 0)
    })
  })
}

describe('cloneRange errors', () => {
  it('overlapping ranges in one file are refused in every mode; apart, they clone', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m)
    const file = join(dir, 'one')
    const data = writeRandom(file, 16 * K)
    for (const mode of ['auto', 'always', 'never'] as const) {
      assert.throws(() => cloneRangeSync(file, file, { srcOffset: 0, dstOffset: 4 * K, length: 8 * K }, { mode }), (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, 'EINVAL')
        assert.match(e.message, /overlap/)
        return true
      })
    }
    assert.deepEqual(fs.readFileSync(file), data, 'the file is untouched')
    const r = await cloneRange(file, file, { srcOffset: 0, dstOffset: 8 * K, length: 8 * K }, { mode: 'always' })
    assert.equal(r.method, 'clone')
    assert.deepEqual(fs.readFileSync(file).subarray(8 * K), data.subarray(0, 8 * K))
  })

  it('ext4: always throws EOPNOTSUPP and leaves no destination; auto copies', async (t) => {
    const m = await needMount(t, 'ext4')
    if (!m) return
    const dir = freshDir(m)
    const src = join(dir, 'src')
    writeRandom(src, 16 * K)
    await assert.rejects(cloneRange(src, join(dir, 'a'), {}, { mode: 'always' }), { code: 'EOPNOTSUPP' })
    assert.deepEqual(entries(dir), ['src'])
    assert.equal((await cloneRange(src, join(dir, 'b'), {})).fallback?.code, 'EOPNOTSUPP')
  })

  it('bad ranges and arguments', async () => {
    assert.throws(() => cloneRangeSync('a', 'b', { srcOffset: -1 }), { code: 'ERR_OUT_OF_RANGE' })
    assert.throws(() => cloneRangeSync('a', 'b', { length: 1.5 }), { code: 'ERR_OUT_OF_RANGE' })
    assert.throws(() => cloneRangeSync('a', 'b', { length: '4096' as never }), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => cloneRangeSync('a', 'b', null as never), { code: 'ERR_INVALID_ARG_TYPE' })
    await assert.rejects(cloneRange('a', 'b', {}, { mode: 'x' as never }), { code: 'ERR_INVALID_ARG_VALUE' })
  })
})

describe('cloneRange hardening (issue 11)', () => {
  it('issue 11 #9: into an O_APPEND descriptor: EINVAL naming O_APPEND, in every mode, before any call', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m)
    const src = join(dir, 'src')
    writeRandom(src, 64 * K)
    const dst = join(dir, 'dst')
    writeRandom(dst, 16 * K)
    const before = sha(dst)
    const fd = fs.openSync(dst, 'a')
    try {
      for (const mode of ['auto', 'always', 'never'] as const) {
        assert.throws(() => cloneRangeSync(src, fd, { dstOffset: 4 * K, length: 8 * K }, { mode }), (e: NodeJS.ErrnoException) => {
          assert.equal(e.code, 'EINVAL')
          assert.match(e.message, /O_APPEND/)
          return true
        })
        await assert.rejects(cloneRange(src, fd, { length: 8 * K }, { mode }), { code: 'EINVAL', message: /O_APPEND/ })
      }
    } finally {
      fs.closeSync(fd)
    }
    assert.equal(sha(dst), before, 'nothing was appended')
  })

  it('issue 11 #13: a FIFO, socket or device fails at once with a clear code, never blocks', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m)
    const file = join(dir, 'file')
    writeRandom(file, 16 * K)
    mkfifo(join(dir, 'fifo'))
    await makeSocket(join(dir, 'sock'))
    // In a child with a time limit: on a FIFO, a blocking open would hang this process for good.
    const lib = new URL('../src/clone-range.js', import.meta.url).href
    const code = `import { cloneRangeSync } from '${lib}'
      import { openSync } from 'node:fs'
      const d = ${JSON.stringify(dir)}
      const cases = [[d + '/fifo', d + '/file'], [d + '/file', d + '/fifo'], [d + '/sock', d + '/file'], ['/dev/zero', d + '/file'],
        [d + '/file', openSync(d + '/fifo', 'r+')], [d + '/file', d + '/new'], [d, d + '/new2']]
      for (const [s, t] of cases) {
        try { cloneRangeSync(s, t, {}); console.log('no error') } catch (e) { console.log(e.code, e.message) }
      }`
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 30_000, cwd: repo })
    assert.equal(r.signal, null, 'finished without being killed for taking too long')
    const lines = r.stdout.trim().split('\n')
    assert.equal(lines.length, 7, r.stderr)
    assert.match(lines[0] ?? '', /^EINVAL .*src is a FIFO/)
    assert.match(lines[1] ?? '', /^EINVAL .*dst is a FIFO/)
    assert.match(lines[2] ?? '', /^(EINVAL .*src is a socket|ENXIO)/, 'a socket cannot even be opened (ENXIO), or is refused')
    assert.match(lines[3] ?? '', /^EINVAL .*src is a character device/)
    assert.match(lines[4] ?? '', /^EINVAL .*dst is a FIFO/)
    assert.match(lines[5] ?? '', /^(ERR_CLONEFILE_NATIVE_MISSING|no error)/, 'a regular file gets through the checks')
    assert.match(lines[6] ?? '', /^EISDIR .*src is a directory/)
    assert.deepEqual(entries(dir).filter((n) => n.startsWith('new2')), [], 'a refused range leaves no destination')
  })

  it('issue 11 #15: a range copy that runs out of space says how many bytes it wrote', async (t) => {
    const m = await needMount(t, 'xfs-tiny')
    if (!m) return
    const dir = freshDir(m)
    const free = () => { const s = fs.statfsSync(m.dir); return s.bavail * s.bsize }
    const src = join(dir, 'src')
    const data = writeRandom(src, Math.floor(free() * 0.6 / K) * K)
    const dst = join(dir, 'dst')
    fs.writeFileSync(dst, '')
    const fd = fs.openSync(dst, 'r+')
    let written = 0
    try {
      assert.throws(() => cloneRangeSync(src, fd, {}, { mode: 'never' }), (e: CloneError) => {
        assert.equal(e.code, 'ENOSPC')
        assert.ok((e.bytesWritten ?? 0) > 0, `bytesWritten: ${e.bytesWritten}`)
        assert.match(e.message, new RegExp(`^ENOSPC: no space left on device after ${e.bytesWritten} bytes, `))
        written = e.bytesWritten ?? 0
        return true
      })
    } finally {
      fs.closeSync(fd)
    }
    assert.ok(written < data.length, 'it stopped short')
    assert.deepEqual(fs.readFileSync(dst).subarray(0, written), data.subarray(0, written), 'those bytes are the source\'s')
    fs.rmSync(dst)
  })
})
