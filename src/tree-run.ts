// One cloneTree run: what to make for each entry the walker lists, and what the results mean.
// tree.ts drives it (the lanes, sync or async); paths here are byte strings (raw.ts), relative
// to the roots of the walk.
import { Flag, Op, RAW, Scan, type Binding, type OpResults } from './binding.js'
import { devAt, idAt, inoAt, modeAt, nlinkAt, sizeAt, typeOf } from './entries.js'
import { fstatSync, type Stats } from 'node:fs'
import { abortError, fromNative, fsError } from './errors.js'
import { cannotCloneHere, clonesFirst, fallbackFor } from './fallback.js'
import { named } from './raw.js'
import type { CloneTreeOptions, TreePreserve, TreeResult } from './types.js'
import { Walker, newDir, type At, type Listing, type Scanned } from './walk.js'
import { OpQueue, type Batch, type LinkGroup, type TreeDir } from './op-queue.js'

type Callbacks = 'filter' | 'signal' | 'onProgress'
export type ResolvedOptions = Required<Omit<CloneTreeOptions, Callbacks | 'preserve'>> & Pick<CloneTreeOptions, Callbacks> & {
  preserve: Readonly<Required<TreePreserve>>
}

/** Operations per trip to the thread pool: large enough to amortise, small enough to balance. */
export const BATCH = 64
export const BARRIER = Symbol('barrier')

export function emptyResult(): TreeResult {
  return {
    files: 0, directories: 0, symlinks: 0, hardLinks: 0, specials: 0,
    cloned: { files: 0, bytes: 0 }, copied: { files: 0, bytes: 0 }, fallbacks: {}, skipped: [], errors: [], warnings: [],
  }
}

const join = (rel: string, name: string): string => (rel === '' ? name : `${rel}/${name}`)

/** What a layer over cloneTree (clonefile/fs) decides beyond its options. */
export interface RunHooks {
  /**
   * Whether the directory at `rel` (relative to dst, decoded as UTF-8) is left with the mode and
   * times it has instead of getting its source's: merging, one that was there before (fs.cp
   * leaves them); or one its caller makes more entries in after the run, and sets itself.
   */
  keepsMetadata?: (rel: string) => boolean
  /** With modes kept, setuid/setgid kept too, owners or not (fs.cp's chmod keeps them). */
  keepsSetId?: boolean
}

/** One cloneTree run. The sync and async drivers in tree.ts only differ in how they run batches. */
export class TreeRun {
  readonly result: TreeResult = emptyResult()
  error: unknown
  readonly walker: Walker<TreeDir>
  private readonly cannotClone = new Map<number, string>()
  readonly fileFlags: number
  private readonly metaFlags: number
  readonly preserve: Required<TreePreserve>
  private lastProgress = 0
  private readonly root = process.getuid?.() === 0
  /** file operations (symlinks and FIFOs too) waiting to run, one stream per lane */
  streams: OpQueue[]
  /** later members of hard-link groups, made at the end: [group, source entry, destination entry] */
  private readonly links: Array<[LinkGroup, string, string]> = []
  private readonly groups = new Map<string, LinkGroup>()
  /** directories whose metadata waits for the end (hard links are made in them) */
  private readonly deferred: TreeDir[] = []
  private dirCount = 0
  /** the destination root's stat, once made */
  private built: Stats | undefined
  /** non-zero once stopped: native batches check it before each operation */
  readonly cancel = new Int32Array(new SharedArrayBuffer(4))

