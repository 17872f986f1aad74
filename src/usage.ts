// How much space files take once clones share their blocks: the numbers `btrfs filesystem du`
// gives on btrfs, from FIEMAP on any Linux filesystem that clones; on macOS what APFS says of
// each file (its private size), which leaves out what the files share with each other. The
// tree is read by the walker (walk.ts), extents come beside each listing and are summed by
// extents.ts. Paths are byte strings (raw.ts): a name that is not UTF-8 is measured, not lost.
import * as fs from 'node:fs'
import { constants } from 'node:os'
import { CWD, RAW, Scan, Space, requireNative, type Binding, type FileSpaceBatch } from './binding.js'
import { allocatedAt, idAt, isDir, isFile, modeAt, nlinkAt, sizeAt } from './entries.js'
import { fromNative, fsError, invalidArgType, invalidArgValue } from './errors.js'
import { ExtentSum, Ranges, extentsOf, sharedBetween } from './extents.js'
import { abortSignal, callback, resolveOptions, toPath, toRawPaths, type OptionTable } from './args.js'
import { bytes, joinRaw, named } from './raw.js'
import type { PathLike, Usage, UsageEntry, UsageOptions, UsageProgress, UsageResult } from './types.js'
import { Walker, listAsync, newDir, type Listing, type WalkDir } from './walk.js'

interface Resolved {
  signal: AbortSignal | undefined
  onProgress: ((progress: UsageProgress) => void) | undefined
  onEntry: ((entry: UsageEntry) => void) | undefined
  maxDepth: number
}

/** <sys/stat.h>: "file may share blocks with another file" */
const EF_MAY_SHARE_BLOCKS = 0x1n
/** Files measured between two onProgress calls, at least. */
const PROGRESS_EVERY = 512
const VANISHED = new Set([constants.errno.ENOENT, constants.errno.ENOTDIR])
/** FIEMAP refused by the filesystem itself (tmpfs, some FUSE): nothing says what is shared. */
const NO_FIEMAP = new Set([constants.errno.EOPNOTSUPP, constants.errno.ENOTSUP, constants.errno.ENOTTY, constants.errno.ENOSYS])

const optionTable: OptionTable<Resolved> = {
  signal: abortSignal(),
  onProgress: callback(),
  onEntry: callback(),
  maxDepth: {
    default: Infinity,
    check: (name, value) => {
      if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value)
      if (!(value >= 0)) throw invalidArgValue(name, value, 'must be >= 0')
      return value
    },
  },
}

const resolve = (options: unknown): Resolved => resolveOptions('options', options, optionTable)

/** Sums for one set of files, and the physical ranges of its shared extents. */
class Tally {
  files = 0
  apparent = 0
  total = 0
  exclusive = 0
  // One address space for the set: a btrfs subvolume has a device number of its own but shares
  // its filesystem's physical addresses with the others (their snapshots share extents).
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
  /** reported entries inside it, in listing order */
  children: Node[]
  files: number
  apparent: number
  total: number
  exclusive: number
}

interface UsageDir extends WalkDir {
  /** the reported node its files count in: its own, or its deepest reported ancestor's */
  node: Node | undefined
}

/** How a file's space is known on this platform. */
type Method = 'extents' | 'space' | 'allocated'

/**
 * One measurement over all the paths. Directories are listed, and their files' extents mapped
 * (openat + FIEMAP beside the listing), several directories a trip on the thread pool.
 */
class Measure {
  readonly set = new Tally()
  skipped = 0
  /** why some figures are not exact, said once */
  reason: string | undefined
  private tally = this.set
  private readonly setSeen = new Set<string>()
  private pathSeen = new Set<string>()
  private readonly measured: UsageProgress = { files: 0, total: 0 }
  private reported = 0

  constructor(
    private readonly binding: Binding,
    private readonly o: Resolved,
    private readonly shareTally: boolean,
    private readonly method: Method,
    /** macOS: asks the filesystem for each file's allocated and private size */
    private readonly space?: SpaceBinding,
  ) {}

  summary(tally: Tally): Usage {
    return this.method === 'space' ? tally.privateUsage() : tally.usage()
  }

