import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { METHOD_CLONE, METHOD_COPY } from '../src/binding.js'
import { cannotCloneHere, fallbackFor, filesystemName, knownToClone, misalignment, splitRange } from '../src/fallback.js'
import { fsError } from '../src/errors.js'

describe('the clone-or-copy policy', () => {
  it('only a failed clone call with a "cannot share" code falls back', () => {
    assert.equal(fallbackFor(fsError('EXDEV', 'ioctl_ficlone'))?.code, 'EXDEV')
    assert.equal(fallbackFor(fsError('EXDEV', 'open')), undefined, 'not the clone itself')
    assert.equal(fallbackFor(fsError('ENOSPC', 'ioctl_ficlone')), undefined)
    assert.equal(fallbackFor(new Error('x')), undefined)
    assert.equal(cannotCloneHere({ code: 'EXDEV', message: '' }), true)
    assert.equal(cannotCloneHere({ code: 'EINVAL', message: '' }), false)
  })

  it('Windows: a refused FSCTL_SET_SPARSE and an unflushable source fall back (issue 12 #5, #4)', () => {
    const sparse = fallbackFor(fsError('ENOTSUP', 'FSCTL_SET_SPARSE'))
    assert.equal(sparse?.code, 'ENOTSUP')
    assert.match(sparse?.message ?? '', /FSCTL_SET_SPARSE/, 'the reason is reported')
    assert.equal(cannotCloneHere(sparse!), true, 'the whole volume copies from then on')
    assert.equal(fallbackFor(fsError('EACCES', 'FlushFileBuffers'))?.code, 'EACCES')
    assert.equal(fallbackFor(fsError('EIO', 'FlushFileBuffers')), undefined, 'a failing disk is not a reason to copy')
    assert.equal(fallbackFor(fsError('EACCES', 'FSCTL_DUPLICATE_EXTENTS_TO_FILE')), undefined)
  })

  it('the filesystem table (moved from linux.c): names and what each type can do', () => {
    assert.equal(filesystemName({ type: 0x9123683e, name: '' }), 'btrfs')
    assert.equal(filesystemName({ type: 0x58465342, name: '' }), 'xfs')
    assert.equal(filesystemName({ type: 0x1234, name: '' }), '0x1234')
    assert.equal(filesystemName({ type: 7, name: 'apfs' }), 'apfs')
    assert.equal(knownToClone(0x9123683e), true)
    assert.equal(knownToClone(0xef53), false)
    assert.equal(knownToClone(0x58465342), undefined, 'XFS may be made without reflink')
    assert.equal(knownToClone('btrfs'), true)
    assert.equal(knownToClone('tmpfs'), false)
    assert.equal(knownToClone({ type: 0xef53, name: '', canClone: -1 }), false)
    assert.equal(knownToClone({ type: 0, name: 'NTFS', canClone: 0 }), false, "the OS's own answer wins")
    assert.equal(knownToClone({ type: 0, name: 'ReFS', canClone: 1 }), true)
  })

  it('a misaligned range: the aligned middle cloned, head and tail copied', () => {
    const B = 4096
    assert.deepEqual(splitRange(100, 100, 3 * B, B), [
      { method: METHOD_COPY, srcOffset: 100, dstOffset: 100, length: B - 100 },
      { method: METHOD_CLONE, srcOffset: B, dstOffset: B, length: 2 * B },
      { method: METHOD_COPY, srcOffset: 3 * B, dstOffset: 3 * B, length: 100 },
    ])
    assert.deepEqual(splitRange(B + 5, 2 * B + 5, 2 * B, B).map((p) => [p.method, p.length]), [[METHOD_COPY, B - 5], [METHOD_CLONE, B], [METHOD_COPY, 5]])
    // Offsets that differ modulo the block have no aligned middle; neither has a short range.
    assert.deepEqual(splitRange(100, 0, 8 * B, B), [{ method: METHOD_COPY, srcOffset: 100, dstOffset: 0, length: 8 * B }])
    assert.deepEqual(splitRange(100, 100, B, B).map((p) => p.method), [METHOD_COPY])
    assert.deepEqual(splitRange(0, 0, 2 * B + 1, B).map((p) => [p.method, p.length]), [[METHOD_CLONE, 2 * B], [METHOD_COPY, 1]])
  })

  it('misalignment names the block size and the nearest aligned offsets', () => {
    assert.match(misalignment({ srcOffset: 100, dstOffset: 0, length: 8192 }, 4096, false) ?? '', /block size 4096 \(srcOffset 100 -> 0 or 4096;/)
    assert.equal(misalignment({ srcOffset: 0, dstOffset: 0, length: 100 }, 4096, true), undefined, 'an unaligned length is fine at EOF')
    assert.match(misalignment({ srcOffset: 0, dstOffset: 0, length: 100 }, 4096, false) ?? '', /length 100 -> 0 or 4096/)
  })
})
