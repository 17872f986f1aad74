// Snapshots of any directory (issue 14): create, list, delete, prune here; diff in
// snapshot-diff.ts, restore in snapshot-restore.ts, the store in snapshot-store.ts.
//
// A btrfs subvolume gets a read-only btrfs snapshot (BTRFS_IOC_SNAP_CREATE_V2: one instant, in
// constant time); any other directory a cloneTree into the store (built aside and renamed into
// place, so a snapshot is whole or absent), which costs no data wherever files clone.
import * as fs from 'node:fs'
import { constants } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { CWD, Flag, METHOD_CLONE, RAW, Scan, requireNative, type Binding } from './binding.js'
import { isDir, isFile, modeAt, sizeAt } from './entries.js'
import { bytes, joinRaw, shown, toRaw } from './raw.js'
import { Walker, listSync, newDir, type WalkDir } from './walk.js'
import { abortError, fromNative, fsError, invalidArgValue } from './errors.js'
import { abortSignal, boolean, callback, number, resolveOptions, type OptionTable } from './args.js'
import {
  checkName, isSubvolumeRoot, onBtrfs, storeSpec, storeTable, findSnapshot, readStore, removeRecord, removeTree, storeHint, storeOf,
  timeName, writeRecord, type LockedStore, type StoreRef,
} from './snapshot-store.js'
import { withStore } from './snapshot-journal.js'
import { planPrune } from './snapshot-prune.js'
import { cloneTree } from './tree.js'
import { tempNameRaw } from './temp.js'
import type { PathLike, PrunePolicy, PruneResult, Snapshot, SnapshotOptions, StoreOptions } from './types.js'

export { diffSnapshots } from './snapshot-diff.js'
export { restoreSnapshot } from './snapshot-restore.js'

interface CreateOptions {
  name: string | undefined
  store: PathLike | undefined
  allowCopy: boolean
  signal: AbortSignal | undefined
  onProgress: ((p: { files: number; bytes: number }) => void) | undefined
}


const createTable: OptionTable<CreateOptions> = {
  name: { default: undefined, check: (name, v) => checkName(v, name) },
  store: storeSpec,
  allowCopy: boolean(false),
  signal: abortSignal(),
  onProgress: callback(),
}


/**
 * Takes a snapshot of `dir` into its store: a read-only btrfs snapshot where `dir` is a
 * subvolume, else a clone of the tree. Where the filesystem cannot clone, EOPNOTSUPP unless
 * `allowCopy`; a store where `dir`'s files cannot be cloned to, EXDEV.
 */
export async function snapshot(dir: PathLike, options?: SnapshotOptions): Promise<Snapshot> {
  const o = resolveOptions('options', options, createTable)
  const binding = requireNative('snapshot')
  const ref = storeOf(dir, o.store)
  if (o.signal?.aborted) throw abortError(o.signal)
  const created = new Date()
  const name = o.name ?? timeName(created)
  const method = isSubvolumeRoot(ref.source) ? 'subvolume' : 'clone'
  // Checked before the store is made: a refused store is not left behind. A subvolume's store
  // needs no probe (a clone of a test file): the ioctl itself says EXDEV, answered as below.
  if (method === 'clone') checkStore(binding, ref, o.allowCopy)
  else if (!onBtrfs(fs.existsSync(ref.store) ? ref.store : dirname(ref.store))) throw notSameFilesystem(ref)
  const existed = fs.existsSync(ref.store)
  try {
    return await withStore(binding, ref, true, (locked) => create(binding, locked, ref, name, method, created, o))
  } catch (e) {
    // A store made for this snapshot and left empty goes with it.
    if (!existed) {
      try {
        fs.rmSync(join(ref.store, '.lock'), { force: true })
        fs.rmdirSync(ref.store)
      } catch {
        // not empty: someone else's now
      }
    }
    throw e
  }
}

