// cloneTree: the public API and the checks made before anything is written; the drivers of
// its TreeRun (tree-run.ts) over the walker (walk.ts) are tree-drive.ts'.
import * as fs from 'node:fs'
import { availableParallelism, constants } from 'node:os'
import { basename, dirname, resolve } from 'node:path'
import { CWD, Flag, LANES, METHOD_CLONE, Scan, requireNative, type Binding } from './binding.js'
import { cloneDropping, cloneDroppingSync } from './clone.js'
import { abortError, fromNative, fsError, invalidArgType, invalidArgValue } from './errors.js'
import { fallbackFor, filesystemName, modes } from './fallback.js'
import { abortSignal, boolean, callback, nested, oneOf, resolveOptions, toPath, type OptionTable } from './args.js'
import { bytes, named, native as nativeName, shown, toRaw } from './raw.js'
import { removeLeftovers } from './leftovers.js'
import { removeTreeAt } from './remove.js'
import { LOCK_SUFFIX, tempNameRaw } from './temp.js'
import { TreeRun, emptyResult, type ResolvedOptions, type RunHooks } from './tree-run.js'
import { wholeTreeCounts } from './tree-whole.js'
import { drive, driveSync } from './tree-drive.js'
import type { CloneOptions, CloneResult, CloneTreeOptions, PathLike, TreePreserve, TreeResult } from './types.js'

const preserveTable: OptionTable<Required<TreePreserve>> = {
  mode: boolean(true),
  timestamps: boolean(true),
  ownership: boolean(true),
  xattr: boolean(true),
  links: boolean(true),
  specials: boolean(true),
}

/** cloneTree's options: every one checked, unknown keys refused, defaults in this one place. */
const optionTable: OptionTable<ResolvedOptions> = {
  overwrite: oneOf('error', ['error', 'skip', 'replace']),
  mode: oneOf('auto', modes),
  preserve: nested(preserveTable),
  dereference: boolean(false),
  filter: callback(),
  concurrency: {
    // 0, the default: chosen for the destination's filesystem.
    default: 0,
    check: (name, value) => {
      if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value)
      if (!Number.isInteger(value) || value < 1) throw invalidArgValue(name, value, 'must be an integer >= 1')
      return value
    },
  },
  signal: abortSignal(),
  onProgress: callback(),
  atomic: boolean(true),
  continueOnError: boolean(false),
}
/** Directories made and listed per scanDirs() call. */

interface Prepared {
  /** absolute byte strings (raw.ts) */
  src: string
  dst: string
  options: ResolvedOptions
  /** the source is a file: cloneTree behaves like clone() */
  single: boolean
  /** dst exists and overwrite says to merge into it */
  merge: boolean
}

function prepare(src: unknown, dst: unknown, options: unknown): Prepared {
  const o = resolveOptions('options', options, optionTable)
  // Byte strings from here on (raw.ts); node:fs gets them as Buffers.
  const s = absolute(toPath('src', src))
  let d = absolute(toPath('dst', dst))
  if (o.signal?.aborted) throw abortError(o.signal)
  const st = o.dereference ? fs.statSync(bytes(s)) : fs.lstatSync(bytes(s))
  if (!st.isDirectory()) return { src: s, dst: d, options: o, single: true, merge: false }
  const [ss, ds] = [shown(s), shown(d)]
  const there = fs.statSync(bytes(d), { throwIfNoEntry: false })
  if (there !== undefined && there.dev === st.dev && there.ino === st.ino) {
    throw fsError('EINVAL', 'cloneTree', { path: ss, dest: ds, detail: 'source and destination are the same directory' })
  }
  if (insideOf(requireNative('cloneTree'), dirname(d), s, st)) {
    throw fsError('EINVAL', 'cloneTree', { path: ss, dest: ds, detail: 'cannot clone a directory into itself' })
  }
  const exists = there !== undefined || fs.lstatSync(bytes(d), { throwIfNoEntry: false }) !== undefined
  if (exists && o.overwrite === 'error') throw fsError('EEXIST', 'cloneTree', { path: ss, dest: ds })
  if (exists && there?.isDirectory() !== true) throw fsError('ENOTDIR', 'cloneTree', { path: ss, dest: ds, detail: 'destination exists and is not a directory' })
  // Merging into a directory named through a symlink: into what it names, as cp does.
  if (exists) d = fs.realpathSync(bytes(d), 'buffer').toString('latin1')
  return { src: s, dst: d, options: o, single: false, merge: exists }
}

