import * as fs from 'node:fs'
import { availableParallelism } from 'node:os'
import { basename, dirname, join, resolve, sep } from 'node:path'
import { Flag, LANES, METHOD_CLONE, Op, RAW, Scan, lane, requireNative } from './binding.js'
import type { Binding, DirsScan, OpResults } from './binding.js'
import { clone, cloneSync, modes } from './clone.js'
import type { CloneMode, CloneOptions, CloneResult } from './clone.js'
import { abortError, fromNative, fsError, invalidArgType, invalidArgValue } from './errors.js'
import { fallbackFor } from './fallback.js'
import { oneOf, toPath, withDefaults } from './args.js'
import type { PathLike } from './args.js'
import { discardTree, removeLeftovers } from './tree-cleanup.js'
import { tempSiblingRaw } from './temp.js'
import { bytes, shown, toRaw } from './raw.js'
import { emptyResult, wholeTreeCounts } from './tree-whole.js'

export type OverwriteMode = 'error' | 'skip' | 'replace'
export type EntryType = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'block-device' | 'character-device'

export interface TreeEntry {
  name: string
  type: EntryType
  /** st_mode permission bits and type */
  mode: number
  size: number
}

export interface TreePreserve {
  /** permission bits, setuid/setgid too when owners are kept @default true */
  mode?: boolean
  /** atime and mtime to the nanosecond, directories included @default true */
  timestamps?: boolean
  /** owner and group, where the process may (root) @default true */
  ownership?: boolean
  /** extended attributes (POSIX ACLs among them) @default true */
  xattr?: boolean
  /** hard-link groups stay hard links @default true */
  links?: boolean
  /** FIFOs (and device nodes, when root) are recreated @default true */
  specials?: boolean
}

export interface TreeProgress {
  files: number
  bytes: number
  totalFiles?: number
  totalBytes?: number
}

export interface CloneTreeOptions {
  /** what an existing `dst` means: an error, entries kept, or entries replaced @default 'error' */
  overwrite?: OverwriteMode
  /** per file, as for clone() @default 'auto' */
  mode?: CloneMode
  /** what to keep; each field defaults to true, as cp -a does @default {} */
  preserve?: TreePreserve
  /** follow symlinks instead of recreating them (cp -L) @default false */
  dereference?: boolean
  /** entries for which it returns false are left out (a directory with all it holds) @default undefined */
  filter?: ((path: string, entry: TreeEntry) => boolean) | undefined
  /** batches of operations running at once on the thread pool @default one per CPU up to 4; 1 on btrfs */
  concurrency?: number
  /** stops the run; with `atomic`, nothing is left at `dst` @default undefined */
  signal?: AbortSignal | undefined
  /** called at most every 100 ms, and once at the end @default undefined */
  onProgress?: ((progress: TreeProgress) => void) | undefined
  /** build under a temporary sibling and rename it into place at the end @default true */
  atomic?: boolean
  /** collect per-entry errors instead of stopping at the first @default false */
  continueOnError?: boolean
}

export interface TreeResult {
  files: number
  directories: number
  symlinks: number
  hardLinks: number
  specials: number
  cloned: { files: number; bytes: number }
  copied: { files: number; bytes: number }
  /** why files were copied instead of cloned: reason code -> number of files */
  fallbacks: Record<string, number>
  skipped: Array<{ path: string; reason: string }>
  errors: Array<{ path: string; code: string; message: string }>
}

type Callbacks = 'filter' | 'signal' | 'onProgress'
type ResolvedOptions = Required<Omit<CloneTreeOptions, Callbacks>> & Pick<CloneTreeOptions, Callbacks>

const defaults: ResolvedOptions = Object.freeze({
  overwrite: 'error',
  mode: 'auto',
  preserve: {},
  dereference: false,
  filter: undefined,
  concurrency: 0,
  signal: undefined,
  onProgress: undefined,
  atomic: true,
  continueOnError: false,
})
const preserveDefaults: Required<TreePreserve> = { mode: true, timestamps: true, ownership: true, xattr: true, links: true, specials: true }

