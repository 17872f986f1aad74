// dedupe(): files with identical content made to share their blocks, with FIDEDUPERANGE only.
// The kernel locks both files and compares every byte before it shares any, so a file written
// during the run is never replaced by stale data: "the bytes differ" (EBADE) from a file whose
// stat moved since the walk is reported as skipped, never acted on.
//
// Finding: the walker lists every tree with each file's extents (walk.ts, Scan.Extents) → files
// grouped by (device, size), hard links counted once → within a group, files with the same
// extent map already share every block (no data read: alreadyShared) → one file of each extent
// class sampled (start, middle, end; sampleFiles in the addon) → classes with equal samples are
// handed to FIDEDUPERANGE against a keeper, and the kernel's compare is the final check (it
// reads both ranges anyway: a full hash first would read every byte twice). A member that the
// kernel finds different and that did not change goes round again with the others like it.
// `saved` is the union of the group's physical data ranges before, less the union after
// (FIEMAP, extents.ts), as usage() counts them.
import * as fs from 'node:fs'
import { constants } from 'node:os'
import { CWD, RAW, Scan, requireNative, type Binding } from './binding.js'
import { devAt, inoAt, isDir, isFile, modeAt, sizeAt, statAt, typeOf, type EntryStat } from './entries.js'
import { abortError, errnoName, errnoOf, fromNative, fsError } from './errors.js'
import { EXTENT_STRIDE, NOT_DATA, Ranges, extentsOf } from './extents.js'
import { abortSignal, boolean, callback, number, resolveOptions, toRawPaths, type OptionTable } from './args.js'
import { bytes, joinRaw, named, shown } from './raw.js'
import type { DedupeGroup, DedupeIssue, DedupeOptions, DedupeProgress, DedupeResult, PathLike, TreeEntry } from './types.js'
import { Walker, listAsync, newDir, type WalkDir } from './walk.js'

interface Resolved {
  dryRun: boolean
  minSize: number
  filter: ((path: string, entry: TreeEntry) => boolean | Promise<boolean>) | undefined
  signal: AbortSignal | undefined
  onProgress: ((p: DedupeProgress) => void) | undefined
  concurrency: number
  onGroup: ((g: DedupeGroup) => void) | undefined
}

const optionTable: OptionTable<Resolved> = {
  dryRun: boolean(false),
  minSize: number(1, 0),
  filter: callback(),
  signal: abortSignal(),
  onProgress: callback(),
  concurrency: number(4, 1),
  onGroup: callback(),
}

const E = constants.errno
/** FILE_DEDUPE_RANGE_DIFFERS, as the addon reports it (Node's os.constants lacks EBADE). */
const EBADE = errnoOf('EBADE') as number
/** What says a filesystem cannot share blocks (FIEMAP or FIDEDUPERANGE refused). */
const CANNOT = new Set([E.EOPNOTSUPP, E.ENOTSUP, E.ENOTTY, E.ENOSYS, E.EXDEV])
/** Failures that leave a file alone rather than being errors: gone, moved, not for dedupe. */
const SKIPS = new Set([E.ENOENT, E.ENOTDIR, E.ELOOP, E.EINVAL, E.ETXTBSY, EBADE])
/** Bytes sampled at each of a file's start, middle and end. */
const SAMPLE = 4096

/** A regular file of a walk, a candidate. */
interface File {
  /** index of the root it is addressed from */
  root: number
  /** its path below the root (a byte string), the name the addon opens it by */
  rel: string
  st: EntryStat
  /** its extent map at the walk, as text (extentText): a string is far smaller than a typed
   * array per file, and 200k files are held until the walk ends */
  extents: string
}

interface Root {
  /** the open directory files are named from: the root directory, or a file's parent */
  fd: number
  /** the path given (a byte string) */
  given: string
  /** it is a file: its path is `given` */
  file: boolean
}

interface DedupeDir extends WalkDir {
  /** the path as given, below which it is (a byte string) */
  base: string
}


/** An extent map as text: "logical:physical:length;" for each data extent, '!' first where
 * some data is not mapped (delalloc, inline, unwritten). */
function extentText(extents: Float64Array): string {
  let text = ''
  for (let i = 0; i < extents.length; i += EXTENT_STRIDE) {
    const length = extents[i + 2] as number
    if (((extents[i + 3] as number) & NOT_DATA) !== 0) {
      if (!text.startsWith('!')) text = `!${text}`
      continue
    }
    if (length > 0) text += `${extents[i]}:${extents[i + 1]}:${length};`
  }
  return text
}

