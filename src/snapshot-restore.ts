// restoreSnapshot(): `dir` put back as a snapshot had it, by one atomic exchange. A writable
// clone of the snapshot (a writable btrfs snapshot for a subvolume) is built beside `dir`, then
// renameat2(RENAME_EXCHANGE) swaps the two names: `dir` is at every instant either wholly the
// old state or wholly the restored one. The old state, now under the temporary name, becomes
// the snapshot `before-restore-<time>` (or is removed with keepCurrent: false).
//
// A journal, `<store>/.restore.json`, is written before anything is built and removed when all
// is done; the next run that locks the store finishes or undoes what a killed restore left,
// telling from (dev, ino) of `dir` whether the exchange happened.
import * as fs from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { CWD, requireNative, type Binding } from './binding.js'
import { fromNative, fsError } from './errors.js'
import { boolean, resolveOptions, type OptionTable } from './args.js'
import { shown, toRaw } from './raw.js'
import { removeDeadTemps } from './leftovers.js'
import { besideDir, findSnapshot, isSubvolumeRoot, onLock, storeSpec, removeTree, storeOf, timeName, withStore, writeRecord, type StoreRef } from './snapshot-store.js'
import { cloneTree } from './tree.js'
import { LOCK_SUFFIX, isTempFor, tempNameRaw } from './temp.js'
import type { PathLike, RestoreOptions, RestoreResult, Snapshot } from './types.js'

const JOURNAL = '.restore.json'

interface Journal {
  /** dir's parent and name, the temporary name beside it (a byte string) */
  parent: string
  base: string
  temp: string
  /** (dev, ino) of the restored tree's root once it is built: dir has them once exchanged */
  restored?: [number, number]
  /** the snapshot to keep the replaced state as, or undefined with keepCurrent: false */
  kept?: { name: string; path: string; method: Snapshot['method']; created: string; source: string }
}

const table: OptionTable<{ store: PathLike | undefined; keepCurrent: boolean }> = { store: storeSpec, keepCurrent: boolean(true) }

export async function restoreSnapshot(dir: PathLike, name: string, options?: RestoreOptions): Promise<RestoreResult> {
  const o = resolveOptions('options', options, table)
  const binding = requireNative('restoreSnapshot')
  const ref = storeOf(dir, o.store)
  findSnapshot(ref, name)
  refuseMountPoint(binding, ref.source)
  return withStore(binding, ref, false, async (locked) => {
    void locked
    return restoreLocked(binding, ref, findSnapshot(ref, name), o.keepCurrent)
  })
}

/** An exchange cannot move a mount point (EBUSY from the kernel, after the work): said first. */
function refuseMountPoint(binding: Binding, source: string): void {
  if (binding.fsInfo(source).mountId === binding.fsInfo(dirname(source)).mountId) return
  throw fsError('EBUSY', 'restore', {
    path: source,
    detail: `${source} is a mount point, which an exchange of names cannot move; restore into it by hand (for example cp -a --reflink=always from the snapshot's path), or snapshot and restore a directory inside it`,
  })
}

async function restoreLocked(binding: Binding, ref: StoreRef, snap: Snapshot, keep: boolean): Promise<RestoreResult> {
  const parent = dirname(ref.source)
  const base = basename(ref.source)
  // A UTF-8 string like every name here: the byte-string rule of temp.ts, decoded back.
  const temp = shown(tempNameRaw(toRaw(base)))
  const now = new Date()
  const keptName = `before-restore-${timeName(now)}`
  const subvolume = snap.method === 'subvolume' && isSubvolumeRoot(ref.source)
  const journal: Journal = { parent, base, temp }
  if (keep) journal.kept = { name: keptName, path: join(ref.store, keptName), method: subvolume ? 'subvolume' : 'clone', created: now.toISOString(), source: ref.source }
  const parentFd = binding.openDir(CWD, parent, 0).fd
  let lockFd = -1
  try {
    // The journal first: a run killed from here on is finished or undone by the next one, its
    // lock file included.
    writeJournal(ref.store, journal)
    lockFd = binding.lock(parentFd, temp + LOCK_SUFFIX, true)
    await buildRestored(binding, parentFd, snap, join(parent, temp), temp, subvolume)
    const st = fs.lstatSync(join(parent, temp))
    journal.restored = [st.dev, st.ino]
    writeJournal(ref.store, journal)
    try {
      binding.exchange(parentFd, temp, parentFd, base)
    } catch (e) {
      throw exchangeError(e, ref.source)
    }
    const kept = finish(binding, ref, journal)
    fs.rmSync(join(ref.store, JOURNAL), { force: true })
    return kept === undefined ? { restored: snap } : { restored: snap, kept }
  } catch (e) {
    // Before the exchange: the half-built restored tree goes, dir was never touched.
    if (journal.restored === undefined || !exchanged(journal)) {
      undo(binding, parentFd, journal)
      fs.rmSync(join(ref.store, JOURNAL), { force: true })
    }
    throw e
  } finally {
    if (lockFd >= 0) {
      try {
        binding.remove(parentFd, temp + LOCK_SUFFIX, false)
      } catch {
        // gone already
      }
      binding.unlock(lockFd)
    }
    binding.closeDirs(Int32Array.of(parentFd))
  }
}

