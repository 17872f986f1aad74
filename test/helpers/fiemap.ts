// An oracle for block sharing that does not go through the project's addon: the extent map as
// xfs_io (xfsprogs) reports it through FS_IOC_FIEMAP.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

export interface Extent {
  /** Offset in the file, bytes. */
  logical: number
  /** Offset on the device, bytes (0 for inline data). */
  physical: number
  length: number
  shared: boolean
  /** Names of the FIEMAP_EXTENT_* flags set, lower case ('last', 'shared', ...). */
  flags: string[]
}

const SECTOR = 512
const FIEMAP_EXTENT_SHARED = 0x2000
const FLAG_NAMES: ReadonlyArray<readonly [number, string]> = [
  [0x1, 'last'],
  [0x2, 'unknown'],
  [0x4, 'delalloc'],
  [0x8, 'encoded'],
  [0x80, 'data_encrypted'],
  [0x100, 'not_aligned'],
  [0x200, 'data_inline'],
  [0x400, 'data_tail'],
  [0x800, 'unwritten'],
  [0x1000, 'merged'],
  [FIEMAP_EXTENT_SHARED, 'shared'],
]

// `fiemap -v` lines, in 512-byte units whatever the block size:
//    0: [0..591]:        192..783           592 0x2001
//    1: [128..2047]:     hole              1920
const EXTENT_LINE = /^\s*\d+:\s+\[(\d+)\.\.(\d+)\]:\s+(\d+)\.\.(\d+)\s+(\d+)\s+0x([0-9a-f]+)\s*$/i
const HOLE_LINE = /^\s*\d+:\s+\[(\d+)\.\.(\d+)\]:\s+hole\s+(\d+)\s*$/i
const NUMBERED_LINE = /^\s*\d+:/

/**
 * The data extents of a file (holes left out), after flushing it so delayed allocation does not
 * show up as unknown extents. [] where the filesystem has no FIEMAP (tmpfs).
 */
export function extentsOf(file: string): Extent[] {
  return parseFiemap(xfsIoFiemap(file))
}

/**
 * extentsOf() for many files, with one xfs_io run per 256 of them (xfs_io runs each command on
 * every file it opened and heads each file's output with its name). Falls back to one run per
 * file where a file's filesystem has no FIEMAP.
 */
export function extentsOfMany(files: string[]): Extent[][] {
  const out: Extent[][] = []
  for (let i = 0; i < files.length; i += 256) {
    const chunk = files.slice(i, i + 256).map((f) => path.resolve(f))
    if (chunk.length === 1) {
      out.push(extentsOf(chunk[0] as string))
      continue
    }
    const r = runXfsIo(chunk)
    if (/FS_IOC_FIEMAP.*Operation not supported/.test(r.stderr)) {
      for (const f of chunk) out.push(extentsOf(f))
      continue
    }
    const stdout = checked(r, chunk.length + ' files')
    let at = 0
    for (const [k, name] of chunk.entries()) {
      const head = `${name}:\n`
      if (!stdout.startsWith(head, at)) throw new Error(`xfs_io fiemap: expected the output of ${JSON.stringify(name)} at offset ${at}`)
      const next = chunk[k + 1]
      const end = next === undefined ? stdout.length : stdout.indexOf(`\n${next}:\n`, at + head.length - 1) + 1
      if (end <= 0) throw new Error(`xfs_io fiemap: no output for ${JSON.stringify(next)}`)
      out.push(parseFiemap(stdout.slice(at + head.length, end)))
      at = end
    }
  }
  return out
}

/** Bytes of the file that sit in extents marked SHARED (cloned, deduplicated or snapshotted). */
export function sharedBytes(file: string): number {
  return extentsOf(file)
    .filter((e) => e.shared)
    .reduce((sum, e) => sum + e.length, 0)
}

/** True when the file is non-empty, has data extents, and every one of them is shared. */
export function allShared(file: string): boolean {
  if (fs.statSync(file).size === 0) return false
  const extents = extentsOf(file)
  return extents.length > 0 && extents.every((e) => e.shared)
}

export function parseFiemap(output: string): Extent[] {
  const extents: Extent[] = []
  for (const line of output.split('\n')) {
    const m = EXTENT_LINE.exec(line)
    if (m) extents.push(extentOf(m))
    else if (NUMBERED_LINE.test(line) && !HOLE_LINE.test(line)) {
      throw new Error(`unexpected xfs_io fiemap line: ${JSON.stringify(line)}`)
    }
  }
  return extents
}

function extentOf(m: RegExpExecArray): Extent {
  const [, start, , physical, , sectors, hexFlags] = m
  const flags = parseInt(hexFlags ?? '0', 16)
  return {
    logical: Number(start) * SECTOR,
    physical: Number(physical) * SECTOR,
    length: Number(sectors) * SECTOR,
    shared: (flags & FIEMAP_EXTENT_SHARED) !== 0,
    flags: flagNames(flags),
  }
}

function flagNames(flags: number): string[] {
  const names = FLAG_NAMES.filter(([bit]) => (flags & bit) !== 0).map(([, name]) => name)
  const known = FLAG_NAMES.reduce((all, [bit]) => all | bit, 0)
  const rest = flags & ~known
  if (rest !== 0) names.push(`0x${rest.toString(16)}`)
  return names
}

function xfsIoFiemap(file: string): string {
  const r = runXfsIo([path.resolve(file)])
  if (/FS_IOC_FIEMAP.*Operation not supported/.test(r.stderr)) return ''
  return checked(r, file)
}

// Absolute paths only: a relative name starting with '-' would read as an option.
function runXfsIo(files: string[]): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync('xfs_io', ['-r', '-c', 'fsync', '-c', 'fiemap -v', ...files], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` },
  })
  if (r.error) throw new Error(`cannot run xfs_io (Debian package xfsprogs): ${r.error.message}`)
  return { stdout: r.stdout, stderr: r.stderr.trim(), status: r.status }
}

function checked(r: { stdout: string; stderr: string; status: number | null }, what: string): string {
  // xfs_io reports some failures on stderr with exit status 0.
  if (r.status !== 0 || r.stderr !== '') throw new Error(`xfs_io fiemap ${what} failed: ${r.stderr || `status ${r.status}`}`)
  return r.stdout
}
