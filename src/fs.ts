// clonefile/fs: node:fs's cp, cpSync and promises.cp, with their signatures, validation, error
// codes and results, cloning file data where the filesystem can. A thin layer of policy: Node's
// checks before anything is written and per entry (through cloneTree's filter), then cloneTree
// (or, for one file, cloneTree's single-file path) makes everything. Only what cloneTree cannot
// express is made after it (fs-after.ts): a symlink whose relative target fs.cp makes absolute,
// a device fs.cp copies as a file, files' times as fs.cp's utimes leaves them.
import * as fs from 'node:fs'
import { constants } from 'node:fs'
import { constants as os } from 'node:os'
import { dirname, isAbsolute, join, resolve, sep, toNamespacedPath } from 'node:path'
import { fileURLToPath } from 'node:url'
import { inspect } from 'node:util'
import { cloneTreeWith, cloneTreeWithSync } from './tree.js'
import { makeAfter, nothingAfter, type After } from './fs-after.js'
import { invalidArgType, outOfRange } from './errors.js'
import type { CloneTreeOptions, TreeEntry } from './types.js'

/** fs.cp's options (node:fs's CopyOptions), every field with Node's default. */
export interface CpOptions {
  /** follow symlinks @default false */
  dereference?: boolean
  /** with force false, an existing destination is an error @default false */
  errorOnExist?: boolean
  /** entries for which it returns false are left out; in cp and promises.cp it may return a promise @default undefined */
  filter?: (source: string, destination: string) => boolean | Promise<boolean>
  /** replace existing files and symlinks @default true */
  force?: boolean
  /** COPYFILE_EXCL, COPYFILE_FICLONE, COPYFILE_FICLONE_FORCE, as copyFile's @default 0 */
  mode?: number
  /** keep files' access and modification times @default false */
  preserveTimestamps?: boolean
  /** copy directories @default false */
  recursive?: boolean
  /** keep symlinks' targets as they are (relative ones are otherwise made absolute) @default false */
  verbatimSymlinks?: boolean
}
export type CpSyncOptions = Omit<CpOptions, 'filter'> & { filter?: (source: string, destination: string) => boolean }
type Resolved = Required<Omit<CpOptions, 'filter'>> & Pick<CpOptions, 'filter'>
type Path = string | Buffer | URL

const defaults = { dereference: false, errorOnExist: false, filter: undefined, force: true, mode: 0, preserveTimestamps: false, recursive: false, verbatimSymlinks: false }
const booleans = ['dereference', 'errorOnExist', 'force', 'preserveTimestamps', 'recursive', 'verbatimSymlinks'] as const
const MODE_MAX = constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE | constants.COPYFILE_FICLONE_FORCE

function codedTypeError(code: string, message: string): TypeError {
  return Object.assign(new TypeError(message), { code })
}

/** Node's validateCpOptions: unknown keys kept and ignored, the known ones checked. */
function validated(options: unknown): Resolved {
  if (options === undefined) return { ...defaults }
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw invalidArgType('options', 'of type object', options)
  const o = { ...defaults, ...options } as Resolved
  for (const key of booleans) {
    if (typeof o[key] !== 'boolean') {
      throw codedTypeError('ERR_INVALID_ARG_TYPE', `The "options.${key}" property must be of type boolean. ${described(o[key])}`)
    }
  }
  if (o.mode === undefined || o.mode === null) o.mode = 0
  if (typeof o.mode !== 'number') throw codedTypeError('ERR_INVALID_ARG_TYPE', `The "mode" argument must be of type number. ${described(o.mode)}`)
  if (!Number.isInteger(o.mode)) throw outOfRange('mode', 'an integer', o.mode)
  if (o.mode < 0 || o.mode > MODE_MAX) throw outOfRange('mode', `>= 0 && <= ${MODE_MAX}`, o.mode)
  if (o.dereference && o.verbatimSymlinks) {
    throw codedTypeError('ERR_INCOMPATIBLE_OPTION_PAIR', 'Option "dereference" cannot be used in combination with option "verbatimSymlinks"')
  }
  if (o.filter !== undefined && typeof o.filter !== 'function') {
    throw codedTypeError('ERR_INVALID_ARG_TYPE', `The "options.filter" property must be of type function. ${described(o.filter)}`)
  }
  return o
}

