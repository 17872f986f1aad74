import { createRequire } from 'node:module'
import { basename, dirname, join } from 'node:path'
import { bytes, shown, toRaw } from './raw.js'

/** Leftovers of a killed process carry this prefix, so that later runs can recognise them. */
export const TEMP_PREFIX = '.clonefile-tmp-'
let counter = 0

/**
 * The part of a temporary name that says whose it is, for a name as a byte string (raw.ts):
 * the name itself, or for a long one (a name may be 255 bytes, and the prefix must fit too) a
 * hash of it.
 */
export function tempTagRaw(name: string): string {
  if (name.length <= 200) return name
  // Loaded when first needed: node:crypto adds about 8 ms to every start of the CLI.
  const { createHash } = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto')
  return createHash('sha256').update(bytes(name)).digest('hex').slice(0, 32)
}

/** A name beside `path` (a byte string) for building something before it is renamed into place. */
export function tempSiblingRaw(path: string): string {
  return join(dirname(path), `${TEMP_PREFIX}${process.pid}-j${++counter}-${tempTagRaw(basename(path))}`)
}

/** tempSiblingRaw() for a path as a string. */
export function tempSibling(path: string): string {
  return shown(tempSiblingRaw(toRaw(path)))
}
