// THE temporary-name rule. Everything clonefile builds aside (a copy, a replacement, a whole
// tree) is built under a name made here and given to the addon, which never invents one: C
// that cut names to a byte count could split a UTF-8 sequence (EILSEQ on APFS and Windows).
import { createRequire } from 'node:module'
import { basename, dirname, join } from 'node:path'
import { bytes, shown, toRaw } from './raw.js'

/** Leftovers of a killed process carry this prefix, so that later runs can recognise them. */
export const TEMP_PREFIX = '.clonefile-tmp-'
/**
 * Beside a temporary tree `T`, `T` + LOCK_SUFFIX: the file whose lock proves alive the run that
 * builds T. The run takes the lock before it makes T, and holds it until T is renamed into
 * place or removed: a T whose lock file is free is a dead run's.
 */
export const LOCK_SUFFIX = '.lock'
let counter = 0
const run = `${process.pid.toString(36)}${Math.floor(Math.random() * 0xffffff).toString(36)}`

/**
 * The part of a temporary name that says whose it is, for a name as a byte string (raw.ts):
 * the name itself, or for a long one (a name may be 255 bytes, and the prefix must fit too) a
 * hash of it. Whole names only: never a cut that could split a character.
 */
export function tempTagRaw(name: string): string {
  if (name.length <= 200) return name
  // Loaded when first needed: node:crypto adds about 8 ms to every start of the CLI.
  const { createHash } = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto')
  return createHash('sha256').update(bytes(name)).digest('hex').slice(0, 32)
}

/**
 * A new name beside the byte-string name `name` (a bare name, no directory) for building
 * something before it is renamed into place: unique to this process and call (a run id of
 * pid and random bits, and a counter), created exclusively by whoever uses it, never reused.
 */
export function tempNameRaw(name: string): string {
  return `${TEMP_PREFIX}${run}-${(++counter).toString(36)}-${tempTagRaw(name)}`
}

/** A temporary sibling of `path` (a byte string). */
export function tempSiblingRaw(path: string): string {
  return join(dirname(path), tempNameRaw(basename(path)))
}

/** tempSiblingRaw() for a path as a string. */
export function tempSibling(path: string): string {
  return shown(tempSiblingRaw(toRaw(path)))
}

/** Whether `name` (a byte string) is a temporary name made by tempNameRaw for `dstName`. */
export function isTempFor(name: string, dstName: string): boolean {
  return name.startsWith(TEMP_PREFIX) && name.endsWith(`-${tempTagRaw(dstName)}`)
}
