// The two drivers of a cloneTree run (tree-run.ts: what entries become; walk.ts: the walk):
// `drive` keeps lanes of jobs on the thread pool for cloneTree; `driveSync` runs the same lanes
// on threads of the addon's own for cloneTreeSync, taking each job's results as it ends.
import { RAW, lane, type Binding, type OpResults, type Started } from './binding.js'
import { abortError, invalidArgValue } from './errors.js'
import { BARRIER, BATCH, type TreeRun } from './tree-run.js'
import type { Batch } from './op-queue.js'

/** Directories listed per scanDirs() call. */
const SCAN_GROUP = 16

const runOps = (binding: Binding, batch: Batch, flags: number, async: boolean | 'thread', cancel: Int32Array) =>
  binding.runOps(batch.kinds, batch.srcDirs, batch.srcNames, batch.dstDirs, batch.dstNames, batch.temps, batch.flags | RAW | flags, async as true, cancel)

/** The asynchronous driver of cloneTree: `count` lanes of jobs on the thread pool. */
export async function drive(run: TreeRun, count: number, signal: AbortSignal | undefined): Promise<void> {
  const lanes = new Lanes(run, count)
  try {
    await lanes.walk(signal)
    await lanes.drain(0)
    for (const step of run.finish()) await (step === BARRIER ? lanes.drain(0) : lanes.step(step))
    await lanes.drain(0)
  } catch (e) {
    await lanes.drain(0)
    throw e
  }
  if (run.error !== undefined) throw run.error
}

/**
 * One lane per stream of files: jobs of one lane run one after another (the thread that has
 * the lane takes the next queued job itself), lanes side by side. Each lane has one job queued
 * beyond the one running, so it never waits for this thread.
 */
class Lanes {
  private static readonly perLane = 2
  private readonly queued: number[]
  private readonly inflight = new Set<Promise<void>>()
  private scans = 0
  private next = 0

  constructor(private readonly run: TreeRun, private readonly lanes: number) {
    run.useStreams(lanes)
    this.queued = new Array<number>(lanes).fill(0)
  }

  /** The walk and the files together: directories are made and listed on the pool too, a group
   * at a time, and their files go out in batches as soon as they are known. */
  async walk(signal: AbortSignal | undefined): Promise<void> {
    const { run } = this
    const backlog = BATCH * this.lanes * 4
    while (!run.stopped) {
      if (signal?.aborted) throw abortError(signal)
      if (run.walker.pending.length > 0 && this.scans === 0 && run.waiting < backlog) {
        this.scan(this.turn())
        continue
      }
      if (this.launchStreams()) continue
      if (this.inflight.size === 0) return
      await Promise.race(this.inflight)
    }
  }

  /** Each lane's next batch, where the lane has room; whether any went. */
  private launchStreams(): boolean {
    let launched = false
    for (let l = 0; l < this.lanes; l++) {
      const n = this.run.streams[l]!.length
      if (n === 0 || this.queued[l]! >= Lanes.perLane) continue
      // A part batch only where nothing more is coming soon, or the lane would stand idle.
      if (n >= BATCH || this.scans === 0 || this.queued[l] === 0) {
        this.launch(this.run.streams[l]!.take(BATCH), l)
        launched = true
      }
    }
    return launched
  }

  /** One step of the end (links, metadata), in the lanes in turn. */
  async step(batch: Batch): Promise<void> {
    this.launch(batch, this.turn())
    await this.drain(this.lanes * Lanes.perLane - 1)
  }

  async drain(below: number): Promise<void> {
    while (this.inflight.size > below) await Promise.race(this.inflight)
  }

  private turn(): number {
    const l = this.next
    this.next = (this.next + 1) % this.lanes
    return l
  }

  // A job's promise never rejects: a failure, or a throw from the callbacks run in absorbing
  // its results (filter, onProgress, an abort), becomes the run's error and stops the walk.
  private track(job: Promise<void>, l: number): void {
    this.queued[l]!++
    const done: Promise<void> = job.catch((e: unknown) => this.run.stop(e)).finally(() => {
      this.queued[l]!--
      this.inflight.delete(done)
    })
    this.inflight.add(done)
  }

  private launch(batch: Batch, l: number): void {
    const run = this.run
    this.track(runOps(run.binding, batch, lane(l + 1), true, run.cancel).then((out) => {
      const retry = run.absorb(batch, out)
      if (retry !== undefined) this.launch(retry, l)
    }), l)
  }

  private scan(l: number): void {
    const { run } = this
    const req = run.walker.nextScan(SCAN_GROUP)
    if (req === undefined) return
    this.scans++
    this.track(run.binding.scanDirs(req.at, req.names, req.how | lane(l + 1), true, req.make, run.cancel)
      .finally(() => this.scans--)
      .then((out) => run.absorbScan(run.walker.absorb(req, out))), l)
  }
}

