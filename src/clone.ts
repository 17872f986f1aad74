// clone(): one file, cloned or (by the policy of fallback.ts) copied, through the addon or,
// without it, through Node's own fs (clone-node.ts).
import * as fs from 'node:fs'
import { CWD, Flag, METHOD_CLONE, Op, RAW, native, requireNative } from './binding.js'
import type { Binding, NativePath } from './binding.js'
import { fromNative, fsError } from './errors.js'
import { cloneOrCopy, cloneOrCopySync, modes } from './fallback.js'
import { boolean, oneOf, resolveOptions, toPath, toTarget } from './args.js'
import type { OptionTable } from './args.js'
import { cloneWithNode, cloneWithNodeSync, tempFor, tempsInFlight } from './clone-node.js'
import type { CloneJob } from './clone-node.js'
import { toRaw } from './raw.js'
import type { CloneMode, CloneOptions, CloneResult, FileLike, PathLike } from './types.js'

const optionTable: OptionTable<Required<CloneOptions>> = {
  mode: oneOf<CloneMode>('auto', modes),
  overwrite: boolean(false),
  followSymlinks: boolean(true),
  preserveOwner: boolean(true),
  preserveAcl: boolean(false),
}

/** `drop`: Flag bits of metadata not to keep (cloneTree given a file, with its `preserve`);
 * `keep`: bits to add (Flag.SetId for clonefile/fs, whose copies keep setuid/setgid). */
function cloneJob(src: unknown, dst: unknown, options: unknown, drop = 0, keep = 0): CloneJob {
  const o = resolveOptions('options', options, optionTable)
  const dstPath = toPath('dst', dst)
  const flags = ((Flag.Mode | Flag.Times | Flag.Xattr) & ~drop) |
    (o.overwrite ? Flag.Overwrite : 0) |
    (o.followSymlinks ? 0 : Flag.NoFollow) |
    (o.preserveOwner ? Flag.Owner : 0) |
    (o.preserveAcl && (drop & Flag.Acl) === 0 ? Flag.Acl : 0) | keep
  return { src: toTarget('src', src), dst: { native: dstPath, label: dstPath.toString() }, options: o, flags }
}

function nativeFor(job: CloneJob): Binding | undefined {
  const binding = native()
  if (binding === undefined && job.src.fd !== undefined) return requireNative('Cloning from an open file')
  return binding
}

const fail = (job: CloneJob, e: unknown) => fromNative(e, job.src.label, job.dst.label)

/**
 * How one attempt is made (the caller's decision since the addon makes none): a clone that
 * replaces nothing is created in place (Flag.Direct: its data arrives in one ioctl); a copy,
 * or anything that replaces dst, is built aside (nameless where the OS can, else under a
 * temporary sibling name) and given its name when complete.
 */
function attemptOf(job: CloneJob, method: number): { flags: number; temp: NativePath | undefined } {
  if (method === METHOD_CLONE && !job.options.overwrite) return { flags: job.flags | Flag.Direct, temp: undefined }
  return { flags: job.flags, temp: tempFor(job.dst.native) }
}

function attemptSync(binding: Binding, job: CloneJob, method: number): number {
  const { flags, temp } = attemptOf(job, method)
  if (temp !== undefined) tempsInFlight.add(temp)
  try {
    return binding.cloneFile(job.src.native, job.dst.native, temp, method, flags, false)
  } catch (e) {
    throw fail(job, e)
  } finally {
    if (temp !== undefined) tempsInFlight.delete(temp)
  }
}

async function attempt(binding: Binding, job: CloneJob, method: number): Promise<number> {
  const { flags, temp } = attemptOf(job, method)
  if (temp !== undefined) tempsInFlight.add(temp)
  try {
    return await binding.cloneFile(job.src.native, job.dst.native, temp, method, flags, true)
  } catch (e) {
    throw fail(job, e)
  } finally {
    if (temp !== undefined) tempsInFlight.delete(temp)
  }
}

// ---- many clones asked for at once ----

/*
 * Clones asked for in the same turn of the event loop (a caller keeping many in flight asks for
 * the next ones as the last ones finish, all in one turn) go to the thread pool together: up to
 * CHUNK in one runOps() job, which saves the per-job cost of the pool and of waking this
 * thread. Only clones made in place (no overwrite, a path as source) are batched.
 */
const CHUNK = 8
interface Queued {
  job: CloneJob
  resolve: (size: number) => void
  reject: (e: unknown) => void
}
/** by flags: one runOps() call has one set of flags */
const queued = new Map<number, Queued[]>()
let flushing = false

function cloneQueued(binding: Binding, job: CloneJob): Promise<number> {
  if (job.src.fd !== undefined || job.options.overwrite) return attempt(binding, job, METHOD_CLONE)
  return new Promise((resolve, reject) => {
    let q = queued.get(job.flags)
    if (q === undefined) queued.set(job.flags, (q = []))
    q.push({ job, resolve, reject })
    if (!flushing) {
      flushing = true
      queueMicrotask(() => flush(binding))
    }
  })
}

function flush(binding: Binding): void {
  flushing = false
  for (const [flags, q] of queued) {
    queued.delete(flags)
    for (let i = 0; i < q.length; i += CHUNK) runQueued(binding, flags, q.slice(i, i + CHUNK))
  }
}