/** Files with the same key share every block. '' for one that shares nothing as far as its
 * map says (some data not mapped, or no data at all). */
const extentKey = (text: string): string => (text === '' || text.startsWith('!') ? '' : text)

/** Each data extent of an extent text: (physical, length). */
function eachExtent(text: string, fn: (physical: number, length: number) => void): void {
  for (const part of (text.startsWith('!') ? text.slice(1) : text).split(';')) {
    if (part === '') continue
    const [, physical, length] = part.split(':')
    fn(Number(physical), Number(length))
  }
}

function dataBytes(text: string): number {
  let n = 0
  eachExtent(text, (_, length) => (n += length))
  return n
}

const unchanged = (a: EntryStat, b: EntryStat): boolean =>
  a.ino === b.ino && a.size === b.size && a.mtimeSec === b.mtimeSec && a.mtimeNsec === b.mtimeNsec &&
  a.ctimeSec === b.ctimeSec && a.ctimeNsec === b.ctimeNsec

const older = (a: File, b: File): boolean =>
  a.st.mtimeSec < b.st.mtimeSec || (a.st.mtimeSec === b.st.mtimeSec && a.st.mtimeNsec < b.st.mtimeNsec)

class Run {
  readonly result: DedupeResult = {
    files: 0, groups: 0, deduped: { files: 0, bytes: 0 }, alreadyShared: { files: 0, bytes: 0 }, saved: 0, skipped: [], errors: [],
  }
  readonly roots: Root[] = []
  /** size groups, by "dev:size" */
  private readonly bySize = new Map<string, File[]>()
  private readonly seen = new Map<string, string>()
  /** devices found unable to share blocks: said once each */
  private readonly cannot = new Set<number>()
  private readonly progress: DedupeProgress = { phase: 'scan', files: 0, bytes: 0 }
  private reported = 0

  constructor(private readonly binding: Binding, private readonly o: Resolved, private readonly multi = false) {}

  /** Where a file is, as given (a byte string). */
  pathOf(f: File): string {
    const root = this.roots[f.root] as Root
    return root.file ? root.given : joinRaw(root.given, f.rel)
  }

  private issue(list: DedupeIssue[], path: string, code: string, message: string): void {
    list.push({ ...named(path), code, message: `${code}: ${message}, '${shown(path)}'` })
  }

  private failed(path: string, errno: number, syscall: string): void {
    const code = errnoName(errno)
    this.issue(SKIPS.has(errno) ? this.result.skipped : this.result.errors, path, code, `${syscall} failed`)
  }

  /** The device cannot share blocks: said once, for the first file found there. */
  private refuse(dev: number, path: string, errno: number): void {
    if (this.cannot.has(dev)) return
    this.cannot.add(dev)
    this.issue(this.result.skipped, path, 'EOPNOTSUPP', `this filesystem cannot share blocks (${errnoName(errno)}): nothing on its device ${dev} is deduped`)
  }

  private tick(phase: DedupeProgress['phase'], files: number, bytes: number, force = false): void {
    this.progress.phase = phase
    this.progress.files += files
    this.progress.bytes += bytes
    if (!force && this.progress.files - this.reported < 512) return
    this.reported = this.progress.files
    this.o.onProgress?.({ ...this.progress })
  }

  private checkAbort(): void {
    if (this.o.signal?.aborted) throw abortError(this.o.signal)
  }

  /** A file found: counted (a hard link once), then kept where it can have a duplicate. */
  private add(f: File, errno: number): void {
    const { st } = f
    const small = st.size < this.o.minSize || st.size === 0
    // Several paths may name one file twice (a file and its directory, or the same path).
    if (st.nlink > 1 || this.multi) {
      const id = `${st.dev}:${st.ino}`
      const first = this.seen.get(id)
      if (first !== undefined) {
        if (!small && first !== this.pathOf(f)) this.issue(this.result.skipped, this.pathOf(f), 'HARDLINK', `a hard link to '${shown(first)}', examined once`)
        return
      }
      this.seen.set(id, this.pathOf(f))
    }
    this.result.files++
    this.tick('scan', 1, st.size)
    if (small) return
    if (errno !== 0) {
      if (CANNOT.has(errno)) this.refuse(st.dev, this.pathOf(f), errno)
      else this.failed(this.pathOf(f), errno, 'ioctl_fiemap')
      return
    }
    if (this.cannot.has(st.dev)) return
    const key = `${st.dev}:${st.size}`
    const group = this.bySize.get(key)
    if (group === undefined) this.bySize.set(key, [f])
    else group.push(f)
  }

