// restoreSnapshot(): `dir` put back as a snapshot had it, by one atomic exchange. A writable
// clone of the snapshot (a writable btrfs snapshot for a subvolume) is built beside `dir`, then
// renameat2(RENAME_EXCHANGE) swaps the two names: `dir` is at every instant either wholly the
// old state or wholly the restored one. The old state, now under the temporary name, becomes
// the snapshot `before-restore-<time>` (or is removed with keepCurrent: false).
//
// A journal (snapshot-journal.ts) is written before anything is built and removed when all is
// done; the next run that locks the store finishes or undoes what a killed restore left.
import * as fs from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { CWD, requireNative, type Binding } from './binding.js'
import { fromNative, fsError } from './errors.js'
import { boolean, resolveOptions, type OptionTable } from './args.js'
import { shown, toRaw } from './raw.js'
import { JOURNAL, exchanged, finish, undo, withStore, writeJournal, type Journal } from './snapshot-journal.js'
import { findSnapshot, isSubvolumeRoot, storeSpec, storeOf, timeName, type StoreRef } from './snapshot-store.js'
import { cloneTree } from './tree.js'
import { LOCK_SUFFIX, tempNameRaw } from './temp.js'
import type { PathLike, RestoreOptions, RestoreResult, Snapshot } from './types.js'

const table: OptionTable<{ store: PathLike | undefined; keepCurrent: boolean }> = { store: storeSpec, keepCurrent: boolean(true) }

export async function restoreSnapshot(dir: PathLike, name: string, options?: RestoreOptions): Promise<RestoreResult> {
  const o = resolveOptions('options', options, table)
  const binding = requireNative('restoreSnapshot')
  const ref = storeOf(dir, o.store)
  findSnapshot(ref, name)
  refuseMountPoint(binding, ref.source)
  return withStore(binding, ref, false, () => restoreLocked(binding, ref, findSnapshot(ref, name), o.keepCurrent))
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

