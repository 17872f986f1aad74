import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { boolean, callback, nested, number, oneOf, resolveOptions } from '../src/args.js'
import type { OptionTable } from '../src/args.js'
import { clone, cloneSync } from '../src/clone.js'
import { cloneRange, cloneRangeSync } from '../src/clone-range.js'
import { probeSync } from '../src/probe.js'

interface Preserve { mode: boolean; xattr: boolean }
interface Options { mode: 'a' | 'b'; depth: number; preserve: Readonly<Preserve>; onEntry: (() => void) | undefined }
const preserveTable: OptionTable<Preserve> = { mode: boolean(true), xattr: boolean(true) }
const table: OptionTable<Options> = { mode: oneOf<'a' | 'b'>('a', ['a', 'b']), depth: number(Infinity, 0, false), preserve: nested(preserveTable), onEntry: callback() }

describe('option tables', () => {
  it('no options: the frozen defaults themselves, every time', () => {
    const d = resolveOptions('options', undefined, table)
    assert.deepEqual(d, { mode: 'a', depth: Infinity, preserve: { mode: true, xattr: true }, onEntry: undefined })
    assert.ok(Object.isFrozen(d))
    assert.equal(resolveOptions('options', undefined, table), d)
  })

  it('merges given values over the defaults; undefined means the default', () => {
    const r = resolveOptions('options', { mode: 'b', depth: undefined, preserve: { xattr: false } }, table)
    assert.deepEqual(r, { mode: 'b', depth: Infinity, preserve: { mode: true, xattr: false }, onEntry: undefined })
  })

  it('wrong type: ERR_INVALID_ARG_TYPE naming the option; bad value: ERR_INVALID_ARG_VALUE', () => {
    assert.throws(() => resolveOptions('options', 'a', table), { code: 'ERR_INVALID_ARG_TYPE', message: /"options" argument must be of type object/ })
    assert.throws(() => resolveOptions('options', [], table), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => resolveOptions('options', { mode: 1 }, table), { code: 'ERR_INVALID_ARG_TYPE', message: /"options\.mode"/ })
    assert.throws(() => resolveOptions('options', { mode: 'c' }, table), { code: 'ERR_INVALID_ARG_VALUE', message: /'options\.mode' must be one of: 'a', 'b'/ })
    assert.throws(() => resolveOptions('options', { depth: -1 }, table), { code: 'ERR_OUT_OF_RANGE' })
    assert.throws(() => resolveOptions('options', { onEntry: 'x' }, table), { code: 'ERR_INVALID_ARG_TYPE', message: /of type function/ })
  })

  it('issue 11 #14: an unknown key is ERR_INVALID_ARG_VALUE naming it, nested objects too', () => {
    assert.throws(() => resolveOptions('options', { dept: 3 }, table), (e: Error & { code: string }) => {
      assert.equal(e.code, 'ERR_INVALID_ARG_VALUE')
      assert.match(e.message, /'options\.dept' is not an option \(did you mean 'depth'\?\)/)
      return true
    })
    assert.throws(() => resolveOptions('options', { preserve: { owner: false } }, table), { code: 'ERR_INVALID_ARG_VALUE', message: /'options\.preserve\.owner' is not an option/ })
    assert.throws(() => resolveOptions('options', { preserve: { mode: 'no' } }, table), { code: 'ERR_INVALID_ARG_TYPE', message: /"options\.preserve\.mode"/ })
  })
})

describe('issue 11 #14: every option object of the API is validated (before anything is touched)', () => {
  it('clone(), cloneRange(), probe(): unknown keys and wrong types', async () => {
    await assert.rejects(clone('/nonexistent/a', '/nonexistent/b', { overwirte: true } as never), { code: 'ERR_INVALID_ARG_VALUE', message: /'options\.overwirte'.*did you mean 'overwrite'/ })
    assert.throws(() => cloneSync('/nonexistent/a', '/nonexistent/b', { followSymlinks: 0 } as never), { code: 'ERR_INVALID_ARG_TYPE' })
    // A misspelt srcOffset must not quietly clone from offset 0.
    assert.throws(() => cloneRangeSync('/nonexistent/a', '/nonexistent/b', { srcOfset: 4096 } as never), { code: 'ERR_INVALID_ARG_VALUE', message: /'range\.srcOfset'.*did you mean 'srcOffset'/ })
    await assert.rejects(cloneRange('/nonexistent/a', '/nonexistent/b', {}, { mode: 'auto', force: true } as never), { code: 'ERR_INVALID_ARG_VALUE', message: /'options\.force'/ })
    assert.throws(() => probeSync(7 as never), { code: 'ERR_INVALID_ARG_TYPE' })
  })
})