/** Operations per trip to the thread pool: large enough to amortise, small enough to balance. */
const BATCH = 64
/** Errors that say a whole filesystem cannot clone: later files from it are copied straight away. */
const fsWide = new Set(['EXDEV', 'EOPNOTSUPP', 'ENOTSUP', 'ENOTTY', 'ENOSYS'])
const BARRIER = Symbol('barrier')
/** Directories made and listed per scanDirs() call. */
const SCAN_GROUP = 16

interface Batch {
  kinds: Uint8Array
  srcs: string[]
  dsts: string[]
  /** source device of each operation, for the per-filesystem clone/copy decision */
  devs: number[]
  /** the source entry each operation stands for, as errors name it */
  labels: string[]
  flags: number
  /** copies made because these files' clones failed (their fallbacks are counted already) */
  retry: boolean
}

const idOf = (st: fs.Stats) => `${st.dev}:${st.ino}`

function typeOf(mode: number): EntryType {
  switch (mode & 0o170000) {
    case 0o040000: return 'directory'
    case 0o120000: return 'symlink'
    case 0o010000: return 'fifo'
    case 0o140000: return 'socket'
    case 0o060000: return 'block-device'
    case 0o020000: return 'character-device'
    default: return 'file'
  }
}

class BatchBuilder {
  kinds: number[] = []
  srcs: string[] = []
  dsts: string[] = []
  devs: number[] = []
  labels: string[] = []
  /** the directory each operation's entry is in (a number per directory), or -1 */
  dirs: number[] = []
  constructor(readonly flags: number) {}
  /** `label` is the source entry errors name: a hard link's `src` is its group's first clone. */
  add(kind: number, src: string, dst: string, dev = 0, label = src, dir = -1): void {
    this.dirs.push(dir)
    this.kinds.push(kind)
    this.srcs.push(src)
    this.dsts.push(dst)
    this.devs.push(dev)
    this.labels.push(label)
  }
  get length(): number {
    return this.kinds.length
  }
  /**
   * The first `max` operations (all by default), which leave the builder; fewer where that
   * keeps a directory's entries together (two jobs creating files in one directory at once
   * wait for each other).
   */
  take(retry = false, max = Infinity): Batch {
    const { flags, dirs } = this
    let n = Math.min(max, this.kinds.length)
    if (n < this.kinds.length && dirs[n] !== -1 && dirs[n] === dirs[n - 1]) {
      let start = n - 1
      while (start > 0 && dirs[start - 1] === dirs[n]) start--
      if (start > 0) n = start
    }
    const cut = <T>(xs: T[]): T[] => (n === xs.length ? xs : xs.slice(0, n))
    const batch = { kinds: Uint8Array.from(cut(this.kinds)), srcs: cut(this.srcs), dsts: cut(this.dsts), devs: cut(this.devs), labels: cut(this.labels), flags, retry }
    const rest = <T>(xs: T[]): T[] => (n === xs.length ? [] : xs.slice(n))
    this.kinds = rest(this.kinds)
    this.srcs = rest(this.srcs)
    this.dsts = rest(this.dsts)
    this.devs = rest(this.devs)
    this.labels = rest(this.labels)
    this.dirs = rest(dirs)
    return batch
  }

  /** Everything, in batches of BATCH. */
  *chunks(): Generator<Batch> {
    const { kinds, srcs, dsts, devs, labels, flags } = this
    this.kinds = []
    this.srcs = []
    this.dsts = []
    this.devs = []
    this.labels = []
    this.dirs = []
    for (let i = 0; i < kinds.length; i += BATCH) {
      const j = i + BATCH
      yield { kinds: Uint8Array.from(kinds.slice(i, j)), srcs: srcs.slice(i, j), dsts: dsts.slice(i, j), devs: devs.slice(i, j), labels: labels.slice(i, j), flags, retry: false }
    }
  }
}