/**
 * Whether the directory `dir` (where dst is to be made) is src or inside it: by (dev, ino) of
 * dir and each of its ancestors, so that no second path to src (a symlink, a bind mount of src)
 * hides it; and, for a `dir` under a bind mount of a directory inside src (whose ".." leads out
 * of the mount, not up through src), by where each is within its filesystem (mountinfo).
 */
function insideOf(binding: Binding, dir: string, srcPath: string, src: fs.Stats): boolean {
  let ids: Float64Array
  try {
    ids = binding.ancestors(bytes(dir))
  } catch {
    return false // dst's parent does not exist: the run fails there, with its own error
  }
  for (let i = 0; i < ids.length; i += 2) if (ids[i] === src.dev && ids[i + 1] === src.ino) return true
  const [a, b] = [placeInFilesystem(dir), placeInFilesystem(srcPath)]
  return a !== undefined && b !== undefined && a.device === b.device && (a.path === b.path || a.path.startsWith(b.path === '/' ? '/' : `${b.path}/`))
}

/**
 * Linux: the filesystem (major:minor) a path is on and its path from that filesystem's root,
 * from /proc/self/mountinfo (a bind mount's root field says which directory of the filesystem
 * it shows). Undefined elsewhere, or where it cannot be told.
 */
function placeInFilesystem(path: string): { device: string; path: string } | undefined {
  let real: string
  let info: string
  try {
    real = fs.realpathSync(bytes(path), 'buffer').toString('latin1')
    info = fs.readFileSync('/proc/self/mountinfo', 'latin1')
  } catch {
    return undefined
  }
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)))
  let best: { device: string; root: string; point: string } | undefined
  for (const line of info.split('\n')) {
    const f = line.split(' ')
    if (f.length < 5) continue
    const point = unescape(f[4] as string)
    const under = point === '/' || real === point || real.startsWith(`${point}/`)
    if (under && (best === undefined || point.length >= best.point.length)) best = { device: f[2] as string, root: unescape(f[3] as string), point }
  }
  if (best === undefined) return undefined
  const rest = best.point === '/' ? real : real.slice(best.point.length)
  return { device: best.device, path: (best.root === '/' ? '' : best.root) + (rest === '' ? '' : rest) || '/' }
}

/** An absolute path, as a byte string. */
function absolute(path: string | Buffer): string {
  return resolve(toRaw(process.cwd()), toRaw(path))
}

/** Where the run builds, and what it holds open for the whole run. */
interface Place {
  /** dst's parent directory, open */
  parentFd: number
  /** the name the tree is built under in it: a temporary one, or dst's own */
  build: string
  /** the lock beside a temporary tree that proves this run alive, held to the end; or -1 */
  lockFd: number
  warnings: TreeResult['warnings']
}

function startRun(binding: Binding, p: Prepared, hooks: RunHooks): [TreeRun, Place] {
  const parentFd = binding.openDir(CWD, bytes(dirname(p.dst)), Scan.Follow).fd
  const temporary = !p.merge && p.options.atomic
  let warnings: TreeResult['warnings'] = []
  try {
    if (temporary) warnings = removeLeftovers(binding, parentFd, dirname(p.dst), basename(p.dst))
  } catch (e) {
    binding.closeDirs(Int32Array.of(parentFd))
    throw e
  }
  const build = temporary ? tempNameRaw(basename(p.dst)) : basename(p.dst)
  let lockFd = -1
  try {
    // Locked before the tree exists: there is never a moment when it is there unlocked.
    if (temporary) lockFd = binding.lock(parentFd, nativeName(build + LOCK_SUFFIX), true)
  } catch (e) {
    binding.closeDirs(Int32Array.of(parentFd))
    throw fromNative(e, shown(p.src), shown(p.dst))
  }
  const run = new TreeRun(binding, p.src, p.dst, { dir: CWD, name: p.src }, { dir: parentFd, name: build }, p.options, p.merge, hooks)
  return [run, { parentFd, build, lockFd, warnings }]
}

