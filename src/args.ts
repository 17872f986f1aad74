// Argument checks shared by every operation: Node's ERR_INVALID_ARG_* errors, defaults in one place.
import type { FileHandle } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { invalidArgType, invalidArgValue, outOfRange } from './errors.js'
import type { NativePath } from './binding.js'

export type PathLike = string | Buffer | URL
/** A path, or an open file: a FileHandle or a file descriptor. */
export type FileLike = PathLike | FileHandle | number

export interface Target {
  /** what the addon gets: a path or an fd */
  native: NativePath | number
  /** how errors name it */
  label: string
  /** set when the caller passed an open file */
  fd?: number
}

function isFileHandle(value: unknown): value is FileHandle {
  return typeof value === 'object' && value !== null && typeof (value as FileHandle).fd === 'number' &&
    typeof (value as FileHandle).close === 'function'
}

export function toPath(name: string, value: unknown): NativePath {
  if (typeof value === 'string') {
    if (value.length === 0 || value.includes('\0')) throw invalidArgValue(name, value, 'must be a non-empty string without null bytes')
    return value
  }
  if (Buffer.isBuffer(value)) {
    if (value.length === 0 || value.includes(0)) throw invalidArgValue(name, value.toString(), 'must be a non-empty Buffer without null bytes')
    return value
  }
  if (value instanceof URL) return toPath(name, fileURLToPath(value))
  throw invalidArgType(name, 'of type string or an instance of Buffer or URL', value)
}

export function toFd(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) throw outOfRange(name, '>= 0 && <= 2147483647', value)
  return value
}

export function toTarget(name: string, value: unknown): Target {
  if (typeof value === 'number') return { native: toFd(name, value), label: `<fd ${value}>`, fd: value }
  if (isFileHandle(value)) {
    if (value.fd < 0) throw invalidArgValue(name, value.fd, 'must be an open FileHandle')
    return { native: value.fd, label: `<fd ${value.fd}>`, fd: value.fd }
  }
  const path = toPath(name, value)
  return { native: path, label: path.toString() }
}

/**
 * Merges defaults once, rejecting values of the wrong type with ERR_INVALID_ARG_TYPE. Fields whose
 * default is undefined (callbacks, signals) are checked by the caller. Without options the
 * defaults object itself comes back (frozen by the caller): the hot path allocates nothing.
 */
export function withDefaults<D extends object>(name: string, options: unknown, defaults: D): D {
  if (options === undefined) return defaults
  if (typeof options !== 'object' || options === null) throw invalidArgType(name, 'of type object', options)
  const merged = { ...defaults } as Record<string, unknown>
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || !(key in defaults)) continue
    const fallback = merged[key]
    const expected = typeof fallback
    if (fallback !== undefined && typeof value !== expected) throw invalidArgType(`${name}.${key}`, `of type ${expected}`, value)
    merged[key] = value
  }
  return merged as D
}

export function oneOf<T extends string>(name: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) throw invalidArgValue(name, value, `must be one of: ${allowed.map((a) => `'${a}'`).join(', ')}`)
  return value
}