  async path(path: string): Promise<Usage & { path: string }> {
    this.tally = this.shareTally ? this.set : new Tally()
    // Hard links are found again under each path, as btrfs filesystem du does.
    this.pathSeen = new Set()
    // A path given may be a symlink, followed as btrfs filesystem du does.
    const real = (await fs.promises.realpath(bytes(path), 'buffer')).toString('latin1')
    const st = await fs.promises.stat(bytes(real))
    const root: Node = { path, depth: 0, directory: st.isDirectory(), children: [], files: 0, apparent: 0, total: 0, exclusive: 0 }
    if (st.isDirectory()) await this.tree(real, root)
    else if (st.isFile()) await this.files(CWD, [real], [{ size: st.size, allocated: st.blocks * 512, inSet: this.inSet(`${st.dev}:${st.ino}`), node: root }], [path])
    this.emit(root)
    const usage = this.summary(this.tally)
    const { files, apparent, total, exclusive, setShared } = usage
    this.o.onEntry?.({ ...named(path), depth: 0, directory: root.directory, files, apparent, total, exclusive, setShared })
    return { path: named(path).path, ...usage }
  }

  private async tree(real: string, root: Node): Promise<void> {
    // Files are named only where one is reported (onEntry deep enough), or to say it failed.
    const names = this.o.onEntry !== undefined && this.o.maxDepth > 0 ? Scan.Names : 0
    const how = RAW | (this.method === 'extents' ? Scan.Extents | names : 0)
    const walker = new Walker<UsageDir>(this.binding, { how }, (parent, name, rel) => newDir(parent, name, rel, { node: parent?.node }))
    walker.start({ dir: CWD, name: real }).node = root
    await listAsync(walker, ({ dir, errno, syscall, listing }) => {
      if (errno !== 0) {
        const err = fromNative({ errno, syscall }, named(joinRaw(root.path, dir.rel)).path)
        if (dir.parent === undefined || !VANISHED.has(errno)) throw err
        this.skipped++
        return
      }
      return this.listing(walker, dir, listing, root.path)
    }, { signal: this.o.signal })
    this.o.onProgress?.({ ...this.measured })
  }

  /** A directory's entries: its files measured, its subdirectories to list next. */
  private listing(walker: Walker<UsageDir>, dir: UsageDir, { out, first, count, firstExtent }: Listing, base: string): void | Promise<void> {
    const { names, stats } = out
    const reportDepth = this.o.onEntry === undefined ? -1 : this.o.maxDepth
    const files: Array<FileItem & { name: string }> = []
    let extent = firstExtent
    for (let i = first; i < first + count; i++) {
      const mode = modeAt(stats, i)
      const extents = out.counts?.[i] ?? 0
      extent += extents
      const childDepth = dir.depth + 1
      const path = childDepth <= reportDepth ? joinRaw(joinRaw(base, dir.rel), names[i] as string) : undefined
      if (isDir(mode)) {
        const child = walker.child(dir, names[i] as string)
        if (path !== undefined) child.node = this.node(dir.node, path, childDepth, true)
        continue
      }
      if (!isFile(mode)) continue
      const nlink = nlinkAt(stats, i)
      const key = nlink > 1 || !this.shareTally ? idAt(stats, i) : ''
      // Within one walk only a file with several links can come up twice.
      if (nlink > 1 && !once(this.pathSeen, key)) continue
      const node = path === undefined ? dir.node : this.node(dir.node, path, childDepth, false)
      const errno = out.errnos?.[i] ?? 0
      if (this.method === 'extents' && errno === 0) {
        // The common case, without an object per file.
        this.measure(sizeAt(stats, i), this.inSet(key), node, extentsOf(out.extents as Float64Array, extent - extents, extents))
        continue
      }
      const item = { size: sizeAt(stats, i), allocated: allocatedAt(stats, i), inSet: this.inSet(key), node, name: names[i] as string }
      if (this.method !== 'extents') files.push(item)
      else this.unmapped(item, errno, joinRaw(joinRaw(base, dir.rel), names[i] as string))
    }
    this.progress()
    if (files.length > 0) return this.files(dir.fd, files.map((f) => f.name), files, files.map((f) => joinRaw(joinRaw(base, dir.rel), f.name)))
  }

