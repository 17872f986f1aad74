// clonefile/fs: node:fs's cp, cpSync and promises.cp, with their signatures, validation, error
// codes and results, cloning file data where the filesystem can. A thin layer of policy: Node's
// checks before anything is written and per entry (through cloneTree's filter), then cloneTree
// (or, for one file, cloneTree's single-file path) makes everything. Only what cloneTree cannot
// express is made after it (fs-after.ts): a symlink whose relative target fs.cp makes absolute,
// a device fs.cp copies as a file, files' times as fs.cp's utimes leaves them.
import * as fs from 'node:fs'
import { constants } from 'node:fs'
import { dirname, join, resolve, sep } from 'node:path'
import { cloneTreeWith, cloneTreeWithSync } from './tree.js'
import { madeAfterIn, makeAfter, newPlan, type Plan } from './fs-after.js'
import { invalidArgType, stdError } from './errors.js'
import {
  checkLinkOver, checkPair, checkParents, checkRootNative, checkType, codedTypeError, cpError, invalidReturn, isDevice, linkTarget,
  stat, validated, validPath, type CpOptions, type CpSyncOptions, type Path, type Resolved,
} from './fs-checks.js'
import { checkCycle, decideNative, madeDirMode, overrideFile, underNonDir, type EntryContext } from './fs-node22.js'
import type { CloneTreeOptions, TreeEntry } from './types.js'

export type { CpOptions, CpSyncOptions } from './fs-checks.js'

// ---- what differs by the Node it runs on ----

/**
 * node:fs's cp is the running Node's, and Node 22 changed parts of it. cpSync's root is checked
 * in C++ there (cpSyncCheckPaths, checkRootNative): plain Errors with a code and messages of
 * their own, src stat-ed the other way round from `dereference`, Buffers taken. cp and
 * promises.cp refuse an existing directory under errorOnExist without force (ERR_FS_CP_EEXIST),
 * where Node 20 merges into it. cpSync copies a directory in C++ without a filter
 * (decideNative), and with one by a walk without Node 20's checks of each entry (walk22): both
 * in fs-node22.ts.
 */
const major = Number(process.versions.node.split('.')[0])
const rules = {
  nativeRootChecks: major >= 22,
  existingDirIsEexist: major >= 22,
  /** how cpSync copies a directory: Node 20's walk, or Node 22's (C++ without a filter) */
  cpSyncDir: major >= 22 ? ('node22' as const) : ('node20' as const),
}

/** How one run decides its entries: Node 20's walk, Node 22's cpSync in C++, or its JS walk. */
type Walk = 'node20' | 'native' | 'walk22'

/** A directory over an existing one: merged, or (Node 22's cp and promises.cp) ERR_FS_CP_EEXIST. */
function existingDir(o: Resolved, dest: string, sync: boolean): void {
  if (!sync && rules.existingDirIsEexist && o.errorOnExist && !o.force) throw cpError('ERR_FS_CP_EEXIST', `${dest} already exists`, dest)
}


/**
 * cloneTree's options that give fs.cp's results: mode kept (setuid/setgid too, by the hooks),
 * nothing else; fs.cp's times are set after (fs-after.ts), for files only.
 */
function treeOptions(o: Resolved, overwrite: 'error' | 'replace', filter: CloneTreeOptions['filter'], walk: Walk = 'node20'): CloneTreeOptions {
  // Node 22's C++ copies files with copy_file (COPYFILE_* ignored) and lists entries by lstat.
  const native = walk === 'native'
  return {
    overwrite,
    mode: !native && (o.mode & constants.COPYFILE_FICLONE_FORCE) === constants.COPYFILE_FICLONE_FORCE ? 'always' : 'auto',
    preserve: { mode: true, timestamps: false, ownership: false, xattr: false, links: false, specials: false },
    dereference: o.dereference && !native,
    filter,
  }
}

/** cloneTree's hooks: directories merged into keep their metadata, and so, until fs-after.ts
 * sets it, do those that get entries after cloneTree; setuid/setgid kept, as fs.cp's chmod does. */
const hooks = (plan: Plan) => ({ keepsMetadata: (rel: string) => plan.kept.has(rel) || plan.after.modes.has(rel), keepsSetId: true })

