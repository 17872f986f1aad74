// cloneRange(): share (or copy) a byte range between two open regular files. Everything that
// can be refused is refused before the addon is called: special files, an O_APPEND
// destination, overlapping ranges in one file.
import * as fs from 'node:fs'
import { requireNative } from './binding.js'
import type { Binding } from './binding.js'
import { fromNative, fsError } from './errors.js'
import { misalignment, modes, rangeSteps, runSteps, runStepsAsync } from './fallback.js'
import type { RangePiece } from './fallback.js'
import { number, oneOf, resolveOptions, toTarget } from './args.js'
import type { OptionTable, Target } from './args.js'
import type { CloneError, CloneMode, CloneRange, CloneRangeOptions, CloneResult, FileLike } from './types.js'

const rangeTable: OptionTable<Required<CloneRange>> = { srcOffset: number(0, 0), dstOffset: number(0, 0), length: number(0, 0) }
const optionTable: OptionTable<Required<CloneRangeOptions>> = { mode: oneOf<CloneMode>('auto', modes) }

interface RangeJob {
  src: Target
  dst: Target
  range: Required<CloneRange>
  mode: CloneMode
}

function rangeJob(src: unknown, dst: unknown, range: unknown, options: unknown): RangeJob {
  if (range === undefined) return rangeJob(src, dst, {}, options)
  const r = resolveOptions('range', range, rangeTable)
  const { mode } = resolveOptions('options', options, optionTable)
  return { src: toTarget('src', src), dst: toTarget('dst', dst), range: r, mode }
}

interface Opened {
  srcFd: number
  dstFd: number
  srcStat: fs.Stats
  /** the destination did not exist and was created here: removed again on failure */
  created: boolean
}

// O_NONBLOCK: opening a FIFO for reading would wait for a writer; it is refused after fstat
// instead (issue 11 #13). On a regular file the flag changes nothing.
const { O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_NONBLOCK, O_APPEND } = fs.constants
const NONBLOCK = O_NONBLOCK ?? 0

