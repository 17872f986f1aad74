// How much space files take once clones share their blocks: the numbers `btrfs filesystem du`
// gives on btrfs, from FIEMAP on any Linux filesystem that clones; on macOS what APFS says of
// each file (its private size), which leaves out what the files share with each other.
import { constants } from 'node:os'
import * as fs from 'node:fs'
import { RAW, Scan as ScanHow, Space, native, requireNative } from './binding.js'
import type { Binding, DirsScan, ExtentBatch, FileSpaceBatch } from './binding.js'
import { fromNative, fsError, invalidArgType, invalidArgValue } from './errors.js'
import { toPath, withDefaults } from './args.js'
import { bytes, native as nativePath, shown, toRaw } from './raw.js'

/** Space figures for a set of files, in bytes. */
export interface Usage {
  /** regular files, each inode counted once */
  files: number
  /** sum of file sizes, as `ls -l` shows them */
  apparent: number
  /**
   * bytes of data extents: holes, unwritten (preallocated) and inline extents excluded;
   * on macOS the allocated size
   */
  total: number
  /** bytes in extents no other file or clone references; on macOS the files' APFS private sizes */
  exclusive: number
  /** bytes of shared extents, each byte on disk counted once however often the set references it */
  setShared: number
  /** what the set occupies: `exclusive + setShared` */
  onDisk: number
  /** what sharing saves within the set: `total - onDisk` */
  saved: number
}

export interface UsageResult {
  /** one entry per path given, each path taken as a set of its own */
  paths: Array<Usage & { path: string }>
  /** all the paths together */
  set: Usage
  /** files and directories that vanished during the scan */
  skipped: number
  /**
   * Set where sharing cannot be measured, or not all of it: then the figures that cannot be
   * are NaN. On macOS (APFS) `exclusive` is exact but the shared figures only where at most
   * one file may share blocks; elsewhere off Linux `total` is the allocated size and the rest NaN.
   */
  reason?: string
}

/** A file or directory inside one of the paths, as `btrfs filesystem du` lists it. */
export interface UsageEntry {
  path: string
  /** 0 for a path given to usage(), 1 for what it contains, and so on */
  depth: number
  directory: boolean
  files: number
  apparent: number
  total: number
  exclusive: number
  /** only for the paths themselves (depth 0): shared bytes merged within that path */
  setShared?: number
}

export interface UsageProgress {
  /** files measured so far */
  files: number
  /** their `total` so far */
  total: number
}

export interface UsageOptions {
  /** Stops the scan; usage() then rejects with the signal's reason. @default undefined */
  signal?: AbortSignal
  /** Called after every batch of files is measured. @default undefined */
  onProgress?: (progress: UsageProgress) => void
  /**
   * Called for each file and directory down to `maxDepth`, each directory after its contents
   * (the order `btrfs filesystem du` prints them), and for each path once it is done.
   * @default undefined
   */
  onEntry?: (entry: UsageEntry) => void
  /** How deep below each path `onEntry` reports files and directories. @default Infinity */
  maxDepth?: number
}

interface Resolved {
  signal: AbortSignal | undefined
  onProgress: ((progress: UsageProgress) => void) | undefined
  onEntry: ((entry: UsageEntry) => void) | undefined
  maxDepth: number
}

const FIEMAP_EXTENT_UNKNOWN = 0x2
const FIEMAP_EXTENT_DELALLOC = 0x4
const FIEMAP_EXTENT_DATA_INLINE = 0x200
const FIEMAP_EXTENT_UNWRITTEN = 0x800
const FIEMAP_EXTENT_SHARED = 0x2000
/** <sys/stat.h>: "file may share blocks with another file" */
const EF_MAY_SHARE_BLOCKS = 0x1n
// btrfs-progs (cmds/filesystem-du.c) skips inline extents, which take no data space, and
// unknown/delalloc ones, whose space is not known yet; ENCODED (compressed) extents count at
// their logical length as there. Unwritten (preallocated) extents hold no data: not counted,
// where btrfs-progs counts them.
const SKIP = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_UNWRITTEN

// 512 files per trip through the addon, a few trips in flight: the walk goes on while the
// worker threads map extents, and memory stays bounded however big the tree.
const BATCH = 512
const IN_FLIGHT = 4
/** Trips in flight, one per thread of libuv's pool (4 by default), of up to GROUP directories. */
const PARALLEL = 4
const GROUP = 32