/** Renames the temporary tree into place; the run's end either way. */
function finishRun(run: TreeRun, p: Prepared, place: Place): TreeResult {
  const signal = p.options.signal
  if (run.error === undefined && signal?.aborted) run.error = abortError(signal)
  if (run.error === undefined && place.build !== basename(p.dst)) {
    try {
      publish(run.binding, place.parentFd, place.build, basename(p.dst))
    } catch (e) {
      run.error = fromNative(e, shown(p.src), shown(p.dst))
    }
  }
  if (run.error !== undefined) return abandon(run, p, place, run.error)
  close(run, place)
  run.result.warnings.push(...place.warnings)
  run.progress(true)
  return run.result
}

/**
 * rename(2) with RENAME_NOREPLACE: an existing dst is never replaced. Filesystems without that
 * flag (FUSE, NFS, 9p, Ceph: EINVAL) get the same guarantee another way: an empty directory made
 * at dst (mkdir fails if anything is there), then the tree renamed over it, which rename(2)
 * does atomically for an empty directory and refuses (ENOTEMPTY/EEXIST) if someone filled it.
 */
export function publish(binding: Binding, dir: number, fromRaw: string, toRaw: string): void {
  const [from, to] = [nativeName(fromRaw), nativeName(toRaw)]
  try {
    binding.rename(dir, from, dir, to, true)
  } catch (e) {
    const errno = (e as { errno?: number }).errno
    if (errno !== constants.errno.EINVAL && errno !== constants.errno.ENOSYS) throw e
    binding.makeDir(dir, to, 0o700, false)
    try {
      binding.rename(dir, from, dir, to, false)
    } catch (e2) {
      try {
        binding.remove(dir, to, true)
      } catch {
        // Someone else's now: never removed.
      }
      throw e2
    }
  }
}

function close(run: TreeRun, place: Place): void {
  run.walker.end()
  run.dispose()
  if (place.lockFd >= 0) {
    try {
      run.binding.remove(place.parentFd, nativeName(place.build + LOCK_SUFFIX), false)
    } catch {
      // Gone already; an orphan lock file harms nothing and is free for the next run.
    }
    run.binding.unlock(place.lockFd)
    place.lockFd = -1
  }
  // Once: an abandoned run may be abandoned again by its caller's catch.
  if (place.parentFd >= 0) run.binding.closeDirs(Int32Array.of(place.parentFd))
  place.parentFd = -1
}

function abandon(run: TreeRun, p: Prepared, place: Place, e: unknown): never {
  run.walker.end()
  if (place.build !== basename(p.dst) && place.parentFd >= 0) {
    try {
      removeTreeAt(run.binding, { dir: place.parentFd, name: place.build }, p.dst)
    } catch {
      // Left for the next run, which removes a dead run's leftovers (its lock is free).
    }
  }
  close(run, place)
  throw e
}

const singleOptions = (o: ResolvedOptions): CloneOptions => ({
  mode: o.mode,
  overwrite: o.overwrite === 'replace',
  followSymlinks: o.dereference,
  preserveOwner: o.preserve.ownership,
})

/** What `preserve` says not to keep of a file given to cloneTree, as Flag bits. */
const notKept = ({ preserve: p }: ResolvedOptions): number =>
  (p.mode ? 0 : Flag.Mode) | (p.timestamps ? 0 : Flag.Times) | (p.xattr ? 0 : Flag.Xattr | Flag.Acl)

/** What the hooks say to keep beyond `preserve`, as Flag bits. */
const keptToo = (hooks: RunHooks): number => (hooks.keepsSetId === true ? Flag.SetId : 0)