  constructor(
    readonly binding: Binding,
    /** the roots as the user named them, byte strings: for messages */
    readonly src: string,
    readonly dst: string,
    /** where the source root is opened from, and where the tree is built (a temporary sibling of dst, or dst) */
    srcAt: At,
    readonly buildAt: At,
    readonly options: ResolvedOptions,
    readonly merge: boolean,
    private readonly hooks: RunHooks = {},
  ) {
    const p = (this.preserve = options.preserve)
    this.metaFlags = (p.mode ? Flag.Mode : 0) | (p.timestamps ? Flag.Times : 0) | (p.ownership ? Flag.Owner : 0) |
      (p.xattr ? Flag.Xattr | Flag.Acl : 0) | (p.mode && ((p.ownership && this.root) || hooks.keepsSetId === true) ? Flag.SetId : 0)
    const follow = options.dereference ? Flag.FollowDirs : Flag.NoFollow
    this.fileFlags = this.metaFlags | follow | (!merge ? Flag.Direct : options.overwrite === 'replace' ? Flag.Overwrite : 0)
    this.streams = [this.queue()]
    const how = RAW | (options.dereference ? Scan.Follow : 0) | (merge ? Scan.Merge : 0)
    // A directory is made private (owner rwx) until its metadata is set; the root too, unless
    // modes are not kept: then it gets what a new directory gets (the umask decides).
    this.walker = new Walker<TreeDir>(binding, { how, make: (d) => d.mode }, (parent, name, rel) =>
      newDir(parent, name, rel, { stream: 0, made: false, deferred: false, mode: 0o700 }))
    this.walker.start(srcAt, buildAt).mode = p.mode ? 0o700 : 0o777
    this.cancelOnAbort()
  }

  private queue(flags = this.fileFlags): OpQueue {
    return new OpQueue(flags, (flags & Flag.Direct) === 0)
  }

  useStreams(n: number): void {
    this.streams = Array.from({ length: n }, () => this.queue())
  }

  private readonly onAbort = (): void => void Atomics.store(this.cancel, 0, 1)

  private cancelOnAbort(): void {
    this.options.signal?.addEventListener('abort', this.onAbort, { once: true })
  }

  /** The run is over: a signal that outlives it (one for many runs) no longer holds it. */
  dispose(): void {
    this.options.signal?.removeEventListener('abort', this.onAbort)
  }

  /** File operations waiting in all streams. */
  get waiting(): number {
    let n = 0
    for (const s of this.streams) n += s.length
    return n
  }

  get stopped(): boolean {
    return this.error !== undefined
  }

  /**
   * Takes what scanDirs() found: directories made, their entries become operations and new
   * directories to list. A promise where an async filter must be waited for.
   */
  absorbScan(scanned: Array<Scanned<TreeDir>>): void | Promise<void> {
    // Each directory is held open until its entries are planned: an async filter's answer may
    // be waited for meanwhile, and the walk closes idle directories when too many are open.
    for (const s of scanned) s.dir.busy++
    return this.absorbFrom(scanned, 0)
  }

  private absorbFrom(scanned: Array<Scanned<TreeDir>>, from: number): void | Promise<void> {
    for (let k = from; k < scanned.length; k++) {
      const s = scanned[k] as Scanned<TreeDir>
      const waiting = this.absorbDir(s)
      if (waiting !== undefined) {
        return waiting.then(() => this.absorbFrom(scanned, k + 1))
      }
    }
  }

  private absorbDir({ dir, errno, syscall, onDest, listing }: Scanned<TreeDir>): Promise<void> | undefined {
    const parent = dir.parent as TreeDir | undefined
    if (errno === 0 || !onDest) {
      dir.made = dir.dstFd >= 0
      if (dir.made) this.result.directories++
    }
    if (parent === undefined && dir.made) this.built = fstatSync(dir.dstFd)
    if (parent !== undefined) this.release(parent)
    if (errno !== 0) {
      this.fail({ errno, syscall }, onDest ? undefined : dir.rel, dir.rel)
      this.walker.unhold(dir)
      this.release(dir)
      return undefined
    }
    if (this.stopped) {
      this.walker.unhold(dir)
      this.release(dir)
      return undefined
    }
    dir.stream = this.dirCount++ % this.streams.length
    const keep = this.filtered(dir, listing)
    if (keep instanceof Promise) {
      return keep.then((k) => this.plan(dir, listing, k)).finally(() => this.walker.unhold(dir))
    }
    try {
      this.plan(dir, listing, keep)
    } finally {
      this.walker.unhold(dir)
    }
    return undefined
  }