function described(value: unknown): string {
  if (value === null || value === undefined) return `Received ${value}`
  if (typeof value === 'function') return `Received function ${value.name}`
  if (typeof value === 'object') return `Received an instance of ${value.constructor?.name ?? 'Object'}`
  return `Received type ${typeof value} (${typeof value === 'string' ? `'${value}'` : String(value)})`
}

/**
 * Node's getValidatedPath: a string, Buffer or file: URL without null bytes. A Buffer stays one:
 * the filter gets it, and fs.cp's path checks then refuse it (see planRoot).
 */
function validPath(name: string, value: unknown): string | Buffer {
  let path: string | Buffer
  if (value instanceof URL) path = fileURLToPath(value)
  else if (typeof value === 'string' || Buffer.isBuffer(value)) path = value
  else throw invalidArgType(name, 'of type string or an instance of Buffer or URL', value)
  if (typeof path === 'string' ? path.includes('\0') : path.includes(0)) {
    throw codedTypeError('ERR_INVALID_ARG_VALUE', `The argument '${name}' must be a string, Uint8Array, or URL without null bytes. Received ${inspect(path)}`)
  }
  return typeof path === 'string' ? toNamespacedPath(path) : path
}

// ---- Node's ERR_FS_CP_* errors: a SystemError with syscall 'cp' ----

const kinds = {
  ERR_FS_CP_EINVAL: ['Invalid src or dest', 'EINVAL'],
  ERR_FS_CP_DIR_TO_NON_DIR: ['Cannot overwrite non-directory with directory', 'EISDIR'],
  ERR_FS_CP_NON_DIR_TO_DIR: ['Cannot overwrite directory with non-directory', 'ENOTDIR'],
  ERR_FS_CP_EEXIST: ['Target already exists', 'EEXIST'],
  ERR_FS_EISDIR: ['Path is a directory', 'EISDIR'],
  ERR_FS_CP_SOCKET: ['Cannot copy a socket file', 'EINVAL'],
  ERR_FS_CP_FIFO_PIPE: ['Cannot copy a FIFO pipe', 'EINVAL'],
  ERR_FS_CP_UNKNOWN: ['Cannot copy an unknown file type', 'EINVAL'],
  ERR_FS_CP_SYMLINK_TO_SUBDIRECTORY: ['Cannot overwrite symlink in subdirectory of self', 'EINVAL'],
} as const
type Kind = keyof typeof kinds

/** ERR_FS_EISDIR carries errno EINVAL with code EISDIR, as Node's does. */
const errnoOf = (kind: Kind, code: string): number => (kind === 'ERR_FS_EISDIR' ? os.errno.EINVAL : os.errno[code as keyof typeof os.errno])

function cpError(kind: Kind, message: string, path: string): Error {
  const [prefix, code] = kinds[kind]
  const errno = errnoOf(kind, code)
  const info = { message, path, syscall: 'cp', errno, code }
  const err = new Error(`${prefix}: cp returned ${code} (${message}) ${path}`)
  return Object.assign(err, { name: 'SystemError', code: kind, errno, syscall: 'cp', path, info })
}

// ---- what differs by the Node it runs on ----

/**
 * node:fs's cp is the running Node's, and Node 22 changed parts of it. cpSync's root is checked
 * in C++ there (cpSyncCheckPaths, checkRootNative below): plain Errors with a code and messages
 * of their own, src stat-ed the other way round from `dereference`, Buffers taken. cp and
 * promises.cp refuse an existing directory under errorOnExist without force
 * (ERR_FS_CP_EEXIST), where Node 20 merges into it. What Node 22's cpSync then does with a
 * directory (C++'s cpSyncCopyDir) is not imitated: clonefile/fs copies it as Node 20 does.
 */
const major = Number(process.versions.node.split('.')[0])
const rules = {
  nativeRootChecks: major >= 22,
  existingDirIsEexist: major >= 22,
}

const plainError = (code: string, message: string): Error => Object.assign(new Error(message), { code })

/**
 * Node 22's cpSyncCheckPaths (std::filesystem): the root's checks, in its order, with its
 * messages. It has dereference the wrong way round for src (followed without it, not with it,
 * where a symlink counts as a directory) but not for dest, and compares the two followed.
 */
