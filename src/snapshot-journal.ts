// The restore journal, and the lock every store writer takes: a restore writes
// `<store>/.restore.json` before it builds anything and removes it when all is done; whoever
// next locks the store (withStore) finishes or undoes what a killed restore left, telling from
// (dev, ino) of `dir` whether the exchange happened, before it sweeps the store.
import * as fs from 'node:fs'
import { basename, join } from 'node:path'
import { constants } from 'node:os'
import { CWD, type Binding } from './binding.js'
import { fromNative } from './errors.js'
import { toRaw } from './raw.js'
import { removeDeadTemps } from './leftovers.js'
import { besideDir, lockStore, removeTree, sweepStore, writeRecord, type LockedStore, type StoreRef } from './snapshot-store.js'
import { LOCK_SUFFIX, isTempFor } from './temp.js'
import type { Snapshot } from './types.js'

export const JOURNAL = '.restore.json'

export interface Journal {
  /** dir's parent and name, and the temporary name beside it where the restored tree is built */
  parent: string
  base: string
  temp: string
  /** (dev, ino) of the restored tree's root once it is built: dir has them once exchanged */
  restored?: [number, number]
  /** the snapshot to keep the replaced state as, or undefined with keepCurrent: false */
  kept?: { name: string; path: string; method: Snapshot['method']; created: string; source: string }
}

export function writeJournal(store: string, j: Journal): void {
  const tmp = join(store, `${JOURNAL}.new`)
  fs.writeFileSync(tmp, JSON.stringify(j))
  fs.renameSync(tmp, join(store, JOURNAL))
}

/** Whether dir is now the restored tree. */
export function exchanged(j: Journal): boolean {
  if (j.restored === undefined) return false
  const st = fs.lstatSync(join(j.parent, j.base), { throwIfNoEntry: false })
  return st !== undefined && st.dev === j.restored[0] && st.ino === j.restored[1]
}

/** After the exchange: the replaced state, under the temporary name, kept or removed. */
export function finish(binding: Binding, ref: StoreRef, j: Journal): Snapshot | undefined {
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
    if ((e as { errno?: number }).errno !== constants.errno.EXDEV) throw fromNative(e, join(j.parent, j.temp), join(ref.store, name))
    const beside = besideDir(join(j.parent, j.base), name)
    binding.rename(parentFd, j.temp, parentFd, basename(beside), true)
    return beside
  } finally {
    binding.closeDirs(Int32Array.of(storeFd))
  }
}

/** Before the exchange: what was built beside dir goes (cloneTree's own leftovers too). */
export function undo(binding: Binding, parentFd: number, j: Journal): void {
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

/** Runs `fn` with the store locked, a killed restore finished or undone, and the store swept. */
export async function withStore<T>(binding: Binding, ref: StoreRef, make: boolean, fn: (locked: LockedStore) => Promise<T>): Promise<T> {
  const locked = lockStore(binding, ref, make)
  try {
    recoverRestore(binding, ref)
    sweepStore(binding, locked, ref)
    return await fn(locked)
  } finally {
    locked.release()
  }
}
