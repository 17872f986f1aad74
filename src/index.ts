export { clone, cloneSync } from './clone.js'
export { cloneRange, cloneRangeSync } from './clone-range.js'
export { probe, probeSync } from './probe.js'
export { cloneTree, cloneTreeSync } from './tree.js'
export { usage, sharedBytes } from './usage.js'
export { dedupe } from './dedupe.js'
export { snapshot, listSnapshots, diffSnapshots, restoreSnapshot, deleteSnapshot, pruneSnapshots } from './snapshot.js'
export type {
  Change, PrunePolicy, PruneResult, RestoreOptions, RestoreResult, Snapshot, SnapshotOptions, StoreOptions,
  CloneError, CloneMode, DedupeGroup, DedupeIssue, DedupeOptions, DedupeProgress, DedupeResult, CloneOptions, CloneRange, CloneRangeOptions, CloneResult, CloneTreeOptions, EntryType, Fallback,
  FileLike, OverwriteMode, PathLike, Probe, TreeEntry, TreeFilter, TreePreserve, TreeProgress, TreeResult, Usage, UsageEntry,
  UsageOptions, UsageProgress, UsageResult,
} from './types.js'
