// Node 22's cpSync of a directory, as clonefile/fs imitates it: what each entry becomes, over the
// same cloneTree run (its filter) and fs-after.ts as the rest of clonefile/fs. Node 22 copies a
// directory two ways (lib/internal/fs/cp/cp-sync.js):
//  - without a filter, in C++ (cpSyncCopyDir, std::filesystem): entries by lstat whatever
//    `dereference` says, devices, FIFOs and sockets left out, symlinks made with targets made
//    absolute and canonical (weakly_canonical), directories made with the umask's mode, files
//    by copy_file (mode kept, COPYFILE_* ignored), times to the microsecond; decideNative.
//  - with one, by a JS walk: Node 20's without its checks of each entry against its
//    destination, a file over an existing entry replaced in C++ (cpSyncOverrideFile); fs.ts'
//    decide with the walk22 rules, and overrideFile / underNonDir here.
// Where Node 22 follows a symlink at the destination (writes through it) or aborts the process,
// clonefile/fs keeps an error of its own (or, a file over a link, replaces the link) and never
// follows it (see README; test/fs.test.ts leaves those runs out, each with its reason).
import * as fs from 'node:fs'
import { dirname, isAbsolute, join, normalize, sep } from 'node:path'
import { fsError, stdError } from './errors.js'
import { madeAfterIn, removeDir, type Plan } from './fs-after.js'
import { checkType, cpError, invalidReturn, isDevice, linkTarget, plainError, same, stat, type Resolved } from './fs-checks.js'
import type { TreeEntry } from './types.js'

/** What the decisions of one run share. */
export interface EntryContext {
  o: Resolved
  plan: Plan
  /** dest existed: entries may be there */
  merging: boolean
  destRoot: string
}

const S_ISGID = 0o2000

/**
 * The mode std::filesystem::create_directory (mkdir(2)) gives a directory: 0777 less the umask,
 * and setgid where its parent has it (the kernel passes it on). `parent`: the parent's mode.
 */
export const madeDirMode = (parent: number): number => (0o777 & ~process.umask()) | (parent & S_ISGID)

/** The mode of the directory `rel` of dest as Node 22 leaves it: made here, or there before. */
function destDirMode(c: EntryContext, rel: string, dest: string): number {
  return c.plan.after.modes.get(rel) ?? fs.statSync(dest).mode
}

const eexist = (dest: string): Error =>
  plainError('ERR_FS_CP_EEXIST', `[ERR_FS_CP_EEXIST]: Target already exists: cp returned EEXIST (${dest} already exists)`)

/** stat(2) as std::filesystem::status: ENOENT and ENOTDIR are "not found", other errors thrown. */
function status(path: string): fs.Stats | undefined {
  try {
    return fs.statSync(path)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw e
  }
}

/**
 * std::filesystem::weakly_canonical of an absolute path: the longest leading part that exists
 * (stat, following links) made canonical (realpath), the rest appended and normalised
 * lexically. Where a stat fails otherwise (ELOOP), Node 22 aborts: that error here.
 */
export function weaklyCanonical(path: string): string {
  if (status(path) !== undefined) return fs.realpathSync.native(path)
  const parts = path.split(sep).filter((p, i) => i === 0 || p !== '')
  let known = ''
  let i = 0
  for (; i < parts.length; i++) {
    const next = i === 0 ? sep : known === sep ? sep + parts[i] : known + sep + parts[i]
    if (status(next) === undefined) break
    known = next
  }
  const base = known === '' ? '' : fs.realpathSync.native(known)
  const rest = parts.slice(Math.max(i, 1)).join(sep)
  return normalize(base === '' ? rest : rest === '' ? base : base + (base.endsWith(sep) ? '' : sep) + rest)
}

/** C++'s isInsideDir: b is a or below it, by the components of their absolute paths. */
function isInsideDir(a: string, b: string): boolean {
  const parts = (p: string) => (isAbsolute(p) ? p : `${process.cwd()}${sep}${p}`).split(sep).filter(Boolean)
  const [pa, pb] = [parts(a), parts(b)]
  return pa.length <= pb.length && pa.every((x, i) => pb[i] === x)
}

