// THE walker: the one way any part of clonefile reads a tree (cloneTree, usage, removal of a
// temporary tree, the CLI's file count; dedupe and snapshots next).
//
// Every directory is opened relative to its parent's open descriptor, never by a path again:
// O_DIRECTORY | O_NOFOLLOW (cf_open_dir), so a directory swapped for a symlink while the walk
// runs is ELOOP/ENOTDIR, never followed, and nothing outside the tree is reached. Entries are
// named to the addon as (directory descriptor, name). There is no depth or path-length limit:
// names are short, and a directory whose descriptor was closed (to bound how many are open) is
// named from its nearest open ancestor by a relative path that the addon opens component by
// component, again without following symlinks. The walk is iterative (a stack of directories
// to list), never recursive in JavaScript.
//
// The walker keeps the state of directories; what to do with their entries is its consumer's:
// tree-run.ts makes clones, usage.ts measures, remove.ts removes. Each consumer drives the
// addon's batches (scanDirs, runOps) as its speed needs, through nextScan() and absorb().
import { CWD, NONE, type Binding, type DirsScan, type MakeDirs } from './binding.js'
import { devAt, inoAt } from './entries.js'
import { constants } from 'node:os'

/** A directory of a walk. Consumers extend it with their own state. */
export interface WalkDir {
  readonly parent: WalkDir | undefined
  /** its name in its parent, a byte string (raw.ts); for a root, the name it is opened by */
  readonly name: string
  /** its path below the root of its walk, a byte string: '' for the root */
  readonly rel: string
  readonly depth: number
  /** its open source-side descriptor, or -1 (not open yet, or closed) */
  fd: number
  /** its open destination-side descriptor (a tree being made), or -1 */
  dstFd: number
  /** dev and ino of the directory opened, once it is */
  dev: number
  ino: number
  /** operations queued or running that name entries through its descriptors: while any, it
   * stays open (a close asked for meanwhile waits for the last: closeLater) */
  busy: number
  /** closed once nothing holds it any more (busy back to 0; Walker.unhold) */
  closeLater: boolean
  /** what remains before it is complete, counted by its consumer (its listing, its entries'
   * operations, its subdirectories) */
  pending: number
}

/** A directory's listing within a scanDirs() answer. */
export interface Listing {
  out: DirsScan
  /** index of its first entry in out.names and out.stats */
  first: number
  count: number
  /** with Scan.Extents: index of its first entry's first extent in out.extents (4 numbers each) */
  firstExtent: number
}

export interface Scanned<D extends WalkDir> {
  dir: D
  /** non-zero where the directory could not be opened, made or listed */
  errno: number
  syscall: string
  /** the failure was making the destination directory */
  onDest: boolean
  listing: Listing
}

/** A scanDirs() call in the making: the directories, and what it needs of the addon. */
export interface ScanRequest<D extends WalkDir> {
  dirs: D[]
  /** where each is opened from */
  at: Int32Array
  names: string
  make: MakeDirs | undefined
  how: number
  /** the open directories each name is relative to, held busy until the answer is absorbed */
  holds: Array<WalkDir | undefined>
}

export interface WalkOptions<D extends WalkDir> {
  /** scanDirs() `how`: Scan bits and RAW */
  how: number
  /** a directory to make for each one listed (cloneTree): its mode, or undefined for none */
  make?: ((dir: D) => number | undefined) | undefined
  /** How many directories may be open at once (each one or two descriptors) before idle ones
   * are closed; they are named from an open ancestor after that. @default 256 */
  maxOpen?: number
}

const ELOOP = constants.errno.ELOOP

/** Where an entry is for the addon: an open directory's descriptor and a name relative to it. */
export interface At {
  dir: number
  name: string
}

export class Walker<D extends WalkDir> {
  /** directories still to list, the next one last */
  readonly pending: D[] = []
  private readonly open = new Set<D>()
  private readonly maxOpen: number
  root: D | undefined
  private rootSrc: At = { dir: CWD, name: '' }
  private rootDst: At = { dir: CWD, name: '' }