const VANISHED = new Set([constants.errno.ENOENT, constants.errno.ENOTDIR])
const isVanished = (e: unknown) => ['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '')

const defaults: Resolved = { signal: undefined, onProgress: undefined, onEntry: undefined, maxDepth: Infinity }

function resolve(options: unknown): Resolved {
  const o = withDefaults('options', options, defaults)
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidArgType('options.signal', 'an instance of AbortSignal', o.signal)
  for (const key of ['onProgress', 'onEntry'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'function') throw invalidArgType(`options.${key}`, 'of type function', o[key])
  }
  if (!(o.maxDepth >= 0)) throw invalidArgValue('options.maxDepth', o.maxDepth, 'must be >= 0')
  return o
}

/** Lengths of a set of byte ranges with overlaps counted once (btrfs-progs' count_shared_bytes). */
class Ranges {
  private starts = new Float64Array(1024)
  private ends = new Float64Array(1024)
  private n = 0

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

/** Sums for one set of files, and the physical ranges of its shared extents. */
class Tally {
  files = 0
  apparent = 0
  total = 0
  exclusive = 0
  readonly shared = new Ranges()
  /** macOS: files with held bytes that may share blocks with another file (EF_MAY_SHARE_BLOCKS,
   * or no flags said) */
  mayShare = 0
  /** macOS: allocated bytes that deleting the files would not free (a clone or snapshot has them) */
  held = 0

  usage(): Usage {
    const setShared = this.shared.union()
    const onDisk = this.exclusive + setShared
    return { files: this.files, apparent: this.apparent, total: this.total, exclusive: this.exclusive, setShared, onDisk, saved: this.total - onDisk }
  }

  /**
   * macOS: APFS says how much of each file is private, not which blocks the rest shares with
   * which file, so held bytes cannot be merged across files. Exact all the same when at most
   * one file of the set with held bytes may share blocks (a file without any holds only blocks
   * no other file has): no two files of the set then share a block, each
   * held byte is held for one file of the set only (by a snapshot, or a clone outside the set),
   * and nothing is saved within the set. Otherwise NaN.
   */
  privateUsage(): Usage {
    const setShared = this.mayShare <= 1 ? this.held : NaN
    const onDisk = this.exclusive + setShared
    return { files: this.files, apparent: this.apparent, total: this.total, exclusive: this.exclusive, setShared, onDisk, saved: this.total - onDisk }
  }
}

/** A file or directory reported through onEntry: the sums of what is below it. */
interface Node {
  path: string
  depth: number
  directory: boolean
  parent: Node | undefined
  files: number
  apparent: number
  total: number
  exclusive: number
}

interface FileItem {
  path: string
  size: number
  /** st_blocks in bytes: what stands for `total` where extents cannot be mapped */
  allocated: number
  /** counted in the set too: not already seen under an earlier path */
  inSet: boolean
  /** the entry it is reported in: itself, or its deepest reported directory */
  node: Node | undefined
}

/** Files to map in one trip, and the directories that end after them, in walk order. */
interface Batch {
  files: FileItem[]
  items: Array<FileItem | Node>
}

type Settled = { batch: Batch; result?: ExtentBatch; space?: FileSpaceBatch; error?: unknown }

/**
 * One walk over all the paths, streaming files to the addon in batches. Paths are byte strings
 * (raw.ts): a name that is not UTF-8 is measured, not lost; they are shown() where reported.
 */
class Scan {
  readonly set = new Tally()
  skipped = 0
  private tally = this.set
  private batch: Batch = { files: [], items: [] }
  private readonly inFlight: Array<Promise<Settled>> = []
  private readonly setSeen = new Set<string>()
  private pathSeen = new Set<string>()
  private readonly measured: UsageProgress = { files: 0, total: 0 }
  private reported = 0

  /**
   * `binding` lists directories and maps extents (Linux); without it the walk is Node's.
   * `space`, on macOS, asks the filesystem for each file's allocated and private size.
   */
  constructor(
    private readonly binding: Binding | undefined,
    private readonly o: Resolved,
    private readonly shareTally: boolean,
    private readonly space?: SpaceBinding,
  ) {}

  summary(tally: Tally): Usage {
    return this.space === undefined ? tally.usage() : tally.privateUsage()
  }

  async path(path: string): Promise<Usage & { path: string }> {
    this.tally = this.shareTally ? this.set : new Tally()
    // Hard links are found again under each path, as btrfs filesystem du does.
    this.pathSeen = new Set()
    const st = await fs.promises.stat(bytes(path), { bigint: true })
    const root: Node = { path, depth: 0, directory: st.isDirectory(), parent: undefined, files: 0, apparent: 0, total: 0, exclusive: 0 }
    // Entries below the paths are reported in walk order; without them order does not matter.
    const ordered = this.o.onEntry !== undefined && this.o.maxDepth > 0
    if (st.isDirectory() && !ordered && this.binding !== undefined) await this.parallel(path)
    else if (st.isDirectory()) await this.directory(path, 0, root)
    // A path given may be a symlink, followed as btrfs filesystem du does; the addon opens
    // files O_NOFOLLOW, so it gets the target's name.
    else if (st.isFile()) await this.file((await fs.promises.realpath(bytes(path), 'buffer')).toString('latin1'), statOf(st), 0, root)
    this.close(root)
    await this.drain()
    const usage = this.summary(this.tally)
    const { files, apparent, total, exclusive, setShared } = usage
    this.o.onEntry?.({ path: shown(path), depth: 0, directory: root.directory, files, apparent, total, exclusive, setShared })
    return { path: shown(path), ...usage }
  }

  // The walk is synchronous between batches: a readdir or lstat through the thread pool costs
  // more than the syscall itself, and the pool's threads are busy mapping extents meanwhile. The
  // event loop gets its turn whenever IN_FLIGHT batches are waiting.
  private async directory(dir: string, depth: number, node: Node | undefined): Promise<void> {
    this.o.signal?.throwIfAborted()
    let listing: Listing
    try {
      listing = this.list(dir)
    } catch (e) {
      if (!isVanished(e) || depth === 0) throw e
      this.skipped++
      return
    }
    const prefix = dir.endsWith('/') ? dir : `${dir}/`
    for (const entry of listing) {
      const path = prefix + entry.name
      if (entry.directory) {
        const child = this.node(path, depth + 1, true, node)
        await this.directory(path, depth + 1, child ?? node)
        if (child !== undefined) this.close(child)
      } else if (entry.file) {
        await this.file(path, entry, depth + 1, node)
      }
    }
  }

  /**
   * Without onEntry nothing depends on the walk's order: directories are listed, and their
   * files' extents mapped (openat + FIEMAP beside the listing, no second path lookup), on the
   * thread pool, in groups of directories so that one trip through the addon does real work.
   */
  private async parallel(root: string): Promise<void> {
    const binding = this.binding as Binding
    const pending: Array<[string, number]> = [[root, 0]]
    const inFlight = new Set<Promise<void>>()
    let failure: unknown
    const launch = (group: Array<[string, number]>) => {
      const done: Promise<void> = binding.scanDirs(group.map(([dir]) => dir), ScanHow.Extents | RAW, true)
        .then((listing) => this.absorbDirs(group, listing, pending))
        .catch((e: unknown) => {
          failure ??= e
        })
        .finally(() => inFlight.delete(done))
      inFlight.add(done)
    }
    while (pending.length > 0 || inFlight.size > 0) {
      while (pending.length > 0 && inFlight.size < PARALLEL && failure === undefined) {
        // Share what is pending among the idle threads, at most GROUP directories a trip.
        const take = Math.min(GROUP, Math.ceil(pending.length / (PARALLEL - inFlight.size)))
        launch(pending.splice(pending.length - take, take))
      }
      if (inFlight.size > 0) await Promise.race(inFlight)
      if (failure === undefined && this.o.signal?.aborted) failure = this.o.signal.reason
      if (failure !== undefined) {
        await Promise.allSettled(inFlight)
        throw failure
      }
    }
    this.o.onProgress?.({ ...this.measured })
  }

  private absorbDirs(group: Array<[string, number]>, listing: DirsScan, pending: Array<[string, number]>): void {
    const { dirs, dirErrnos, dirSyscalls, names, stats, counts, errnos, extents } = listing
    let at = 0
    let offset = 0
    for (const [g, [dir, depth]] of group.entries()) {
      const dirErrno = dirErrnos[g] as number
      if (dirErrno !== 0) {
        const err = fromNative({ errno: dirErrno, syscall: dirSyscalls[g] ?? 'opendir' }, shown(dir))
        if (depth === 0 || !isVanished(err)) throw err
        this.skipped++
        continue
      }
      const prefix = dir.endsWith('/') ? dir : `${dir}/`
      for (const end = at + (dirs[g] as number); at < end; at++) {
        const type = (stats[at * 5] as number) & S_IFMT
        const count = counts[at] as number
        const first = offset
        offset += count
        if (type === S_IFDIR) pending.push([prefix + (names[at] as string), depth + 1])
        if (type !== S_IFREG) continue
        const errno = errnos[at] as number
        if (errno !== 0 && VANISHED.has(errno)) this.skipped++
        else if (errno !== 0) throw fromNative({ errno, syscall: 'fiemap' }, shown(prefix + (names[at] as string)))
        else this.mapped(stats, at, extents.subarray(first * 4, (first + count) * 4))
      }
    }
    if (this.measured.files - this.reported >= BATCH) {
      this.reported = this.measured.files
      this.o.onProgress?.({ ...this.measured })
    }
  }

  /**
   * File `at` of a parallel listing ([mode, dev, ino, size, nlink] each) and its extents. Tens of
   * thousands a second go through here: no objects, and an inode key only where one is needed.
   */
  private mapped(stats: Float64Array, at: number, extents: Float64Array): void {
    const nlink = stats[at * 5 + 4] as number
    const key = nlink > 1 || !this.shareTally ? `${stats[at * 5 + 1]}:${stats[at * 5 + 2]}` : ''
    if (nlink > 1 && !once(this.pathSeen, key)) return
    const inSet = this.shareTally || once(this.setSeen, key)
    this.measure(stats[at * 5 + 3] as number, 0, inSet, undefined, extents)
  }

  /**
   * A directory's entries with what lstat says of them. With the addon one call lists and
   * stats them all; without it (not Linux) readdir, then lstat each file.
   */
  private list(dir: string): Listing {
    if (this.binding === undefined) return listWithNode(dir)
    const { names, stats } = fromNativeScan(() => this.binding!.scanDir(dir, RAW), dir)
    const out: Listing = []
    for (let i = 0; i < names.length; i++) {
      const type = (stats[i * 5] as number) & S_IFMT
      if (type !== S_IFDIR && type !== S_IFREG) continue
      out.push({
        name: names[i] as string, directory: type === S_IFDIR, file: type === S_IFREG,
        dev: stats[i * 5 + 1] as number, ino: stats[i * 5 + 2] as number, size: stats[i * 5 + 3] as number,
        nlink: stats[i * 5 + 4] as number, allocated: 0,
      })
    }
    return out
  }

  private async file(path: string, st: Stat, depth: number, parent: Node | undefined): Promise<void> {
    // Within one walk only a file with several links can come up twice.
    if (st.nlink > 1 && !firstTime(this.pathSeen, st)) return
    const inSet = this.shareTally || firstTime(this.setSeen, st)
    const own = depth === 0 ? undefined : this.node(path, depth, false, parent)
    const item = { path, size: st.size, allocated: st.allocated, inSet, node: own ?? parent }
    this.batch.files.push(item)
    this.batch.items.push(item)
    if (own !== undefined) this.close(own)
    if (this.batch.files.length >= BATCH) await this.dispatch()
  }

  /** A node for an entry onEntry reports, or undefined when nobody listens or it is too deep. */
  private node(path: string, depth: number, directory: boolean, parent: Node | undefined): Node | undefined {
    if (this.o.onEntry === undefined || depth > this.o.maxDepth) return undefined
    return { path, depth, directory, parent, files: 0, apparent: 0, total: 0, exclusive: 0 }
  }

  /** The node is complete once the files queued before this point are measured. */
  private close(node: Node): void {
    this.batch.items.push(node)
  }

  private async dispatch(): Promise<void> {
    const batch = this.batch
    this.batch = { files: [], items: [] }
    const paths = batch.files.map((f) => nativePath(f.path))
    const measured: Promise<Omit<Settled, 'batch'>> = paths.length === 0
      ? Promise.resolve({})
      : this.space !== undefined
      ? this.space.fileSpace(paths, true).then((space) => ({ space }))
      : this.binding !== undefined
      ? this.binding.extentsMany(paths, true).then((result) => ({ result }))
      : Promise.resolve({})
    // Settled at once, so a failure while other batches are awaited is never unhandled.
    this.inFlight.push(measured.then((m) => ({ batch, ...m }), (error: unknown) => ({ batch, error })))
    if (this.inFlight.length >= IN_FLIGHT) await this.settleOldest()
  }

  private async drain(): Promise<void> {
    await this.dispatch()
    while (this.inFlight.length > 0) await this.settleOldest()
  }

  async abandon(): Promise<void> {
    await Promise.all(this.inFlight.splice(0))
  }

  private async settleOldest(): Promise<void> {
    const settled = await this.inFlight.shift()
    if (settled === undefined) return
    if (settled.error !== undefined) throw settled.error
    this.o.signal?.throwIfAborted()
    const { batch, result, space } = settled
    let k = 0
    let offset = 0
    for (const item of batch.items) {
      if (!('size' in item)) {
        this.finish(item)
        continue
      }
      if (space !== undefined) {
        this.sized(item, space, k++)
        continue
      }
      const count = result?.counts[k] ?? 0
      const errno = result?.errnos[k++] ?? 0
      if (errno !== 0 && VANISHED.has(errno)) this.skipped++
      else if (errno !== 0) throw fromNative({ errno, syscall: 'fiemap' }, shown(item.path))
      else this.measure(item.size, item.allocated, item.inSet, item.node, result?.extents.subarray(offset * 4, (offset + count) * 4))
      offset += count
    }
    this.o.onProgress?.({ ...this.measured })
  }

  private measure(size: number, allocated: number, inSet: boolean, node: Node | undefined, extents: Float64Array | undefined): void {
    let total = extents === undefined ? allocated : 0
    let shared = 0
    const alsoSet = inSet && this.tally !== this.set
    for (let i = 0; extents !== undefined && i < extents.length; i += 4) {
      const physical = extents[i + 1] as number
      const length = extents[i + 2] as number
      const flags = extents[i + 3] as number
      if ((flags & SKIP) !== 0 || length === 0) continue
      total += length
      if ((flags & FIEMAP_EXTENT_SHARED) === 0) continue
      shared += length
      this.tally.shared.add(physical, length)
      if (alsoSet) this.set.shared.add(physical, length)
    }
    this.measured.files++
    this.measured.total += total
    addFile(this.tally, size, total, total - shared)
    if (alsoSet) addFile(this.set, size, total, total - shared)
    if (node !== undefined) addFile(node, size, total, total - shared)
  }

  /** macOS: a file as the filesystem describes it, the k-th of its batch. */
  private sized(item: FileItem, space: FileSpaceBatch, k: number): void {
    const errno = space.errnos[k] as number
    if (errno !== 0 && VANISHED.has(errno)) {
      this.skipped++
      return
    }
    if (errno !== 0) throw fromNative({ errno, syscall: 'getattrlist' }, shown(item.path))
    const known = space.known[k] as number
    // Both are what st_blocks counts; the filesystem's own figure was read with the private size.
    const allocated = (known & Space.Allocated) !== 0 ? (space.allocated[k] as number) : item.allocated
    const exclusive = (known & Space.PrivateSize) !== 0 ? (space.privateSize[k] as number) : NaN
    // A file that does not say may share blocks.
    const mayShare = (known & Space.ExtFlags) === 0 || ((space.extFlags[k] as bigint) & EF_MAY_SHARE_BLOCKS) !== 0n
    this.measured.files++
    this.measured.total += allocated
    addPrivate(this.tally, item.size, allocated, exclusive, mayShare)
    if (item.inSet && this.tally !== this.set) addPrivate(this.set, item.size, allocated, exclusive, mayShare)
    if (item.node !== undefined) addFile(item.node, item.size, allocated, exclusive)
  }

  private finish(node: Node): void {
    if (node.depth > 0) this.o.onEntry?.(entryOf(node))
    if (node.parent !== undefined) {
      node.parent.files += node.files
      node.parent.apparent += node.apparent
      node.parent.total += node.total
      node.parent.exclusive += node.exclusive
    }
  }
}

function addFile(to: Tally | Node, size: number, total: number, exclusive: number): void {
  to.files++
  to.apparent += size
  to.total += total
  to.exclusive += exclusive
}

function addPrivate(to: Tally, size: number, allocated: number, exclusive: number, mayShare: boolean): void {
  addFile(to, size, allocated, exclusive)
  if (mayShare && !(exclusive >= allocated)) to.mayShare++
  // A private size above the allocated size measures something else: then nothing is exact.
  to.held += exclusive <= allocated ? allocated - exclusive : NaN
}

function entryOf(node: Node): UsageEntry {
  const { path, depth, directory, files, apparent, total, exclusive } = node
  return { path: shown(path), depth, directory, files, apparent, total, exclusive }
}

/** Marks the inode seen; false when it was already. */
function firstTime(seen: Set<string>, st: Stat): boolean {
  return once(seen, `${st.dev}:${st.ino}`)
}

/** Marks the key seen; false when it was already. */
function once(seen: Set<string>, key: string): boolean {
  if (seen.has(key)) return false
  seen.add(key)
  return true
}

/** What the walk needs of a file. */
interface Stat {
  dev: number
  ino: number
  size: number
  nlink: number
  /** st_blocks in bytes, used only where extents cannot be mapped */
  allocated: number
}

type Listing = Array<Stat & { name: string; directory: boolean; file: boolean }>

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000

function statOf(st: fs.BigIntStats): Stat {
  return { dev: Number(st.dev), ino: Number(st.ino), size: Number(st.size), nlink: Number(st.nlink), allocated: Number(st.blocks) * 512 }
}

function listWithNode(dir: string): Listing {
  const out: Listing = []
  for (const entry of fs.readdirSync(bytes(dir), { withFileTypes: true, encoding: 'buffer' })) {
    const name = entry.name.toString('latin1')
    if (entry.isDirectory()) {
      out.push({ name, directory: true, file: false, dev: 0, ino: 0, size: 0, nlink: 1, allocated: 0 })
      continue
    }
    if (!entry.isFile()) continue
    const st = fs.lstatSync(bytes(`${dir}/${name}`), { bigint: true, throwIfNoEntry: false })
    // Gone, or replaced by something else since readdir: not an entry any more.
    if (st !== undefined && st.isFile()) out.push({ name, directory: false, file: true, ...statOf(st) })
  }
  return out
}

function fromNativeScan<T>(scan: () => T, dir: string): T {
  try {
    return scan()
  } catch (e) {
    throw fromNative(e, shown(dir))
  }
}

/** The paths asked for, as byte strings. */
function toPaths(paths: unknown): string[] {
  const list = Array.isArray(paths) ? paths : [paths]
  if (list.length === 0) throw invalidArgValue('paths', paths, 'must name at least one path')
  return list.map((p, i) => toRaw(toPath(Array.isArray(paths) ? `paths[${i}]` : 'paths', p)))
}

const unmeasurable = (why = 'no FIEMAP') =>
  `ENOTSUP: sharing is not measurable on ${process.platform} (${why}); ` +
  'total is the allocated size and the sharing figures are NaN'

const APFS_PARTLY =
  'ENOTSUP: APFS does not say which blocks files share: exclusive is exact (each file\'s private ' +
  'size, what deleting it would free) and total is the allocated size, but setShared, onDisk and ' +
  'saved are NaN where two or more files may share blocks (and exclusive where the filesystem ' +
  'keeps no private size)'

/**
 * How much space `paths` take: each path as a set of its own (like one row of
 * `btrfs filesystem du -s`) and all of them together. Directories are walked without following
 * symlinks, each inode is counted once, and files that vanish during the scan are skipped.
 */
export async function usage(paths: string | string[], options?: UsageOptions): Promise<UsageResult> {
  const list = toPaths(paths)
  const o = resolve(options)
  if (process.platform === 'darwin') return privateSizes(native(), list, o)
  if (process.platform !== 'linux') return allocatedOnly(list, o)
  return measureAll(new Scan(requireNative('usage'), o, list.length === 1), list)
}

async function measureAll(scan: Scan, list: string[]): Promise<UsageResult> {
  try {
    const rows = []
    for (const path of list) rows.push(await scan.path(path))
    const set = list.length === 1 && rows[0] !== undefined ? withoutPath(rows[0]) : scan.summary(scan.set)
    return { paths: rows, set, skipped: scan.skipped }
  } catch (e) {
    await scan.abandon()
    throw e
  }
}

/** What the macOS measurement needs of the addon. */
export type SpaceBinding = Pick<Binding, 'fileSpace'>

/**
 * macOS: Node walks the tree (APFS has no FIEMAP to list it with), the addon asks getattrlist(2)
 * for every file's allocated and private size on the thread pool. Never run on a Mac: the tests
 * run it on Linux through usageWithSpace() with APFS's answers made up.
 */
async function privateSizes(binding: SpaceBinding | undefined, list: string[], o: Resolved): Promise<UsageResult> {
  if (binding === undefined) return allocatedOnly(list, o, 'the native addon is not loaded')
  const result = await measureAll(new Scan(undefined, o, list.length === 1, binding), list)
  const partly = [result.set, ...result.paths].some((u) => Number.isNaN(u.saved))
  return partly ? { ...result, reason: APFS_PARTLY } : result
}

/** usage() as it runs on macOS, with `binding` in place of the addon: for the tests. */
export async function usageWithSpace(binding: SpaceBinding | undefined, paths: string | string[], options?: UsageOptions): Promise<UsageResult> {
  return privateSizes(binding, toPaths(paths), resolve(options))
}

function withoutPath(row: Usage & { path: string }): Usage {
  const { path: _, ...usage } = row
  return usage
}

/** Off Linux nothing says which blocks are shared: file sizes and allocated sizes only. */
async function allocatedOnly(list: string[], o: Resolved, why?: string): Promise<UsageResult> {
  const { paths, set, skipped } = await measureAll(new Scan(undefined, o, list.length === 1), list)
  const blind = <U extends Usage>(u: U): U => ({ ...u, exclusive: NaN, setShared: NaN, onDisk: NaN, saved: NaN })
  return { paths: paths.map(blind), set: blind(set), skipped, reason: unmeasurable(why) }
}

/**
 * Bytes of `a`'s data that sit in the same physical blocks as data of `b`: what a clone, a
 * range clone or a dedupe made them share. A file shares all its data with itself (and with
 * its hard links).
 */
export async function sharedBytes(a: string, b: string): Promise<number> {
  // As given: a Buffer names the file by its bytes.
  const pathA = toPath('a', a)
  const pathB = toPath('b', b)
  if (process.platform !== 'linux') throw fsError('ENOTSUP', constants.errno.ENOTSUP, 'fiemap', pathA.toString(), pathB.toString(), unmeasurable())
  const binding = requireNative('sharedBytes')
  // One after the other: when both are missing, the error names `a`, every time.
  const stA = await fs.promises.stat(pathA, { bigint: true })
  const stB = await fs.promises.stat(pathB, { bigint: true })
  const same = stA.dev === stB.dev && stA.ino === stB.ino
  const { counts, errnos, extents } = await binding.extentsMany([pathA, pathB], true)
  for (const [i, path] of [pathA, pathB].entries()) {
    const errno = errnos[i] ?? 0
    if (errno !== 0) throw fromNative({ errno, syscall: 'fiemap' }, path.toString())
  }
  const split = (counts[0] ?? 0) * 4
  const ofA = dataExtents(extents.subarray(0, split))
  if (same) return ofA.reduce((sum, e) => sum + e.length, 0)
  const ofB = mergedRanges(dataExtents(extents.subarray(split)))
  // Only an extent marked SHARED has another reference: the rest cannot be in b.
  return ofA.filter((e) => e.shared).reduce((sum, e) => sum + overlap(e.physical, e.physical + e.length, ofB), 0)
}

interface DataExtent {
  physical: number
  length: number
  shared: boolean
}

function dataExtents(raw: Float64Array): DataExtent[] {
  const out: DataExtent[] = []
  for (let i = 0; i < raw.length; i += 4) {
    const [physical, length, flags] = [raw[i + 1]!, raw[i + 2]!, raw[i + 3]!]
    if ((flags & SKIP) === 0 && length > 0) out.push({ physical, length, shared: (flags & FIEMAP_EXTENT_SHARED) !== 0 })
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