interface DirTask {
  src: string
  dst: string
  /** for mkdir: the source's permission bits, and owner rwx until its metadata is set */
  mode: number
  /** with dereference: dev:ino of the directories it is inside, to stop symlink loops */
  ancestors: string[]
}

/** A group of directories to make and list in one scanDirs() call. */
interface ScanJob {
  tasks: DirTask[]
  paths: string[]
  makes: string[]
  modes: Uint32Array
  how: number
}

/**
 * One cloneTree run: plans the operations while walking, and takes their results. The sync and
 * async drivers below only differ in how they run batches.
 */
class TreeRun {
  readonly result: TreeResult = emptyResult()
  error: unknown
  private readonly cannotClone = new Map<number, string>()
  readonly fileFlags: number
  private readonly metaFlags: number
  private readonly placeFlags: number
  readonly preserve: Required<TreePreserve>
  private lastProgress = 0
  private readonly root = process.getuid?.() === 0
  /** Directories still to make and list, deepest last (the walk takes from the end). */
  readonly pending: DirTask[] = []
  /**
   * File operations (symlinks and FIFOs too) waiting to run, in streams that run side by side:
   * all of a directory's entries go to one stream, directory d to stream d % streams.length.
   * XFS gives each new directory the next allocation group in turn, and its files the group of
   * their directory: so two streams never create files in one group at once, where they would
   * wait for each other.
   */
  streams: BatchBuilder[]
  private readonly links: BatchBuilder
  /** every directory made, parents before children: their metadata is set last, in reverse */
  private readonly dirs: Array<[string, string]> = []
  private readonly firstOfLink = new Map<string, string>()

  constructor(
    readonly binding: Binding,
    readonly src: string,
    readonly dst: string,
    /** where the tree is built: a temporary sibling of dst, or dst itself */
    readonly build: string,
    readonly options: ResolvedOptions,
    readonly merge: boolean,
  ) {
    const p = (this.preserve = { ...preserveDefaults, ...options.preserve })
    this.metaFlags = (p.mode ? Flag.Mode : 0) | (p.timestamps ? Flag.Times : 0) | (p.ownership ? Flag.Owner : 0) |
      (p.xattr ? Flag.Xattr | Flag.Acl : 0) | (p.mode && p.ownership && this.root ? Flag.SetId : 0)
    this.placeFlags = !merge ? Flag.Direct : options.overwrite === 'replace' ? Flag.Overwrite : 0
    this.fileFlags = this.metaFlags | this.placeFlags
    this.streams = [new BatchBuilder(this.fileFlags)]
    this.links = new BatchBuilder(this.placeFlags)
  }

  useStreams(n: number): void {
    this.streams = Array.from({ length: n }, () => new BatchBuilder(this.fileFlags))
  }

  /** File operations waiting in all streams. */
  get waiting(): number {
    let n = 0
    for (const s of this.streams) n += s.length
    return n
  }

  /** The first task: make the build directory (private until its metadata is set) and list src. */
  begin(): void {
    // Following symlinks, one that leads back to an enclosing directory (the root too) would
    // clone the tree into itself without end.
    const rootId = this.options.dereference ? idOf(fs.statSync(bytes(this.src))) : ''
    this.pending.push({ src: this.src, dst: this.build, mode: 0o700, ancestors: [rootId] })
  }

  /** The next directories to make and list, with the arguments scanDirs() takes for them. */
  nextScan(): ScanJob {
    const tasks = this.pending.splice(Math.max(0, this.pending.length - SCAN_GROUP))
    return {
      tasks,
      paths: tasks.map((t) => t.src),
      makes: tasks.map((t) => t.dst),
      modes: Uint32Array.from(tasks, (t) => t.mode),
      how: RAW | (this.options.dereference ? Scan.Follow : 0) | (this.merge ? Scan.Merge : 0),
    }
  }

