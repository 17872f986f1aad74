import * as fs from 'node:fs'
import { requireNative } from './binding.js'
import type { Binding } from './binding.js'
import { fromNative, fsError, invalidArgType, outOfRange } from './errors.js'
import type { CloneError } from './errors.js'
import { cloneOrCopy, cloneOrCopySync } from './fallback.js'
import { oneOf, toTarget, withDefaults } from './args.js'
import type { FileLike, Target } from './args.js'
import { modes } from './clone.js'
import type { CloneMode, CloneResult } from './clone.js'

export interface CloneRange {
  /** @default 0 */
  srcOffset?: number
  /** @default 0 */
  dstOffset?: number
  /** bytes; 0 means to the end of the source @default 0 */
  length?: number
}

export interface CloneRangeOptions {
  /** as for clone(); 'auto' copies a range that cannot be cloned (misaligned, other fs) @default 'auto' */
  mode?: CloneMode
}

const rangeDefaults: Required<CloneRange> = Object.freeze({ srcOffset: 0, dstOffset: 0, length: 0 })
const optionDefaults: Required<CloneRangeOptions> = Object.freeze({ mode: 'auto' })

interface RangeJob {
  src: Target
  dst: Target
  range: Required<CloneRange>
  mode: CloneMode
}

function rangeJob(src: unknown, dst: unknown, range: unknown, options: unknown): RangeJob {
  if (typeof range !== 'object' || range === null) throw invalidArgType('range', 'of type object', range)
  const r = withDefaults('range', range, rangeDefaults)
  for (const [key, value] of Object.entries(r)) {
    if (!Number.isSafeInteger(value) || value < 0) throw outOfRange(`range.${key}`, 'an integer >= 0', value)
  }
  const o = withDefaults('options', options, optionDefaults)
  return { src: toTarget('src', src), dst: toTarget('dst', dst), range: r, mode: oneOf('options.mode', o.mode, modes) }
}

interface Opened {
  srcFd: number
  dstFd: number
  /** the destination did not exist and was created here: removed again on failure */
  created: boolean
}

function openDst(job: RangeJob, srcFd: number): Opened {
  if (job.dst.fd !== undefined) return { srcFd, dstFd: job.dst.fd, created: false }
  try {
    return { srcFd, dstFd: fs.openSync(job.dst.native as string, 'r+'), created: false }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
  const mode = fs.fstatSync(srcFd).mode & 0o777
  return { srcFd, dstFd: fs.openSync(job.dst.native as string, 'wx+', mode), created: true }
}

function openSync(job: RangeJob): Opened {
  const srcFd = job.src.fd ?? fs.openSync(job.src.native as string, 'r')
  try {
    return openDst(job, srcFd)
  } catch (e) {
    if (job.src.fd === undefined) fs.closeSync(srcFd)
    throw e
  }
}

/**
 * Within one file, overlapping ranges cannot be cloned (FICLONE(2const): EINVAL) and a copy
 * would read what it has just written: refused in every mode.
 */
function refuseOverlap(job: RangeJob, o: Opened): void {
  if (o.created) return
  const a = fs.fstatSync(o.srcFd)
  const b = o.dstFd === o.srcFd ? a : fs.fstatSync(o.dstFd)
  if (a.dev !== b.dev || a.ino !== b.ino) return
  const { srcOffset, dstOffset, length } = job.range
  const srcEnd = length === 0 ? Math.max(a.size, srcOffset) : srcOffset + length
  const dstEnd = dstOffset + (srcEnd - srcOffset)
  if (srcOffset < dstEnd && dstOffset < srcEnd) {
    throw fsError('EINVAL', 22, 'cloneRange', job.src.label, job.dst.label, 'the source and destination ranges overlap in one file')
  }
}

function closeSync(job: RangeJob, o: Opened, failed: boolean): void {
  if (job.src.fd === undefined) fs.closeSync(o.srcFd)
  if (job.dst.fd === undefined) fs.closeSync(o.dstFd)
  if (failed && o.created) fs.rmSync(job.dst.native as string, { force: true })
}

/**
 * FICLONERANGE's EINVAL says nothing about why. Where the range is not aligned to the filesystem
 * block, say so and name the nearest aligned offsets.
 */
function explainMisaligned(binding: Binding, err: CloneError, job: RangeJob, o: Opened): CloneError {
  if (err.code !== 'EINVAL' || process.platform !== 'linux') return err
  let block: number
  try {
    block = binding.fsInfo(`/proc/self/fd/${o.dstFd}`).blockSize
  } catch {
    return err
  }
  const { srcOffset, dstOffset, length } = job.range
  const bad = ([['srcOffset', srcOffset], ['dstOffset', dstOffset], ['length', length]] as const)
    .filter(([, v]) => v % block !== 0)
  if (bad.length === 0) return err
  const near = bad.map(([k, v]) => `${k} ${v} -> ${Math.floor(v / block) * block} or ${Math.ceil(v / block) * block}`)
  const detail = `range not aligned to the filesystem block size ${block} (${near.join('; ')}; ` +
    'a length may be unaligned only when the range ends at the end of the source)'
  return fsError('EINVAL', 22, err.syscall, err.path, err.dest, detail)
}

function explain(binding: Binding, job: RangeJob, o: Opened, e: unknown): unknown {
  return job.mode === 'always' ? explainMisaligned(binding, e as CloneError, job, o) : e
}

/**
 * Shares `range.length` bytes of `src` (from srcOffset) into `dst` (at dstOffset): FICLONERANGE
 * on Linux, duplicate extents on Windows; macOS has none ('always' throws ENOTSUP). A `dst` path
 * that does not exist is created, and removed again if the clone fails.
 */
export function cloneRangeSync(src: FileLike, dst: FileLike, range: CloneRange, options?: CloneRangeOptions): CloneResult {
  const job = rangeJob(src, dst, range, options)
  const binding = requireNative('cloneRange')
  const o = openSync(job)
  const { srcOffset, dstOffset, length } = job.range
  let failed = true
  try {
    refuseOverlap(job, o)
    const result = cloneOrCopySync(job.mode, (method) => {
      try {
        return binding.cloneRange(o.srcFd, o.dstFd, srcOffset, dstOffset, length, method, false)
      } catch (e) {
        throw fromNative(e, job.src.label, job.dst.label)
      }
    }, (e) => explain(binding, job, o, e))
    failed = false
    return result
  } finally {
    closeSync(job, o, failed)
  }
}

/** The asynchronous twin of {@link cloneRangeSync}. */
export async function cloneRange(src: FileLike, dst: FileLike, range: CloneRange, options?: CloneRangeOptions): Promise<CloneResult> {
  const job = rangeJob(src, dst, range, options)
  const binding = requireNative('cloneRange')
  // Opening is quick and local; the clone or copy itself runs on the thread pool.
  const o = openSync(job)
  const { srcOffset, dstOffset, length } = job.range
  let failed = true
  try {
    refuseOverlap(job, o)
    const result = await cloneOrCopy(job.mode, (method) =>
      binding.cloneRange(o.srcFd, o.dstFd, srcOffset, dstOffset, length, method, true).catch((e: unknown) => {
        throw fromNative(e, job.src.label, job.dst.label)
      }), (e) => explain(binding, job, o, e))
    failed = false
    return result
  } finally {
    closeSync(job, o, failed)
  }
}
