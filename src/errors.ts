// Errors shaped like Node's own: fs errors from a (positive) errno of the addon, and the
// ERR_INVALID_ARG_* errors of argument checks.
import { constants } from 'node:os'
import { getSystemErrorMap } from 'node:util'
import type { CloneError } from './types.js'

/** What the addon throws: a positive errno of the platform and the failing syscall. */
export interface NativeFailure {
  errno: number
  syscall: string
  onDest?: boolean
  /** bytes a copy wrote before it failed (cf_error.bytes), where it wrote any */
  bytesWritten?: number
}

// Where the platform gives one number two names, the name the kernel's documentation uses
// for a failed clone wins (FICLONE(2const) says EOPNOTSUPP; Linux ENOTSUP is the same 95).
const preferred = ['EOPNOTSUPP', 'EAGAIN', 'EDEADLK']
const ownMessages: Record<string, string> = {
  EOPNOTSUPP: 'operation not supported',
  ENOTSUP: 'operation not supported',
}

/**
 * Linux errnos that os.constants.errno leaves out (it lists POSIX's), with glibc's strerror:
 * FIDEDUPERANGE answers EBADE when the bytes differ, btrfs and XFS EUCLEAN on a corrupt
 * filesystem, network filesystems EREMOTEIO. From the kernel's include/uapi/asm-generic/errno.h.
 */
const linuxOnly: Record<string, [number, string]> = {
  EBADE: [52, 'invalid exchange'],
  EBADR: [53, 'invalid request descriptor'],
  EXFULL: [54, 'exchange full'],
  EREMOTE: [66, 'object is remote'],
  ECOMM: [70, 'communication error on send'],
  EBADFD: [77, 'file descriptor in bad state'],
  ESTRPIPE: [86, 'streams pipe error'],
  EUCLEAN: [117, 'structure needs cleaning'],
  EREMOTEIO: [121, 'remote I/O error'],
  ENOMEDIUM: [123, 'no medium found'],
  EMEDIUMTYPE: [124, 'wrong medium type'],
  ENOKEY: [126, 'required key not available'],
  EKEYEXPIRED: [127, 'key has expired'],
  EKEYREVOKED: [128, 'key has been revoked'],
  EKEYREJECTED: [129, 'key was rejected by service'],
  EOWNERDEAD: [130, 'owner died'],
  ENOTRECOVERABLE: [131, 'state not recoverable'],
  EHWPOISON: [133, 'memory page has hardware error'],
}

/** Every errno name of this platform with its number: Node's, plus Linux's that Node lacks. */
function errnoTable(): Array<[string, number]> {
  const table = Object.entries(constants.errno) as Array<[string, number]>
  if (process.platform === 'linux') {
    for (const [name, [n]] of Object.entries(linuxOnly)) if (!(name in constants.errno)) table.push([name, n])
  }
  return table
}

let byNumber: Map<number, string> | undefined
let byName: Map<string, number> | undefined
let uvByName: Map<string, [number, string]> | undefined

/** The name of a (positive) errno of this platform, e.g. 'ENOENT'; EUNKNOWN where none is known. */
export function errnoName(errnum: number): string {
  if (byNumber === undefined) {
    byNumber = new Map()
    for (const [name, n] of errnoTable()) {
      if (!byNumber.has(n) || preferred.includes(name)) byNumber.set(n, name)
    }
  }
  return byNumber.get(errnum) ?? 'EUNKNOWN'
}

/** The (positive) errno of a name on this platform, or undefined. */
export function errnoOf(code: string): number | undefined {
  byName ??= new Map(errnoTable())
  return byName.get(code)
}

/** libuv's (negative) errno and description for a code, as Node's fs errors carry them. */
function uvFor(code: string): [number, string] {
  if (uvByName === undefined) {
    uvByName = new Map()
    for (const [n, [name, message]] of getSystemErrorMap()) uvByName.set(name, [n, message])
  }
  const uv = uvByName.get(code) ?? uvByName.get(code === 'EOPNOTSUPP' ? 'ENOTSUP' : '')
  const own = process.platform === 'linux' ? linuxOnly[code] : undefined
  const errno = uv?.[0] ?? -(errnoOf(code) ?? 0)
  return [errno, ownMessages[code] ?? uv?.[1] ?? own?.[1] ?? 'unknown error']
}

const quote = (p: string | undefined) => (p === undefined ? '' : ` '${p}'`)

export interface FsErrorDetails {
  path?: string | undefined
  dest?: string | undefined
  /** says more than the errno's description, in its place */
  detail?: string | undefined
  /** bytes written before the failure: said in the message and kept on the error */
  bytesWritten?: number | undefined
}

/** Builds `CODE: description, syscall 'path' -> 'dest'`, with every field Node's errors have. */
export function fsError(code: string, syscall: string, details: FsErrorDetails = {}): CloneError {
  const { path, dest, detail, bytesWritten } = details
  const [uvErrno, description] = uvFor(code)
  const where = `${syscall}${quote(path)}${dest === undefined ? '' : ` ->${quote(dest)}`}`
  const after = bytesWritten === undefined ? '' : ` after ${bytesWritten} bytes`
  const err = new Error(`${code}: ${detail ?? description}${after}, ${where}`) as CloneError
  err.code = code
  err.errno = uvErrno
  err.syscall = syscall
  if (path !== undefined) err.path = path
  if (dest !== undefined) err.dest = dest
  if (bytesWritten !== undefined) err.bytesWritten = bytesWritten
  Error.captureStackTrace(err, fsError)
  return err
}

function isNativeFailure(e: unknown): e is NativeFailure {
  // Errors already made Node-style (they have a code) pass through untouched.
  return typeof e === 'object' && e !== null && !('code' in e) && typeof (e as NativeFailure).errno === 'number' &&
    typeof (e as NativeFailure).syscall === 'string'
}

/** Turns what the addon threw into a Node-style error; anything else passes through untouched. */
export function fromNative(e: unknown, path?: string, dest?: string): unknown {
  if (!isNativeFailure(e)) return e
  const bytesWritten = typeof e.bytesWritten === 'number' && e.bytesWritten > 0 ? e.bytesWritten : undefined
  return fsError(errnoName(e.errno), e.syscall, { path, dest, bytesWritten })
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

function shownValue(value: unknown): string {
  if (typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') return String(value)
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

export function invalidArgValue(name: string, value: unknown, reason: string): TypeError {
  const err = new TypeError(`The argument '${name}' ${reason}. Received ${shownValue(value)}`) as TypeError & { code: string }
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

// glibc's strerror for the errnos std::filesystem reports in Node 22's cpSync (its
// ErrnoException says them, where libuv's errors say uv's lowercase descriptions).
const strerror: Record<string, string> = {
  EEXIST: 'File exists',
  ENOENT: 'No such file or directory',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  ENOTEMPTY: 'Directory not empty',
  ENOTSUP: 'Operation not supported',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EINVAL: 'Invalid argument',
  EXDEV: 'Invalid cross-device link',
}

/**
 * What Node's C++ throws for a std::filesystem error (ErrnoException): `CODE, strerror 'path'`,
 * a positive errno, the syscall it names (Node 22's cpSync: 'cp', or 'unlink').
 */
export function stdError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const err = new Error(`${code}, ${strerror[code] ?? code} '${path}'`) as NodeJS.ErrnoException
  Object.assign(err, { errno: errnoOf(code === 'ENOTSUP' ? 'EOPNOTSUPP' : code) ?? 0, code, path, syscall })
  Error.captureStackTrace(err, stdError)
  return err
}
