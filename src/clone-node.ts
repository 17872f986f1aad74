// clone() without the addon: Node's fs.copyFile with COPYFILE_FICLONE_FORCE clones on Linux
// (and returns ENOSYS on macOS and Windows). What is lost is said in README: xattrs and ACLs,
// and times are kept to Node's utimes precision (microseconds), not the nanosecond.
// Paths are used as the caller gave them (a Buffer is the exact bytes of a name); labels only
// in messages.
import * as fs from 'node:fs'
import { fsError } from './errors.js'
import { METHOD_CLONE } from './binding.js'
import type { NativePath } from './binding.js'
import { cloneOrCopy, cloneOrCopySync } from './fallback.js'
import type { CloneOptions, CloneResult } from './types.js'
import { tempSibling, tempSiblingRaw } from './temp.js'
import { bytes, toRaw } from './raw.js'
import type { Target } from './args.js'

const { COPYFILE_EXCL, COPYFILE_FICLONE_FORCE, O_RDONLY, O_NONBLOCK } = fs.constants

/** One clone() call, its arguments checked. */
export interface CloneJob {
  src: Target
  dst: { native: NativePath; label: string }
  options: Required<CloneOptions>
  /** Flag bits for the addon, without Flag.Direct (chosen per attempt) */
  flags: number
}

/**
 * Temporary names being built right now (with or without the addon): a process that is
 * told to stop (the CLI on SIGINT) removes them before it dies. A copy built nameless
 * (O_TMPFILE) needs no such care.
 */
export const tempsInFlight = new Set<NativePath>()

/** A name beside `dst`, in the same form (a Buffer stays the exact bytes). */
export function tempFor(dst: NativePath): NativePath {
  return typeof dst === 'string' ? tempSibling(dst) : bytes(tempSiblingRaw(toRaw(dst)))
}

/** Errors of Node's own calls on the temporary carry its name; the caller knows only dst. */
function renamed(e: unknown, tmp: NativePath, job: CloneJob): unknown {
  const err = e as NodeJS.ErrnoException & { dest?: unknown }
  const t = tmp.toString()
  if (err instanceof Error && typeof err.message === 'string') {
    err.message = err.message.replaceAll(t, job.dst.label)
    if (String(err.path) === t) err.path = job.dst.label
    if (String(err.dest) === t) err.dest = job.dst.label
  }
  return e
}

/**
 * libuv names Linux's errno 95 ENOTSUP ("operation not supported on socket"); the addon and
 * FICLONE(2const) say EOPNOTSUPP. One name for one failure, with or without the addon.
 */
function sameCode(e: unknown): unknown {
  const err = e as NodeJS.ErrnoException
  if (process.platform === 'linux' && err?.code === 'ENOTSUP') {
    err.code = 'EOPNOTSUPP'
    err.message = err.message.replace(/^ENOTSUP: operation not supported on socket/, 'EOPNOTSUPP: operation not supported')
  }
  return e
}

/**
 * Only a regular file is cloned: opening a FIFO would wait for a writer forever, a device may
 * never end (issue 11 #13). Checked on what stat says before anything is opened.
 */
function refuseSpecial(st: fs.BigIntStats | fs.Stats, job: CloneJob): void {
  if (st.isFile()) return
  if (st.isDirectory()) throw fsError('EISDIR', 'copyfile', { path: job.src.label, dest: job.dst.label })
  throw fsError('EINVAL', 'copyfile', { path: job.src.label, dest: job.dst.label, detail: 'not a regular file (a FIFO, socket or device)' })
}

// read/write, not fs.copyFile: libuv's copyfile uses copy_file_range, which reflinks on XFS/btrfs.
// O_NONBLOCK and fstat: a source swapped for a FIFO since it was checked is refused, not waited on.
// Read to EOF, whatever stat said: /proc and /sys files say 0 and have content (issue 11 #8).
function copyBytesSync(src: NativePath, dst: NativePath, job: CloneJob): number {
  let total = 0
  const buf = Buffer.allocUnsafe(1 << 20)
  const from = fs.openSync(src, O_RDONLY | (O_NONBLOCK ?? 0))
  try {
    refuseSpecial(fs.fstatSync(from), job)
    const to = fs.openSync(dst, 'wx')
    try {
      for (let n; (n = fs.readSync(from, buf, 0, buf.length, null)) > 0; total += n) {
        for (let w = 0; w < n;) w += fs.writeSync(to, buf, w, n - w)
      }
    } finally {
      fs.closeSync(to)
    }
  } finally {
    fs.closeSync(from)
  }
  return total
}