  /** One path given: walked (a directory) or taken as it is (a file). */
  async path(given: string): Promise<void> {
    const real = (await fs.promises.realpath(bytes(given), 'buffer')).toString('latin1')
    const st = await fs.promises.lstat(bytes(real), { bigint: true })
    const root = this.roots.length
    if (!st.isDirectory()) {
      if (!st.isFile()) return
      const slash = real.lastIndexOf('/')
      const parent = slash <= 0 ? '/' : real.slice(0, slash)
      const name = real.slice(slash + 1)
      const { fd } = this.binding.openDir(CWD, parent, RAW)
      this.roots.push({ fd, given, file: true })
      const { counts, errnos, extents } = await this.binding.extentsMany(Int32Array.of(fd), name, RAW, true)
      const sec = (ns: bigint): number => Number(ns / 1_000_000_000n)
      const nsec = (ns: bigint): number => Number(ns % 1_000_000_000n)
      const es: EntryStat = {
        mode: Number(st.mode), dev: Number(st.dev), ino: Number(st.ino), size: Number(st.size), nlink: Number(st.nlink),
        mtimeSec: sec(st.mtimeNs), mtimeNsec: nsec(st.mtimeNs), ctimeSec: sec(st.ctimeNs), ctimeNsec: nsec(st.ctimeNs), allocated: Number(st.blocks) * 512,
      }
      const file: File = { root, rel: name, st: es, extents: extentText(extentsOf(extents, 0, counts[0] as number)) }
      this.add(file, errnos[0] as number)
      return
    }
    const { fd, stat } = this.binding.openDir(CWD, real, RAW)
    this.roots.push({ fd, given, file: false })
    const how = RAW | Scan.Extents | Scan.Names
    const walker = new Walker<DedupeDir>(this.binding, { how }, (parent, name, rel) => newDir(parent, name, rel, { base: given }))
    walker.start({ dir: CWD, name: real })
    const filter = this.o.filter
    await listAsync(walker, async ({ dir, errno, syscall, listing }) => {
      const dirPath = joinRaw(given, dir.rel)
      if (errno !== 0) {
        if (dir.parent === undefined) throw fromNative({ errno, syscall }, named(dirPath).path)
        this.failed(dirPath, errno, syscall)
        return
      }
      if (dir.parent === undefined && (dir.dev !== devAt(stat, 0) || dir.ino !== inoAt(stat, 0))) {
        throw fsError('ESTALE', 'walk', { path: named(given).path, detail: 'the directory was replaced while it was opened' })
      }
      const { out, first, count, firstExtent } = listing
      let extent = firstExtent
      for (let i = first; i < first + count; i++) {
        const n = out.counts?.[i] ?? 0
        extent += n
        const mode = modeAt(out.stats, i)
        if (!isDir(mode) && !isFile(mode)) continue
        const name = out.names[i] as string
        const rel = dir.rel === '' ? name : `${dir.rel}/${name}`
        const path = joinRaw(given, rel)
        if (filter !== undefined) {
          const { path: p, rawPath } = named(path)
          const keep = await filter(p, { name: named(name).path, type: typeOf(mode), mode, size: sizeAt(out.stats, i), ...(rawPath ? { rawPath } : {}) })
          if (!keep) continue
        }
        if (isDir(mode)) {
          walker.child(dir, name)
          continue
        }
        const file: File = { root, rel, st: statAt(out.stats, i), extents: extentText(extentsOf(out.extents as Float64Array, extent - n, n)) }
        this.add(file, out.errnos?.[i] ?? 0)
      }
    }, { signal: this.o.signal })
    this.checkAbort()
  }

