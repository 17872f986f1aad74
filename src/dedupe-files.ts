// What dedupe keeps of each file between the walk and the end: a table of columns (typed
// arrays, names once), not an object per file, since a walk of 200k files holds every one of
// them until it ends. Of a file's extent map only two numbers stay: its data bytes and a
// fingerprint of the map (files with equal fingerprints share every block); the full map is
// read again (extentsMany, extents.ts) only for the groups that are handed to the kernel.
import { EXTENT_STRIDE, NOT_DATA } from './extents.js'
import type { EntryStat } from './entries.js'

const enum Col { Dev, Ino, Size, MtimeSec, MtimeNsec, CtimeSec, CtimeNsec, Data, Key, Place, Stride }

/** A file's place in a FileTable. */
export type FileId = number

export class FileTable {
  private cols = new Float64Array(1024 * Col.Stride)
  private roots = new Int32Array(1024)
  private dirOf = new Int32Array(1024)
  private readonly names: string[] = []
  /** directories' paths below their root (byte strings), shared by their files */
  private readonly dirs: string[] = []
  n = 0

  private lastRoot = -1

  /** A directory (its path below root `root`) whose files are added next: its index for add(),
   * one directory's alone (dedupe-dirs.ts holds a descriptor by it). */
  dir(root: number, rel: string): number {
    if (root !== this.lastRoot || this.dirs[this.dirs.length - 1] !== rel) this.dirs.push(rel)
    this.lastRoot = root
    return this.dirs.length - 1
  }

  add(root: number, dir: number, name: string, st: EntryStat, extents: Float64Array | undefined): FileId {
    if (this.n === this.roots.length) this.grow()
    const id = this.n++
    const b = id * Col.Stride
    const c = this.cols
    c[b + Col.Dev] = st.dev
    c[b + Col.Ino] = st.ino
    c[b + Col.Size] = st.size
    c[b + Col.MtimeSec] = st.mtimeSec
    c[b + Col.MtimeNsec] = st.mtimeNsec
    c[b + Col.CtimeSec] = st.ctimeSec
    c[b + Col.CtimeNsec] = st.ctimeNsec
    c[b + Col.Data] = extents === undefined ? st.size : dataBytes(extents)
    c[b + Col.Key] = extents === undefined ? NaN : extentKey(extents)
    c[b + Col.Place] = extents === undefined || extents.length === 0 ? id : (extents[1] as number)
    this.roots[id] = root
    this.dirOf[id] = dir
    this.names.push(name)
    return id
  }

  private grow(): void {
    const cols = new Float64Array(this.cols.length * 2)
    cols.set(this.cols)
    this.cols = cols
    for (const k of ['roots', 'dirOf'] as const) {
      const a = new Int32Array(this[k].length * 2)
      a.set(this[k])
      this[k] = a
    }
  }

  dev = (f: FileId): number => this.cols[f * Col.Stride + Col.Dev] as number
  ino = (f: FileId): number => this.cols[f * Col.Stride + Col.Ino] as number
  size = (f: FileId): number => this.cols[f * Col.Stride + Col.Size] as number
  /** bytes of data (FIEMAP) at the walk */
  data = (f: FileId): number => this.cols[f * Col.Stride + Col.Data] as number
  /** the extent map's fingerprint: equal keys share every block; NaN shares nothing known */
  key = (f: FileId): number => this.cols[f * Col.Stride + Col.Key] as number
  root = (f: FileId): number => this.roots[f] as number
  /** where its data starts on the device (its first extent's physical address; without FIEMAP
   * its place in the walk): groups are read in this order */
  place = (f: FileId): number => this.cols[f * Col.Stride + Col.Place] as number

  /** A fingerprint learnt after the walk (macOS: the clone id). */
  setKey(f: FileId, key: number): void {
    this.cols[f * Col.Stride + Col.Key] = key
  }

  /** Its directory: an index of dirRel(), the same for the files of one directory. */
  dirIndex = (f: FileId): number => this.dirOf[f] as number
  /** A directory's path below its root. */
  dirRel = (d: number): string => this.dirs[d] as string
  name = (f: FileId): string => this.names[f] as string

  /** Its path below its root (a byte string). */
  rel(f: FileId): string {
    const dir = this.dirs[this.dirOf[f] as number] as string
    const name = this.names[f] as string
    return dir === '' ? name : `${dir}/${name}`
  }