  /** The filter's answer for each entry (all true without one); a promise if any is one. */
  private filtered(dir: TreeDir, { out, first, count }: Listing): boolean[] | Promise<boolean[]> | undefined {
    const filter = this.options.filter
    if (filter === undefined) return undefined
    const answers: Array<boolean | Promise<boolean>> = []
    let promised = false
    for (let i = first; i < first + count; i++) {
      const rel = join(dir.rel, out.names[i] as string)
      const mode = modeAt(out.stats, i)
      const { path, rawPath } = named(join(this.src, rel))
      const name = named(out.names[i] as string).path
      const a = filter(path, { name, type: typeOf(mode), mode, size: sizeAt(out.stats, i), ...(rawPath ? { rawPath } : {}) })
      promised ||= a instanceof Promise
      answers.push(a)
    }
    if (!promised) return answers as boolean[]
    return Promise.all(answers)
  }

  /** The operations for a directory's entries (those the filter keeps). */
  private plan(dir: TreeDir, { out, first, count }: Listing, keep: boolean[] | undefined): void {
    const signal = this.options.signal
    const stream = this.streams[dir.stream] as OpQueue
    const { names, stats } = out
    for (let i = first; i < first + count && !this.stopped; i++) {
      if (signal?.aborted) throw abortError(signal)
      if (keep !== undefined && keep[i - first] !== true) continue
      const name = names[i] as string
      const rel = join(dir.rel, name)
      const mode = modeAt(stats, i)
      const type = typeOf(mode)
      if (type === 'directory') {
        // The tree being built, met inside the source (through a mount the checks before the
        // run could not see): a walk into it would never end.
        if (devAt(stats, i) === this.built?.dev && inoAt(stats, i) === this.built.ino) {
          this.fail(fsError('EINVAL', 'cloneTree', { path: this.shownSrc(''), dest: this.dst, detail: 'cannot clone a directory into itself' }), undefined, undefined)
          continue
        }
        if (this.walker.isAncestor(dir, devAt(stats, i), inoAt(stats, i))) {
          this.skip(rel, 'ELOOP: leads back to an enclosing directory')
          continue
        }
        dir.pending++
        this.walker.child(dir, name).mode = (mode & 0o777) | 0o700
        continue
      }
      if (type === 'socket') {
        this.skip(rel, 'socket: sockets cannot be copied')
        continue
      }
      const special = type !== 'file' && type !== 'symlink'
      if (special && !this.preserve.specials) {
        this.skip(rel, `${type}: preserve.specials is off`)
        continue
      }
      if (special && type !== 'fifo' && !this.root) {
        this.skip(rel, `EPERM: creating a ${type} needs root`)
        continue
      }
      const dev = devAt(stats, i)
      // Hard-link groups (of files, and of symlinks and FIFOs too) stay groups: the first
      // member is cloned, the others are linked to it at the end. Following symlinks, a file
      // reached by several paths is one group too, as cp -aL makes it.
      let group: LinkGroup | undefined
      if (this.preserve.links && (nlinkAt(stats, i) > 1 || this.options.dereference)) {
        const id = idAt(stats, i)
        const known = this.groups.get(id)
        if (known !== undefined) {
          dir.deferred = true
          this.links.push([known, rel, rel])
          continue
        }
        group = { first: rel, made: false }
        this.groups.set(id, group)
      }
      const kind = type === 'file' ? this.fileOp(dev) : special ? Op.Special : Op.Symlink
      stream.add(kind, { dir: dir.fd, name }, { dir: dir.dstFd, name }, dir, rel, rel, dev, group)
    }
    this.release(dir)
  }

  /** One thing fewer to wait for in `dir`; once nothing is, its metadata can be set. */
  private release(dir: TreeDir): void {
    if (--dir.pending > 0) return
    if (dir.parent === undefined) return // the root's metadata is set at the very end
    if (!dir.made || this.stopped || this.keeps(dir)) {
      this.walker.close(dir)
      return
    }
    if (dir.deferred) {
      this.deferred.push(dir)
      this.walker.close(dir)
      return
    }
    // Everything it will hold is made: setting its times now is final. In its own stream, as
    // one more operation; it is closed once that is done.
    // Where dir was closed (idle while its subtree was walked), it is named from an open
    // ancestor, held until the operation is done.
    const stream = this.streams[dir.stream] as OpQueue
    const base = this.walker.baseOf(dir) as TreeDir | undefined
    stream.add(Op.DirMeta, this.walker.dirAt(dir), this.walker.dirAt(dir, true), undefined, dir.rel, dir.rel, 0, undefined, dir, base === dir ? undefined : base)
  }