function openDst(job: RangeJob, srcFd: number, srcStat: fs.Stats): Opened {
  if (job.dst.fd !== undefined) return { srcFd, srcStat, dstFd: job.dst.fd, created: false }
  const path = job.dst.native as string | Buffer
  try {
    return { srcFd, srcStat, dstFd: fs.openSync(path, O_RDWR | NONBLOCK), created: false }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
  return { srcFd, srcStat, dstFd: fs.openSync(path, O_RDWR | O_CREAT | O_EXCL, srcStat.mode & 0o777), created: true }
}

function open(job: RangeJob): Opened {
  const srcFd = job.src.fd ?? fs.openSync(job.src.native as string | Buffer, O_RDONLY | NONBLOCK)
  try {
    const srcStat = fs.fstatSync(srcFd)
    refuseSpecial(job, 'src', srcStat)
    return openDst(job, srcFd, srcStat)
  } catch (e) {
    if (job.src.fd === undefined) fs.closeSync(srcFd)
    throw e
  }
}

const kinds: Array<[string, (st: fs.Stats) => boolean]> = [
  ['a directory', (st) => st.isDirectory()], ['a FIFO', (st) => st.isFIFO()], ['a socket', (st) => st.isSocket()],
  ['a character device', (st) => st.isCharacterDevice()], ['a block device', (st) => st.isBlockDevice()],
]

/** Ranges live in regular files: a FIFO or device would block or never end (issue 11 #13). */
function refuseSpecial(job: RangeJob, which: 'src' | 'dst', st: fs.Stats): void {
  if (st.isFile()) return
  const kind = kinds.find(([, is]) => is(st))?.[0] ?? 'not a regular file'
  const code = st.isDirectory() ? 'EISDIR' : 'EINVAL'
  throw fsError(code, 'cloneRange', { path: job.src.label, dest: job.dst.label, detail: `${which} is ${kind}: ranges are cloned between regular files` })
}

/**
 * pwrite(2) on an O_APPEND descriptor appends wherever it is asked to write, and FICLONERANGE
 * answers EBADF, which would send 'auto' to that copy: refused first (issue 11 #9). Linux shows
 * a descriptor's flags in /proc/self/fdinfo (Node has no fcntl); elsewhere nothing is checked.
 */
function refuseAppend(job: RangeJob, dstFd: number): void {
  if (process.platform !== 'linux' || O_APPEND === undefined) return
  let info: string
  try {
    info = fs.readFileSync(`/proc/self/fdinfo/${dstFd}`, 'latin1')
  } catch {
    return
  }
  const flags = Number.parseInt(/^flags:\s*([0-7]+)$/m.exec(info)?.[1] ?? '0', 8)
  if ((flags & O_APPEND) !== 0) {
    throw fsError('EINVAL', 'cloneRange', { path: job.src.label, dest: job.dst.label, detail: 'dst was opened with O_APPEND, where every write goes to the end of the file' })
  }
}

/**
 * Within one file, overlapping ranges cannot be cloned (FICLONE(2const): EINVAL) and a copy
 * would read what it has just written: refused in every mode.
 */
function refuseOverlap(job: RangeJob, o: Opened, dstStat: fs.Stats): void {
  const a = o.srcStat
  if (o.created || a.dev !== dstStat.dev || a.ino !== dstStat.ino) return
  const { srcOffset, dstOffset, length } = job.range
  const srcEnd = length === 0 ? Math.max(a.size, srcOffset) : srcOffset + length
  const dstEnd = dstOffset + (srcEnd - srcOffset)
  if (srcOffset < dstEnd && dstOffset < srcEnd) {
    throw fsError('EINVAL', 'cloneRange', { path: job.src.label, dest: job.dst.label, detail: 'the source and destination ranges overlap in one file' })
  }
}

function close(job: RangeJob, o: Opened, failed: boolean): void {
  if (job.src.fd === undefined) fs.closeSync(o.srcFd)
  if (job.dst.fd === undefined) fs.closeSync(o.dstFd)
  if (failed && o.created) fs.rmSync(job.dst.native as string | Buffer, { force: true })
}

/** Opens what needs opening and refuses what cannot be done, before any call of the addon. */
function prepare(job: RangeJob): Opened {
  const o = open(job)
  try {
    const dstStat = fs.fstatSync(o.dstFd)
    refuseSpecial(job, 'dst', dstStat)
    refuseAppend(job, o.dstFd)
    refuseOverlap(job, o, dstStat)
    return o
  } catch (e) {
    close(job, o, true)
    throw e
  }
}

/** The block clone ranges align to, where it can be known for an open file (Linux), else undefined. */
function blockOf(binding: Binding, job: RangeJob, o: Opened): number | undefined {
  const where = process.platform === 'linux' ? `/proc/self/fd/${o.dstFd}` : job.dst.fd === undefined ? job.dst.native as string | Buffer : undefined
  if (where === undefined) return undefined
  try {
    return binding.fsInfo(where).blockSize || undefined
  } catch {
    return undefined
  }
}

/** The steps of the range policy (fallback.ts) for this job. */
function steps(binding: Binding, job: RangeJob, o: Opened) {
  const { srcOffset, dstOffset, length } = job.range
  const realLength = length !== 0 ? length : Math.max(0, o.srcStat.size - srcOffset)
  const endsAtEof = srcOffset + realLength >= o.srcStat.size
  const block = () => blockOf(binding, job, o)
  // FICLONERANGE's EINVAL says nothing of why: where the range is misaligned, say so.
  const explain = (e: unknown) => {
    const err = e as CloneError
    const b = err.code === 'EINVAL' ? block() : undefined
    const detail = b === undefined ? undefined : misalignment({ srcOffset, dstOffset, length: realLength }, b, endsAtEof)
    return detail === undefined ? e : fsError('EINVAL', err.syscall, { path: err.path, dest: err.dest, detail })
  }
  return rangeSteps(job.mode, { method: 0, srcOffset, dstOffset, length }, realLength, block, explain)
}

/**
 * Shares `range.length` bytes of `src` (from srcOffset) into `dst` (at dstOffset): FICLONERANGE
 * on Linux, duplicate extents on Windows; macOS has none ('always' throws ENOTSUP). A `dst` path
 * that does not exist is created, and removed again if the clone fails.
 */
export function cloneRangeSync(src: FileLike, dst: FileLike, range: CloneRange, options?: CloneRangeOptions): CloneResult {
  const job = rangeJob(src, dst, range, options)
  const binding = requireNative('cloneRange')
  const o = prepare(job)
  let failed = true
  try {
    const result = runSteps(steps(binding, job, o), (p: RangePiece) => {
      try {
        return binding.cloneRange(o.srcFd, o.dstFd, p.srcOffset, p.dstOffset, p.length, p.method, false)
      } catch (e) {
        throw fromNative(e, job.src.label, job.dst.label)
      }
    })
    failed = false
    return result
  } finally {
    close(job, o, failed)
  }
}

/** The asynchronous twin of {@link cloneRangeSync}. */
export async function cloneRange(src: FileLike, dst: FileLike, range: CloneRange, options?: CloneRangeOptions): Promise<CloneResult> {
  const job = rangeJob(src, dst, range, options)
  const binding = requireNative('cloneRange')
  // Opening and the checks are quick and local; the clone or copy itself runs on the thread pool.
  const o = prepare(job)
  let failed = true
  try {
    const result = await runStepsAsync(steps(binding, job, o), (p: RangePiece) =>
      binding.cloneRange(o.srcFd, o.dstFd, p.srcOffset, p.dstOffset, p.length, p.method, true).catch((e: unknown) => {
        throw fromNative(e, job.src.label, job.dst.label)
      }))
    failed = false
    return result
  } finally {
    close(job, o, failed)
  }
}
