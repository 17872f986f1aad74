import { basename, dirname, join } from 'node:path'

/** Leftovers of a killed process carry this prefix, so that later runs can recognise them. */
export const TEMP_PREFIX = '.clonefile-tmp-'
let counter = 0

/** A name beside `path` for building something before it is renamed into place. */
export function tempSibling(path: string): string {
  return join(dirname(path), `${TEMP_PREFIX}${process.pid}-j${++counter}-${basename(path)}`)
}