  /**
   * After the walk and every file: hard links once their first member exists (a group whose
   * first member was not made by this run, kept or failed, gets a new first member, cloned from
   * its own source: never a link to an unrelated file that was there), then the metadata of the
   * directories that had to wait for them, deepest first. BARRIER where all before must be done.
   */
  *finish(): Generator<Batch | typeof BARRIER> {
    const signal = this.options.signal
    if (signal?.aborted) throw abortError(signal)
    const firsts = this.queue()
    const links = new OpQueue(this.fileFlags & (Flag.Overwrite | Flag.Direct), (this.fileFlags & Flag.Direct) === 0)
    const root = this.walker.root as TreeDir
    const inBuild = (rel: string): At => this.walker.entryAt(root, rel, true)
    for (const [group, srcRel, dstRel] of this.links) {
      if (group.made || group.moved === true) {
        links.add(Op.Link, inBuild(group.first), inBuild(dstRel), undefined, srcRel, dstRel)
        continue
      }
      group.first = dstRel
      group.moved = true
      firsts.add(this.fileOp(0), this.walker.entryAt(root, srcRel), inBuild(dstRel), undefined, srcRel, dstRel, 0, group)
    }
    for (const q of [firsts, links]) {
      while (q.length > 0 && !this.stopped) yield q.take(BATCH)
      yield BARRIER
    }
    const meta = new OpQueue(this.metaFlags | this.followFlag, false)
    const dirs = this.deferred.filter((d) => !this.keeps(d)).sort((a, b) => b.depth - a.depth)
    for (const d of dirs) meta.add(Op.DirMeta, this.walker.dirAt(d), this.walker.dirAt(d, true), undefined, d.rel, d.rel)
    while (meta.length > 0 && !this.stopped) yield meta.take(BATCH)
    yield BARRIER
    if (signal?.aborted) throw abortError(signal)
    // Last of all, the root's metadata.
    if (!root.made || this.stopped || this.keeps(root)) return
    meta.add(Op.DirMeta, { dir: root.fd, name: '' }, { dir: root.dstFd, name: '' }, undefined, '', '')
    yield meta.take()
    yield BARRIER
  }

  /** A directory whose metadata, by the hooks, is not set here. */
  private keeps(dir: TreeDir): boolean {
    return this.hooks.keepsMetadata !== undefined && this.hooks.keepsMetadata(named(dir.rel).path)
  }

  private get followFlag(): number {
    return this.options.dereference ? Flag.FollowDirs : 0
  }

  private fileOp(dev: number): number {
    return clonesFirst(this.options.mode, this.cannotClone.has(dev)) ? Op.Clone : Op.Copy
  }