function checkRootNative(o: Resolved, src: string, dest: string): void {
  const s = native(() => (o.dereference ? fs.lstatSync(src) : fs.statSync(src)))
  const srcIsDir = s.isDirectory() || s.isSymbolicLink()
  const d = native(() => (o.dereference ? fs.statSync(dest, { throwIfNoEntry: false }) : fs.lstatSync(dest, { throwIfNoEntry: false })))
  const slashed = src.endsWith(sep) ? src : src + sep
  if (d !== undefined) {
    // std::filesystem::equivalent: both followed, one missing is not the same; where a stat
    // fails otherwise (ELOOP) Node 22 aborts: that error here.
    const [a, b] = [native(() => fs.statSync(src, { throwIfNoEntry: false })), native(() => fs.statSync(dest, { throwIfNoEntry: false }))]
    if (a !== undefined && b !== undefined && same(a, b)) throw plainError('ERR_FS_CP_EINVAL', `src and dest cannot be the same ${dest}`)
    if (srcIsDir && !d.isDirectory()) throw plainError('ERR_FS_CP_DIR_TO_NON_DIR', `Cannot overwrite non-directory ${dest} with directory ${src}`)
    if (!srcIsDir && d.isDirectory()) throw plainError('ERR_FS_CP_NON_DIR_TO_DIR', `Cannot overwrite directory ${dest} with non-directory ${src}`)
  }
  const into = plainError('ERR_FS_CP_EINVAL', `Cannot copy ${slashed} to a subdirectory of self ${dest}`)
  if (srcIsDir && isSubdir(src, dest)) throw into
  // Node 22 compares dest's parent with src; an ancestor further up it copies into itself
  // until a name is too long and the process aborts: refused here with the parent's error.
  if (s.isDirectory()) checkParents(src, s, dest, () => into)
  if (srcIsDir && !o.recursive) throw plainError('ERR_FS_EISDIR', `Recursive option not enabled, cannot copy a directory: ${slashed}`)
  const type = s.mode & S_IFMT
  if (type === 0o140000) throw plainError('ERR_FS_CP_SOCKET', `Cannot copy a socket file: ${dest}`)
  if (type === 0o010000) throw plainError('ERR_FS_CP_FIFO_PIPE', `Cannot copy a FIFO pipe: ${dest}`)
}

/** A stat of cpSyncCheckPaths: its errors name the syscall lstat, whichever it made. */
function native<T>(f: () => T): T {
  try {
    return f()
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    if (err?.syscall === 'stat') {
      err.syscall = 'lstat'
      err.message = err.message.replace(', stat ', ', lstat ')
    }
    throw err
  }
}

// ---- Node's rules ----

/** stat or lstat as `dereference` says: undefined where nothing is there, unless `throwing`. */
const stat = (o: Resolved, path: string | Buffer, throwing = false): fs.Stats | undefined =>
  o.dereference ? fs.statSync(path, { throwIfNoEntry: throwing }) : fs.lstatSync(path, { throwIfNoEntry: throwing })

const same = (a: fs.Stats, b: fs.Stats): boolean => a.ino === b.ino && a.dev === b.dev

/** A directory over an existing one: merged, or (Node 22's cp and promises.cp) ERR_FS_CP_EEXIST. */
function existingDir(o: Resolved, dest: string, sync: boolean): void {
  if (!sync && rules.existingDirIsEexist && o.errorOnExist && !o.force) throw cpError('ERR_FS_CP_EEXIST', `${dest} already exists`, dest)
}

/** dest is src or below it, by their paths' components. */
function isSubdir(src: string, dest: string): boolean {
  const s = resolve(src).split(sep).filter(Boolean)
  const d = resolve(dest).split(sep).filter(Boolean)
  return s.every((part, i) => d[i] === part)
}

/** The checks fs.cp makes of a source entry and its destination before it copies it. */
function checkPair(src: string, dest: string, s: fs.Stats, d: fs.Stats | undefined): void {
  if (d !== undefined) {
    if (same(s, d)) throw cpError('ERR_FS_CP_EINVAL', 'src and dest cannot be the same', dest)
    if (s.isDirectory() && !d.isDirectory()) throw cpError('ERR_FS_CP_DIR_TO_NON_DIR', `cannot overwrite non-directory ${dest} with directory ${src}`, dest)
    if (!s.isDirectory() && d.isDirectory()) throw cpError('ERR_FS_CP_NON_DIR_TO_DIR', `cannot overwrite directory ${dest} with non-directory ${src}`, dest)
  }
  if (s.isDirectory() && isSubdir(src, dest)) throw cpError('ERR_FS_CP_EINVAL', `cannot copy ${src} to a subdirectory of self ${dest}`, dest)
}