/**
 * A path given as a Buffer: fs.cp takes it as far as its filter and stats, then its path
 * checks (path.resolve, path.dirname) refuse it, for a directory and for the rest.
 */
function refuseBuffer(s: fs.Stats): never {
  const arg = s.isDirectory() ? 'paths[0]' : 'path'
  throw codedTypeError('ERR_INVALID_ARG_TYPE', `The "${arg}" argument must be of type string. Received an instance of Buffer`)
}

/** Node's checks of the root, after its filter; dest's missing parents are made. */
function planRoot(o: Resolved, given: string | Buffer, givenDest: string | Buffer, sync: boolean): Plan {
  const nativeChecks = sync && rules.nativeRootChecks
  if (nativeChecks) checkRootNative(o, String(given), String(givenDest))
  const s = o.dereference ? fs.statSync(given) : fs.lstatSync(given)
  const d = stat(o, givenDest)
  const [src, dest] = [String(given), String(givenDest)]
  if (!nativeChecks) {
    checkPair(src, dest, s, d)
    // Node 22's cpSync takes Buffers (its checks are C++'s).
    if (Buffer.isBuffer(given) || Buffer.isBuffer(givenDest)) refuseBuffer(s)
    checkParents(src, s, dest)
  }
  fs.mkdirSync(dirname(dest), { recursive: true })
  const plan = newPlan()
  if (s.isDirectory()) {
    if (!o.recursive) throw cpError('ERR_FS_EISDIR', `${src} is a directory (not copied)`, src)
    const walk: Walk = !sync || rules.cpSyncDir === 'node20' ? 'node20' : o.filter === undefined ? 'native' : 'walk22'
    if (d !== undefined) existingDir(o, dest, sync)
    if (d !== undefined) plan.kept.add('')
    // Node 22's C++ makes the root as every directory, with the umask's mode; through a
    // followed link it walks what the link names.
    if (walk === 'native' && d === undefined) plan.after.modes.set('', madeDirMode(fs.statSync(dirname(dest)).mode))
    if (walk === 'native' && fs.lstatSync(src).isSymbolicLink()) plan.walkFrom = fs.realpathSync(src)
    if (walk !== 'native') plan.dirModes.set('', s.mode)
    // Node 22's walk joins each name to src and dest: path.join refuses a Buffer, once there is a name.
    if (walk === 'walk22' && (Buffer.isBuffer(given) || Buffer.isBuffer(givenDest)) && fs.readdirSync(src).length > 0) {
      throw codedTypeError('ERR_INVALID_ARG_TYPE', 'The "path" argument must be of type string. Received an instance of Buffer')
    }
    const filter = entryFilter({ o, plan, merging: d !== undefined, destRoot: dest }, src, sync, walk, plan.walkFrom)
    plan.tree = treeOptions(o, d === undefined ? 'error' : 'replace', filter, walk)
    return plan
  }
  if (s.isSymbolicLink()) {
    const target = linkTarget(o, src)
    if (d !== undefined) checkLinkOver(target, src, dest, sync)
    plan.link = { target, replace: d !== undefined }
    return plan
  }
  checkType(s.mode, dest)
  if (d !== undefined) {
    if (!o.force) {
      if (o.errorOnExist) throw cpError('ERR_FS_CP_EEXIST', `${dest} already exists`, dest)
      return { ...plan, done: true }
    }
    // Node 22's cpSync replaces it in C++ (cpSyncOverrideFile): copy_file without a mode (a
    // device is ENOTSUP), times to the µs.
    // It removes what is there first: an empty directory too (its checks let a followed link
    // over a directory through), rmdir's ENOTEMPTY named 'unlink' where it is not empty.
    const override = sync && rules.cpSyncDir === 'node22'
    if (override && isDevice(s.mode) && o.mode === 0) throw stdError('ENOTSUP', 'cp', dest)
    const dir = override && fs.lstatSync(dest).isDirectory()
    if (dir && fs.readdirSync(dest).length > 0) throw stdError('ENOTEMPTY', 'unlink', dest)
    if (dir) fs.rmdirSync(dest)
    if (isDevice(s.mode)) plan.after.devices.push(['', !dir])
    else if (!dir) fs.unlinkSync(dest)
    if (override && o.preserveTimestamps) plan.after.exactTimes.push('')
  } else if (isDevice(s.mode)) plan.after.devices.push(['', false])
  if (o.preserveTimestamps && !plan.after.exactTimes.includes('')) plan.after.times.push('')
  if (!isDevice(s.mode)) plan.tree = treeOptions(o, 'error', undefined)
  return plan
}