  constructor(
    readonly binding: Binding,
    private readonly o: WalkOptions<D>,
    /** makes the consumer's directory object */
    private readonly create: (parent: D | undefined, name: string, rel: string) => D,
  ) {
    this.maxOpen = o.maxOpen ?? 256
  }

  /**
   * The root, to be listed first: the directory at (src.dir, src.name), and with a `make` the
   * destination directory at (dst.dir, dst.name). It stays open until end().
   */
  start(src: At, dst?: At): D {
    this.rootSrc = src
    if (dst !== undefined) this.rootDst = dst
    const root = this.create(undefined, src.name, '')
    this.root = root
    this.pending.push(root)
    return root
  }

  /** A subdirectory `name` of `parent` found in its listing, to be listed in its turn. */
  child(parent: D, name: string): D {
    const dir = this.create(parent, name, parent.rel === '' ? name : `${parent.rel}/${name}`)
    this.pending.push(dir)
    return dir
  }

  /** Where entry `name` of `dir` is, on the source (or destination) side. */
  entryAt(dir: WalkDir, name: string, dst = false): At {
    const fd = dst ? dir.dstFd : dir.fd
    if (fd >= 0) return { dir: fd, name }
    const base = this.dirAt(dir, dst)
    return { dir: base.dir, name: base.name === '' ? name : `${base.name}/${name}` }
  }

  /** Where the directory itself is: its own descriptor with the name '' when it is open. */
  dirAt(dir: WalkDir, dst = false): At {
    const a = this.baseOf(dir, dst)
    if (a === undefined) {
      // Nothing open on the way up: from the root's own address (only before the root is open).
      const root = dst ? this.rootDst : this.rootSrc
      return dir.rel === '' ? root : { dir: root.dir, name: `${root.name}/${dir.rel}` }
    }
    if (a === dir) return { dir: dst ? dir.dstFd : dir.fd, name: '' }
    return { dir: dst ? a.dstFd : a.fd, name: dir.rel.slice(a.rel === '' ? 0 : a.rel.length + 1) }
  }

  /** The directory whose descriptor dirAt(dir, dst) names it from: dir itself where it is
   * open, else its nearest open ancestor; undefined where it is the root's own address. An
   * operation that uses that address holds it (busy) until it is done: nothing may close it
   * under the operation, nor give its number to another directory. */
  baseOf(dir: WalkDir, dst = false): WalkDir | undefined {
    let a: WalkDir | undefined = dir
    while (a !== undefined && (dst ? a.dstFd : a.fd) < 0) a = a.parent
    return a
  }

  /** One holder fewer; the directory is closed if a close waited for it. */
  unhold(dir: WalkDir): void {
    dir.busy--
    if (dir.busy === 0 && dir.closeLater) this.close(dir as D)
  }

  /** The next directories to list, at most `max`; undefined when none are waiting. */
  nextScan(max: number): ScanRequest<D> | undefined {
    if (this.pending.length === 0) return undefined
    this.evict()
    const dirs = this.pending.splice(Math.max(0, this.pending.length - max)).reverse()
    const at = new Int32Array(dirs.length)
    const names: string[] = []
    const holds: Array<WalkDir | undefined> = []
    const make = this.o.make
    const makes = make === undefined ? undefined : { dirs: new Int32Array(dirs.length), names: [] as string[], modes: new Uint32Array(dirs.length) }
    dirs.forEach((d, k) => {
      const src = d.parent === undefined ? this.rootSrc : this.entryAt(d.parent, d.name)
      at[k] = src.dir
      names.push(src.name)
      // The open directory its name is relative to (entryAt's): held until the answer is absorbed.
      const hold = d.parent === undefined ? undefined : this.baseOf(d.parent)
      if (hold !== undefined) hold.busy++
      holds.push(hold)
      if (makes === undefined) return
      const mode = make?.(d)
      const dst = mode === undefined ? undefined : d.parent === undefined ? this.rootDst : this.entryAt(d.parent, d.name, true)
      makes.dirs[k] = dst?.dir ?? NONE
      makes.names.push(dst?.name ?? '')
      makes.modes[k] = mode ?? 0
      // The destination parent is held too: it is the same directory's other descriptor.
    })
    return {
      dirs, at, names: names.join('\0'), how: this.o.how, holds,
      make: makes === undefined ? undefined : { dirs: makes.dirs, names: makes.names.join('\0'), modes: makes.modes },
    }
  }

