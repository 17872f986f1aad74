import assert from 'node:assert/strict'
import { constants } from 'node:os'
import { describe, it } from 'node:test'
import { errnoName, errnoOf, fromNative, fsError } from '../src/errors.js'
import type { CloneError } from '../src/types.js'

describe('errors from the addon', () => {
  it('EBADE (what FIDEDUPERANGE answers when the bytes differ) comes out as EBADE, not EUNKNOWN', { skip: process.platform !== 'linux' }, () => {
    assert.equal('EBADE' in constants.errno, false, 'Node lacks it: the reason for the table')
    const e = fromNative({ errno: 52, syscall: 'ioctl_fideduperange' }, 'a', 'b') as CloneError
    assert.equal(e.code, 'EBADE')
    assert.equal(e.errno, -52)
    assert.equal(e.message, "EBADE: invalid exchange, ioctl_fideduperange 'a' -> 'b'")
    assert.equal(errnoName(117), 'EUCLEAN')
    assert.equal(errnoOf('EUCLEAN'), 117)
  })

  it('numbers from os.constants.errno; ENOTSUP/EOPNOTSUPP named as FICLONE documents it', () => {
    const e = fromNative({ errno: constants.errno.ECANCELED, syscall: 'open' }, 'p') as CloneError
    assert.equal(e.code, 'ECANCELED')
    assert.equal(e.errno, -constants.errno.ECANCELED)
    assert.equal(errnoName(constants.errno.EOPNOTSUPP), 'EOPNOTSUPP')
    assert.equal(errnoName(0x7fff), 'EUNKNOWN')
  })

  it('bytesWritten from the addon is said in the message and kept on the error', () => {
    const e = fromNative({ errno: constants.errno.ENOSPC, syscall: 'write', bytesWritten: 1048576 }, 'a', 'b') as CloneError
    assert.equal(e.code, 'ENOSPC')
    assert.equal(e.bytesWritten, 1048576)
    assert.equal(e.message, "ENOSPC: no space left on device after 1048576 bytes, write 'a' -> 'b'")
    const none = fromNative({ errno: constants.errno.ENOSPC, syscall: 'write', bytesWritten: 0 }) as CloneError
    assert.equal(none.bytesWritten, undefined)
    assert.equal(none.message, 'ENOSPC: no space left on device, write')
  })

  it('fsError takes the number from the code, and errors already made pass through', () => {
    const e = fsError('EINVAL', 'clone', { path: 'a', dest: 'b', detail: 'src and dst are the same file' })
    assert.equal(e.errno, -constants.errno.EINVAL)
    assert.equal(e.message, "EINVAL: src and dst are the same file, clone 'a' -> 'b'")
    assert.equal(fromNative(e), e)
  })
})
