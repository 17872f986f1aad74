// What the addon says of directory entries, decoded in one place: the addon lays every entry's
// stat out as STAT_STRIDE numbers in one Float64Array (cf_stat in platform.h), and only this
// module knows the layout.
import { STAT_STRIDE, Stat } from './binding.js'
import type { EntryType } from './types.js'

export const S_IFMT = 0o170000
export const S_IFDIR = 0o040000
export const S_IFREG = 0o100000
export const S_IFLNK = 0o120000

export function typeOf(mode: number): EntryType {
  switch (mode & S_IFMT) {
    case S_IFDIR: return 'directory'
    case S_IFLNK: return 'symlink'
    case 0o010000: return 'fifo'
    case 0o140000: return 'socket'
    case 0o060000: return 'block-device'
    case 0o020000: return 'character-device'
    default: return 'file'
  }
}

export const isDir = (mode: number): boolean => (mode & S_IFMT) === S_IFDIR
export const isFile = (mode: number): boolean => (mode & S_IFMT) === S_IFREG

/** One entry's stat, as an object: for the few places that want all of it. */
export interface EntryStat {
  mode: number
  dev: number
  ino: number
  size: number
  nlink: number
  mtimeSec: number
  mtimeNsec: number
  ctimeSec: number
  ctimeNsec: number
  /** st_blocks in bytes */
  allocated: number
  /** owner (statAt gives them; a stat made elsewhere may leave them out) */
  uid?: number
  gid?: number
}

/**
 * Entry i of a stat array. The accessors below read one field without making an object: a walk
 * of 200k files goes through them per entry.
 */
export function statAt(stats: Float64Array, i: number): EntryStat {
  const b = i * STAT_STRIDE
  return {
    mode: stats[b + Stat.Mode] as number,
    dev: stats[b + Stat.Dev] as number,
    ino: stats[b + Stat.Ino] as number,
    size: stats[b + Stat.Size] as number,
    nlink: stats[b + Stat.Nlink] as number,
    mtimeSec: stats[b + Stat.MtimeSec] as number,
    mtimeNsec: stats[b + Stat.MtimeNsec] as number,
    ctimeSec: stats[b + Stat.CtimeSec] as number,
    ctimeNsec: stats[b + Stat.CtimeNsec] as number,
    allocated: (stats[b + Stat.Blocks] as number) * 512,
    uid: stats[b + Stat.Uid] as number,
    gid: stats[b + Stat.Gid] as number,
  }
}

export const modeAt = (stats: Float64Array, i: number): number => stats[i * STAT_STRIDE + Stat.Mode] as number
export const devAt = (stats: Float64Array, i: number): number => stats[i * STAT_STRIDE + Stat.Dev] as number
export const inoAt = (stats: Float64Array, i: number): number => stats[i * STAT_STRIDE + Stat.Ino] as number
export const sizeAt = (stats: Float64Array, i: number): number => stats[i * STAT_STRIDE + Stat.Size] as number
export const nlinkAt = (stats: Float64Array, i: number): number => stats[i * STAT_STRIDE + Stat.Nlink] as number
export const uidAt = (stats: Float64Array, i: number): number => stats[i * STAT_STRIDE + Stat.Uid] as number
export const gidAt = (stats: Float64Array, i: number): number => stats[i * STAT_STRIDE + Stat.Gid] as number
export const allocatedAt = (stats: Float64Array, i: number): number => (stats[i * STAT_STRIDE + Stat.Blocks] as number) * 512
/** "dev:ino": the identity of an inode, for hard-link groups and sets of inodes seen */
export const idAt = (stats: Float64Array, i: number): string => `${devAt(stats, i)}:${inoAt(stats, i)}`
