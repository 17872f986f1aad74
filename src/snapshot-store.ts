// Where snapshots live, and what every snapshot operation shares: the store of a directory, its
// records, its lock, and the sweep of what a killed run left there.
//
// Layout: `<store>/<name>/` holds a snapshot's tree and `<store>/.<name>.json` its record, so
// listing needs no database. A record is written before its tree exists, and a snapshot is
// listed only when both are there: a run killed between the two leaves a record without a tree,
// which the next mutating run removes. Every run that changes a store holds `<store>/.lock`
// (cf_lock: an OFD lock, gone with its process) for its whole life, so whatever temporary it
// finds there belongs to a dead run.
import * as fs from 'node:fs'
import { constants } from 'node:os'
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path'
import { CWD, type Binding } from './binding.js'
import { fromNative, fsError, invalidArgType, invalidArgValue } from './errors.js'
import { optionalPath, toPath, type OptionTable, type Spec } from './args.js'
import { filesystemName } from './fallback.js'
import { removeTreeAt } from './remove.js'
import { TEMP_PREFIX } from './temp.js'
import type { PathLike, Snapshot } from './types.js'

const { EAGAIN, EWOULDBLOCK, ENOENT, EEXIST } = constants.errno
/** The inode number of a btrfs subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID). */
export const SUBVOLUME_INO = 256

/** The `store` option every snapshot call takes. */
export const storeSpec: Spec<PathLike | undefined> = optionalPath()
/** The options of the calls that take nothing else (list, diff, delete). */
export const storeTable: OptionTable<{ store: PathLike | undefined }> = { store: storeSpec }

/** A directory and its store, both absolute. */
export interface StoreRef {
  source: string
  store: string
  /** the caller named the store (errors then name `store`, else `--store`) */
  given: boolean
}

/** What `<store>/.<name>.json` holds. */
interface SnapshotRecord {
  source: string
  created: string
  method: Snapshot['method']
  readOnly: boolean
  /** where the tree is when it is not `<store>/<name>` (a state kept beside dir by restore) */
  path?: string
  /** when a clone snapshot's tree was complete (its files' ctimes are before it): the record is
   * written again with it once the tree is in place */
  completed?: string
}

/** The directory, which must exist and be a directory (never a symlink followed), and its store. */
export function storeOf(dir: PathLike, store: PathLike | undefined): StoreRef {
  const source = resolve(toPath('dir', dir).toString())
  const st = fs.lstatSync(source, { throwIfNoEntry: false })
  if (st === undefined) throw fsError('ENOENT', 'snapshot', { path: source })
  if (!st.isDirectory()) throw fsError('ENOTDIR', 'snapshot', { path: source, detail: st.isSymbolicLink() ? 'is a symlink, not a directory (snapshots never follow one: name the directory itself)' : 'not a directory' })
  if (store !== undefined) {
    const at = resolve(toPath('store', store).toString())
    const rel = relative(source, at)
    if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) {
      throw fsError('EINVAL', 'snapshot', { path: source, dest: at, detail: 'the store cannot be inside the directory it keeps snapshots of (each snapshot would hold the ones before it)' })
    }
    return { source, store: at, given: true }
  }
  return { source, store: join(dirname(source), `.${basename(source)}.snapshots`), given: false }
}

/** A snapshot's name: a plain file name, not hidden, as given or the UTC time. */
export function checkName(name: unknown, what = 'name'): string {
  if (typeof name !== 'string') throw invalidArgType(what, 'string', name)
  if (name === '' || name.includes('/') || name.includes('\0') || name.startsWith('.') || name.startsWith(TEMP_PREFIX) || Buffer.byteLength(name) > 200) {
    throw invalidArgValue(what, name, "must be a plain file name: not empty, no '/', not starting with '.', at most 200 bytes")
  }
  return name
}

/** `2026-12-02T23-45-12.345Z`: sortable, and safe in a file name everywhere. */
export function timeName(date: Date): string {
  return date.toISOString().replace(/:/g, '-')
}

const recordName = (name: string): string => `.${name}.json`