  /** What any write to it moves, as the walk found it: size, mtime and ctime (s, ns each). */
  stamp(f: FileId): number[] {
    const b = f * Col.Stride
    return [Col.Size, Col.MtimeSec, Col.MtimeNsec, Col.CtimeSec, Col.CtimeNsec].map((k) => this.cols[b + k] as number)
  }

  /** Whether f is older (mtime) than g. */
  older(f: FileId, g: FileId): boolean {
    const c = this.cols
    const a = f * Col.Stride
    const b = g * Col.Stride
    const s = (c[a + Col.MtimeSec] as number) - (c[b + Col.MtimeSec] as number)
    return s < 0 || (s === 0 && (c[a + Col.MtimeNsec] as number) < (c[b + Col.MtimeNsec] as number))
  }

  /** Whether a stat taken later says the file is the one the walk saw, unchanged (inode, size,
   * mtime, ctime). */
  unchanged(f: FileId, st: EntryStat): boolean {
    const c = this.cols
    const b = f * Col.Stride
    return c[b + Col.Ino] === st.ino && c[b + Col.Size] === st.size && c[b + Col.MtimeSec] === st.mtimeSec &&
      c[b + Col.MtimeNsec] === st.mtimeNsec && c[b + Col.CtimeSec] === st.ctimeSec && c[b + Col.CtimeNsec] === st.ctimeNsec
  }

  /** Files of one device and size, each list of two or more (sorted once, no map of every size),
   * in the order of where their data is on the device: the disk reads forward, not at random. */
  sizeGroups(keep: (f: FileId) => boolean): FileId[][] {
    const order = new Uint32Array(this.n)
    let m = 0
    for (let f = 0; f < this.n; f++) if (keep(f)) order[m++] = f
    const c = this.cols
    const at = (f: number, col: Col): number => c[f * Col.Stride + col] as number
    const ids = order.subarray(0, m).sort((f, g) => at(f, Col.Size) - at(g, Col.Size) || at(f, Col.Dev) - at(g, Col.Dev))
    const groups: FileId[][] = []
    for (let i = 0; i < m;) {
      let j = i + 1
      const f = ids[i] as number
      while (j < m && this.size(ids[j] as number) === this.size(f) && this.dev(ids[j] as number) === this.dev(f)) j++
      if (j - i > 1) groups.push(Array.from(ids.subarray(i, j)))
      i = j
    }
    const first = (g: FileId[]): number => g.reduce((p, f) => Math.min(p, this.place(f)), Infinity)
    const starts = new Map(groups.map((g) => [g, first(g)]))
    return groups.sort((a, b) => (starts.get(a) as number) - (starts.get(b) as number))
  }
}

function dataBytes(extents: Float64Array): number {
  let n = 0
  for (let i = 0; i < extents.length; i += EXTENT_STRIDE) {
    if (((extents[i + 3] as number) & NOT_DATA) === 0) n += extents[i + 2] as number
  }
  return n
}

/**
 * A 53-bit fingerprint of the data extents (logical, physical, length): files of one size whose
 * maps are equal share every block. NaN where some data is not mapped (delalloc, inline,
 * unwritten) or there is none: such a file is a class of its own. Two different maps of one
 * (device, size) group agree by chance once in 2^53: the file would be counted as already
 * shared and left alone, which costs space, never data.
 */
function extentKey(extents: Float64Array): number {
  let lo = 0x811c9dc5
  let hi = 0x01000193
  let any = false
  for (let i = 0; i < extents.length; i += EXTENT_STRIDE) {
    if (((extents[i + 3] as number) & NOT_DATA) !== 0) return NaN
    const length = extents[i + 2] as number
    if (length === 0) continue
    any = true
    // logical, physical, length: three numbers, no array made for them (200k files)
    for (let k = 0; k < 3; k++) {
      const v = k === 2 ? length : (extents[i + k] as number)
      const l = v % 0x100000000
      const h = Math.floor(v / 0x100000000)
      lo = Math.imul(lo ^ l, 0x01000193) ^ (hi >>> 15)
      hi = Math.imul(hi ^ h ^ (l >>> 7), 0x5bd1e995) ^ (lo >>> 13)
    }
  }
  return any ? (hi >>> 11) * 0x100000000 + (lo >>> 0) : NaN
}
