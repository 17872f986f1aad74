// Argument checks shared by every operation: paths, open files and option objects, with Node's
// ERR_INVALID_ARG_* errors. Each operation declares its options once, in a table of specs (the
// default and the check of each key); resolveOptions() applies defaults in exactly one place.
import type { FileHandle } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { invalidArgType, invalidArgValue, outOfRange } from './errors.js'
import { toRaw } from './raw.js'
import type { NativePath } from './binding.js'

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

function toFd(name: string, value: number): number {
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

// ---- option tables ----

/** One option: its default, and the check that turns a given value into the resolved one. */
export interface Spec<T> {
  readonly default: T
  /** throws ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE / ERR_OUT_OF_RANGE naming `name` */
  readonly check: (name: string, value: unknown) => T
}

/** The options of one operation: a spec for every key of its resolved options `R`. */
export type OptionTable<R> = { readonly [K in keyof R]-?: Spec<R[K]> }

const defaultsOf = new WeakMap<object, object>()

/** The defaults of a table, made once and frozen: resolving no options allocates nothing. */
function defaultsFor<R extends object>(table: OptionTable<R>): Readonly<R> {
  let d = defaultsOf.get(table) as R | undefined
  if (d === undefined) {
    d = Object.freeze(Object.fromEntries(Object.entries(table).map(([k, s]) => [k, (s as Spec<unknown>).default]))) as R
    defaultsOf.set(table, d)
  }
  return d
}

/** Edit distance, for "did you mean": a misspelt key is the usual unknown one (srcOfset). */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    row = next
  }
  return row[b.length] ?? 0
}

function unknownKey(name: string, key: string, known: string[], value: unknown): TypeError {
  const near = known.filter((k) => distance(k.toLowerCase(), key.toLowerCase()) <= 2)
  const hint = near.length > 0 ? ` (did you mean '${near[0]}'?)` : ` (known: ${known.join(', ')})`
  return invalidArgValue(`${name}.${key}`, value, `is not an option${hint}`)
}

/**
 * Checks an option object against its table: not an object → ERR_INVALID_ARG_TYPE; a key the
 * table does not have → ERR_INVALID_ARG_VALUE naming it (a misspelt `srcOfset` must not quietly
 * mean the default); each value through its spec's check. An undefined value is the default.
 * `undefined` options give the frozen defaults themselves.
 */
export function resolveOptions<R extends object>(name: string, options: unknown, table: OptionTable<R>): R {
  const defaults = defaultsFor(table)
  if (options === undefined) return defaults
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidArgType(name, 'of type object', options)
  const resolved = { ...defaults } as Record<string, unknown>
  for (const [key, value] of Object.entries(options)) {
    const spec = Object.hasOwn(table, key) ? (table as Record<string, Spec<unknown>>)[key] : undefined
    if (spec === undefined) throw unknownKey(name, key, Object.keys(table), value)
    if (value !== undefined) resolved[key] = spec.check(`${name}.${key}`, value)
  }
  return resolved as R
}

// ---- specs ----

export function boolean(def: boolean): Spec<boolean> {
  return {
    default: def,
    check: (name, value) => {
      if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value)
      return value
    },
  }
}

/** A string that must be one of `allowed`. */
export function oneOf<T extends string>(def: T, allowed: readonly T[]): Spec<T> {
  return {
    default: def,
    check: (name, value) => {
      if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value)
      if (!(allowed as readonly string[]).includes(value)) {
        throw invalidArgValue(name, value, `must be one of: ${allowed.map((a) => `'${a}'`).join(', ')}`)
      }
      return value as T
    },
  }
}

/**
 * A number from `min` up: an integer unless `whole` is false (Infinity is then allowed too).
 * Out of range is ERR_OUT_OF_RANGE, as Node's own fs functions say of offsets and lengths.
 */
export function number(def: number, min: number, whole = true): Spec<number> {
  return {
    default: def,
    check: (name, value) => {
      if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value)
      if (whole ? !Number.isSafeInteger(value) || value < min : !(value >= min)) {
        throw outOfRange(name, whole ? `an integer >= ${min}` : `>= ${min}`, value)
      }
      return value
    },
  }
}

/** A callback, or undefined. */
export function callback<F extends (...args: never[]) => unknown>(): Spec<F | undefined> {
  return {
    default: undefined,
    check: (name, value) => {
      if (typeof value !== 'function') throw invalidArgType(name, 'of type function', value)
      return value as F
    },
  }
}

export function abortSignal(): Spec<AbortSignal | undefined> {
  return {
    default: undefined,
    check: (name, value) => {
      if (!(value instanceof AbortSignal)) throw invalidArgType(name, 'an instance of AbortSignal', value)
      return value
    },
  }
}

/** A path (string, Buffer or file URL), or undefined: snapshots' `store`, dedupe's `cache`. */
export function optionalPath(): Spec<NativePath | undefined> {
  return {
    default: undefined,
    check: (name, value) => toPath(name, value),
  }
}

/** A nested option object with a table of its own (cloneTree's `preserve`): resolved whole. */
export function nested<R extends object>(table: OptionTable<R>): Spec<Readonly<R>> {
  return {
    default: defaultsFor(table),
    check: (name, value) => resolveOptions(name, value, table),
  }
}

/** One path or several, as byte strings (raw.ts): usage() and dedupe() take either. */
export function toRawPaths(paths: unknown): string[] {
  const list = Array.isArray(paths) ? paths : [paths]
  if (list.length === 0) throw invalidArgValue('paths', paths, 'must name at least one path')
  return list.map((p, i) => toRaw(toPath(Array.isArray(paths) ? `paths[${i}]` : 'paths', p)))
}