function singleResult(r: CloneResult | undefined, path: string): TreeResult {
  const result = emptyResult()
  if (r === undefined) {
    result.skipped.push({ ...named(path), reason: 'EEXIST: kept the existing entry' })
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
function wholeTreeCounting(run: TreeRun, p: Prepared, place: Place): TreeResult | undefined {
  const o = p.options
  if (process.platform !== 'darwin' || o.filter !== undefined || o.mode === 'never' || o.dereference || place.build === basename(p.dst)) return undefined
  return wholeTreeCounts(run.binding, p.src, (run.fileFlags & Flag.SetId) !== 0, run.preserve.links)
}

/** Where clonefile(2) refuses the hierarchy in a way a walk may get round (EXDEV, ENOTSUP), walk. */
function wholeTreeFailed(p: Prepared, e: unknown): undefined {
  const err = fromNative(e, shown(p.src), shown(p.dst))
  if (fallbackFor(err) === undefined) throw err
  return undefined
}

function wholeTree(run: TreeRun, p: Prepared, place: Place, sync: boolean): TreeResult | undefined | Promise<TreeResult | undefined> {
  const counts = wholeTreeCounting(run, p, place)
  if (counts === undefined) return undefined
  const to = bytes(`${dirname(p.dst)}/${place.build}`)
  const flags = (run.fileFlags & ~Flag.NoFollow) | Flag.Tree | Flag.Direct
  const done = (): TreeResult => {
    Object.assign(run.result, counts)
    return finishRun(run, p, place)
  }
  if (sync) {
    try {
      run.binding.cloneFile(bytes(p.src), to, undefined, METHOD_CLONE, flags, false)
    } catch (e) {
      return wholeTreeFailed(p, e)
    }
    return done()
  }
  return run.binding.cloneFile(bytes(p.src), to, undefined, METHOD_CLONE, flags, true).then(done, (e: unknown) => wholeTreeFailed(p, e))
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
    const info = binding.fsInfo(dir)
    return filesystemName(info) === 'btrfs' ? Math.min(2, cpus) : cpus
  } catch {
    return cpus
  }
}

/** How many lanes a run drives: the caller's concurrency, else what suits the filesystem. */
function lanesFor(run: TreeRun, p: Prepared): number {
  return Math.min(p.options.concurrency || autoConcurrency(run.binding, bytes(dirname(p.dst))), LANES)
}

/**
 * Clones the directory tree `src` to the new path `dst`, as faithfully as `cp -a` (modes, times
 * to the nanosecond, owners when root, xattrs, symlinks, hard links, FIFOs), sharing the blocks
 * of every file. With `atomic` (the default) a failure or an abort leaves nothing at `dst`.
 */
export function cloneTree(src: PathLike, dst: PathLike, options?: CloneTreeOptions): Promise<TreeResult> {
  return cloneTreeWith(src, dst, options, {})
}

/** cloneTree for a layer over it (clonefile/fs) that decides more than the options say. */
export async function cloneTreeWith(src: PathLike, dst: PathLike, options: CloneTreeOptions | undefined, hooks: RunHooks): Promise<TreeResult> {
  const p = prepare(src, dst, options)
  if (p.single) {
    return cloneDropping(bytes(p.src), bytes(p.dst), singleOptions(p.options), notKept(p.options), keptToo(hooks))
      .then((r) => singleResult(r, shown(p.src)), (e: unknown) => notCloned(p, e))
  }
  const [run, place] = startRun(requireNative('cloneTree'), p, hooks)
  try {
    return (await wholeTree(run, p, place, false)) ?? (await drive(run, lanesFor(run, p), p.options.signal), finishRun(run, p, place))
  } catch (e) {
    return abandon(run, p, place, e)
  }
}

/** A file given to cloneTree that was not cloned: kept (overwrite 'skip'), or the error. */
function notCloned(p: Prepared, e: unknown): TreeResult {
  if (skippedExisting(e, p.options)) return singleResult(undefined, shown(p.src))
  throw e
}

/** The async driver: scans and file batches in lanes, then the end steps. */
/** The synchronous twin of {@link cloneTree}: the same walk, one batch at a time. */
export function cloneTreeSync(src: PathLike, dst: PathLike, options?: CloneTreeOptions): TreeResult {
  return cloneTreeWithSync(src, dst, options, {})
}

/** The synchronous twin of {@link cloneTreeWith}. */
export function cloneTreeWithSync(src: PathLike, dst: PathLike, options: CloneTreeOptions | undefined, hooks: RunHooks): TreeResult {
  const p = prepare(src, dst, options)
  if (p.single) {
    try {
      return singleResult(cloneDroppingSync(bytes(p.src), bytes(p.dst), singleOptions(p.options), notKept(p.options), keptToo(hooks)), shown(p.src))
    } catch (e) {
      return notCloned(p, e)
    }
  }
  const [run, place] = startRun(requireNative('cloneTree'), p, hooks)
  try {
    return (wholeTree(run, p, place, true) as TreeResult | undefined) ?? (driveSync(run, lanesFor(run, p)), finishRun(run, p, place))
  } catch (e) {
    return abandon(run, p, place, e)
  }
}