function readRecord(store: string, name: string): SnapshotRecord | undefined {
  let text: string
  try {
    text = fs.readFileSync(join(store, recordName(name)), 'utf8')
  } catch {
    return undefined
  }
  try {
    const r = JSON.parse(text) as Partial<SnapshotRecord>
    if (typeof r.source !== 'string' || typeof r.created !== 'string' || (r.method !== 'clone' && r.method !== 'subvolume')) return undefined
    return {
      source: r.source, created: r.created, method: r.method, readOnly: r.readOnly === true,
      ...(typeof r.path === 'string' ? { path: r.path } : {}), ...(typeof r.completed === 'string' ? { completed: r.completed } : {}),
    }
  } catch {
    return undefined
  }
}

/** Where restore keeps a replaced state when the store is on another subvolume than dir's
 * parent: beside dir. A record may name no other place (a planted record must not make
 * delete or prune remove a tree elsewhere). */
export const besideDir = (source: string, name: string): string => join(dirname(source), `.${basename(source)}.${name}`)

function toSnapshot(store: string, name: string, r: SnapshotRecord): Snapshot {
  return { name, path: r.path ?? join(store, name), source: r.source, method: r.method, created: new Date(r.created), readOnly: r.readOnly }
}

/** The record of `name`, written whole under a temporary name and renamed into place. */
export function writeRecord(store: string, s: Snapshot, completed?: Date): void {
  const record: SnapshotRecord = { source: s.source, created: s.created.toISOString(), method: s.method, readOnly: s.readOnly }
  if (completed !== undefined) record.completed = completed.toISOString()
  if (s.path !== join(store, s.name)) record.path = s.path
  const temp = join(store, `${TEMP_PREFIX}record-${process.pid}-${Math.random().toString(36).slice(2)}`)
  fs.writeFileSync(temp, `${JSON.stringify(record, null, 2)}\n`, { flag: 'wx', mode: 0o644 })
  try {
    fs.renameSync(temp, join(store, recordName(s.name)))
  } catch (e) {
    fs.rmSync(temp, { force: true })
    throw e
  }
}

/** When the snapshot was started and (a clone snapshot) complete, in ms, from its record. */
export function recordTimes(store: string, name: string): { created: number; completed?: number } | undefined {
  const r = readRecord(store, name)
  if (r === undefined) return undefined
  const created = Date.parse(r.created)
  const completed = r.completed === undefined ? NaN : Date.parse(r.completed)
  if (Number.isNaN(created)) return undefined
  return Number.isNaN(completed) ? { created } : { created, completed }
}

export function removeRecord(store: string, name: string): void {
  fs.rmSync(join(store, recordName(name)), { force: true })
}