  /** Every size group, `concurrency` at a time. */
  async groups(): Promise<void> {
    this.tick('scan', 0, 0, true)
    const groups = [...this.bySize.values()].filter((g) => g.length > 1)
    this.bySize.clear()
    this.progress.totalFiles = groups.reduce((n, g) => n + g.length, 0)
    this.progress.totalBytes = groups.reduce((n, g) => n + g.length * (g[0] as File).st.size, 0)
    this.progress.files = 0
    this.progress.bytes = 0
    this.reported = 0
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < groups.length) {
        this.checkAbort()
        await this.group(groups[next++] as File[])
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, groups.length) }, worker))
    this.checkAbort()
    this.tick('dedupe', 0, 0, true)
  }

  /** Files of one device and size: by extent map, then by sample, then by the kernel's compare. */
  private async group(files: File[]): Promise<void> {
    const dev = (files[0] as File).st.dev
    if (this.cannot.has(dev)) return
    const classes = byExtents(files)
    if (classes.length === 1) {
      // All share every block already: nothing read.
      this.shared(classes[0] as File[])
      return
    }
    // One file of each class read: the rest of a class has the same blocks.
    this.tick('hash', 0, 0)
    const reps = classes.map((c) => c[0] as File)
    const sample = await this.binding.sampleFiles(this.dirs(reps), reps.map((f) => f.rel).join('\0'), RAW, SAMPLE, true)
    const buckets = new Map<string, File[][]>()
    classes.forEach((c, k) => {
      const errno = sample.errnos[k] as number
      const rep = c[0] as File
      if (errno !== 0) {
        if (CANNOT.has(errno)) this.refuse(dev, this.pathOf(rep), errno)
        else this.failed(this.pathOf(rep), errno, 'read')
        return
      }
      if (!unchanged(statAt(sample.stats, k), rep.st)) {
        for (const f of c) this.issue(this.result.skipped, this.pathOf(f), 'EBADE', 'changed during the run: left as it is')
        return
      }
      const key = `${sample.hashes[2 * k]}:${sample.hashes[2 * k + 1]}`
      const b = buckets.get(key)
      if (b === undefined) buckets.set(key, [c])
      else b.push(c)
    })
    for (const b of buckets.values()) await this.bucket(b)
  }

  /** Members of one extent class: they share every block already. */
  private shared(c: File[]): void {
    if (c.length < 2) return
    this.result.groups++
    this.report(c[0] as File, [], c.slice(1))
    for (const f of c.slice(1)) {
      this.result.alreadyShared.files++
      this.result.alreadyShared.bytes += dataBytes(f.extents)
    }
  }

  private dirs(files: File[]): Int32Array {
    return Int32Array.from(files, (f) => (this.roots[f.root] as Root).fd)
  }

  /** Classes whose samples agree: deduped onto a keeper; those the kernel finds different go
   * round again among themselves. */
  private async bucket(classes: File[][]): Promise<void> {
    while (classes.length > 0) {
      const size = ((classes[0] as File[])[0] as File).st.size
      if (classes.length === 1) {
        this.shared(classes[0] as File[])
        return
      }
      // The keeper: of the class most of the bucket is in, else the oldest file.
      const members = classes.flat()
      classes.sort((a, b) => b.length - a.length || (older(oldest(a), oldest(b)) ? -1 : 1))
      const keepers = classes[0] as File[]
      const keeper = oldest(keepers)
      const dests = classes.slice(1).flat()
      const before = new Ranges()
      for (const f of members) addData(before, f.extents)
      if (this.o.dryRun) {
        this.result.groups++
        this.countShared(keepers)
        this.report(keeper, dests, keepers.filter((f) => f !== keeper))
        const after = new Ranges()
        addData(after, keeper.extents)
        for (const f of keepers) addData(after, f.extents)
        this.result.deduped.files += dests.length
        this.result.deduped.bytes += dests.length * size
        this.result.saved += before.union() - after.union()
        this.tick('dedupe', members.length, members.length * size)
        return
      }
      this.checkAbort()
      const all = [keeper, ...dests]
      const out = await this.binding.dedupeFiles(this.dirs(all), all.map((f) => f.rel).join('\0'), RAW, size, true)
        .catch((e: unknown) => e as { errno?: number; syscall?: string })
      this.tick('dedupe', all.length, all.length * size, true)
      if (!('status' in out)) {
        const errno = out.errno ?? E.EIO
        this.failed(this.pathOf(keeper), errno, out.syscall ?? 'open')
        classes = classes.slice(1)
        continue
      }
      const keeperChanged = !unchanged(statAt(out.after, 0), keeper.st)
      if (keeperChanged) this.issue(this.result.skipped, this.pathOf(keeper), 'EBADE', 'changed during the run: left as it is')
      const rest: File[] = []
      let done = 0
      const now: File[] = []
      dests.forEach((f, k) => {
        const i = k + 1
        const status = out.status[i] as number
        if (status === 0 && out.deduped[i] === size) {
          done++
          now.push(f)
          this.result.deduped.files++
          this.result.deduped.bytes += size
          return
        }
        const errno = status === 0 ? E.EIO : -status
        if (CANNOT.has(errno)) return this.refuse(f.st.dev, this.pathOf(f), errno)
        if (errno === EBADE) {
          const moved = !unchanged(statAt(out.after, i), f.st) || !unchanged(statAt(out.before, i), f.st)
          if (moved) return this.issue(this.result.skipped, this.pathOf(f), 'EBADE', 'changed during the run: left as it is')
          if (!keeperChanged) return void rest.push(f)
          // Compared with a keeper that changed: it may still equal the others.
          return void rest.push(f)
        }
        this.failed(this.pathOf(f), errno, 'ioctl_fideduperange')
      })
      if (this.cannot.has(keeper.st.dev)) return
      if (done > 0 || keepers.length > 1) {
        this.result.groups++
        this.countShared(keepers)
        this.report(keeper, now, keepers.filter((f) => f !== keeper))
      }
      if (done > 0) await this.measure(members, before)
      // The different ones, in their extent classes, go round again.
      classes = byExtents(rest)
      if (classes.length === 1 && (classes[0] as File[]).length < 2) return
    }
  }

  private report(keeper: File, deduped: File[], already: File[]): void {
    const onGroup = this.o.onGroup
    if (onGroup === undefined) return
    const shownPath = (f: File): string => named(this.pathOf(f)).path
    onGroup({ keeper: shownPath(keeper), size: keeper.st.size, deduped: deduped.map(shownPath), alreadyShared: already.map(shownPath) })
  }

  /** The keeper's class-mates: already sharing every block with it. */
  private countShared(keepers: File[]): void {
    for (const f of keepers.slice(1)) {
      this.result.alreadyShared.files++
      this.result.alreadyShared.bytes += dataBytes(f.extents)
    }
  }

  /** saved += the group's physical data before, less after (FIEMAP again). */
  private async measure(members: File[], before: Ranges): Promise<void> {
    const { counts, errnos, extents } = await this.binding.extentsMany(this.dirs(members), members.map((f) => f.rel).join('\0'), RAW, true)
    const after = new Ranges()
    let first = 0
    members.forEach((f, k) => {
      const count = counts[k] as number
      // A file that cannot be mapped now still holds what it held.
      if (errnos[k] === 0) addDataArray(after, extentsOf(extents, first, count))
      else addData(after, f.extents)
      first += count
    })
    this.result.saved += before.union() - after.union()
  }

  end(): void {
    const fds = this.roots.map((r) => r.fd).filter((fd) => fd >= 0)
    if (fds.length > 0) this.binding.closeDirs(Int32Array.from(fds))
    this.roots.length = 0
  }
}

