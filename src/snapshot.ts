// Snapshots of any directory: create, list, diff, restore, delete, prune (issue 14).
import type { Change, PathLike, PrunePolicy, PruneResult, RestoreOptions, RestoreResult, Snapshot, SnapshotOptions, StoreOptions } from './types.js'

const todo = (): never => {
  throw Object.assign(new Error('snapshots: not built yet'), { code: 'ENOSYS' })
}

export async function snapshot(dir: PathLike, options?: SnapshotOptions): Promise<Snapshot> {
  void dir, options
  return todo()
}
export async function listSnapshots(dir: PathLike, options?: StoreOptions): Promise<Snapshot[]> {
  void dir, options
  return todo()
}
export async function diffSnapshots(dir: PathLike, from: string, to?: string, options?: StoreOptions): Promise<Change[]> {
  void dir, from, to, options
  return todo()
}
export async function restoreSnapshot(dir: PathLike, name: string, options?: RestoreOptions): Promise<RestoreResult> {
  void dir, name, options
  return todo()
}
export async function deleteSnapshot(dir: PathLike, name: string, options?: StoreOptions): Promise<void> {
  void dir, name, options
  return todo()
}
export async function pruneSnapshots(dir: PathLike, policy: PrunePolicy, options?: StoreOptions): Promise<PruneResult> {
  void dir, policy, options
  return todo()
}