/**
 * cpSyncCopyDir's answer for one entry: true where cloneTree makes it as it is, false where it
 * is left out or made after cloneTree (listed in the plan); or its error.
 */
export function decideNative(c: EntryContext, rel: string, src: string, dest: string, entry: TreeEntry): boolean {
  const { o, plan } = c
  const there = c.merging ? fs.lstatSync(dest, { throwIfNoEntry: false }) : undefined
  const parent = dirname(dest)
  if (entry.type === 'directory') {
    const up = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : ''
    if (there === undefined) plan.after.modes.set(rel, madeDirMode(destDirMode(c, up, dirname(dest))))
    else if (there.isDirectory()) plan.kept.add(rel)
    // create_directory: a directory followed through a symlink is merged into (written through
    // the link), anything else aborts the process. Neither is followed here: Node 20's error.
    else throw cpError('ERR_FS_CP_DIR_TO_NON_DIR', `cannot overwrite non-directory ${dest} with directory ${src}`, dest)
    return true
  }
  if (entry.type === 'symlink') {
    if (o.verbatimSymlinks) {
      // copy_symlink: symlink(2) over anything is EEXIST, named by the directory.
      if (there !== undefined) throw stdError('EEXIST', 'cp', parent)
      return true
    }
    const raw = fs.readlinkSync(src)
    // exists() follows: a dangling link there is not there, until symlink(2) meets it.
    const followed = there === undefined ? undefined : status(dest)
    let replace = false
    if (there !== undefined && followed === undefined) throw stdError('EEXIST', 'cp', parent)
    if (there !== undefined && followed !== undefined) {
      if (there.isSymbolicLink()) {
        const current = fs.readlinkSync(dest)
        // is_directory of the target as the link holds it (relative: from the working directory).
        if (status(raw)?.isDirectory() === true && isInsideDir(raw, current)) {
          throw plainError('ERR_FS_CP_EINVAL', `Cannot copy ${raw} to a subdirectory of self ${current}`)
        }
        if (followed.isDirectory() && isInsideDir(current, raw)) {
          throw plainError('ERR_FS_CP_SYMLINK_TO_SUBDIRECTORY', `cannot overwrite ${current} with ${raw}`)
        }
        replace = true
      } else if (there.isFile() && (!o.dereference || (!o.force && o.errorOnExist))) {
        throw stdError('EEXIST', 'cp', dest)
      } else throw stdError('EEXIST', 'cp', parent)
    }
    const dir = dirname(src)
    const absolute = isAbsolute(raw) ? raw : `${isAbsolute(dir) ? dir : `${process.cwd()}${sep}${dir}`}${sep}${raw}`
    plan.after.links.push([weaklyCanonical(absolute), rel, replace])
    madeAfterIn(plan, rel)
    return false
  }
  if (entry.type !== 'file') return false // devices, FIFOs, sockets: left out
  const times = () => o.preserveTimestamps && plan.after.exactTimes.push(rel)
  if (there === undefined) {
    times()
    return true
  }
  // copy_file: what is there, followed; a non-file is ENOTSUP, the source itself EEXIST.
  let followed: fs.Stats | undefined
  try {
    followed = status(dest)
  } catch (e) {
    throw stdError((e as NodeJS.ErrnoException).code ?? 'EIO', 'cp', parent)
  }
  if (followed !== undefined && !followed.isFile()) throw stdError('ENOTSUP', 'cp', parent)
  if (followed !== undefined && same(followed, fs.statSync(src))) throw eexist(dest)
  if (!o.force && o.errorOnExist) throw eexist(dest)
  if (!o.force) {
    // skip_existing, and the source's times set all the same (through a link, where one is):
    // a dangling one is utime's ENOENT.
    if (o.preserveTimestamps && followed === undefined) throw fsError('ENOENT', 'utime', { path: dest })
    if (!there.isSymbolicLink()) times()
    return false
  }
  // Over a symlink Node 22 writes through it (or creates what a dangling one names): replaced here.
  times()
  return true
}