/** Data extents' physical ranges into `into`. */
function addData(into: Ranges, text: string): void {
  eachExtent(text, (physical, length) => into.add(physical, length))
}

function addDataArray(into: Ranges, extents: Float64Array): void {
  for (let i = 0; i < extents.length; i += EXTENT_STRIDE) {
    const length = extents[i + 2] as number
    if (((extents[i + 3] as number) & NOT_DATA) !== 0 || length === 0) continue
    into.add(extents[i + 1] as number, length)
  }
}

function oldest(files: File[]): File {
  return files.reduce((a, b) => (older(b, a) ? b : a))
}

/** Files by extent map: a class shares every block. A file whose data is not mapped is a class
 * of its own. */
function byExtents(files: File[]): File[][] {
  const classes = new Map<string, File[]>()
  const alone: File[][] = []
  for (const f of files) {
    const key = extentKey(f.extents)
    if (key === '') {
      alone.push([f])
      continue
    }
    const c = classes.get(key)
    if (c === undefined) classes.set(key, [f])
    else c.push(f)
  }
  return [...classes.values(), ...alone]
}


/**
 * Finds files with identical content under `paths` and makes them share their blocks with
 * FIDEDUPERANGE, which compares the bytes under the files' locks before it shares them.
 */
export async function dedupe(paths: PathLike | PathLike[], options?: DedupeOptions): Promise<DedupeResult> {
  const list = toRawPaths(paths)
  const o = resolveOptions('options', options, optionTable)
  if (process.platform !== 'linux') {
    throw fsError('ENOTSUP', 'dedupe', {
      path: shown(list[0] as string),
      detail: process.platform === 'darwin'
        ? 'APFS has no compare-and-share call, and the verify-then-swap dedupe is not built yet'
        : 'this OS has no compare-and-share call (ReFS has none)',
    })
  }
  const binding = requireNative('dedupe')
  if (o.signal?.aborted) throw abortError(o.signal)
  // Every path must exist before anything is done.
  for (const p of list) await fs.promises.lstat(bytes(p)).catch((e: unknown) => { throw Object.assign(e as Error, { path: shown(p) }) })
  const run = new Run(binding, o, list.length > 1)
  try {
    for (const p of list) await run.path(p)
    await run.groups()
  } catch (e) {
    // The walk rejects with the signal's reason: one error for an abort, wherever it came.
    if (o.signal?.aborted) throw abortError(o.signal)
    throw e
  } finally {
    run.end()
  }
  return run.result
}
