import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { probe, probeSync } from '../src/probe.js'
import { entries } from './helpers/files.js'
import { RO_DATA, bindMount, freshDir, needMount } from './helpers/mounts.js'

describe('probe', () => {
  for (const [kind, name] of [['xfs', 'xfs'], ['btrfs', 'btrfs']] as const) {
    it(`${kind} clones, clones ranges and dedupes, proven by a real clone`, async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      const p = await probe(dir)
      assert.deepEqual(p, { clone: true, range: true, dedupe: true, filesystem: name, blockSize: 4096 })
      assert.deepEqual(entries(dir), [], 'the probe cleaned up after itself')
    })
  }

  for (const kind of ['ext4', 'tmpfs'] as const) {
    it(`${kind} does not clone, and says why`, async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const p = probeSync(freshDir(m))
      assert.equal(p.clone, false)
      assert.equal(p.range, false)
      assert.equal(p.filesystem, kind)
      assert.match(p.reason ?? '', /^EOPNOTSUPP/)
    })
  }

  it('two filesystems: EXDEV; a bind mount of one: clones; answers are cached per pair', async (t) => {
    const xfs = await needMount(t, 'xfs')
    const btrfs = await needMount(t, 'btrfs')
    if (!xfs || !btrfs) return
    const p = probeSync(xfs.dir, btrfs.dir)
    assert.equal(p.clone, false)
    assert.match(p.reason ?? '', /^EXDEV/)
    const bound = await bindMount(xfs)
    assert.equal(probeSync(freshDir(xfs), bound).clone, true)
    const a = probeSync(xfs.dir)
    a.clone = false // a copy: changing it must not change the cache
    assert.equal(probeSync(join(xfs.dir, 'anything-missing', '..')).clone, true)
  })

  it('a read-only filesystem is answered from its type, marked unconfirmed', async (t) => {
    const m = await needMount(t, 'xfs-ro')
    if (!m) return
    const p = probeSync(join(m.dir, RO_DATA))
    assert.equal(p.filesystem, 'xfs')
    assert.match(p.reason ?? '', /^EROFS: unconfirmed/)
  })

  it('a missing path is ENOENT', () => {
    assert.throws(() => probeSync('/no/such/place'), { code: 'ENOENT', syscall: 'statfs' })
  })
})