/**
 * Node 22's walk with a filter, a file (or device) over an existing entry with force:
 * cpSyncOverrideFile removes what is there (an empty directory too: rmdir; ENOTEMPTY as
 * 'unlink' where it is not), then copies: copy_file without a mode (a device is ENOTSUP),
 * copyFile with one; times to the microsecond.
 */
export function overrideFile(c: EntryContext, rel: string, dest: string, entry: TreeEntry): boolean {
  const { o, plan } = c
  const there = fs.lstatSync(dest)
  if (there.isDirectory()) {
    if (fs.readdirSync(dest).length > 0) throw stdError('ENOTEMPTY', 'unlink', dest)
    removeDir(c.destRoot, rel)
  }
  if (o.preserveTimestamps) plan.after.exactTimes.push(rel)
  if (!isDevice(entry.mode)) return true
  if (o.mode === 0) throw stdError('ENOTSUP', 'cp', dest)
  plan.after.devices.push([rel, !there.isDirectory()])
  madeAfterIn(plan, rel)
  return false
}

/**
 * Node 22's walk with a filter, a directory over an existing non-directory `there`: it lists
 * the source directory and copies the entries its filter keeps to dest/name; the first one's
 * stat (ENOTDIR, under a file) or, under a dangling link, its making (ENOENT) fails. With none,
 * nothing is done. A link to a directory there is copied into (followed): not here.
 */
export function underNonDir(o: Resolved, src: string, dest: string, there: fs.Stats): false {
  if (there.isSymbolicLink() && status(dest)?.isDirectory() === true) {
    throw cpError('ERR_FS_CP_DIR_TO_NON_DIR', `cannot overwrite non-directory ${dest} with directory ${src}`, dest)
  }
  for (const name of fs.readdirSync(src)) {
    const [from, to] = [join(src, name), join(dest, name)]
    if (o.filter !== undefined) {
      const keep = o.filter(from, to)
      if (keep instanceof Promise) throw invalidReturn(keep)
      if (!keep) continue
    }
    const st = stat(o, from, true) as fs.Stats
    // lstat's ENOTDIR below a file is thrown; stat's (dereference) is "nothing there", and so is
    // what is below a dangling link: then making it fails, ENOTDIR or ENOENT.
    stat(o, to)
    let code = 'ENOENT'
    try {
      if (status(dest) !== undefined) code = 'ENOTDIR'
    } catch (e) {
      code = (e as NodeJS.ErrnoException).code ?? code
    }
    if (st.isDirectory()) throw fsError(code, 'mkdir', { path: to })
    if (st.isSymbolicLink()) throw fsError(code, 'symlink', { path: linkTarget(o, from), dest: to })
    checkType(st.mode, to)
    throw fsError(code, 'copyfile', { path: from, dest: to })
  }
  return false
}

/**
 * Node's JS walks follow links (dereference) without noticing a directory met again: a link to
 * an enclosing directory is walked into again and again, each time one link and one segment
 * longer, until a path is too long (ENAMETOOLONG) or has more than 40 links (ELOOP). cloneTree
 * leaves such a link out; here it is the error Node meets first. (Node 20's walks and Node 22's
 * cp and promises.cp too: fs.ts asks for every walk but Node 22's C++.)
 */
export function checkCycle(src: string, dest: string): void {
  if (!fs.lstatSync(src).isSymbolicLink()) return
  const real = fs.realpathSync(src)
  let enclosing = dirname(src)
  for (; ; enclosing = dirname(enclosing)) {
    if (fs.realpathSync(enclosing) === real) break
    if (dirname(enclosing) === enclosing) return // not an enclosing directory: no cycle
  }
  let links = 0
  for (let p = src; p !== dirname(p); p = dirname(p)) if (fs.lstatSync(p).isSymbolicLink()) links++
  const rounds = Math.max(41 - links, 0)
  const segment = src.length - enclosing.length
  const tooLong = Math.max(src.length, dest.length) + rounds * segment >= PATH_MAX
  throw fsError(tooLong ? 'ENAMETOOLONG' : 'ELOOP', 'stat', { path: src })
}

const PATH_MAX = process.platform === 'darwin' ? 1024 : 4096
