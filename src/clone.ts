import { Flag, METHOD_CLONE, Op, native, requireNative } from './binding.js'
import type { Binding, NativePath } from './binding.js'
import { fromNative } from './errors.js'
import { cloneOrCopy, cloneOrCopySync } from './fallback.js'
import type { Fallback } from './fallback.js'
import { toPath, toTarget, withDefaults, oneOf } from './args.js'
import type { FileLike, PathLike, Target } from './args.js'
import { cloneWithNode, cloneWithNodeSync } from './clone-node.js'

export type CloneMode = 'auto' | 'always' | 'never'

export interface CloneOptions {
  /**
   * 'auto': clone, or copy where this pair of files cannot be cloned; 'always': clone or throw
   * (cp --reflink=always); 'never': a physical copy that shares no blocks.
   * @default 'auto'
   */
  mode?: CloneMode
  /** Replace an existing destination atomically; otherwise it is EEXIST. @default false */
  overwrite?: boolean
  /** false: a symlink source is cloned as a symlink (CLONE_NOFOLLOW). @default true */
  followSymlinks?: boolean
  /** Give the clone the source's owner, where the process may (root). @default true */
  preserveOwner?: boolean
  /** Copy ACLs (CLONE_ACL on macOS, POSIX ACL xattrs on Linux). @default false */
  preserveAcl?: boolean
}

export interface CloneResult {
  /** what really happened: blocks shared, or bytes copied */
  method: 'clone' | 'copy'
  /** bytes of file data */
  size: number
  /** why an 'auto' clone became a copy */
  fallback?: Fallback
}

const defaults: Required<CloneOptions> = Object.freeze({
  mode: 'auto',
  overwrite: false,
  followSymlinks: true,
  preserveOwner: true,
  preserveAcl: false,
})

export const modes: readonly CloneMode[] = ['auto', 'always', 'never']

export interface CloneJob {
  src: Target
  dst: { native: NativePath; label: string }
  options: Required<CloneOptions>
  flags: number
}

export function cloneJob(src: unknown, dst: unknown, options: unknown): CloneJob {
  const o = withDefaults('options', options, defaults)
  oneOf('options.mode', o.mode, modes)
  const dstPath = toPath('dst', dst)
  const flags = Flag.Mode | Flag.Times | Flag.Xattr |
    (o.overwrite ? Flag.Overwrite : 0) |
    (o.followSymlinks ? 0 : Flag.NoFollow) |
    (o.preserveOwner ? Flag.Owner : 0) |
    (o.preserveAcl ? Flag.Acl : 0)
  return { src: toTarget('src', src), dst: { native: dstPath, label: dstPath.toString() }, options: o, flags }
}

function nativeFor(job: CloneJob): Binding | undefined {
  const binding = native()
  if (binding === undefined && job.src.fd !== undefined) return requireNative('Cloning from an open file')
  return binding
}

const fail = (job: CloneJob, e: unknown) => fromNative(e, job.src.label, job.dst.label)

/*
 * Clones asked for in the same turn of the event loop (a caller keeping many in flight asks for
 * the next ones as the last ones finish, all in one turn) go to the thread pool together: up to
 * CHUNK in one job, which saves the per-job cost of the pool and of waking this thread. The
 * jobs still run in parallel when there are several.
 */
const CHUNK = 8
interface Queued {
  job: CloneJob
  src: NativePath
  resolve: (size: number) => void
  reject: (e: unknown) => void
}
/** by flags: one runOps() call has one set of flags */
const queued = new Map<number, Queued[]>()
let flushing = false

function cloneQueued(binding: Binding, job: CloneJob): Promise<number> {
  const src = job.src.native
  if (typeof src === 'number') return binding.cloneFile(src, job.dst.native, METHOD_CLONE, job.flags, true)
  return new Promise((resolve, reject) => {
    let q = queued.get(job.flags)
    if (q === undefined) queued.set(job.flags, (q = []))
    q.push({ job, src, resolve, reject })
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

function runQueued(binding: Binding, flags: number, items: Queued[]): void {
  if (items.length === 1) {
    const { job, resolve, reject } = items[0] as Queued
    binding.cloneFile(job.src.native, job.dst.native, METHOD_CLONE, flags, true).then(resolve, reject)
    return
  }
  const kinds = new Uint8Array(items.length).fill(Op.Clone)
  const srcs = items.map((q) => q.src)
  const dsts = items.map((q) => q.job.dst.native)
  binding.runOps(kinds, srcs, dsts, flags, true).then((out) => {
    items.forEach((q, i) => {
      const n = out.results[i] as number
      if (n >= 0) q.resolve(n)
      else q.reject({ errno: -n, syscall: out.syscalls[i] ?? 'ioctl_ficlone' })
    })
  }, (e: unknown) => {
    for (const q of items) q.reject(e)
  })
}

/**
 * Clones the file `src` to the new file `dst`: the two share their data blocks until one is
 * written. With mode 'auto' a pair that cannot be cloned is copied, and the result says why.
 * On failure nothing is left at `dst`.
 */
export function clone(src: FileLike, dst: PathLike, options?: CloneOptions): Promise<CloneResult> {
  let job: CloneJob, binding: Binding | undefined
  try {
    job = cloneJob(src, dst, options)
    binding = nativeFor(job)
  } catch (e) {
    return Promise.reject(e)
  }
  if (binding === undefined) return cloneWithNode(job)
  const attempt = (method: number) =>
    (binding as Binding).cloneFile(job.src.native, job.dst.native, method, job.flags, true).catch((e: unknown) => {
      throw fail(job, e)
    })
  // The common case, a clone that works, in one promise: this runs once per file of a tree.
  if (job.options.mode === 'never') return cloneOrCopy('never', attempt)
  return cloneQueued(binding, job).then(
    (size): CloneResult => ({ method: 'clone', size }),
    (e: unknown) => cloneOrCopy(job.options.mode, (method) => (method === METHOD_CLONE ? Promise.reject(fail(job, e)) : attempt(method))),
  )
}

/** The synchronous twin of {@link clone}. */
export function cloneSync(src: FileLike, dst: PathLike, options?: CloneOptions): CloneResult {
  const job = cloneJob(src, dst, options)
  const binding = nativeFor(job)
  if (binding === undefined) return cloneWithNodeSync(job)
  return cloneOrCopySync(job.options.mode, (method) => {
    try {
      return binding.cloneFile(job.src.native, job.dst.native, method, job.flags, false)
    } catch (e) {
      throw fail(job, e)
    }
  })
}