function exchangeError(e: unknown, source: string): unknown {
  const err = fromNative(e, source) as { code?: string }
  if (err.code !== 'EINVAL' && err.code !== 'ENOSYS' && err.code !== 'ENOTSUP') return err
  return fsError(err.code, 'rename', { path: source, detail: 'this filesystem cannot exchange two names atomically (RENAME_EXCHANGE), so the directory cannot be restored without a moment where it is missing or mixed; nothing was changed' })
}

async function buildRestored(binding: Binding, parentFd: number, snap: Snapshot, path: string, temp: string, subvolume: boolean): Promise<void> {
  if (subvolume) {
    try {
      binding.subvolSnapshot(CWD, snap.path, parentFd, temp, false)
    } catch (e) {
      throw fromNative(e, snap.path, path)
    }
    return
  }
  await cloneTree(snap.path, path)
}

function writeJournal(store: string, j: Journal): void {
  const tmp = join(store, `${JOURNAL}.new`)
  fs.writeFileSync(tmp, JSON.stringify(j))
  fs.renameSync(tmp, join(store, JOURNAL))
}

/** Whether dir is now the restored tree. */
function exchanged(j: Journal): boolean {
  if (j.restored === undefined) return false
  const st = fs.lstatSync(join(j.parent, j.base), { throwIfNoEntry: false })
  return st !== undefined && st.dev === j.restored[0] && st.ino === j.restored[1]
}

/** After the exchange: the replaced state, under the temporary name, kept or removed. */
function finish(binding: Binding, ref: StoreRef, j: Journal): Snapshot | undefined {
  const tempPath = join(j.parent, j.temp)
  const parentFd = binding.openDir(CWD, j.parent, 0).fd
  try {
    if (j.kept === undefined) {
      if (fs.existsSync(tempPath)) removeTree(binding, parentFd, j.parent, j.temp)
      return undefined
    }
    const k = j.kept
    if (fs.existsSync(tempPath)) k.path = moveKept(binding, parentFd, ref, j, k.name)
    else if (!fs.existsSync(k.path) && fs.existsSync(besideDir(join(j.parent, j.base), k.name))) k.path = besideDir(join(j.parent, j.base), k.name)
    const kept: Snapshot = { name: k.name, path: k.path, source: k.source, method: k.method, created: new Date(k.created), readOnly: false }
    writeRecord(ref.store, kept)
    return kept
  } finally {
    binding.closeDirs(Int32Array.of(parentFd))
  }
}

/** Into the store by rename; where that is another subvolume (EXDEV), beside dir: its path. */
function moveKept(binding: Binding, parentFd: number, ref: StoreRef, j: Journal, name: string): string {
  const storeFd = binding.openDir(CWD, ref.store, 0).fd
  try {
    binding.rename(parentFd, j.temp, storeFd, name, true)
    return join(ref.store, name)
  } catch (e) {
    if ((e as { errno?: number }).errno !== 18 /* EXDEV */) throw fromNative(e, join(j.parent, j.temp), join(ref.store, name))
    const beside = besideDir(join(j.parent, j.base), name)
    binding.rename(parentFd, j.temp, parentFd, basename(beside), true)
    return beside
  } finally {
    binding.closeDirs(Int32Array.of(storeFd))
  }
}

/** Before the exchange: what was built beside dir goes (cloneTree's own leftovers too). */
function undo(binding: Binding, parentFd: number, j: Journal): void {
  if (fs.existsSync(join(j.parent, j.temp))) removeTree(binding, parentFd, j.parent, j.temp)
  removeDeadTemps(binding, parentFd, toRaw(j.parent), (n) => isTempFor(n, toRaw(j.temp)))
}

/** Under the store's lock: a restore killed half way is finished (exchanged) or undone. */
export function recoverRestore(binding: Binding, ref: StoreRef): void {
  let j: Journal
  try {
    j = JSON.parse(fs.readFileSync(join(ref.store, JOURNAL), 'utf8')) as Journal
  } catch {
    return
  }
  if (exchanged(j)) {
    finish(binding, ref, j)
  } else {
    const parentFd = binding.openDir(CWD, j.parent, 0).fd
    try {
      undo(binding, parentFd, j)
    } finally {
      binding.closeDirs(Int32Array.of(parentFd))
    }
  }
  fs.rmSync(join(j.parent, j.temp + LOCK_SUFFIX), { force: true })
  fs.rmSync(join(ref.store, JOURNAL), { force: true })
}

onLock(recoverRestore)