  /** A file whose extents could not be mapped: vanished, or a filesystem without FIEMAP. */
  private unmapped(item: FileItem, errno: number, path: string): void {
    if (VANISHED.has(errno)) {
      this.skipped++
      return
    }
    if (!NO_FIEMAP.has(errno)) throw fromNative({ errno, syscall: 'ioctl_fiemap' }, named(path).path)
    this.reason ??= `${(fromNative({ errno, syscall: 'ioctl_fiemap' }, named(path).path) as Error).message}: ` +
      'this filesystem does not map extents (no FIEMAP), so what its files share is unknown: they are counted as exclusive, at their allocated size'
    this.add(item.size, item.inSet, item.node, item.allocated, item.allocated)
  }

  /** Files measured apart from a listing: one given by path, or (macOS) a directory's files. */
  private async files(dir: number, names: string[], items: FileItem[], paths: string[]): Promise<void> {
    if (this.method === 'allocated') {
      for (const item of items) this.add(item.size, item.inSet, item.node, item.allocated, NaN)
      return
    }
    const dirs = new Int32Array(names.length).fill(dir)
    if (this.method === 'space') {
      const space = await (this.space as SpaceBinding).fileSpace(dirs, names.join('\0'), RAW, true)
      items.forEach((item, k) => this.sized(item, space, k, paths[k] as string))
      return
    }
    const { counts, errnos, extents } = await this.binding.extentsMany(dirs, names.join('\0'), RAW, true)
    let first = 0
    items.forEach((item, k) => {
      const count = counts[k] as number
      if (errnos[k] === 0) this.measure(item.size, item.inSet, item.node, extentsOf(extents, first, count))
      else this.unmapped(item, errnos[k] as number, paths[k] as string)
      first += count
    })
  }

  private inSet(key: string): boolean {
    return this.shareTally || once(this.setSeen, key)
  }

  /** A node for an entry onEntry reports, inside `parent`. */
  private node(parent: Node | undefined, path: string, depth: number, directory: boolean): Node {
    const node = { path, depth, directory, children: [], files: 0, apparent: 0, total: 0, exclusive: 0 }
    parent?.children.push(node)
    return node
  }

  private readonly sum = new ExtentSum()

  private measure(size: number, inSet: boolean, node: Node | undefined, extents: Float64Array): void {
    const alsoSet = inSet && this.tally !== this.set
    const { total, shared } = this.sum.of(extents, this.tally.shared, alsoSet ? this.set.shared : undefined)
    this.add(size, inSet, node, total, total - shared)
  }

  private add(size: number, inSet: boolean, node: Node | undefined, total: number, exclusive: number): void {
    this.measured.files++
    this.measured.total += total
    addFile(this.tally, size, total, exclusive)
    if (inSet && this.tally !== this.set) addFile(this.set, size, total, exclusive)
    if (node !== undefined) addFile(node, size, total, exclusive)
  }

  /** macOS: a file as the filesystem describes it, the k-th of its batch. */
  private sized(item: FileItem, space: FileSpaceBatch, k: number, path: string): void {
    const errno = space.errnos[k] as number
    if (errno !== 0 && VANISHED.has(errno)) {
      this.skipped++
      return
    }
    if (errno !== 0) throw fromNative({ errno, syscall: 'getattrlist' }, named(path).path)
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

  private progress(): void {
    if (this.measured.files - this.reported < PROGRESS_EVERY) return
    this.reported = this.measured.files
    this.o.onProgress?.({ ...this.measured })
  }

  /** onEntry for everything below `root`, in `btrfs filesystem du` order: listing order, each
   * directory after its contents (iteratively: trees are as deep as they come). */
  private emit(root: Node): void {
    const onEntry = this.o.onEntry
    if (onEntry === undefined) return
    const stack: Array<[Node, number]> = [[root, 0]]
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as [Node, number]
      const [node, next] = top
      if (next < node.children.length) {
        top[1]++
        stack.push([node.children[next] as Node, 0])
        continue
      }
      stack.pop()
      const parent = stack[stack.length - 1]?.[0]
      if (parent === undefined) continue
      onEntry(entryOf(node))
      parent.files += node.files
      parent.apparent += node.apparent
      parent.total += node.total
      parent.exclusive += node.exclusive
    }
  }
}