  /** Takes what scanDirs() found: the directories' entries become operations and new tasks. */
  absorbScan(job: ScanJob, out: DirsScan): void {
    const { options } = this
    const signal = options.signal
    let at = 0
    for (let k = 0; k < job.tasks.length; k++) {
      const { src: srcDir, dst: dstDir, ancestors } = job.tasks[k] as DirTask
      const count = out.dirs[k] as number
      const first = at
      at += count
      const errno = out.dirErrnos[k] as number
      if (errno !== 0 && out.dirOnDest[k] === 1) {
        this.fail({ errno, syscall: out.dirSyscalls[k] ?? 'mkdir' }, srcDir, dstDir)
        continue
      }
      this.result.directories++
      this.dirs.push([srcDir, dstDir])
      if (errno !== 0) {
        this.fail({ errno, syscall: out.dirSyscalls[k] ?? 'scandir' }, srcDir, dstDir)
        continue
      }
      if (this.stopped) continue
      // Plain concatenation: both are normalised already, and path.join per entry shows in
      // a profile of a 200k-file tree.
      const srcPrefix = srcDir.endsWith(sep) ? srcDir : srcDir + sep
      const dstPrefix = dstDir.endsWith(sep) ? dstDir : dstDir + sep
      const dirNumber = this.dirs.length
      const stream = this.streams[dirNumber % this.streams.length] as BatchBuilder
      const { names, stats } = out
      for (let i = first; i < first + count; i++) {
        if (signal?.aborted) throw abortError(signal)
        const name = names[i] as string
        const mode = stats[i * 5] as number
        const dev = stats[i * 5 + 1] as number
        const size = stats[i * 5 + 3] as number
        const type = typeOf(mode)
        const s = srcPrefix + name
        const d = dstPrefix + name
        if (options.filter !== undefined && !options.filter(shown(s), { name: shown(name), type, mode, size })) continue
        if (type === 'directory') {
          const id = options.dereference ? `${dev}:${stats[i * 5 + 2]}` : ''
          if (options.dereference && ancestors.includes(id)) {
            this.skip(s, 'ELOOP: a symlink leads back to an enclosing directory')
            continue
          }
          this.pending.push({ src: s, dst: d, mode: (mode & 0o777) | 0o700, ancestors: options.dereference ? [...ancestors, id] : ancestors })
          continue
        }
        if (type === 'socket') {
          this.skip(s, 'socket: sockets cannot be copied')
          continue
        }
        const special = type !== 'file' && type !== 'symlink'
        if (special && !this.preserve.specials) {
          this.skip(s, `${type}: preserve.specials is off`)
          continue
        }
        if (special && type !== 'fifo' && !this.root) {
          this.skip(s, `EPERM: creating a ${type} needs root`)
          continue
        }
        // Hard-link groups (of files, and of symlinks and FIFOs too) stay groups: the first
        // member is cloned, the others are linked to it once it exists. Following symlinks,
        // a file reached by several paths is one group too, as cp -aL makes it.
        if (this.preserve.links && ((stats[i * 5 + 4] as number) > 1 || options.dereference)) {
          const id = `${dev}:${stats[i * 5 + 2]}`
          const firstLink = this.firstOfLink.get(id)
          if (firstLink !== undefined) {
            this.links.add(Op.Link, firstLink, d, 0, s)
            continue
          }
          this.firstOfLink.set(id, d)
        }
        if (type === 'file') stream.add(this.fileOp(dev), s, d, dev, s, dirNumber)
        else stream.add(special ? Op.Special : Op.Symlink, s, d, 0, s, dirNumber)
      }
    }
  }

  /**
   * After the walk and every file: hard links once their first member exists, then directory
   * metadata, deepest first, so that writing inside a directory does not change its times
   * afterwards. BARRIER where all before must be done.
   */
  *finish(): Generator<Batch | typeof BARRIER> {
    const signal = this.options.signal
    if (signal?.aborted) throw abortError(signal)
    if (this.links.length > 0 && !this.stopped) yield* this.links.chunks()
    yield BARRIER
    const meta = new BatchBuilder(this.metaFlags)
    for (let i = this.dirs.length - 1; i >= 0 && !this.stopped; i--) {
      const [s, d] = this.dirs[i] as [string, string]
      meta.add(Op.DirMeta, s, d)
      if (meta.length >= BATCH) yield meta.take()
    }
    if (meta.length > 0) yield meta.take()
    yield BARRIER
    if (signal?.aborted) throw abortError(signal)
  }

