// dedupe after the walk: files grouped by (device, size) → within a group, files with the same
// extent map already share every block (no data read: alreadyShared) → one file of each extent
// class sampled (start, middle, end; sampleFiles in the addon) → classes with equal samples are
// handed to the OS's compare-and-share against a keeper (Linux: FIDEDUPERANGE, whose compare is
// the final check; macOS: verify-then-swap in mac.c). A member found different that did not
// change goes round again with the others like it. `saved` is the union of the group's physical
// data ranges before, less the union after (FIEMAP, read by dedupeFiles through the descriptors
// it shares with, decoded by extents.ts), as usage() counts them.
import { constants } from 'node:os'
import { RAW, Space, type DedupeBatch, type SampleBatch } from './binding.js'
import { statAt } from './entries.js'
import { EXTENT_STRIDE, NOT_DATA, Ranges, extentsOf } from './extents.js'
import type { DedupeCache } from './dedupe-cache.js'
import type { FileId, FileTable } from './dedupe-files.js'
import { CANNOT, EBADE, type Report } from './dedupe-report.js'
import type { Found } from './dedupe-scan.js'

/** Bytes sampled at each of a file's start, middle and end. */
const SAMPLE = 4096
/** Bytes read around each sample: one request of 128 KiB costs a cold disk about what one of
 * 4 KiB does, and leaves the compare that reads the whole file later a few large gaps to fill
 * rather than splitting its reads around three 4 KiB pages (58% more read requests measured on
 * the bench corpus). A file of up to 8 × this is read whole, in one request (the addon's
 * cf_read_samples): 3.2k requests instead of 8.9k for the same bytes on the bench corpus. */
const SAMPLE_AHEAD = 128 * 1024
/** Files sampled together (a window's classes to sample, at least): a batch the disk serves
 * with enough queued, and the next one asked for while this one's buckets are shared. */
const WINDOW = 512

/** A window's buckets (classes whose samples agree), and the group the next window starts at. */
interface Window {
  buckets: Array<FileId[][]>
  end: number
}

/** Shares the blocks of files[0] with every other file, comparing first (the OS's way). */
export type Share = (files: FileId[], size: number) => Promise<DedupeBatch>

export class Apply {
  private readonly t: FileTable
  private readonly report: Report

  constructor(private readonly found: Found, private readonly share: Share, private readonly cache?: DedupeCache) {
    this.t = found.table
    this.report = found.report
  }

  /**
   * Every size group, a window at a time: the groups from where the last window ended until
   * their classes to sample number WINDOW (groups that share every block already cost nothing
   * and do not count). A window's samples are read in one batch (the addon keeps the disk
   * asked for files ahead of the one it reads), the next window's while this one's buckets are
   * compared and shared, `concurrency` at a time.
   */
  async run(): Promise<void> {
    const { report, t } = this
    const groups = t.sizeGroups((f) => !report.cannot.has(t.dev(f)))
    report.totals(groups.reduce((n, g) => n + g.length, 0), groups.reduce((n, g) => n + g.length * t.size(g[0] as FileId), 0))
    const window = (from: number): Promise<Window> => {
      const p = this.sampleWindow(groups, from)
      p.catch(() => undefined) // awaited below; an abort may leave it behind
      return p
    }
    let next = window(0)
    try {
      for (;;) {
        const { buckets, end } = await next
        report.checkAbort()
        const more = end < groups.length
        if (more) next = window(end)
        await this.dedupeAll(buckets)
        if (!more) break
      }
    } finally {
      // No job may outlive the run: the directories it names files by are closed after it.
      await next.catch(() => undefined)
    }
    report.checkAbort()
    report.tick('dedupe', 0, 0, true)
  }