/** dest's existing ancestors, up to src's parent: none may be src (a second path to it). */
function checkParents(src: string, s: fs.Stats, dest: string, error?: () => Error): void {
  const stop = resolve(dirname(src))
  for (let child = dest, dir = resolve(dirname(dest)); dir !== stop && dir !== dirname(dir); child = dir, dir = dirname(dir)) {
    const d = fs.statSync(dir, { throwIfNoEntry: false })
    if (d === undefined) return
    // Node names the path below the ancestor that is src.
    if (same(s, d)) throw error?.() ?? cpError('ERR_FS_CP_EINVAL', `cannot copy ${src} to a subdirectory of self ${child}`, child)
  }
}

/** What fs.cp does with a symlink source: the target it will be given (absolute, unless verbatim). */
function linkTarget(o: Resolved, src: string): string {
  const target = fs.readlinkSync(src)
  return o.verbatimSymlinks || isAbsolute(target) ? target : resolve(dirname(src), target)
}

/**
 * fs.cp's rules for a symlink over an existing entry: an existing symlink is replaced (whatever
 * `force` says), anything else is symlink(2)'s EEXIST; a link into itself is refused.
 */
function checkLinkOver(target: string, src: string, dest: string, sync: boolean): void {
  let there: string
  try {
    there = fs.readlinkSync(dest)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EINVAL') fs.symlinkSync(target, dest) // throws EEXIST, as Node's does
    throw e
  }
  const resolvedDest = isAbsolute(there) ? there : resolve(dirname(dest), there)
  if (isSubdir(target, resolvedDest)) throw cpError('ERR_FS_CP_EINVAL', `cannot copy ${target} to a subdirectory of self ${resolvedDest}`, dest)
  // Node's cpSync asks whether dest (followed) is a directory, its cp whether src is: each
  // fails as its reference does on a dangling link.
  if (fs.statSync(sync ? dest : src).isDirectory() && isSubdir(resolvedDest, target)) {
    throw cpError('ERR_FS_CP_SYMLINK_TO_SUBDIRECTORY', `cannot overwrite ${resolvedDest} with ${target}`, dest)
  }
}

const S_IFMT = 0o170000
const fileTypes = new Set([0o100000, 0o020000, 0o060000]) // regular, character and block device

/** An entry fs.cp refuses by its type (st_mode); those it copies pass. */
function checkType(mode: number, dest: string): void {
  const type = mode & S_IFMT
  if (type === 0o140000) throw cpError('ERR_FS_CP_SOCKET', `cannot copy a socket file: ${dest}`, dest)
  if (type === 0o010000) throw cpError('ERR_FS_CP_FIFO_PIPE', `cannot copy a FIFO pipe: ${dest}`, dest)
  if (!fileTypes.has(type) && type !== 0o040000 && type !== 0o120000) {
    throw cpError('ERR_FS_CP_UNKNOWN', `cannot copy an unknown file type: ${dest}`, dest)
  }
}

const isDevice = (mode: number): boolean => (mode & S_IFMT) === 0o020000 || (mode & S_IFMT) === 0o060000

/**
 * cloneTree's options that give fs.cp's results: mode kept (setuid/setgid too, by the hooks),
 * nothing else; fs.cp's times are set after (fs-after.ts), for files only.
 */
function treeOptions(o: Resolved, overwrite: 'error' | 'replace', filter: CloneTreeOptions['filter']): CloneTreeOptions {
  return {
    overwrite,
    mode: (o.mode & constants.COPYFILE_FICLONE_FORCE) === constants.COPYFILE_FICLONE_FORCE ? 'always' : 'auto',
    preserve: { mode: true, timestamps: false, ownership: false, xattr: false, links: false, specials: false },
    dereference: o.dereference,
    filter,
  }
}