  /**
   * Takes a scanDirs() answer: each directory gets its descriptors, and is checked against its
   * ancestors (a bind mount, or with -L a symlink, can lead back into the tree: such a cycle is
   * ELOOP and never walked twice).
   */
  absorb(req: ScanRequest<D>, out: DirsScan): Array<Scanned<D>> {
    const result: Array<Scanned<D>> = []
    let first = 0
    let firstExtent = 0
    for (let k = 0; k < req.dirs.length; k++) {
      const dir = req.dirs[k] as D
      const hold = req.holds[k]
      if (hold !== undefined) this.unhold(hold)
      const count = out.dirs[k] as number
      const listing = { out, first, count, firstExtent }
      first += count
      if (out.counts !== undefined) for (let i = listing.first; i < first; i++) firstExtent += out.counts[i] as number
      dir.fd = out.fds[k] as number
      dir.dstFd = out.dstFds[k] as number
      if (dir.fd >= 0 || dir.dstFd >= 0) this.open.add(dir)
      let errno = out.dirErrnos[k] as number
      let syscall = out.dirSyscalls[k] ?? 'opendir'
      if (dir.fd >= 0) {
        dir.dev = devAt(out.dirStats, k)
        dir.ino = inoAt(out.dirStats, k)
        if (errno === 0 && this.loops(dir)) {
          errno = ELOOP
          syscall = 'walk'
          listing.count = 0
        }
      }
      result.push({ dir, errno, syscall, onDest: out.dirOnDest[k] === 1, listing })
    }
    return result
  }

  /** Whether an ancestor of dir is the same directory. */
  private loops(dir: WalkDir): boolean {
    return dir.parent !== undefined && this.isAncestor(dir.parent, dir.dev, dir.ino)
  }

  /** Whether `dir` or one of its ancestors is the directory (dev, ino): a subdirectory that is
   * would lead the walk round in a circle. */
  isAncestor(dir: WalkDir, dev: number, ino: number): boolean {
    for (let a: WalkDir | undefined = dir; a !== undefined; a = a.parent) if (a.dev === dev && a.ino === ino) return true
    return false
  }

  /**
   * Opens the parent of `dir` again, where it was closed, through ".." of dir's own descriptor
   * (as fts does): one openat however deep the tree, and checked to be the same directory by
   * its dev and ino (the tree moved otherwise, and the walk must not go on elsewhere).
   */
  reopenParent(dir: D): void {
    const parent = dir.parent as D | undefined
    if (parent === undefined || parent.fd >= 0 || dir.fd < 0) return
    const { fd, stat } = this.binding.openDir(dir.fd, '..', this.o.how)
    if (devAt(stat, 0) !== parent.dev || inoAt(stat, 0) !== parent.ino) {
      this.binding.closeDirs(Int32Array.of(fd))
      throw Object.assign(new Error(`ESTALE: the directory ${parent.rel} moved during the walk`), { errno: constants.errno.ESTALE, syscall: 'walk', code: 'ESTALE' })
    }
    parent.fd = fd
    this.open.add(parent)
  }

  /** Closes the directory's descriptors (it is complete, or idle and one too many); while an
   * operation holds it, once the last is done. */
  close(dir: D): void {
    if (dir.busy > 0) {
      dir.closeLater = true
      return
    }
    dir.closeLater = false
    if (dir.fd < 0 && dir.dstFd < 0) return
    const fds = [dir.fd, dir.dstFd].filter((fd) => fd >= 0)
    dir.fd = -1
    dir.dstFd = -1
    this.open.delete(dir)
    this.binding.closeDirs(Int32Array.from(fds))
  }

  /** Over maxOpen, closes the idle directories opened longest ago (never the root). */
  private evict(): void {
    if (this.open.size <= this.maxOpen) return
    for (const d of this.open) {
      if (this.open.size <= (this.maxOpen * 3) / 4) break
      if (d !== this.root && d.busy === 0) this.close(d)
    }
  }