interface FileItem {
  size: number
  /** st_blocks in bytes: what stands for `total` where extents cannot be mapped */
  allocated: number
  /** counted in the set too: not already seen under an earlier path */
  inSet: boolean
  /** the reported entry it counts in */
  node: Node | undefined
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
  return { ...named(path), depth, directory, files, apparent, total, exclusive }
}

/** Marks the key seen; false when it was already. */
function once(seen: Set<string>, key: string): boolean {
  if (seen.has(key)) return false
  seen.add(key)
  return true
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
export async function usage(paths: PathLike | PathLike[], options?: UsageOptions): Promise<UsageResult> {
  const list = toRawPaths(paths)
  const o = resolve(options)
  const binding = requireNative('usage')
  if (process.platform === 'darwin') return privateSizes(binding, binding, list, o)
  if (process.platform !== 'linux') return allocatedOnly(binding, list, o)
  return measureAll(new Measure(binding, o, list.length === 1, 'extents'), list)
}

async function measureAll(m: Measure, list: string[]): Promise<UsageResult> {
  const rows = []
  for (const path of list) rows.push(await m.path(path))
  const set = list.length === 1 && rows[0] !== undefined ? withoutPath(rows[0]) : m.summary(m.set)
  return { paths: rows, set, skipped: m.skipped, ...(m.reason === undefined ? {} : { reason: m.reason }) }
}

/** What the macOS measurement needs of the addon. */
export type SpaceBinding = Pick<Binding, 'fileSpace'>

/**
 * macOS: the walker lists the tree (APFS has no FIEMAP), the addon asks getattrlist(2) for
 * every file's allocated and private size on the thread pool. Never run on a Mac: the tests run
 * it on Linux through usageWithSpace() with APFS's answers made up.
 */
async function privateSizes(binding: Binding, space: SpaceBinding | undefined, list: string[], o: Resolved): Promise<UsageResult> {
  if (space === undefined) return allocatedOnly(binding, list, o, 'the native addon is not loaded')
  const result = await measureAll(new Measure(binding, o, list.length === 1, 'space', space), list)
  const partly = [result.set, ...result.paths].some((u) => Number.isNaN(u.saved))
  return partly ? { ...result, reason: APFS_PARTLY } : result
}

/** usage() as it runs on macOS, with `space` in place of the addon's fileSpace: for the tests. */
export async function usageWithSpace(space: SpaceBinding | undefined, paths: PathLike | PathLike[], options?: UsageOptions): Promise<UsageResult> {
  return privateSizes(requireNative('usage'), space, toRawPaths(paths), resolve(options))
}

function withoutPath(row: Usage & { path: string }): Usage {
  const { path: _, ...usage } = row
  return usage
}

/** Off Linux and macOS nothing says which blocks are shared: file sizes and allocated sizes only. */
async function allocatedOnly(binding: Binding, list: string[], o: Resolved, why?: string): Promise<UsageResult> {
  const { paths, set, skipped } = await measureAll(new Measure(binding, o, list.length === 1, 'allocated'), list)
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
  if (process.platform !== 'linux') throw fsError('ENOTSUP', 'fiemap', { path: pathA.toString(), dest: pathB.toString(), detail: unmeasurable() })
  const binding = requireNative('sharedBytes')
  // One after the other: when both are missing, the error names `a`, every time.
  const stA = await fs.promises.stat(pathA, { bigint: true })
  const stB = await fs.promises.stat(pathB, { bigint: true })
  const same = stA.dev === stB.dev && stA.ino === stB.ino
  const real = await Promise.all([pathA, pathB].map(async (p) => (await fs.promises.realpath(p, 'buffer')).toString('latin1')))
  const { counts, errnos, extents } = await binding.extentsMany(Int32Array.of(CWD, CWD), real.join('\0'), RAW, true)
  for (const [i, path] of [pathA, pathB].entries()) {
    const errno = errnos[i] ?? 0
    if (errno !== 0) throw fromNative({ errno, syscall: 'fiemap' }, path.toString())
  }
  const split = counts[0] ?? 0
  return sharedBetween(extentsOf(extents, 0, split), extentsOf(extents, split, counts[1] ?? 0), same)
}