  private async dedupeAll(buckets: Array<FileId[][]>): Promise<void> {
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < buckets.length) {
        this.report.checkAbort()
        await this.bucket(buckets[next++] as FileId[][])
      }
    }
    // Settled, not Promise.all: when one fails (an abort) the others' jobs finish first.
    const ends = await Promise.allSettled(Array.from({ length: Math.min(this.report.o.concurrency, buckets.length) }, worker))
    for (const e of ends) if (e.status === 'rejected') throw e.reason
  }

  /** Files of one device and size, a window of groups from groups[from]: by extent map (a group
   * that shares every block already is counted, nothing read), then by the samples of one file
   * of each class. Its buckets, and where the next window starts. */
  private async sampleWindow(groups: FileId[][], from: number): Promise<Window> {
    const todo: FileId[][][] = []
    let at = from
    for (let reps = 0; at < groups.length && reps < WINDOW; at++) {
      const files = groups[at] as FileId[]
      if (this.report.cannot.has(this.t.dev(files[0] as FileId))) continue
      if (!this.found.extents) await this.cloneIds(files)
      const classes = this.byExtents(files)
      if (classes.length === 1) this.shared(classes[0] as FileId[])
      else if (this.cache?.knownApart(this.t, classes) === true) {
        // A run before proved them different, and none has changed since: nothing to read.
        for (const c of classes) this.shared(c, false)
      } else {
        todo.push(classes)
        reps += classes.length
      }
    }
    // Read in the order of their data on the device: the disk is asked for ascending addresses.
    const reps = todo.flatMap((classes) => classes.map((c) => c[0] as FileId)).sort((f, g) => this.t.place(f) - this.t.place(g))
    if (reps.length === 0) return { buckets: [], end: at }
    this.report.tick('hash', 0, 0)
    const sample = await this.found.use(reps, (dirs, names) => this.found.binding.sampleFiles(dirs, names, RAW, SAMPLE, SAMPLE_AHEAD, true))
    const index = new Map(reps.map((f, k) => [f, k]))
    const buckets = todo.flatMap((classes) => {
      const byKey = new Map<string, FileId[][]>()
      for (const c of classes) {
        const key = this.sampled(c, sample, index.get(c[0] as FileId) as number)
        if (key === undefined) continue
        const b = byKey.get(key)
        if (b === undefined) byKey.set(key, [c])
        else b.push(c)
      }
      return [...byKey.values()]
    })
    return { buckets, end: at }
  }

  /** The sample of class c (its first file, sample k): its key, or undefined where it failed
   * or changed since the walk (reported). */
  private sampled(c: FileId[], sample: SampleBatch, k: number): string | undefined {
    const { found, report, t } = this
    const errno = sample.errnos[k] as number
    const rep = c[0] as FileId
    if (errno !== 0) {
      if (CANNOT.has(errno)) report.refuse(t.dev(rep), found.pathOf(rep), errno)
      else report.failed(found.pathOf(rep), errno, 'read')
      return undefined
    }
    if (!t.unchanged(rep, statAt(sample.stats, k))) {
      for (const f of c) report.changed(found.pathOf(f))
      return undefined
    }
    return `${sample.hashes[2 * k]}:${sample.hashes[2 * k + 1]}`
  }

  /** macOS has no extent map: APFS's clone id is the same for a file and its pure clones, which
   * share every block (a clone written to gets a new one), so it is the fingerprint there. */
  private async cloneIds(files: FileId[]): Promise<void> {
    const space = await this.found.use(files, (dirs, names) => this.found.binding.fileSpace(dirs, names, RAW, true))
    files.forEach((f, k) => {
      const id = space.cloneId[k] as bigint
      const known = space.errnos[k] === 0 && ((space.known[k] as number) & Space.CloneId) !== 0 && id !== 0n
      this.t.setKey(f, known ? Number(id % 2n ** 53n) : NaN)
    })
  }

  /** Members of one extent class: they share every block already (one content: the cache's
   * class, unless the cache already has them). */
  private shared(c: FileId[], prove = true): void {
    if (prove) this.cache?.proven(c)
    if (c.length < 2) return
    this.report.result.groups++
    this.report.group(this.found.pathOf(c[0] as FileId), this.t.size(c[0] as FileId), [], c.slice(1).map((f) => this.found.pathOf(f)))
    this.countShared(c)
  }

  /** A class's members after its first: already sharing every block with it. */
  private countShared(c: FileId[]): void {
    const r = this.report.result.alreadyShared
    for (const f of c.slice(1)) {
      r.files++
      r.bytes += this.t.data(f)
    }
  }

  /** Classes whose samples agree: shared with a keeper; those the OS finds different go round
   * again among themselves. */
  private async bucket(classes: FileId[][]): Promise<void> {
    while (classes.length > 1) {
      // The keeper: of the class most of the bucket is in, else the oldest file.
      classes.sort((a, b) => b.length - a.length || (this.t.older(this.oldest(a), this.oldest(b)) ? -1 : 1))
      const keepers = classes[0] as FileId[]
      const keeper = this.oldest(keepers)
      const dests = classes.slice(1).flat()
      if (this.report.o.dryRun) return this.dryRound(keepers, keeper, dests)
      this.report.checkAbort()
      const rest = await this.round(keepers, keeper, dests)
      if (rest === undefined) {
        classes = classes.slice(1)
        continue
      }
      classes = this.byExtents(rest)
    }
    if (classes.length === 1) this.shared(classes[0] as FileId[])
  }

  /** What a real round would do, done to nothing: the keeper's blocks are what all would hold. */
  private async dryRound(keepers: FileId[], keeper: FileId, dests: FileId[]): Promise<void> {
    const { report, t, found } = this
    const size = t.size(keeper)
    const members = [...keepers, ...dests]
    report.result.groups++
    this.countShared([keeper, ...keepers.filter((f) => f !== keeper)])
    report.group(found.pathOf(keeper), size, dests.map((f) => found.pathOf(f)), keepers.filter((f) => f !== keeper).map((f) => found.pathOf(f)))
    report.result.deduped.files += dests.length
    report.result.deduped.bytes += dests.length * size
    if (found.extents) {
      const maps = await this.maps(members)
      report.result.saved += union(maps) - union(maps.slice(0, keepers.length))
    } else report.result.saved += dests.length * size
    report.tick('dedupe', members.length, members.length * size)
  }

  /** One compare-and-share of `dests` onto `keeper`: the files found different (and unchanged)
   * to go round again, or undefined where the keeper could not be opened. */
  private async round(keepers: FileId[], keeper: FileId, dests: FileId[]): Promise<FileId[] | undefined> {
    const { report, t, found } = this
    const size = t.size(keeper)
    const all = [keeper, ...dests]
    const out = await this.share(all, size).catch((e: unknown) => e as { errno?: number; syscall?: string })
    report.tick('dedupe', all.length, all.length * size, true)
    if (!('status' in out)) {
      report.failed(found.pathOf(keeper), out.errno ?? EIO, out.syscall ?? 'open')
      return undefined
    }
    const kept = t.unchanged(keeper, statAt(out.after, 0))
    if (!kept) report.changed(found.pathOf(keeper))
    const { now, rest } = this.outcome(dests, out, size)
    if (kept) this.cache?.proven([...keepers, ...now])
    if (report.cannot.has(t.dev(keeper))) return []
    if (now.length > 0 || keepers.length > 1) {
      report.result.groups++
      this.countShared([keeper, ...keepers.filter((f) => f !== keeper)])
      report.group(found.pathOf(keeper), size, now.map((f) => found.pathOf(f)), keepers.filter((f) => f !== keeper).map((f) => found.pathOf(f)))
    }
    if (now.length > 0) report.result.saved += savedBy(out) ?? now.length * size
    return rest
  }

  /** Each destination's answer: shared (now), different and unchanged (rest), or an issue. */
  private outcome(dests: FileId[], out: DedupeBatch, size: number): { now: FileId[]; rest: FileId[] } {
    const { report, t, found } = this
    const now: FileId[] = []
    const rest: FileId[] = []
    dests.forEach((f, k) => {
      const i = k + 1
      const status = out.status[i] as number
      if (status === 0 && out.deduped[i] === size) {
        now.push(f)
        report.result.deduped.files++
        report.result.deduped.bytes += size
        return
      }
      const errno = status === 0 ? EIO : -status
      if (CANNOT.has(errno)) return report.refuse(t.dev(f), found.pathOf(f), errno)
      if (errno !== EBADE) return report.failed(found.pathOf(f), errno, found.extents ? 'ioctl_fideduperange' : 'dedupe')
      // Different: from a file that moved since the walk (skipped), or truly (round again).
      if (!t.unchanged(f, statAt(out.after, i)) || !t.unchanged(f, statAt(out.before, i))) report.changed(found.pathOf(f))
      else rest.push(f)
    })
    return { now, rest }
  }

  /** Each file's data ranges (FIEMAP now; undefined where it cannot be mapped). */
  private async maps(files: FileId[]): Promise<Array<Float64Array | undefined>> {
    const { counts, errnos, extents } = await this.found.use(files, (dirs, names) => this.found.binding.extentsMany(dirs, names, RAW, true))
    let first = 0
    return files.map((_, k) => {
      const count = counts[k] as number
      first += count
      return errnos[k] === 0 ? extentsOf(extents, first - count, count) : undefined
    })
  }

  private oldest(files: FileId[]): FileId {
    return files.reduce((a, b) => (this.t.older(b, a) ? b : a))
  }

  /** Files by extent map: a class shares every block. A file whose data is not mapped is a
   * class of its own. */
  private byExtents(files: FileId[]): FileId[][] {
    const classes = new Map<number, FileId[]>()
    const alone: FileId[][] = []
    for (const f of files) {
      const key = this.t.key(f)
      if (Number.isNaN(key)) {
        alone.push([f])
        continue
      }
      const c = classes.get(key)
      if (c === undefined) classes.set(key, [f])
      else c.push(f)
    }
    return [...classes.values(), ...alone]
  }
}

const EIO = constants.errno.EIO

/** What a round freed: the union of its files' physical data before, less after, as the addon
 * mapped them through the descriptors it shared with (undefined where it did not map them: the
 * macOS swap). The keeper's class-mates hold the keeper's blocks and change in neither. */
function savedBy(out: DedupeBatch): number | undefined {
  const { counts, extents } = out
  if (counts === undefined || extents === undefined) return undefined
  const n = counts.length / 2
  const maps: Float64Array[] = []
  let first = 0
  for (const count of counts) {
    maps.push(extentsOf(extents, first, count))
    first += count
  }
  return union(maps.slice(0, n)) - union(maps.slice(n))
}

/** Bytes covered by the data extents of the maps, overlaps once. */
function union(maps: Array<Float64Array | undefined>): number {
  const r = new Ranges(16)
  for (const m of maps) {
    if (m === undefined) continue
    for (let i = 0; i < m.length; i += EXTENT_STRIDE) {
      const length = m[i + 2] as number
      if (((m[i + 3] as number) & NOT_DATA) === 0 && length > 0) r.add(m[i + 1] as number, length)
    }
  }
  return r.union()
}
