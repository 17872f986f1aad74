// clone() without the addon: Node's fs.copyFile with COPYFILE_FICLONE_FORCE clones on Linux
// (and returns ENOSYS on macOS and Windows). What is lost is said in README: xattrs and ACLs,
// and times are kept to Node's utimes precision (microseconds), not the nanosecond.
import * as fs from 'node:fs'
import { fsError } from './errors.js'
import { METHOD_CLONE } from './binding.js'
import { cloneOrCopy, cloneOrCopySync } from './fallback.js'
import type { CloneJob, CloneResult } from './clone.js'
import { tempSibling } from './temp.js'

const { COPYFILE_EXCL, COPYFILE_FICLONE_FORCE } = fs.constants

/** Errors of Node's own calls on the temporary carry its name; the caller knows only dst. */
function renamed(e: unknown, tmp: string, dst: string): unknown {
  const err = e as NodeJS.ErrnoException & { dest?: string }
  if (err instanceof Error && typeof err.message === 'string') {
    err.message = err.message.replaceAll(tmp, dst)
    if (err.path === tmp) err.path = dst
    if (err.dest === tmp) err.dest = dst
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

function copyBytesSync(src: string, dst: string): void {
  // read/write, not fs.copyFile: libuv's copyfile uses copy_file_range, which reflinks on XFS/btrfs.
  const buf = Buffer.allocUnsafe(1 << 20)
  const from = fs.openSync(src, 'r')
  try {
    const to = fs.openSync(dst, 'wx')
    try {
      for (let n; (n = fs.readSync(from, buf, 0, buf.length, null)) > 0;) {
        for (let w = 0; w < n;) w += fs.writeSync(to, buf, w, n - w)
      }
    } finally {
      fs.closeSync(to)
    }
  } finally {
    fs.closeSync(from)
  }
}

function metaSync(tmp: string, st: fs.BigIntStats, job: CloneJob): void {
  if (job.options.preserveOwner && process.getuid?.() === 0) fs.chownSync(tmp, Number(st.uid), Number(st.gid))
  fs.chmodSync(tmp, Number(st.mode) & 0o1777)
  fs.utimesSync(tmp, Number(st.atimeNs) / 1e9, Number(st.mtimeNs) / 1e9)
}

function publishSync(tmp: string, dst: string, overwrite: boolean): void {
  if (overwrite) return fs.renameSync(tmp, dst)
  fs.linkSync(tmp, dst) // link(2) refuses to clobber: EEXIST
  fs.unlinkSync(tmp)
}

function dataSync(job: CloneJob, src: string, tmp: string): CloneResult {
  const size = fs.statSync(src).size
  return cloneOrCopySync(job.options.mode, (method) => {
    if (method === METHOD_CLONE) {
      try {
        fs.copyFileSync(src, tmp, COPYFILE_EXCL | COPYFILE_FICLONE_FORCE)
      } catch (e) {
        throw sameCode(e)
      }
    } else {
      fs.rmSync(tmp, { force: true }) // what a failed clone may have left
      copyBytesSync(src, tmp)
    }
    return size
  })
}

function symlinkSync(src: string, dst: string, job: CloneJob): CloneResult {
  const tmp = tempSibling(dst)
  const st = fs.lstatSync(src, { bigint: true })
  fs.symlinkSync(fs.readlinkSync(src), tmp)
  try {
    fs.lutimesSync(tmp, Number(st.atimeNs) / 1e9, Number(st.mtimeNs) / 1e9)
    publishSync(tmp, dst, job.options.overwrite)
  } catch (e) {
    fs.rmSync(tmp, { force: true })
    throw renamed(e, tmp, dst)
  }
  return { method: 'clone', size: 0 }
}

export function cloneWithNodeSync(job: CloneJob): CloneResult {
  const src = job.src.label
  const dst = job.dst.label
  if (!job.options.followSymlinks && fs.lstatSync(src).isSymbolicLink()) return symlinkSync(src, dst, job)
  const st = fs.statSync(src, { bigint: true })
  if (st.isDirectory()) throw fsError('EISDIR', 21, 'copyfile', src, dst)
  const tmp = tempSibling(dst)
  try {
    const result = dataSync(job, src, tmp)
    metaSync(tmp, st, job)
    publishSync(tmp, dst, job.options.overwrite)
    return result
  } catch (e) {
    fs.rmSync(tmp, { force: true })
    throw renamed(e, tmp, dst)
  }
}

async function copyBytes(src: string, dst: string): Promise<void> {
  const buf = Buffer.allocUnsafe(1 << 20)
  const from = await fs.promises.open(src, 'r')
  try {
    const to = await fs.promises.open(dst, 'wx')
    try {
      for (let n; (n = (await from.read(buf, 0, buf.length, null)).bytesRead) > 0;) {
        for (let w = 0; w < n;) w += (await to.write(buf, w, n - w)).bytesWritten
      }
    } finally {
      await to.close()
    }
  } finally {
    await from.close()
  }
}

async function data(job: CloneJob, src: string, tmp: string): Promise<CloneResult> {
  const size = (await fs.promises.stat(src)).size
  return cloneOrCopy(job.options.mode, async (method) => {
    if (method === METHOD_CLONE) {
      await fs.promises.copyFile(src, tmp, COPYFILE_EXCL | COPYFILE_FICLONE_FORCE).catch((e: unknown) => {
        throw sameCode(e)
      })
    } else {
      await fs.promises.rm(tmp, { force: true }) // what a failed clone may have left
      await copyBytes(src, tmp)
    }
    return size
  })
}

export async function cloneWithNode(job: CloneJob): Promise<CloneResult> {
  const src = job.src.label
  const dst = job.dst.label
  if (!job.options.followSymlinks && (await fs.promises.lstat(src)).isSymbolicLink()) return symlinkSync(src, dst, job)
  const st = await fs.promises.stat(src, { bigint: true })
  if (st.isDirectory()) throw fsError('EISDIR', 21, 'copyfile', src, dst)
  const tmp = tempSibling(dst)
  try {
    const result = await data(job, src, tmp)
    metaSync(tmp, st, job)
    publishSync(tmp, dst, job.options.overwrite)
    return result
  } catch (e) {
    await fs.promises.rm(tmp, { force: true })
    throw renamed(e, tmp, dst)
  }
}
