// Extent maps: which physical ranges a file's data occupies, and which of them the filesystem
// says another file (or snapshot) also references (FIEMAP_EXTENT_SHARED). usage() sums them,
// sharedBytes() intersects two files' maps; dedupe and snapshot diff read the same answers.
// The addon lays extents out as EXTENT_STRIDE numbers each: logical, physical, length, flags.

export const EXTENT_STRIDE = 4
const FIEMAP_EXTENT_UNKNOWN = 0x2
const FIEMAP_EXTENT_DELALLOC = 0x4
const FIEMAP_EXTENT_DATA_INLINE = 0x200
const FIEMAP_EXTENT_UNWRITTEN = 0x800
export const FIEMAP_EXTENT_SHARED = 0x2000
// btrfs-progs (cmds/filesystem-du.c) skips inline extents, which take no data space, and
// unknown/delalloc ones, whose space is not known yet; ENCODED (compressed) extents count at
// their logical length as there. Unwritten (preallocated) extents hold no data: not counted,
// where btrfs-progs counts them.
/** Extents whose bytes are not data on disk (yet): counted nowhere. */
export const NOT_DATA = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_UNWRITTEN

/** Extents `first` to `first + count` (in extents, not numbers) of a batch's extent array. */
export function extentsOf(all: Float64Array, first: number, count: number): Float64Array {
  return all.subarray(first * EXTENT_STRIDE, (first + count) * EXTENT_STRIDE)
}

/**
 * Sums of a file's data: `total` bytes of data extents, `shared` of them in extents another file
 * also references. One is reused for every file: tens of thousands of files a second go
 * through here, without an object or a closure each.
 */
export class ExtentSum {
  total = 0
  shared = 0

  /** Sums `extents`, adding the physical ranges of the shared ones to `into` (and `also`). */
  of(extents: Float64Array, into?: Ranges, also?: Ranges): this {
    this.total = 0
    this.shared = 0
    for (let i = 0; i < extents.length; i += EXTENT_STRIDE) {
      const length = extents[i + 2] as number
      const flags = extents[i + 3] as number
      if ((flags & NOT_DATA) !== 0 || length === 0) continue
      this.total += length
      if ((flags & FIEMAP_EXTENT_SHARED) === 0) continue
      this.shared += length
      into?.add(extents[i + 1] as number, length)
      also?.add(extents[i + 1] as number, length)
    }
    return this
  }
}

/** Lengths of a set of byte ranges with overlaps counted once (btrfs-progs' count_shared_bytes). */
export class Ranges {
  private starts: Float64Array<ArrayBuffer>
  private ends: Float64Array<ArrayBuffer>
  private n = 0

  /** `capacity`: ranges held before the arrays grow (dedupe makes one per group, of a few). */
  constructor(capacity = 1024) {
    this.starts = new Float64Array(capacity)
    this.ends = new Float64Array(capacity)
  }

  add(start: number, length: number): void {
    if (this.n === this.starts.length) {
      this.starts = grow(this.starts)
      this.ends = grow(this.ends)
    }
    this.starts[this.n] = start
    this.ends[this.n++] = start + length
  }

  /** Sweeps starts and ends sorted apart: the covered length depends only on the two multisets. */
  union(): number {
    const starts = this.starts.subarray(0, this.n).sort()
    const ends = this.ends.subarray(0, this.n).sort()
    let covered = 0
    let depth = 0
    let at = 0
    for (let i = 0, j = 0; j < this.n;) {
      const isStart = i < this.n && starts[i]! <= ends[j]!
      const next = isStart ? starts[i++]! : ends[j++]!
      if (depth > 0) covered += next - at
      at = next
      depth += isStart ? 1 : -1
    }
    return covered
  }
}

function grow(a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> {
  const bigger = new Float64Array(a.length * 2)
  bigger.set(a)
  return bigger
}

interface DataExtent {
  physical: number
  length: number
  shared: boolean
}

function dataExtents(raw: Float64Array): DataExtent[] {
  const out: DataExtent[] = []
  for (let i = 0; i < raw.length; i += EXTENT_STRIDE) {
    const [physical, length, flags] = [raw[i + 1]!, raw[i + 2]!, raw[i + 3]!]
    if ((flags & NOT_DATA) === 0 && length > 0) out.push({ physical, length, shared: (flags & FIEMAP_EXTENT_SHARED) !== 0 })
  }
  return out
}

/** Sorted, non-overlapping [start, end) pairs. */
function mergedRanges(extents: DataExtent[]): Array<[number, number]> {
  const sorted = extents.map((e): [number, number] => [e.physical, e.physical + e.length]).sort((x, y) => x[0] - y[0])
  const merged: Array<[number, number]> = []
  for (const [start, end] of sorted) {
    const last = merged[merged.length - 1]
    if (last !== undefined && start <= last[1]) last[1] = Math.max(last[1], end)
    else merged.push([start, end])
  }
  return merged
}

function overlap(start: number, end: number, ranges: Array<[number, number]>): number {
  let bytes = 0
  for (const [s, e] of ranges) bytes += Math.max(0, Math.min(end, e) - Math.max(start, s))
  return bytes
}

/**
 * Bytes of a's data in the same physical blocks as b's data (two files of one filesystem).
 * `same`: they are one inode, which shares all its data with itself.
 */
export function sharedBetween(a: Float64Array, b: Float64Array, same: boolean): number {
  const ofA = dataExtents(a)
  if (same) return ofA.reduce((sum, e) => sum + e.length, 0)
  const ofB = mergedRanges(dataExtents(b))
  // Only an extent marked SHARED has another reference: the rest cannot be in b.
  return ofA.filter((e) => e.shared).reduce((sum, e) => sum + overlap(e.physical, e.physical + e.length, ofB), 0)
}

const FIEMAP_EXTENT_ENCODED = 0x8
const FIEMAP_EXTENT_NOT_ALIGNED = 0x100
const FIEMAP_EXTENT_DATA_TAIL = 0x400
/** Extents whose physical address says nothing of their bytes: inline (btrfs keeps small files
 * in the metadata), encoded, not yet allocated, or packed with others. */
export const ADDRESS_UNRELIABLE = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_ENCODED |
  FIEMAP_EXTENT_NOT_ALIGNED | FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_DATA_TAIL

/**
 * Whether two files of one filesystem and of one size hold the same bytes by their extent maps
 * alone (extents [aFirst, aFirst + aCount) of `a`, and so of `b`): every extent at the same
 * offset in the same physical blocks (holes in the same places), none of them one whose address
 * says nothing. False means "not known", not "different": the bytes must then be compared.
 */
export function sameBlocks(a: Float64Array, aFirst: number, b: Float64Array, bFirst: number, aCount: number, bCount: number): boolean {
  if (aCount !== bCount) return false
  for (let k = 0; k < aCount; k++) {
    const i = (aFirst + k) * EXTENT_STRIDE
    const j = (bFirst + k) * EXTENT_STRIDE
    if (a[i] !== b[j] || a[i + 1] !== b[j + 1] || a[i + 2] !== b[j + 2]) return false
    if ((((a[i + 3] as number) | (b[j + 3] as number)) & ADDRESS_UNRELIABLE) !== 0) return false
  }
  return true
}
