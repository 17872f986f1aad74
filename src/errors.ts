import { constants } from 'node:os'
import { getSystemErrorMap } from 'node:util'

/** What the addon throws: a positive errno of the platform and the failing syscall. */
export interface NativeFailure {
  errno: number
  syscall: string
  onDest?: boolean
}

/** An error shaped like Node's own fs errors. */
export interface CloneError extends Error {
  code: string
  errno: number
  syscall: string
  path?: string
  dest?: string
}

// Where the platform gives one number two names, the name the kernel's documentation uses
// for a failed clone wins (FICLONE(2const) says EOPNOTSUPP; Linux ENOTSUP is the same 95).
const preferred = ['EOPNOTSUPP', 'EAGAIN', 'EDEADLK']
const ownMessages: Record<string, string> = {
  EOPNOTSUPP: 'operation not supported',
  ENOTSUP: 'operation not supported',
}

let byNumber: Map<number, string> | undefined
let uvByName: Map<string, [number, string]> | undefined

function errnoName(errnum: number): string {
  if (byNumber === undefined) {
    byNumber = new Map()
    for (const [name, n] of Object.entries(constants.errno)) {
      if (!byNumber.has(n) || preferred.includes(name)) byNumber.set(n, name)
    }
  }
  return byNumber.get(errnum) ?? 'EUNKNOWN'
}

/** libuv's (negative) errno and description for a code, as Node's fs errors carry them. */
function uvFor(code: string, errnum: number): [number, string] {
  if (uvByName === undefined) {
    uvByName = new Map()
    for (const [n, [name, message]] of getSystemErrorMap()) uvByName.set(name, [n, message])
  }
  const uv = uvByName.get(code) ?? uvByName.get(code === 'EOPNOTSUPP' ? 'ENOTSUP' : '')
  return [uv?.[0] ?? -errnum, ownMessages[code] ?? uv?.[1] ?? 'unknown error']
}

const quote = (p: string | undefined) => (p === undefined ? '' : ` '${p}'`)

/** Builds `CODE: description, syscall 'path' -> 'dest'`, with every field Node's errors have. */
export function fsError(code: string, errnum: number, syscall: string, path?: string, dest?: string, detail?: string): CloneError {
  const [uvErrno, description] = uvFor(code, errnum)
  const where = `${syscall}${quote(path)}${dest === undefined ? '' : ` ->${quote(dest)}`}`
  const err = new Error(`${code}: ${detail ?? description}, ${where}`) as CloneError
  err.code = code
  err.errno = uvErrno
  err.syscall = syscall
  if (path !== undefined) err.path = path
  if (dest !== undefined) err.dest = dest
  Error.captureStackTrace(err, fsError)
  return err
}

export function isNativeFailure(e: unknown): e is NativeFailure {
  // Errors already made Node-style (they have a code) pass through untouched.
  return typeof e === 'object' && e !== null && !('code' in e) && typeof (e as NativeFailure).errno === 'number' &&
    typeof (e as NativeFailure).syscall === 'string'
}

/** Turns what the addon threw into a Node-style error; anything else passes through untouched. */
export function fromNative(e: unknown, path?: string, dest?: string): unknown {
  if (!isNativeFailure(e)) return e
  return fsError(errnoName(e.errno), e.errno, e.syscall, path, dest)
}

function described(value: unknown): string {
  if (value === null || value === undefined) return `Received ${value}`
  if (typeof value === 'function') return `Received function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') return `Received an instance of ${value.constructor?.name ?? 'Object'}`
  return `Received type ${typeof value} (${String(value).slice(0, 28)})`
}

export function invalidArgType(name: string, expected: string, actual: unknown): TypeError {
  const err = new TypeError(`The "${name}" argument must be ${expected}. ${described(actual)}`) as TypeError & { code: string }
  err.code = 'ERR_INVALID_ARG_TYPE'
  return err
}

export function invalidArgValue(name: string, value: unknown, reason: string): TypeError {
  const err = new TypeError(`The argument '${name}' ${reason}. Received ${JSON.stringify(value) ?? String(value)}`) as TypeError & { code: string }
  err.code = 'ERR_INVALID_ARG_VALUE'
  return err
}

export function outOfRange(name: string, range: string, value: unknown): RangeError {
  const err = new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${String(value)}`) as RangeError & { code: string }
  err.code = 'ERR_OUT_OF_RANGE'
  return err
}

/** What Node's own fs functions throw on an abort: name AbortError, code ABORT_ERR. */
export function abortError(signal: AbortSignal): Error {
  const err = new Error('The operation was aborted', { cause: signal.reason }) as Error & { code: string }
  err.name = 'AbortError'
  err.code = 'ABORT_ERR'
  return err
}