/**
 * The sync driver: the async driver's lanes, each job on a thread of its own (runOps and
 * scanDirs with async 'thread') while this thread takes each one's results as it ends, so that a caller that
 * blocks anyway still has the addon's threads. At most one job per lane at a time: a lane's
 * jobs run in order, as in the async driver (a directory's metadata after its entries). One
 * lane runs its jobs here, on this thread.
 */
export function driveSync(run: TreeRun, count: number): void {
  const lanes = new SyncLanes(run, count)
  try {
    lanes.walk()
    lanes.drain()
    for (const step of run.finish()) {
      if (step === BARRIER) lanes.drain()
      else lanes.launch(step, lanes.free())
    }
    lanes.drain()
  } catch (e) {
    lanes.drain()
    throw e
  }
  if (run.error !== undefined) throw run.error
}

interface SyncJob {
  lane: number
  scan: boolean
  /** the call on its thread; undefined where it ran here already */
  started?: Started<unknown>
  /** waits for the job, takes its results; a retry batch where some must be made again */
  take: () => Batch | undefined
}

/** {@link Lanes} for a synchronous caller: each job's results taken as soon as it ends. */
class SyncLanes {
  private readonly busy: boolean[]
  private readonly started: SyncJob[] = []
  private scanning = false
  private next = 0

  constructor(private readonly run: TreeRun, private readonly lanes: number) {
    run.useStreams(lanes)
    this.busy = new Array<boolean>(lanes).fill(false)
  }

  walk(): void {
    const { run } = this
    const backlog = BATCH * this.lanes * 4
    while (!run.stopped) {
      const l = this.freeLane()
      if (l >= 0 && run.walker.pending.length > 0 && !this.scanning && run.waiting < backlog) {
        this.scan(l)
        continue
      }
      if (l >= 0 && this.launchStreams()) continue
      if (this.started.length === 0) return
      this.finishNext()
    }
  }

  /** A lane with no job, after waiting for a job to end where every lane has one. */
  free(): number {
    let l = this.freeLane()
    while (l < 0) {
      this.finishNext()
      l = this.freeLane()
    }
    return l
  }

  drain(): void {
    while (this.started.length > 0) this.finishNext()
  }

  /** A free lane, taken in turn; -1 where all have a job. */
  private freeLane(): number {
    for (let k = 0; k < this.lanes; k++) {
      const l = (this.next + k) % this.lanes
      if (!this.busy[l]) {
        this.next = (l + 1) % this.lanes
        return l
      }
    }
    return -1
  }

  /** Each free lane's next batch; whether any went. */
  private launchStreams(): boolean {
    let launched = false
    for (let l = 0; l < this.lanes; l++) {
      if (this.busy[l] || this.run.streams[l]!.length === 0) continue
      this.launch(this.run.streams[l]!.take(BATCH), l)
      launched = true
    }
    return launched
  }

  launch(batch: Batch, l: number): void {
    const run = this.run
    this.start(l, false, (how) => runOps(run.binding, batch, 0, how, run.cancel) as unknown as OpResults | Started<OpResults>, (out) => run.absorb(batch, out))
  }

  private scan(l: number): void {
    const { run } = this
    const req = run.walker.nextScan(SCAN_GROUP)
    if (req === undefined) return
    this.scanning = true
    this.start(l, true, (how) => run.binding.scanDirs(req.at, req.names, req.how, how as 'thread', req.make, run.cancel), (out) => {
      if (run.absorbScan(run.walker.absorb(req, out)) instanceof Promise) {
        throw invalidArgValue('options.filter', 'a function returning a Promise', 'must return a boolean in cloneTreeSync (use cloneTree for an async filter)')
      }
      return undefined
    })
  }

  /**
   * A job in lane `l`: on a thread of its own where there are several lanes; with one, here
   * and now. Either way its results are taken by finishNext().
   */
  private start<T>(l: number, scan: boolean, call: (how: false | 'thread') => T | Started<T>, absorb: (out: T) => Batch | undefined): void {
    this.busy[l] = true
    const binding = this.run.binding
    if (this.lanes > 1) {
      const started = call('thread') as Started<T>
      this.started.push({ lane: l, scan, started, take: () => absorb(binding.finish(started)) })
      return
    }
    let out: T
    try {
      out = call(false) as T
    } catch (e) {
      this.started.push({ lane: l, scan, take: () => { throw e } })
      return
    }
    this.started.push({ lane: l, scan, take: () => absorb(out) })
  }

  /** Waits for a job to end (the first to) and takes its results; a failure (or a throw from
   * the callbacks its results run: filter, onProgress) becomes the run's error. */
  private finishNext(): void {
    const running = this.started.filter((j) => j.started !== undefined)
    const next = running.length === 0 ? this.started[0] : running[this.run.binding.waitAny(running.map((j) => j.started as Started<unknown>))]
    const job = next as SyncJob
    this.started.splice(this.started.indexOf(job), 1)
    let retry: Batch | undefined
    try {
      retry = job.take()
    } catch (e) {
      this.run.stop(e)
    }
    if (job.scan) this.scanning = false
    this.busy[job.lane] = false
    if (retry !== undefined && !this.run.stopped) this.launch(retry, job.lane)
  }
}