/** Paths as the user gave them, relative to CWD, as byte strings joined by NUL (raw.ts). */
const joined = (paths: NativePath[]) => paths.map((p) => toRaw(p)).join('\0')

function runQueued(binding: Binding, flags: number, items: Queued[]): void {
  if (items.length === 1) {
    const { job, resolve, reject } = items[0] as Queued
    attempt(binding, job, METHOD_CLONE).then(resolve, reject)
    return
  }
  const n = items.length
  const dirs = new Int32Array(n).fill(CWD)
  const srcs = joined(items.map((q) => q.job.src.native as NativePath))
  const dsts = joined(items.map((q) => q.job.dst.native))
  binding.runOps(new Uint8Array(n).fill(Op.Clone), dirs, srcs, dirs, dsts, undefined, flags | Flag.Direct | RAW, true).then((out) => {
    items.forEach((q, i) => {
      const size = out.results[i] as number
      if (size >= 0) q.resolve(size)
      else q.reject(fail(q.job, { errno: -size, syscall: out.syscalls[i] ?? 'ioctl_ficlone' }))
    })
  }, (e: unknown) => {
    for (const q of items) q.reject(e)
  })
}

// ---- the same file ----

type Ids = { dev: bigint; ino: bigint }
const sameFile = (a: Ids, b: Ids | undefined) => b !== undefined && a.dev === b.dev && a.ino === b.ino

/**
 * Replacing a file with itself (or with a hard link of itself) would rebuild it under a new
 * inode and split its links: refused by (dev, ino) before anything is touched, as GNU cp ("are
 * the same file") and Node's fs.cp (EINVAL) do (issue 11 #16). Only overwrite can get that far:
 * otherwise an existing dst is EEXIST.
 */
function refuseSame(job: CloneJob, src: Ids, dst: Ids | undefined): void {
  if (sameFile(src, dst)) throw fsError('EINVAL', 'clone', { path: job.src.label, dest: job.dst.label, detail: 'src and dst are the same file' })
}

function checkSameSync(job: CloneJob): void {
  if (!job.options.overwrite) return
  const dst = fs.lstatSync(job.dst.native, { bigint: true, throwIfNoEntry: false })
  if (dst === undefined) return
  const s = job.src.native
  const src = typeof s === 'number' ? fs.fstatSync(s, { bigint: true }) : job.options.followSymlinks ? fs.statSync(s, { bigint: true }) : fs.lstatSync(s, { bigint: true })
  refuseSame(job, src, dst)
}

async function checkSame(job: CloneJob): Promise<void> {
  const dst = await fs.promises.lstat(job.dst.native, { bigint: true }).catch(() => undefined)
  if (dst === undefined) return
  const s = job.src.native
  const src = typeof s === 'number' ? fs.fstatSync(s, { bigint: true }) : await (job.options.followSymlinks ? fs.promises.stat : fs.promises.lstat)(s, { bigint: true })
  refuseSame(job, src, dst)
}

/** clone() once its arguments are checked: the common case, a clone that works, in one promise
 * (this runs once per file of a tree). */
function cloneChecked(job: CloneJob, binding: Binding | undefined): Promise<CloneResult> {
  if (binding === undefined) return cloneWithNode(job)
  const copy = (method: number) => attempt(binding, job, method)
  if (job.options.mode === 'never') return cloneOrCopy('never', copy)
  return cloneQueued(binding, job).then(
    (size): CloneResult => ({ method: 'clone', size }),
    (e: unknown) => cloneOrCopy(job.options.mode, (method) => (method === METHOD_CLONE ? Promise.reject(e) : copy(method))),
  )
}

/**
 * Clones the file `src` to the new file `dst`: the two share their data blocks until one is
 * written. With mode 'auto' a pair that cannot be cloned is copied, and the result says why.
 * On failure nothing is left at `dst`.
 */
export function clone(src: FileLike, dst: PathLike, options?: CloneOptions): Promise<CloneResult> {
  return cloneDropping(src, dst, options, 0)
}

/** clone() without the metadata whose Flag bits are in `drop` (for cloneTree's `preserve`),
 * with those in `keep`. */
export function cloneDropping(src: FileLike, dst: PathLike, options: CloneOptions | undefined, drop: number, keep = 0): Promise<CloneResult> {
  let job: CloneJob, binding: Binding | undefined
  try {
    job = cloneJob(src, dst, options, drop, keep)
    binding = nativeFor(job)
  } catch (e) {
    return Promise.reject(e)
  }
  if (!job.options.overwrite) return cloneChecked(job, binding)
  return checkSame(job).then(() => cloneChecked(job, binding))
}

/** The synchronous twin of {@link clone}. */
export function cloneSync(src: FileLike, dst: PathLike, options?: CloneOptions): CloneResult {
  return cloneDroppingSync(src, dst, options, 0)
}

/** The synchronous twin of {@link cloneDropping}. */
export function cloneDroppingSync(src: FileLike, dst: PathLike, options: CloneOptions | undefined, drop: number, keep = 0): CloneResult {
  const job = cloneJob(src, dst, options, drop, keep)
  const binding = nativeFor(job)
  checkSameSync(job)
  if (binding === undefined) return cloneWithNodeSync(job)
  return cloneOrCopySync(job.options.mode, (method) => attemptSync(binding, job, method))
}