function metaSync(tmp: NativePath, st: fs.BigIntStats, job: CloneJob): void {
  if (job.options.preserveOwner && process.getuid?.() === 0) fs.chownSync(tmp, Number(st.uid), Number(st.gid))
  fs.chmodSync(tmp, Number(st.mode) & 0o1777)
  fs.utimesSync(tmp, Number(st.atimeNs) / 1e9, Number(st.mtimeNs) / 1e9)
}

function publishSync(tmp: NativePath, dst: NativePath, overwrite: boolean): void {
  if (overwrite) return fs.renameSync(tmp, dst)
  fs.linkSync(tmp, dst) // link(2) refuses to clobber: EEXIST
  fs.unlinkSync(tmp)
}

function dataSync(job: CloneJob, src: NativePath, tmp: NativePath, size: number): CloneResult {
  return cloneOrCopySync(job.options.mode, (method) => {
    if (method === METHOD_CLONE) {
      try {
        fs.copyFileSync(src, tmp, COPYFILE_EXCL | COPYFILE_FICLONE_FORCE)
      } catch (e) {
        throw sameCode(e)
      }
    } else {
      fs.rmSync(tmp, { force: true }) // what a failed clone may have left
      return copyBytesSync(src, tmp, job)
    }
    return size
  })
}

function symlinkSync(src: NativePath, job: CloneJob): CloneResult {
  const dst = job.dst.native
  const tmp = tempFor(dst)
  const st = fs.lstatSync(src, { bigint: true })
  fs.symlinkSync(fs.readlinkSync(src, { encoding: 'buffer' }), tmp)
  try {
    fs.lutimesSync(tmp, Number(st.atimeNs) / 1e9, Number(st.mtimeNs) / 1e9)
    publishSync(tmp, dst, job.options.overwrite)
  } catch (e) {
    fs.rmSync(tmp, { force: true })
    throw renamed(e, tmp, job)
  }
  return { method: 'clone', size: 0 }
}

/** Builds the file under a temporary name, then links (or, overwriting, renames) it into place. */
export function cloneWithNodeSync(job: CloneJob): CloneResult {
  const src = job.src.native as NativePath
  if (!job.options.followSymlinks && fs.lstatSync(src).isSymbolicLink()) return symlinkSync(src, job)
  const st = fs.statSync(src, { bigint: true })
  refuseSpecial(st, job)
  const tmp = tempFor(job.dst.native)
  tempsInFlight.add(tmp)
  try {
    const result = dataSync(job, src, tmp, Number(st.size))
    metaSync(tmp, st, job)
    publishSync(tmp, job.dst.native, job.options.overwrite)
    return result
  } catch (e) {
    fs.rmSync(tmp, { force: true })
    throw renamed(e, tmp, job)
  } finally {
    tempsInFlight.delete(tmp)
  }
}

async function copyBytes(src: NativePath, dst: NativePath, job: CloneJob): Promise<number> {
  let total = 0
  const buf = Buffer.allocUnsafe(1 << 20)
  const from = await fs.promises.open(src, O_RDONLY | (O_NONBLOCK ?? 0))
  try {
    refuseSpecial(await from.stat(), job)
    const to = await fs.promises.open(dst, 'wx')
    try {
      for (let n; (n = (await from.read(buf, 0, buf.length, null)).bytesRead) > 0; total += n) {
        for (let w = 0; w < n;) w += (await to.write(buf, w, n - w)).bytesWritten
      }
    } finally {
      await to.close()
    }
  } finally {
    await from.close()
  }
  return total
}

async function data(job: CloneJob, src: NativePath, tmp: NativePath, size: number): Promise<CloneResult> {
  return cloneOrCopy(job.options.mode, async (method) => {
    if (method === METHOD_CLONE) {
      await fs.promises.copyFile(src, tmp, COPYFILE_EXCL | COPYFILE_FICLONE_FORCE).catch((e: unknown) => {
        throw sameCode(e)
      })
    } else {
      await fs.promises.rm(tmp, { force: true }) // what a failed clone may have left
      return copyBytes(src, tmp, job)
    }
    return size
  })
}

/** The asynchronous twin of {@link cloneWithNodeSync}. */
export async function cloneWithNode(job: CloneJob): Promise<CloneResult> {
  const src = job.src.native as NativePath
  if (!job.options.followSymlinks && (await fs.promises.lstat(src)).isSymbolicLink()) return symlinkSync(src, job)
  const st = await fs.promises.stat(src, { bigint: true })
  refuseSpecial(st, job)
  const tmp = tempFor(job.dst.native)
  tempsInFlight.add(tmp)
  try {
    const result = await data(job, src, tmp, Number(st.size))
    metaSync(tmp, st, job)
    publishSync(tmp, job.dst.native, job.options.overwrite)
    return result
  } catch (e) {
    await fs.promises.rm(tmp, { force: true })
    throw renamed(e, tmp, job)
  } finally {
    tempsInFlight.delete(tmp)
  }
}