  /** Takes a batch's results; returns the copies to make where 'auto' clones failed. */
  absorb(batch: Batch, out: OpResults): Batch | undefined {
    const retry = this.queue()
    const r = this.result
    const srcAt = batch.srcNames.split('\0')
    const dstAt = batch.dstNames.split('\0')
    for (let i = 0; i < batch.kinds.length; i++) {
      const kind = batch.kinds[i] as number
      const n = out.results[i] as number
      const owner = batch.owners[i]
      const label = batch.labels[i] as string
      const dst = batch.dsts[i] as string
      if (out.dropped[i] !== 0) this.warn(out.dropped[i] as number, dst)
      if (n < 0) {
        const err = fromNative({ errno: -n, syscall: out.syscalls[i] ?? 'unknown' }, this.shownSrc(label), this.shownDst(dst)) as NodeJS.ErrnoException
        const fallback = kind === Op.Clone && this.options.mode === 'auto' ? fallbackFor(err) : undefined
        if (fallback !== undefined) {
          const dev = batch.devs[i] as number
          if (cannotCloneHere(fallback)) this.cannotClone.set(dev, fallback.code)
          retry.add(Op.Copy, { dir: batch.srcDirs[i] as number, name: srcAt[i] as string }, { dir: batch.dstDirs[i] as number, name: dstAt[i] as string },
            owner, label, dst, dev, batch.groups[i])
          r.fallbacks[fallback.code] = (r.fallbacks[fallback.code] ?? 0) + 1
        } else if (this.options.overwrite === 'skip' && err.code === 'EEXIST') {
          this.skip(label, 'EEXIST: kept the existing entry')
        } else if (err.code !== 'ECANCELED') {
          this.fail(err, label, dst)
        }
      } else {
        this.count(kind, n, batch, i)
      }
      if (owner !== undefined) {
        this.walker.unhold(owner)
        this.release(owner)
      }
      const done = batch.closes[i]
      if (done !== undefined) {
        this.walker.unhold(done)
        this.walker.close(done)
      }
      const held = batch.holds[i]
      if (held !== undefined) this.walker.unhold(held)
    }
    this.progress(false)
    return retry.length > 0 ? retry.take(Infinity, true) : undefined
  }

  private count(kind: number, n: number, batch: Batch, i: number): void {
    const r = this.result
    const group = batch.groups[i]
    if (group !== undefined) group.made = true
    if (kind === Op.Clone || kind === Op.Copy) {
      const bucket = kind === Op.Clone ? r.cloned : r.copied
      bucket.files++
      bucket.bytes += n
      r.files++
      // A copy planned because its filesystem already refused to clone is a fallback too
      // (a retried one was counted when its clone failed).
      const code = kind === Op.Copy && !batch.retry ? this.cannotClone.get(batch.devs[i] as number) : undefined
      if (code !== undefined) r.fallbacks[code] = (r.fallbacks[code] ?? 0) + 1
    } else if (kind === Op.Symlink) r.symlinks++
    else if (kind === Op.Special) r.specials++
    else if (kind === Op.Link) r.hardLinks++
  }

  progress(last: boolean): void {
    const report = this.options.onProgress
    if (report === undefined) return
    const now = Date.now()
    if (!last && now - this.lastProgress < 100) return
    this.lastProgress = now
    report({ files: this.result.files, bytes: this.result.cloned.bytes + this.result.copied.bytes })
  }

  private shownSrc(rel: string): string {
    return named(join(this.src, rel)).path
  }

  /** A path of the tree being built, as people see it: at dst, where it will be. */
  private shownDst(rel: string): string {
    return named(join(this.dst, rel)).path
  }

  skip(rel: string, reason: string): void {
    this.result.skipped.push({ ...named(join(this.src, rel)), reason })
  }

  private warn(errno: number, rel: string): void {
    const err = fromNative({ errno, syscall: 'setxattr' }, this.shownDst(rel)) as NodeJS.ErrnoException
    this.result.warnings.push({ ...named(join(this.dst, rel)), code: err.code ?? 'EUNKNOWN', message: `an extended attribute the destination cannot hold was left out: ${err.message}` })
  }

  /** Stops the run with `e` (a throw from a callback, an abort). */
  stop(e: unknown): void {
    this.error ??= e
    Atomics.store(this.cancel, 0, 1)
  }

  /** A failure: the run's error, or with continueOnError one of its errors. `src`/`dst` are relative. */
  fail(e: unknown, src: string | undefined, dst: string | undefined): void {
    const err = fromNative(e, src === undefined ? undefined : this.shownSrc(src), dst === undefined ? undefined : this.shownDst(dst)) as NodeJS.ErrnoException
    if (!this.options.continueOnError) {
      this.stop(err)
      return
    }
    const where = src === undefined ? named(join(this.dst, dst ?? '')) : named(join(this.src, src))
    this.result.errors.push({ ...where, code: err.code ?? 'EUNKNOWN', message: err.message })
  }
}