  /** Closes everything still open: the walk is over (or failed), and no job runs any more. */
  end(): void {
    for (const d of [...this.open]) {
      d.busy = 0
      this.close(d)
    }
  }
}

/** A consumer's directory: the walker's fields, set up. */
export function newDir<T extends object>(parent: WalkDir | undefined, name: string, rel: string, extra: T): WalkDir & T {
  return { parent, name, rel, depth: parent === undefined ? 0 : parent.depth + 1, fd: -1, dstFd: -1, dev: -1, ino: -1, busy: 0, closeLater: false, pending: 1, ...extra }
}

/** Names joined for the addon. */
export const joinNames = (names: string[]): string => names.join('\0')

/**
 * Read-only walks (usage, the macOS whole-tree check, the CLI's count; dedupe and snapshots
 * next): every directory is listed and handed to `visit`, which calls walker.child() for the
 * subdirectories to go into (and may return false to stop the walk). A directory is closed as
 * soon as its subdirectories are listed.
 */
export type Visit<D extends WalkDir> = (scanned: Scanned<D>) => boolean | void | Promise<boolean | void>

function listed<D extends WalkDir>(walker: Walker<D>, s: Scanned<D>, before: number): void {
  if (s.dir.parent !== undefined) settle(walker, s.dir.parent as D)
  s.dir.pending += walker.pending.length - before
  settle(walker, s.dir)
}

function settle<D extends WalkDir>(walker: Walker<D>, dir: D): void {
  if (--dir.pending === 0 && dir !== walker.root) walker.close(dir)
}

/** The synchronous read-only walk, `group` directories a trip to the addon. */
export function listSync<D extends WalkDir>(walker: Walker<D>, visit: Visit<D>, group = 32): void {
  try {
    for (let req = walker.nextScan(group); req !== undefined; req = walker.nextScan(group)) {
      const out = walker.binding.scanDirs(req.at, req.names, req.how, false)
      for (const s of walker.absorb(req, out)) {
        const before = walker.pending.length
        const go = visit(s)
        if (go instanceof Promise) throw new TypeError('listSync: visit must not return a Promise')
        if (go === false) return
        listed(walker, s, before)
      }
    }
  } finally {
    walker.end()
  }
}

/**
 * The asynchronous read-only walk: up to `parallel` trips to the thread pool at once (libuv's
 * pool has 4 threads by default), each of up to `group` directories, so that one trip does real
 * work and the pool's threads share what is waiting. `signal` stops it.
 */
export async function listAsync<D extends WalkDir>(walker: Walker<D>, visit: Visit<D>, o: { parallel?: number; group?: number; signal?: AbortSignal | undefined } = {}): Promise<void> {
  const parallel = o.parallel ?? 4
  const group = o.group ?? 32
  const inFlight = new Set<Promise<void>>()
  let failure: unknown
  let stop = false
  const take = async (scanned: Array<Scanned<D>>): Promise<void> => {
    for (const s of scanned) {
      if (stop) return
      const before = walker.pending.length
      if ((await visit(s)) === false) stop = true
      else listed(walker, s, before)
    }
  }
  const launch = (n: number): void => {
    const req = walker.nextScan(n)
    if (req === undefined) return
    const done: Promise<void> = walker.binding.scanDirs(req.at, req.names, req.how, true)
      .then((out) => take(walker.absorb(req, out)))
      .catch((e: unknown) => {
        failure ??= e
      })
      .finally(() => inFlight.delete(done))
    inFlight.add(done)
  }
  try {
    while ((walker.pending.length > 0 && !stop) || inFlight.size > 0) {
      while (walker.pending.length > 0 && inFlight.size < parallel && failure === undefined && !stop) {
        launch(Math.min(group, Math.ceil(walker.pending.length / (parallel - inFlight.size))))
      }
      if (inFlight.size > 0) await Promise.race(inFlight)
      if (failure === undefined && o.signal?.aborted) failure = o.signal.reason
      if (failure !== undefined) {
        await Promise.allSettled(inFlight)
        throw failure
      }
    }
  } finally {
    walker.end()
  }
}