// PATH_MAX, its NUL included (limits.h): Node names each entry by its path, whose stat fails
// (ENAMETOOLONG) past that; cloneTree, relative to its parent's descriptor, would not.
const PATH_MAX = process.platform === 'darwin' ? 1024 : 4096
const tooLong = (path: string): boolean => path.length * 3 >= PATH_MAX && Buffer.byteLength(path) >= PATH_MAX

/**
 * cloneTree's filter for fs.cp: the user's filter with (src, dest), then Node's checks of each
 * entry against what is at its destination (only when merging into an existing tree). What
 * fs.cp makes otherwise than cloneTree (relative symlinks, devices) is left out and listed for
 * fs-after.ts, with the files whose times it sets. `walk` says whose rules: Node 20's, or Node
 * 22's cpSync (C++ without a filter: fs-node22.ts; with one, Node 20's less its checks of each
 * entry, walk22). `walkRoot`: where cloneTree walks, where that is not srcRoot.
 */
function entryFilter(c: EntryContext, srcRoot: string, sync: boolean, walk: Walk, walkRoot = srcRoot): CloneTreeOptions['filter'] {
  const { o, plan, merging } = c
  const after = plan.after
  const walk22 = walk === 'walk22'
  const decide = (rel: string, src: string, dest: string, entry: TreeEntry): boolean => {
    // Node 22's C++ names entries by their bytes: a path that is not UTF-8 is copied, where
    // nothing is there: files (without their times), directories (with their source's mode),
    // links kept verbatim; specials left out. The rest fails as Node 20's, below (README).
    if (walk === 'native' && entry.rawPath !== undefined && !merging) {
      if (entry.type === 'directory' || (entry.type === 'file' && !o.preserveTimestamps) || (entry.type === 'symlink' && o.verbatimSymlinks)) return true
      if (entry.type !== 'file' && entry.type !== 'symlink') return false
    }
    // A name that is not UTF-8: Node reads it as a string (U+FFFD for the bytes that are not)
    // and stats that path, which is not there: its error. Where it happens to be there, Node
    // copies that entry, which it copies under its own name anyway. A path past PATH_MAX: the
    // stat's ENAMETOOLONG, Node's too.
    if (entry.rawPath !== undefined || tooLong(src)) {
      stat(o, src, true)
      return false
    }
    if (tooLong(dest)) stat(o, dest)
    if (walk === 'native') return decideNative(c, rel, src, dest, entry)
    // Following links, a symlink the walk still lists as one dangles (or loops): stat(2)'s error, as Node's.
    if (o.dereference && entry.type === 'symlink') fs.statSync(src)
    if (o.dereference && entry.type === 'directory') checkCycle(src, dest)
    const d = merging ? stat(o, dest) : undefined
    // Node checks the pair before the source's type (Node 22's walk does neither: a FIFO or a
    // socket fails an internal assertion there, its error here).
    if (d !== undefined && !walk22) checkPair(src, dest, o.dereference ? fs.statSync(src) : fs.lstatSync(src), d)
    checkType(entry.mode, dest)
    if (entry.type === 'directory') {
      if (d !== undefined && walk22 && !d.isDirectory()) return underNonDir(o, src, dest, d)
      if (d !== undefined) existingDir(o, dest, sync)
      plan.dirModes.set(rel, entry.mode)
      if (d !== undefined) plan.kept.add(rel)
      return true
    }
    if (entry.type === 'symlink') {
      const target = linkTarget(o, src)
      if (d !== undefined) checkLinkOver(target, src, dest, sync)
      // Made by cloneTree where it would be the same link (a target kept as it is, nothing to replace).
      if (target === fs.readlinkSync(src) && d === undefined) return true
      after.links.push([target, rel, d !== undefined])
      madeAfterIn(plan, rel)
      return false
    }
    if (d !== undefined && !o.force) {
      if (o.errorOnExist) throw cpError('ERR_FS_CP_EEXIST', `${dest} already exists`, dest)
      return false
    }
    if (d !== undefined && walk22) return overrideFile(c, rel, dest, entry)
    if (o.preserveTimestamps) after.times.push(rel)
    if (!isDevice(entry.mode)) return true
    after.devices.push([rel, d !== undefined])
    madeAfterIn(plan, rel)
    return false
  }
  // cloneTree names entries below src made absolute; Node joins each name to src as given,
  // which for names (no '.', '..' or empty ones) is the root joined once, then the rest.
  const base = resolve(walkRoot)
  const skip = base === sep ? 1 : base.length + 1
  const [srcBase, destBase] = [join(srcRoot, 'x').slice(0, -1), join(c.destRoot, 'x').slice(0, -1)]
  return (path, entry) => {
    const rel = path.slice(skip)
    const [src, dest] = [srcBase + rel, destBase + rel]
    const keep = o.filter === undefined ? true : o.filter(src, dest)
    if (keep instanceof Promise) {
      if (sync) throw invalidReturn(keep)
      return keep.then((k) => k && decide(rel, src, dest, entry))
    }
    return Boolean(keep) && decide(rel, src, dest, entry)
  }
}