/** Every snapshot in the store (a record and its tree) of `source`'s, oldest first. */
export function readStore(store: string, source: string): Snapshot[] {
  let names: string[]
  try {
    names = fs.readdirSync(store)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw e
  }
  const present = new Set(names)
  const out: Snapshot[] = []
  for (const entry of names) {
    const m = /^\.(.+)\.json$/.exec(entry)
    if (m === null) continue
    const name = m[1] as string
    const r = readRecord(store, name)
    if (r === undefined) continue
    const s = toSnapshot(store, name, r)
    if (r.path !== undefined && (!name.startsWith('before-restore-') || r.source !== source || r.path !== besideDir(source, name))) continue
    if (r.path === undefined ? !present.has(name) : fs.lstatSync(r.path, { throwIfNoEntry: false }) === undefined) continue
    out.push(s)
  }
  return out.sort((a, b) => a.created.getTime() - b.created.getTime() || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** The snapshot `name`, or ENOENT naming it and the store. */
export function findSnapshot(ref: StoreRef, name: string): Snapshot {
  checkName(name)
  const s = readStore(ref.store, ref.source).find((x) => x.name === name)
  if (s === undefined) throw fsError('ENOENT', 'snapshot', { path: join(ref.store, name), detail: `no snapshot '${name}' of ${ref.source} in the store ${ref.store}` })
  return s
}

/** A store opened and locked for a run that changes it. */
export interface LockedStore {
  fd: number
  lockFd: number
  release(): void
}

/** Makes the store where missing, opens it (never through a symlink), and takes its lock. */
export function lockStore(binding: Binding, ref: StoreRef, make: boolean): LockedStore {
  if (make) {
    try {
      fs.mkdirSync(ref.store, { mode: 0o755 })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
  }
  let fd: number
  try {
    fd = binding.openDir(CWD, ref.store, 0).fd
  } catch (e) {
    throw fromNative(e, ref.store)
  }
  try {
    const lockFd = takeLock(binding, fd, ref.store)
    return { fd, lockFd, release: () => { binding.unlock(lockFd); binding.closeDirs(Int32Array.of(fd)) } }
  } catch (e) {
    binding.closeDirs(Int32Array.of(fd))
    throw e
  }
}

function takeLock(binding: Binding, fd: number, store: string): number {
  for (let attempt = 0; ; attempt++) {
    try {
      return binding.lock(fd, '.lock', attempt % 2 === 1)
    } catch (e) {
      const errno = (e as { errno?: number }).errno
      if (errno === EAGAIN || errno === EWOULDBLOCK) {
        throw fsError('EBUSY', 'lock', { path: join(store, '.lock'), detail: 'another snapshot run is changing this store; try again when it is done' })
      }
      // No lock file yet (make it), or made by another meanwhile (open it).
      if ((errno !== ENOENT && errno !== EEXIST) || attempt > 4) throw fromNative(e, join(store, '.lock'))
    }
  }
}

/** Whether `path` is on btrfs (the filesystem table of fallback.ts names the statfs type). */
export function onBtrfs(path: string): boolean {
  try {
    return filesystemName({ type: fs.statfsSync(path).type, name: '' }) === 'btrfs'
  } catch {
    return false
  }
}

/** Whether the directory at `path` is a btrfs subvolume's root (never following a symlink):
 * snapshotted and removed with the subvolume ioctls, not file by file. */
export function isSubvolumeRoot(path: string): boolean {
  const st = fs.lstatSync(path, { throwIfNoEntry: false })
  return st !== undefined && st.isDirectory() && st.ino === SUBVOLUME_INO && onBtrfs(path)
}

/** Removes a snapshot's tree (or any tree in the store): a subvolume at once, else file by file. */
export function removeTree(binding: Binding, dirFd: number, dirPath: string, name: string): void {
  const path = join(dirPath, name)
  try {
    if (isSubvolumeRoot(path)) binding.subvolDelete(dirFd, name)
    else removeTreeAt(binding, { dir: dirFd, name: Buffer.from(name).toString('latin1') }, Buffer.from(path).toString('latin1'))
  } catch (e) {
    throw fromNative(e, path)
  }
}

/**
 * Under the store's lock: what dead runs left in it goes. Every writer of a store holds its
 * lock, so a temporary there (a create or delete killed half way, cloneTree's build and lock
 * files within it) is a dead run's; so is a record without a tree (a create killed before its
 * tree was made).
 */
export function sweepStore(binding: Binding, locked: LockedStore, ref: StoreRef): void {
  const names = fs.readdirSync(ref.store)
  for (const name of names) {
    if (!name.startsWith(TEMP_PREFIX)) continue
    const st = fs.lstatSync(join(ref.store, name), { throwIfNoEntry: false })
    if (st?.isDirectory() === true) removeTree(binding, locked.fd, ref.store, name)
    else if (st !== undefined) fs.rmSync(join(ref.store, name), { force: true })
  }
  const present = new Set(fs.readdirSync(ref.store))
  for (const name of present) {
    const m = /^\.(.+)\.json$/.exec(name)
    if (m === null) continue
    const r = readRecord(ref.store, m[1] as string)
    if (r !== undefined && r.path === undefined && !present.has(m[1] as string)) removeRecord(ref.store, m[1] as string)
  }
}

/** For error messages: how the user names the store. */
export const storeHint = (ref: StoreRef): string => (ref.given ? `the store ${ref.store}` : `the default store ${ref.store} (choose another with --store / { store })`)

