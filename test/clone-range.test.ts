import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { cloneRange, cloneRangeSync } from '../src/index.js'
import { extentsOf, sharedBytes } from './helpers/fiemap.js'
import { entries, writeRandom } from './helpers/files.js'
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
