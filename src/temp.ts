import { createHash } from 'node:crypto'
import { basename, dirname, join } from 'node:path'

/** Leftovers of a killed process carry this prefix, so that later runs can recognise them. */
export const TEMP_PREFIX = '.clonefile-tmp-'
let counter = 0

/**
 * The part of a temporary name that says whose it is: the name itself, or for a long one (a
 * name may be 255 bytes, and the prefix must fit too) a hash of it.
 */
export function tempTag(name: string): string {
  return Buffer.byteLength(name) <= 200 ? name : createHash('sha256').update(name).digest('hex').slice(0, 32)
}

/** A name beside `path` for building something before it is renamed into place. */
export function tempSibling(path: string): string {
  return join(dirname(path), `${TEMP_PREFIX}${process.pid}-j${++counter}-${tempTag(basename(path))}`)
}
