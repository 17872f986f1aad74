// clonefile/fs's checks, as Node's fs.cp makes them: its options and paths (validated,
// validPath), its ERR_FS_CP_* errors, and its checks of a source entry and its destination
// (Node 20's per entry, Node 22's cpSync root in C++: checkRootNative). They only read.
import * as fs from 'node:fs'
import { constants } from 'node:fs'
import { constants as os } from 'node:os'
import { dirname, isAbsolute, resolve, sep, toNamespacedPath } from 'node:path'
import { fileURLToPath } from 'node:url'
import { inspect } from 'node:util'
import { invalidArgType, outOfRange } from './errors.js'
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
export type Resolved = Required<Omit<CpOptions, 'filter'>> & Pick<CpOptions, 'filter'>
export type Path = string | Buffer | URL

const defaults = { dereference: false, errorOnExist: false, filter: undefined, force: true, mode: 0, preserveTimestamps: false, recursive: false, verbatimSymlinks: false }
const booleans = ['dereference', 'errorOnExist', 'force', 'preserveTimestamps', 'recursive', 'verbatimSymlinks'] as const
const MODE_MAX = constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE | constants.COPYFILE_FICLONE_FORCE

export function codedTypeError(code: string, message: string): TypeError {
  return Object.assign(new TypeError(message), { code })
}

/** Node's validateCpOptions: unknown keys kept and ignored, the known ones checked. */
export function validated(options: unknown): Resolved {
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

export function described(value: unknown): string {
  if (value === null || value === undefined) return `Received ${value}`
  if (typeof value === 'function') return `Received function ${value.name}`
  if (typeof value === 'object') return `Received an instance of ${value.constructor?.name ?? 'Object'}`
  return `Received type ${typeof value} (${typeof value === 'string' ? `'${value}'` : String(value)})`
}

/**
 * Node's getValidatedPath: a string, Buffer or file: URL without null bytes. A Buffer stays one:
 * the filter gets it, and fs.cp's path checks then refuse it (see planRoot).
 */
export function validPath(name: string, value: unknown): string | Buffer {
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
export type Kind = keyof typeof kinds

/** ERR_FS_EISDIR carries errno EINVAL with code EISDIR, as Node's does. */
const errnoOf = (kind: Kind, code: string): number => (kind === 'ERR_FS_EISDIR' ? os.errno.EINVAL : os.errno[code as keyof typeof os.errno])

export function cpError(kind: Kind, message: string, path: string): Error {
  const [prefix, code] = kinds[kind]
  const errno = errnoOf(kind, code)
  const info = { message, path, syscall: 'cp', errno, code }
  const err = new Error(`${prefix}: cp returned ${code} (${message}) ${path}`)
  return Object.assign(err, { name: 'SystemError', code: kind, errno, syscall: 'cp', path, info })
}

export const plainError = (code: string, message: string): Error => Object.assign(new Error(message), { code })

/**
 * Node 22's cpSyncCheckPaths (std::filesystem): the root's checks, in its order, with its
 * messages. It has dereference the wrong way round for src (followed without it, not with it,
 * where a symlink counts as a directory) but not for dest, and compares the two followed.
 */
export function checkRootNative(o: Resolved, src: string, dest: string): void {
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
export const stat = (o: Resolved, path: string | Buffer, throwing = false): fs.Stats | undefined =>
  o.dereference ? fs.statSync(path, { throwIfNoEntry: throwing }) : fs.lstatSync(path, { throwIfNoEntry: throwing })

export const same = (a: fs.Stats, b: fs.Stats): boolean => a.ino === b.ino && a.dev === b.dev

/** dest is src or below it, by their paths' components. */
export function isSubdir(src: string, dest: string): boolean {
  const s = resolve(src).split(sep).filter(Boolean)
  const d = resolve(dest).split(sep).filter(Boolean)
  return s.every((part, i) => d[i] === part)
}

/** The checks fs.cp makes of a source entry and its destination before it copies it. */
export function checkPair(src: string, dest: string, s: fs.Stats, d: fs.Stats | undefined): void {
  if (d !== undefined) {
    if (same(s, d)) throw cpError('ERR_FS_CP_EINVAL', 'src and dest cannot be the same', dest)
    if (s.isDirectory() && !d.isDirectory()) throw cpError('ERR_FS_CP_DIR_TO_NON_DIR', `cannot overwrite non-directory ${dest} with directory ${src}`, dest)
    if (!s.isDirectory() && d.isDirectory()) throw cpError('ERR_FS_CP_NON_DIR_TO_DIR', `cannot overwrite directory ${dest} with non-directory ${src}`, dest)
  }
  if (s.isDirectory() && isSubdir(src, dest)) throw cpError('ERR_FS_CP_EINVAL', `cannot copy ${src} to a subdirectory of self ${dest}`, dest)
}

/** dest's existing ancestors, up to src's parent: none may be src (a second path to it). */
export function checkParents(src: string, s: fs.Stats, dest: string, error?: () => Error): void {
  const stop = resolve(dirname(src))
  for (let child = dest, dir = resolve(dirname(dest)); dir !== stop && dir !== dirname(dir); child = dir, dir = dirname(dir)) {
    const d = fs.statSync(dir, { throwIfNoEntry: false })
    if (d === undefined) return
    // Node names the path below the ancestor that is src.
    if (same(s, d)) throw error?.() ?? cpError('ERR_FS_CP_EINVAL', `cannot copy ${src} to a subdirectory of self ${child}`, child)
  }
}

/** What fs.cp does with a symlink source: the target it will be given (absolute, unless verbatim). */
export function linkTarget(o: Resolved, src: string): string {
  const target = fs.readlinkSync(src)
  return o.verbatimSymlinks || isAbsolute(target) ? target : resolve(dirname(src), target)
}

/**
 * fs.cp's rules for a symlink over an existing entry: an existing symlink is replaced (whatever
 * `force` says), anything else is symlink(2)'s EEXIST; a link into itself is refused.
 */
export function checkLinkOver(target: string, src: string, dest: string, sync: boolean): void {
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

export const S_IFMT = 0o170000
const fileTypes = new Set([0o100000, 0o020000, 0o060000]) // regular, character and block device

/** An entry fs.cp refuses by its type (st_mode); those it copies pass. */
export function checkType(mode: number, dest: string): void {
  const type = mode & S_IFMT
  if (type === 0o140000) throw cpError('ERR_FS_CP_SOCKET', `cannot copy a socket file: ${dest}`, dest)
  if (type === 0o010000) throw cpError('ERR_FS_CP_FIFO_PIPE', `cannot copy a FIFO pipe: ${dest}`, dest)
  if (!fileTypes.has(type) && type !== 0o040000 && type !== 0o120000) {
    throw cpError('ERR_FS_CP_UNKNOWN', `cannot copy an unknown file type: ${dest}`, dest)
  }
}

export const isDevice = (mode: number): boolean => (mode & S_IFMT) === 0o020000 || (mode & S_IFMT) === 0o060000

export function invalidReturn(value: unknown): TypeError {
  return codedTypeError('ERR_INVALID_RETURN_VALUE', `Expected boolean to be returned from the "filter" function but got ${described(value).replace(/^Received /, '')}.`)
}