  get stopped(): boolean {
    return this.error !== undefined
  }

  private fileOp(dev: number): number {
    if (this.options.mode === 'never' || this.cannotClone.has(dev)) return Op.Copy
    return Op.Clone
  }

  /** Takes a batch's results; returns the copies to make where 'auto' clones failed. */
  absorb(batch: Batch, out: OpResults): Batch | undefined {
    const retry = new BatchBuilder(batch.flags)
    const r = this.result
    for (let i = 0; i < batch.kinds.length; i++) {
      const kind = batch.kinds[i] as number
      const n = out.results[i] as number
      const src = batch.srcs[i] as string
      const dst = batch.dsts[i] as string
      const label = batch.labels[i] as string
      if (n < 0) {
        const err = fromNative({ errno: -n, syscall: out.syscalls[i] ?? 'unknown' }, shown(label), this.shown(dst)) as NodeJS.ErrnoException
        const fallback = kind === Op.Clone && this.options.mode === 'auto' ? fallbackFor(err) : undefined
        if (fallback !== undefined) {
          const dev = batch.devs[i] as number
          if (fsWide.has(fallback.code)) this.cannotClone.set(dev, fallback.code)
          retry.add(Op.Copy, src, dst, dev, label)
          r.fallbacks[fallback.code] = (r.fallbacks[fallback.code] ?? 0) + 1
        } else if (this.options.overwrite === 'skip' && err.code === 'EEXIST') {
          this.skip(label, 'EEXIST: kept the existing entry')
        } else {
          this.fail(err, label, dst)
        }
        continue
      }
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
    this.progress(false)
    return retry.length > 0 ? retry.take(true) : undefined
  }

  progress(last: boolean): void {
    const report = this.options.onProgress
    if (report === undefined) return
    const now = Date.now()
    if (!last && now - this.lastProgress < 100) return
    this.lastProgress = now
    report({ files: this.result.files, bytes: this.result.cloned.bytes + this.result.copied.bytes })
  }

  /** A path of the tree being built, as people see it: at dst, where it will be. */
  private shown(path: string): string {
    return shown(path === this.build || path.startsWith(this.build + sep) ? this.dst + path.slice(this.build.length) : path)
  }

  skip(path: string, reason: string): void {
    this.result.skipped.push({ path: shown(path), reason })
  }

  fail(e: unknown, src: string | undefined, dst: string | undefined): void {
    const err = fromNative(e, src === undefined ? undefined : shown(src), dst === undefined ? undefined : this.shown(dst)) as NodeJS.ErrnoException
    if (!this.options.continueOnError) {
      this.error ??= err
      return
    }
    this.result.errors.push({ path: src === undefined ? this.shown(dst ?? '') : shown(src), code: err.code ?? 'EUNKNOWN', message: err.message })
  }
}

interface Prepared {
  src: string
  dst: string
  options: ResolvedOptions
  /** the source is a file: cloneTree behaves like clone() */
  single: boolean
  /** dst exists and overwrite says to merge into it */
  merge: boolean
}

function prepare(src: unknown, dst: unknown, options: unknown): Prepared {
  const o = withDefaults('options', options, defaults)
  oneOf('options.mode', o.mode, modes)
  oneOf('options.overwrite', o.overwrite, ['error', 'skip', 'replace'])
  // Left out, it is 0: chosen for the destination's filesystem.
  const asked = (options as CloneTreeOptions | undefined)?.concurrency
  if (asked !== undefined && (!Number.isInteger(asked) || asked < 1)) {
    throw invalidArgValue('options.concurrency', asked, 'must be an integer >= 1')
  }
  for (const key of ['filter', 'onProgress'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'function') throw invalidArgType(`options.${key}`, 'of type function', o[key])
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidArgType('options.signal', 'an instance of AbortSignal', o.signal)
  // Byte strings from here on (raw.ts); node:fs gets them as Buffers.
  const s = absolute(toPath('src', src))
  const d = absolute(toPath('dst', dst))
  if (o.signal?.aborted) throw abortError(o.signal)
  const st = o.dereference ? fs.statSync(bytes(s)) : fs.lstatSync(bytes(s))
  const exists = fs.existsSync(bytes(d)) || isSymlink(d)
  if (!st.isDirectory()) return { src: s, dst: d, options: o, single: true, merge: false }
  const real = fs.realpathSync(bytes(s), 'buffer').toString('latin1')
  const dstReal = join(fs.realpathSync(bytes(dirname(d)), 'buffer').toString('latin1'), basename(d))
  const [ss, ds] = [shown(s), shown(d)]
  if (dstReal === real) throw fsError('EINVAL', 22, 'cloneTree', ss, ds, 'source and destination are the same directory')
  if (dstReal.startsWith(real + sep)) throw fsError('EINVAL', 22, 'cloneTree', ss, ds, 'cannot clone a directory into itself')
  if (exists && o.overwrite === 'error') throw fsError('EEXIST', 17, 'cloneTree', ss, ds)
  if (exists && !fs.statSync(bytes(d)).isDirectory()) throw fsError('ENOTDIR', 20, 'cloneTree', ss, ds, 'destination exists and is not a directory')
  return { src: s, dst: d, options: o, single: false, merge: exists }
}

/** An absolute path, as a byte string. */
function absolute(path: string | Buffer): string {
  return resolve(toRaw(process.cwd()), toRaw(path))
}

function isSymlink(path: string): boolean {
  try {
    return fs.lstatSync(bytes(path)).isSymbolicLink()
  } catch {
    return false
  }
}

function startRun(p: Prepared): TreeRun {
  const binding = requireNative('cloneTree')
  removeLeftovers(p.dst)
  const build = p.merge || !p.options.atomic ? p.dst : tempSiblingRaw(p.dst)
  return new TreeRun(binding, p.src, p.dst, build, p.options, p.merge)
}

function finishRun(run: TreeRun, p: Prepared): TreeResult {
  const signal = p.options.signal
  if (run.error === undefined && signal?.aborted) run.error = abortError(signal)
  if (run.error === undefined && run.build !== p.dst) {
    try {
      run.binding.rename(bytes(run.build), bytes(p.dst), true)
    } catch (e) {
      run.error = fromNative(e, shown(p.src), shown(p.dst))
    }
  }
  if (run.error !== undefined) {
    if (run.build !== p.dst) discardTree(run.build)
    throw run.error
  }
  run.progress(true)
  return run.result
}

function abandon(run: TreeRun, p: Prepared, e: unknown): never {
  if (run.build !== p.dst) discardTree(run.build)
  throw e
}

const singleOptions = (o: ResolvedOptions): CloneOptions => ({
  mode: o.mode,
  overwrite: o.overwrite === 'replace',
  followSymlinks: o.dereference,
  preserveOwner: o.preserve.ownership ?? true,
})

function singleResult(r: CloneResult | undefined, path: string): TreeResult {
  const result = emptyResult()
  if (r === undefined) {
    result.skipped.push({ path, reason: 'EEXIST: kept the existing entry' })
    return result
  }
  result.files = 1
  result[r.method === 'clone' ? 'cloned' : 'copied'] = { files: 1, bytes: r.size }
  if (r.fallback) result.fallbacks[r.fallback.code] = 1
  return result
}

const skippedExisting = (e: unknown, o: ResolvedOptions) =>
  o.overwrite === 'skip' && (e as NodeJS.ErrnoException).code === 'EEXIST'

/** The one-call whole-tree clone applies: macOS, nothing asked of it that it cannot keep. */
function wholeTreeCounting(run: TreeRun, p: Prepared): TreeResult | undefined {
  const o = p.options
  if (process.platform !== 'darwin' || o.filter !== undefined || o.mode === 'never' || o.dereference || run.build === p.dst) return undefined
  return wholeTreeCounts(run.binding, p.src, (run.fileFlags & Flag.SetId) !== 0, run.preserve.links)
}

/** Where clonefile(2) refuses the hierarchy in a way a walk may get round (EXDEV, ENOTSUP), walk. */
function wholeTreeFailed(run: TreeRun, p: Prepared, e: unknown): undefined {
  const err = fromNative(e, shown(p.src), shown(p.dst))
  if (fallbackFor(err) === undefined) throw err
  discardTree(run.build)
  return undefined
}

function wholeTreeSync(run: TreeRun, p: Prepared): TreeResult | undefined {
  const counts = wholeTreeCounting(run, p)
  if (counts === undefined) return undefined
  try {
    run.binding.cloneFile(bytes(p.src), bytes(run.build), METHOD_CLONE, run.fileFlags | Flag.Tree, false)
  } catch (e) {
    return wholeTreeFailed(run, p, e)
  }
  Object.assign(run.result, counts)
  return finishRun(run, p)
}

async function wholeTree(run: TreeRun, p: Prepared): Promise<TreeResult | undefined> {
  const counts = wholeTreeCounting(run, p)
  if (counts === undefined) return undefined
  try {
    await run.binding.cloneFile(bytes(p.src), bytes(run.build), METHOD_CLONE, run.fileFlags | Flag.Tree, true)
  } catch (e) {
    return wholeTreeFailed(run, p, e)
  }
  Object.assign(run.result, counts)
  return finishRun(run, p)
}

/**
 * Batches at once when the caller does not say: one per CPU, at most 4 (on XFS more contend for
 * the locks of its few allocation groups), and at most 2 on btrfs, where creations and clones
 * running in parallel contend for the same b-tree locks. (Measured with `npm run bench`: on one
 * 2-CPU host 2 lanes took 0.84× the time of 1 on btrfs, on another, with cheaper syscalls, 1
 * lane was the faster; 3 or 4 never helped there.)
 */
function autoConcurrency(binding: Binding, dir: Buffer): number {
  const cpus = Math.min(4, availableParallelism())
  try {
    return binding.fsInfo(dir).name === 'btrfs' ? Math.min(2, cpus) : cpus
  } catch {
    return cpus
  }
}

/**
 * Clones the directory tree `src` to the new path `dst`, as faithfully as `cp -a` (modes, times
 * to the nanosecond, owners when root, xattrs, symlinks, hard links, FIFOs), sharing the blocks
 * of every file. With `atomic` (the default) a failure or an abort leaves nothing at `dst`.
 */
export async function cloneTree(src: PathLike, dst: PathLike, options?: CloneTreeOptions): Promise<TreeResult> {
  const p = prepare(src, dst, options)
  if (p.single) {
    try {
      return singleResult(await clone(bytes(p.src), bytes(p.dst), singleOptions(p.options)), shown(p.src))
    } catch (e) {
      if (skippedExisting(e, p.options)) return singleResult(undefined, shown(p.src))
      throw e
    }
  }
  const run = startRun(p)
  const whole = await wholeTree(run, p)
  if (whole !== undefined) return whole
  const { binding } = run
  const concurrency = p.options.concurrency || autoConcurrency(binding, bytes(dirname(run.build)))
  // One lane per stream of files: jobs of one lane run one after another (the thread that has
  // the lane takes the next queued job itself), lanes side by side. Each lane has one job
  // queued beyond the one running, so it never waits for this thread.
  const lanes = Math.min(concurrency, LANES)
  run.useStreams(lanes)
  const perLane = 2
  const backlog = BATCH * lanes * 4
  const queued = new Array<number>(lanes).fill(0)
  const inflight = new Set<Promise<void>>()
  let scans = 0
  let nextLane = 0
  // A job's promise never rejects: a failure, or a throw from the callbacks run in absorbing
  // its results (filter, onProgress, an abort), becomes the run's error and stops the walk.
  const track = (job: Promise<void>, l: number): void => {
    queued[l] = (queued[l] as number) + 1
    const done: Promise<void> = job.catch((e: unknown) => {
      run.error ??= e
    }).finally(() => {
      queued[l] = (queued[l] as number) - 1
      inflight.delete(done)
    })
    inflight.add(done)
  }
  const launch = (batch: Batch, l: number): void => {
    track(binding.runOps(batch.kinds, batch.srcs.join('\0'), batch.dsts.join('\0'), batch.flags | RAW | lane(l + 1), true).then((out) => {
      const retry = run.absorb(batch, out)
      if (retry !== undefined) launch(retry, l)
    }), l)
  }
  const scan = (job: ScanJob): void => {
    const l = nextLane
    nextLane = (nextLane + 1) % lanes
    scans++
    track(binding.scanDirs(job.paths, job.how | lane(l + 1), true, job.makes, job.modes)
      .finally(() => scans--)
      .then((out) => run.absorbScan(job, out)), l)
  }
  const drain = async (below: number) => {
    while (inflight.size > below) await Promise.race(inflight)
  }
  const signal = p.options.signal
  try {
    run.begin()
    // The walk and the files together: directories are made and listed on the pool too, a
    // group at a time, and their files go out in batches as soon as they are known.
    while (!run.stopped) {
      if (signal?.aborted) throw abortError(signal)
      if (run.pending.length > 0 && scans === 0 && run.waiting < backlog) {
        scan(run.nextScan())
        continue
      }
      let launched = false
      for (let l = 0; l < lanes; l++) {
        const stream = run.streams[l] as BatchBuilder
        const n = stream.length
        if (n === 0 || (queued[l] as number) >= perLane) continue
        // A part batch only where nothing more is coming soon, or the lane would stand idle.
        if (n >= BATCH || scans === 0 || queued[l] === 0) {
          launch(stream.take(false, BATCH), l)
          launched = true
        }
      }
      if (launched) continue
      if (inflight.size === 0) break
      await Promise.race(inflight)
    }
    await drain(0)
    for (const step of run.finish()) {
      if (step === BARRIER) await drain(0)
      else {
        launch(step, nextLane)
        nextLane = (nextLane + 1) % lanes
        await drain(lanes * perLane - 1)
      }
    }
  } catch (e) {
    await drain(0)
    abandon(run, p, e)
  }
  return finishRun(run, p)
}

/** The synchronous twin of {@link cloneTree}: the same walk, one operation at a time. */
export function cloneTreeSync(src: PathLike, dst: PathLike, options?: CloneTreeOptions): TreeResult {
  const p = prepare(src, dst, options)
  if (p.single) {
    try {
      return singleResult(cloneSync(bytes(p.src), bytes(p.dst), singleOptions(p.options)), shown(p.src))
    } catch (e) {
      if (skippedExisting(e, p.options)) return singleResult(undefined, shown(p.src))
      throw e
    }
  }
  const run = startRun(p)
  const whole = wholeTreeSync(run, p)
  if (whole !== undefined) return whole
  const { binding } = run
  const execute = (step: Batch | typeof BARRIER): void => {
    for (let batch = step === BARRIER ? undefined : step; batch !== undefined;) {
      batch = run.absorb(batch, binding.runOps(batch.kinds, batch.srcs.join('\0'), batch.dsts.join('\0'), batch.flags | RAW, false))
    }
  }
  try {
    run.begin()
    while (run.pending.length > 0 && !run.stopped) {
      const job = run.nextScan()
      run.absorbScan(job, binding.scanDirs(job.paths, job.how, false, job.makes, job.modes))
      const stream = run.streams[0] as BatchBuilder
      while (stream.length >= BATCH && !run.stopped) execute(stream.take(false, BATCH))
    }
    for (const stream of run.streams) if (stream.length > 0 && !run.stopped) execute(stream.take())
    for (const step of run.finish()) execute(step)
  } catch (e) {
    abandon(run, p, e)
  }
  return finishRun(run, p)
}
