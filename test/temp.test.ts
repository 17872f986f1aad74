import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { toRaw } from '../src/raw.js'
import { tempNameRaw, tempTagRaw } from '../src/temp.js'

describe('temporary names (issue 12 #10)', () => {
  it('a long name is never cut inside a UTF-8 sequence: it is replaced by a hash', () => {
    const long = toRaw('é'.repeat(120)) // 240 bytes: over the limit, every char two bytes
    const tag = tempTagRaw(long)
    assert.match(tag, /^[0-9a-f]{32}$/)
    const name = tempNameRaw(long)
    assert.equal(Buffer.from(name, 'latin1').toString('utf8').includes('\ufffd'), false, 'valid UTF-8')
    assert.ok(Buffer.byteLength(name, 'latin1') <= 255)
  })

  it('a short name is kept whole', () => {
    const short = toRaw('日本語.txt')
    assert.equal(tempTagRaw(short), short)
  })
})