/**
 * libuv names errno 95 ENOTSUP where this package says EOPNOTSUPP (FICLONE(2const)'s name): a
 * caller of fs.cp branches on Node's name.
 */
function asNode(e: unknown): never {
  const err = e as NodeJS.ErrnoException
  if (err?.code === 'EOPNOTSUPP') {
    err.code = 'ENOTSUP'
    err.message = err.message.replace(/^EOPNOTSUPP/, 'ENOTSUP')
  }
  throw err
}

function makeLink(target: string, dest: string, replace: boolean): void {
  if (replace) fs.unlinkSync(dest)
  fs.symlinkSync(target, dest)
}

// ---- the API ----

/** node:fs's cpSync, cloning file data where the filesystem can. */
export function cpSync(src: Path, dest: Path, options?: CpSyncOptions): void {
  const o = validated(options)
  const [s, d] = [validPath('src', src), validPath('dest', dest)]
  if (o.filter !== undefined) {
    const keep = o.filter(s as string, d as string)
    if (keep instanceof Promise) throw invalidReturn(keep)
    if (!keep) return
  }
  const plan = planRoot(o, s, d, true)
  const [from, to] = [String(s), String(d)]
  if (plan.done) return
  if (plan.link !== undefined) return makeLink(plan.link.target, to, plan.link.replace)
  try {
    if (plan.tree !== undefined) cloneTreeWithSync(plan.walkFrom ?? from, to, plan.tree, hooks(plan))
  } catch (e) {
    asNode(e)
  }
  makeAfter(plan.after, from, to, o.mode, o.dereference)
}

async function cpAsync(src: Path, dest: Path, options?: CpOptions): Promise<void> {
  const o = validated(options)
  const [s, d] = [validPath('src', src), validPath('dest', dest)]
  if (o.filter !== undefined && !(await o.filter(s as string, d as string))) return
  const plan = planRoot(o, s, d, false)
  const [from, to] = [String(s), String(d)]
  if (plan.done) return
  if (plan.link !== undefined) return makeLink(plan.link.target, to, plan.link.replace)
  if (plan.tree !== undefined) await cloneTreeWith(from, to, plan.tree, hooks(plan)).catch(asNode)
  makeAfter(plan.after, from, to, o.mode, o.dereference)
}

type Callback = (err: Error | null) => void

/** node:fs's cp: `cp(src, dest, callback)` or `cp(src, dest, options, callback)`. */
export function cp(src: Path, dest: Path, callback: Callback): void
export function cp(src: Path, dest: Path, options: CpOptions | undefined, callback: Callback): void
export function cp(src: Path, dest: Path, options: CpOptions | Callback | undefined, callback?: Callback): void {
  if (typeof options === 'function') [callback, options] = [options, undefined]
  if (typeof callback !== 'function') throw invalidArgType('cb', 'of type function', callback)
  const done = callback
  // Node validates before it returns; the copy's own failures go to the callback.
  validated(options)
  validPath('src', src)
  validPath('dest', dest)
  cpAsync(src, dest, options).then(() => done(null), (e: Error) => done(e))
}

/** node:fs/promises's cp. */
export const promises = { cp: cpAsync }