async function create(binding: Binding, locked: LockedStore, ref: StoreRef, name: string, method: Snapshot['method'], created: Date, o: CreateOptions): Promise<Snapshot> {
  if (fs.existsSync(join(ref.store, name)) || fs.existsSync(join(ref.store, `.${name}.json`))) {
    throw fsError('EEXIST', 'snapshot', { path: join(ref.store, name), detail: `a snapshot named '${name}' exists already` })
  }
  const snap: Snapshot = { name, path: join(ref.store, name), source: ref.source, method, created, readOnly: method === 'subvolume' }
  writeRecord(ref.store, snap)
  try {
    await makeTree(binding, locked, ref, snap, o)
  } catch (e) {
    removeRecord(ref.store, name)
    throw e
  }
  // A clone snapshot's files were all made (their ctimes set) before now: diff's first look.
  if (method === 'clone') writeRecord(ref.store, snap, new Date())
  return snap
}

/**
 * Whether a snapshot can share dir's blocks in the store: proven by cloning one of dir's own
 * files into the store's place and removing the clone at once. Nothing is written inside dir
 * (probe() would make a file there, and move dir's mtime). EXDEV where the store is on another
 * filesystem; EOPNOTSUPP where the filesystem cannot clone, unless `allowCopy` (then the store
 * must be on dir's device).
 */
function checkStore(binding: Binding, ref: StoreRef, allowCopy: boolean): void {
  const at = fs.existsSync(ref.store) ? ref.store : dirname(ref.store)
  const file = firstFile(binding, ref.source)
  if (file === undefined) {
    // No data to share: the same kind of filesystem is all that can be asked.
    if (binding.fsInfo(ref.source).type !== binding.fsInfo(at).type) throw notSameFilesystem(ref)
    return
  }
  const temp = join(at, shown(tempNameRaw('snapshot-check')))
  try {
    binding.cloneFile(bytes(file), temp, undefined, METHOD_CLONE, Flag.Direct | Flag.NoFollow, false)
    fs.rmSync(temp, { force: true })
    return
  } catch (e) {
    fs.rmSync(temp, { force: true })
    const errno = (e as { errno?: number }).errno
    if (errno === constants.errno.EXDEV) throw notSameFilesystem(ref)
    if (!allowCopy) {
      const reason = (fromNative(e, shown(file), temp) as Error).message
      throw fsError('EOPNOTSUPP', 'snapshot', {
        path: ref.source,
        detail: `the filesystem cannot clone files (${reason}): a snapshot here would be a full copy; pass allowCopy (--allow-copy) to take one anyway`,
      })
    }
  }
  if (fs.statSync(ref.source).dev !== fs.statSync(at).dev) throw notSameFilesystem(ref)
}

/** A regular file of the tree with data (a byte-string path), found by the walker; or none. */
function firstFile(binding: Binding, source: string): string | undefined {
  const root = toRaw(source)
  let found: string | undefined
  const walker = new Walker<WalkDir>(binding, { how: RAW | Scan.Names }, (parent, name, rel) => newDir(parent, name, rel, {}))
  walker.start({ dir: CWD, name: root })
  listSync(walker, ({ dir, errno, listing: { out, first, count } }) => {
    if (errno !== 0) return
    for (let i = first; i < first + count && found === undefined; i++) {
      const mode = modeAt(out.stats, i)
      if (isFile(mode) && sizeAt(out.stats, i) > 0) found = joinRaw(joinRaw(root, dir.rel), out.names[i] as string)
      else if (isDir(mode)) walker.child(dir, out.names[i] as string)
    }
    return found === undefined
  })
  return found
}

function notSameFilesystem(ref: StoreRef): Error {
  return fsError('EXDEV', 'snapshot', {
    path: ref.source,
    dest: ref.store,
    detail: `${storeHint(ref)} is not on the filesystem of ${ref.source}, so a snapshot there cannot share its blocks; put the store on that filesystem with --store`,
  })
}