/** One run of fs.cp: the plan for the root, shared by the sync and async drivers. */
interface Plan {
  /** nothing to do: the filter left the root out, or force: false kept an existing file */
  done?: true
  /** the root is a symlink: made here */
  link?: { target: string; replace: boolean }
  /** the root is a file or directory: cloneTree's arguments */
  tree?: CloneTreeOptions
  /** what is made after cloneTree */
  after: After
  /** directories that were there before (relative to dest): fs.cp leaves their mode and times */
  kept: Set<string>
  /** the source directories' st_mode, relative to src: for those that get entries after cloneTree */
  dirModes: Map<string, number>
}

const newPlan = (): Plan => ({ after: nothingAfter(), kept: new Set(), dirModes: new Map() })

/** cloneTree's hooks: directories merged into keep their metadata, and so, until fs-after.ts
 * sets it, do those that get entries after cloneTree; setuid/setgid kept, as fs.cp's chmod does. */
const hooks = (plan: Plan) => ({ keepsMetadata: (rel: string) => plan.kept.has(rel) || plan.after.modes.has(rel), keepsSetId: true })

/** An entry made after cloneTree in the directory of `rel`: that directory's mode waits for it. */
function madeAfterIn(plan: Plan, rel: string): void {
  const slash = rel.lastIndexOf('/')
  const dir = slash < 0 ? '' : rel.slice(0, slash)
  const mode = plan.dirModes.get(dir)
  if (rel !== '' && !plan.kept.has(dir) && mode !== undefined) plan.after.modes.set(dir, mode)
}

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
    if (d !== undefined) existingDir(o, dest, sync)
    if (d !== undefined) plan.kept.add('')
    plan.dirModes.set('', s.mode)
    plan.tree = treeOptions(o, d === undefined ? 'error' : 'replace', entryFilter(o, src, dest, d !== undefined, plan, sync))
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
    if (isDevice(s.mode)) plan.after.devices.push(['', true])
    else fs.unlinkSync(dest)
  } else if (isDevice(s.mode)) plan.after.devices.push(['', false])
  if (o.preserveTimestamps) plan.after.times.push('')
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
 * fs-after.ts, with the files whose times it sets.
 */
function entryFilter(o: Resolved, srcRoot: string, destRoot: string, merging: boolean, plan: Plan, sync: boolean): CloneTreeOptions['filter'] {
  const after = plan.after
  const decide = (rel: string, src: string, dest: string, entry: TreeEntry): boolean => {
    // A name that is not UTF-8: Node reads it as a string (U+FFFD for the bytes that are not)
    // and stats that path, which is not there: its error. Where it happens to be there, Node
    // copies that entry, which it copies under its own name anyway. A path past PATH_MAX: the
    // stat's ENAMETOOLONG, Node's too.
    if (entry.rawPath !== undefined || tooLong(src)) {
      stat(o, src, true)
      return false
    }
    if (tooLong(dest)) stat(o, dest)
    // Following links, a symlink the walk still lists as one dangles (or loops): stat(2)'s error, as Node's.
    if (o.dereference && entry.type === 'symlink') fs.statSync(src)
    const d = merging ? stat(o, dest) : undefined
    // Node checks the pair before the source's type.
    if (d !== undefined) checkPair(src, dest, o.dereference ? fs.statSync(src) : fs.lstatSync(src), d)
    checkType(entry.mode, dest)
    if (entry.type === 'directory') {
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
    if (o.preserveTimestamps) after.times.push(rel)
    if (!isDevice(entry.mode)) return true
    after.devices.push([rel, d !== undefined])
    madeAfterIn(plan, rel)
    return false
  }
  // cloneTree names entries below src made absolute; Node joins each name to src as given,
  // which for names (no '.', '..' or empty ones) is the root joined once, then the rest.
  const base = resolve(srcRoot)
  const skip = base === sep ? 1 : base.length + 1
  const [srcBase, destBase] = [join(srcRoot, 'x').slice(0, -1), join(destRoot, 'x').slice(0, -1)]
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

function invalidReturn(value: unknown): TypeError {
  return codedTypeError('ERR_INVALID_RETURN_VALUE', `Expected boolean to be returned from the "filter" function but got ${described(value).replace(/^Received /, '')}.`)
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
    if (plan.tree !== undefined) cloneTreeWithSync(from, to, plan.tree, hooks(plan))
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
