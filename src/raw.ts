// Byte strings: the tree walks carry every path as a string of one character per byte of the
// name as the filesystem has it (U+0000-U+00FF, Latin-1 in N-API's terms), and the addon reads
// and writes them so (RAW). A name that is not UTF-8 (an old camera's, a Latin-1 archive's)
// then survives the trip through JavaScript and is cloned under its own name; as UTF-8 strings
// it would come back with U+FFFD in it, a name that does not exist. People see paths as UTF-8.

import { isUtf8 } from 'node:buffer'

const NON_ASCII = /[^\x00-\x7f]/

/** A path as the user gave it (a string is UTF-8, a Buffer is bytes) as a byte string. */
export function toRaw(path: string | Buffer): string {
  if (typeof path !== 'string') return path.toString('latin1')
  return NON_ASCII.test(path) ? Buffer.from(path, 'utf8').toString('latin1') : path
}

/** How a byte string is shown to people (errors, filter, skipped entries): decoded as UTF-8. */
export function shown(raw: string): string {
  return NON_ASCII.test(raw) ? Buffer.from(raw, 'latin1').toString('utf8') : raw
}

/** A byte string as the Buffer node:fs takes for exactly those bytes. */
export function bytes(raw: string): Buffer {
  return Buffer.from(raw, 'latin1')
}

/** A byte string as the addon takes a single path: the string itself where it is ASCII. */
export function native(raw: string): string | Buffer {
  return NON_ASCII.test(raw) ? bytes(raw) : raw
}

/**
 * The name rule of every callback and result: `path` as people see it (UTF-8, U+FFFD for a
 * byte that is not), and where that loses bytes, `rawPath` with the exact ones, which the
 * package takes back as a path to that same entry.
 */
export function named(raw: string): { path: string; rawPath?: Buffer } {
  if (!NON_ASCII.test(raw)) return { path: raw }
  const b = bytes(raw)
  return isUtf8(b) ? { path: b.toString('utf8') } : { path: b.toString('utf8'), rawPath: b }
}

/** `name` below the byte-string path `base` ('' is base itself). */
export function joinRaw(base: string, name: string): string {
  return name === '' ? base : base.endsWith('/') ? base + name : `${base}/${name}`
}