async function makeTree(binding: Binding, locked: LockedStore, ref: StoreRef, snap: Snapshot, o: CreateOptions): Promise<void> {
  if (snap.method === 'subvolume') {
    try {
      binding.subvolSnapshot(CWD, ref.source, locked.fd, snap.name, true)
    } catch (e) {
      throw (e as { errno?: number }).errno === constants.errno.EXDEV ? notSameFilesystem(ref) : fromNative(e, ref.source, snap.path)
    }
    o.onProgress?.({ files: 0, bytes: 0 })
    return
  }
  await cloneTree(ref.source, snap.path, { signal: o.signal, onProgress: o.onProgress === undefined ? undefined : (p) => o.onProgress?.({ files: p.files, bytes: p.bytes }) })
}

const storeAndSource = (ref: StoreRef): [string, string] => [ref.store, ref.source]

/** The snapshots of `dir`, oldest first. */
export async function listSnapshots(dir: PathLike, options?: StoreOptions): Promise<Snapshot[]> {
  const o = resolveOptions('options', options, storeTable)
  return readStore(...storeAndSource(storeOf(dir, o.store)))
}

/** Removes the snapshot `name` of `dir`; the others and `dir` are not touched. */
export async function deleteSnapshot(dir: PathLike, name: string, options?: StoreOptions): Promise<void> {
  const o = resolveOptions('options', options, storeTable)
  const binding = requireNative('deleteSnapshot')
  const ref = storeOf(dir, o.store)
  findSnapshot(ref, name)
  await withStore(binding, ref, false, async (locked) => {
    removeSnapshot(binding, locked, ref, findSnapshot(ref, name))
  })
}

/**
 * One snapshot gone, never half: its tree renamed to a temporary name first (a run killed
 * while it is removed leaves a temporary the next run sweeps, not a listed snapshot with half
 * its files), then its record, then the tree.
 */
function removeSnapshot(binding: Binding, locked: LockedStore, ref: StoreRef, s: Snapshot): void {
  if (s.path !== join(ref.store, s.name)) {
    removeRecord(ref.store, s.name)
    removeOutside(binding, s.path)
    return
  }
  const temp = tempNameRaw(s.name)
  try {
    binding.rename(locked.fd, s.name, locked.fd, temp, true)
  } catch (e) {
    throw fromNative(e, s.path)
  }
  removeRecord(ref.store, s.name)
  removeTree(binding, locked.fd, ref.store, temp)
}

/** A kept state that lives beside dir, not in the store. */
function removeOutside(binding: Binding, path: string): void {
  const parent = dirname(path)
  const { fd } = binding.openDir(CWD, parent, 0)
  try {
    if (fs.existsSync(path)) removeTree(binding, fd, parent, basename(path))
  } finally {
    binding.closeDirs(Int32Array.of(fd))
  }
}

interface PruneOptions {
  keepLast: number
  keepHourly: number
  keepDaily: number
  keepWeekly: number
  keepMonthly: number
  dryRun: boolean
}

const pruneTable: OptionTable<PruneOptions> = {
  keepLast: number(0, 0),
  keepHourly: number(0, 0),
  keepDaily: number(0, 0),
  keepWeekly: number(0, 0),
  keepMonthly: number(0, 0),
  dryRun: boolean(false),
}

/**
 * restic/borg-style retention: the newest `keepLast`, and the newest snapshot of each of the
 * newest `keepHourly` hours (days, ISO weeks, months: UTC) that have one; the rest removed.
 */
export async function pruneSnapshots(dir: PathLike, policy: PrunePolicy, options?: StoreOptions): Promise<PruneResult> {
  const p = resolveOptions('policy', policy, pruneTable)
  const o = resolveOptions('options', options, storeTable)
  if (p.keepLast + p.keepHourly + p.keepDaily + p.keepWeekly + p.keepMonthly === 0) {
    throw invalidArgValue('policy', policy, 'needs at least one keep rule (keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly) above 0: without one every snapshot would go')
  }
  const ref = storeOf(dir, o.store)
  const planned = planPrune(readStore(ref.store, ref.source), p)
  if (p.dryRun || planned.removed.length === 0) return planned
  const binding = requireNative('pruneSnapshots')
  return withStore(binding, ref, false, async (locked) => {
    const plan = planPrune(readStore(ref.store, ref.source), p)
    for (const s of plan.removed) removeSnapshot(binding, locked, ref, s)
    return plan
  })
}

