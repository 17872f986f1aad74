// Every public type of the package, in one module that imports nothing at run time: the
// operations import their types from here, never from each other.
import type { FileHandle } from 'node:fs/promises'

/** A path: a string (UTF-8), a Buffer (the exact bytes of a name) or a file: URL. */
export type PathLike = string | Buffer | URL
/** A path, or an open file: a FileHandle or a file descriptor. */
export type FileLike = PathLike | FileHandle | number

/**
 * 'auto': clone, or copy where this pair of files cannot be cloned; 'always': clone or throw
 * (cp --reflink=always); 'never': a physical copy that shares no blocks.
 */
export type CloneMode = 'auto' | 'always' | 'never'

export interface CloneOptions {
  /** how to make the file: see {@link CloneMode} @default 'auto' */
  mode?: CloneMode
  /** Replace an existing destination atomically; otherwise it is EEXIST. @default false */
  overwrite?: boolean
  /** false: a symlink source is cloned as a symlink (CLONE_NOFOLLOW). @default true */
  followSymlinks?: boolean
  /** Give the clone the source's owner, where the process may (root). @default true */
  preserveOwner?: boolean
  /** Copy ACLs (CLONE_ACL on macOS, POSIX ACL xattrs on Linux). @default false */
  preserveAcl?: boolean
}

/** Why an 'auto' clone became a copy. */
export interface Fallback {
  /** the errno code of the failed clone, e.g. 'EXDEV' or 'EOPNOTSUPP' */
  code: string
  message: string
}

export interface CloneResult {
  /** what really happened: blocks shared, or bytes copied */
  method: 'clone' | 'copy'
  /** bytes of file data */
  size: number
  /** why an 'auto' clone became a copy (or, for a range, why part of it was copied) */
  fallback?: Fallback
}

export interface CloneRange {
  /** @default 0 */
  srcOffset?: number
  /** @default 0 */
  dstOffset?: number
  /** bytes; 0 means to the end of the source @default 0 */
  length?: number
}

export interface CloneRangeOptions {
  /**
   * as for clone(); 'auto' clones the block-aligned part of a range and copies the rest, or
   * all of it where nothing can be cloned (another filesystem) @default 'auto'
   */
  mode?: CloneMode
}

export interface Probe {
  /** whole files can be cloned from `path` to `otherPath` */
  clone: boolean
  /** ranges can be cloned (FICLONERANGE, duplicate extents); never on macOS */
  range: boolean
  /** the kernel can compare-and-share (FIDEDUPERANGE); Linux only */
  dedupe: boolean
  /** the filesystem's name, e.g. 'btrfs', 'xfs', 'apfs', 'ReFS' */
  filesystem: string
  /** clone ranges must be aligned to this */
  blockSize: number
  /** why `clone` is false, or why the answer is unconfirmed: an errno code and what it means */
  reason?: string
}

/** An error shaped like Node's own fs errors. */
export interface CloneError extends Error {
  code: string
  errno: number
  syscall: string
  path?: string
  dest?: string
  /** bytes a copy had written when it failed (a range copied half way on ENOSPC) */
  bytesWritten?: number
}

// ---- trees ----

export type OverwriteMode = 'error' | 'skip' | 'replace'
export type EntryType = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'block-device' | 'character-device'

export interface TreeEntry {
  /** the entry's name, decoded as UTF-8 (U+FFFD for a byte that is not) */
  name: string
  /** the path's exact bytes, where it is not valid UTF-8 (given back to the package as a path,
   * it names that entry: the name rule of every callback and result) */
  rawPath?: Buffer
  type: EntryType
  /** st_mode permission bits and type */
  mode: number
  size: number
}

export interface TreePreserve {
  /** permission bits, setuid/setgid too when owners are kept @default true */
  mode?: boolean
  /** atime and mtime to the nanosecond, directories included @default true */
  timestamps?: boolean
  /** owner and group, where the process may (root) @default true */
  ownership?: boolean
  /** extended attributes (POSIX ACLs among them) @default true */
  xattr?: boolean
  /** hard-link groups stay hard links @default true */
  links?: boolean
  /** FIFOs (and device nodes, when root) are recreated @default true */
  specials?: boolean
}

export interface TreeProgress {
  files: number
  bytes: number
}

/** Leaves an entry out where it returns (or resolves to) false; awaited in the async APIs. */
export type TreeFilter = (path: string, entry: TreeEntry) => boolean | Promise<boolean>

export interface CloneTreeOptions {
  /** what an existing `dst` means: an error, entries kept, or entries replaced @default 'error' */
  overwrite?: OverwriteMode
  /** per file, as for clone() @default 'auto' */
  mode?: CloneMode
  /** what to keep; each field defaults to true, as cp -a does @default {} */
  preserve?: TreePreserve
  /** follow symlinks instead of recreating them (cp -L) @default false */
  dereference?: boolean
  /** entries for which it returns false are left out (a directory with all it holds) @default undefined */
  filter?: ((path: string, entry: TreeEntry) => boolean | Promise<boolean>) | undefined
  /** batches of operations running at once on the thread pool @default one per CPU up to 4; 1 on btrfs */
  concurrency?: number
  /** stops the run; with `atomic`, nothing is left at `dst` @default undefined */
  signal?: AbortSignal | undefined
  /** called at most every 100 ms, and once at the end @default undefined */
  onProgress?: ((progress: TreeProgress) => void) | undefined
  /** build under a temporary sibling and rename it into place at the end @default true */
  atomic?: boolean
  /** collect per-entry errors instead of stopping at the first @default false */
  continueOnError?: boolean
}

export interface TreeResult {
  files: number
  directories: number
  symlinks: number
  hardLinks: number
  specials: number
  cloned: { files: number; bytes: number }
  copied: { files: number; bytes: number }
  /** why files were copied instead of cloned: reason code -> number of files */
  fallbacks: Record<string, number>
  skipped: Array<{ path: string; rawPath?: Buffer; reason: string }>
  errors: Array<{ path: string; rawPath?: Buffer; code: string; message: string }>
  /** what was left out without failing: an extended attribute the destination could not hold
   * (as cp -a, which warns), a leftover of another user's run that could not be removed */
  warnings: Array<{ path: string; rawPath?: Buffer; code: string; message: string }>
}

// ---- usage ----

/** Space figures for a set of files, in bytes. */
export interface Usage {
  /** regular files, each inode counted once */
  files: number
  /** sum of file sizes, as `ls -l` shows them */
  apparent: number
  /**
   * bytes of data extents: holes, unwritten (preallocated) and inline extents excluded;
   * on macOS the allocated size
   */
  total: number
  /** bytes in extents no other file or clone references; on macOS the files' APFS private sizes */
  exclusive: number
  /** bytes of shared extents, each byte on disk counted once however often the set references it */
  setShared: number
  /** what the set occupies: `exclusive + setShared` */
  onDisk: number
  /** what sharing saves within the set: `total - onDisk` */
  saved: number
}

export interface UsageResult {
  /** one entry per path given, each path taken as a set of its own */
  paths: Array<Usage & { path: string }>
  /** all the paths together */
  set: Usage
  /** files and directories that vanished during the scan */
  skipped: number
  /**
   * Set where sharing cannot be measured, or not all of it: then the figures that cannot be
   * are NaN. On macOS (APFS) `exclusive` is exact but the shared figures only where at most
   * one file may share blocks; elsewhere off Linux `total` is the allocated size and the rest NaN.
   */
  reason?: string
}

/** A file or directory inside one of the paths, as `btrfs filesystem du` lists it. */
export interface UsageEntry {
  path: string
  /** the path's exact bytes, where it is not valid UTF-8 */
  rawPath?: Buffer
  /** 0 for a path given to usage(), 1 for what it contains, and so on */
  depth: number
  directory: boolean
  files: number
  apparent: number
  total: number
  exclusive: number
  /** only for the paths themselves (depth 0): shared bytes merged within that path */
  setShared?: number
}

export interface UsageProgress {
  /** files measured so far */
  files: number
  /** their `total` so far */
  total: number
}

export interface UsageOptions {
  /** Stops the scan; usage() then rejects with the signal's reason. @default undefined */
  signal?: AbortSignal
  /** Called after every batch of files is measured. @default undefined */
  onProgress?: (progress: UsageProgress) => void
  /**
   * Called for each file and directory down to `maxDepth`, each directory after its contents
   * (the order `btrfs filesystem du` prints them), and for each path once it is done.
   * @default undefined
   */
  onEntry?: (entry: UsageEntry) => void
  /** How deep below each path `onEntry` reports files and directories. @default Infinity */
  maxDepth?: number
}


export interface DedupeProgress {
  phase: 'scan' | 'hash' | 'dedupe'
  files: number
  bytes: number
  totalFiles?: number
  totalBytes?: number
}

export interface DedupeOptions {
  /** Find and report what a run would share and free; change nothing. @default false */
  dryRun?: boolean
  /** Files smaller are left out (an empty file always is). @default 1 */
  minSize?: number
  /** cloneTree's filter: false leaves a file out, or a directory and all below it. */
  filter?: (path: string, entry: TreeEntry) => boolean | Promise<boolean>
  /** Stops between batches (a single FIDEDUPERANGE is atomic); dedupe() then rejects. */
  signal?: AbortSignal
  onProgress?: (progress: DedupeProgress) => void
  /** Native batches in flight at once. @default 4 */
  concurrency?: number
  /** Called for each set of identical files once it is done (dryRun: found). */
  onGroup?: (group: DedupeGroup) => void
  /**
   * A file where runs keep what they proved about files' contents (by device, inode, size,
   * mtime and ctime), like duperemove's --hashfile: a later run reads none of the files a run
   * before found different from the rest of their size, unless they changed. Created where
   * missing; anything else there is an error (EINVAL) and left alone. Not written by a dryRun.
   */
  cache?: PathLike
}

/** A set of identical files: the keeper, the files now sharing its blocks, those that already did. */
export interface DedupeGroup {
  keeper: string
  size: number
  deduped: string[]
  alreadyShared: string[]
}

/** A file left alone or that failed, with why: `path` and, where UTF-8 loses bytes, `rawPath`. */
export interface DedupeIssue {
  path: string
  rawPath?: Buffer
  code: string
  message: string
}

export interface DedupeResult {
  /** regular files examined (each inode once; empty ones and those under minSize included) */
  files: number
  /** sets of two or more files found identical by content */
  groups: number
  /** files whose blocks are now shared with their group's keeper, and their bytes */
  deduped: { files: number; bytes: number }
  /** duplicates that already shared every block with their keeper: not read, not touched */
  alreadyShared: { files: number; bytes: number }
  /** bytes freed on disk by this run, measured by FIEMAP before and after (dryRun: would be) */
  saved: number
  /** hard links to a file already counted (HARDLINK), changed during the run (EBADE), a
   * filesystem that cannot share blocks (EOPNOTSUPP, once per device), vanished (ENOENT), … */
  skipped: DedupeIssue[]
  errors: DedupeIssue[]
}

/** One snapshot of a directory (snapshot.ts): `<store>/<name>/` holds the tree and
 * `<store>/.<name>.json` its record. */
export interface Snapshot {
  /** its name in the store: by default the UTC time it was taken, `2026-12-02T23-45-12.345Z` */
  name: string
  /** where its tree is: `<store>/<name>` */
  path: string
  /** the directory it was taken of, absolute */
  source: string
  /** 'subvolume': a read-only btrfs snapshot of a subvolume (one instant); 'clone': a
   * cloneTree of the directory (each file consistent, not the whole tree at one instant) */
  method: 'subvolume' | 'clone'
  created: Date
  readOnly: boolean
}

export interface SnapshotOptions {
  /** default: the UTC time, sortable and safe in a file name */
  name?: string
  /** default: `<parent of dir>/.<basename of dir>.snapshots/` */
  store?: PathLike
  /** take a copy where the filesystem cannot clone (default false: EOPNOTSUPP) */
  allowCopy?: boolean
  signal?: AbortSignal
  onProgress?: (progress: { files: number; bytes: number }) => void
}

export interface StoreOptions {
  store?: PathLike
}

export interface RestoreOptions extends StoreOptions {
  /** keep the replaced state as a snapshot `before-restore-<time>` (default true) */
  keepCurrent?: boolean
}

export interface RestoreResult {
  restored: Snapshot
  /** the state replaced, kept as a snapshot (in the store, or beside dir where the store is on
   * another subvolume than dir's parent: its `path` says where) */
  kept?: Snapshot
}

export interface PrunePolicy {
  keepLast?: number
  keepHourly?: number
  keepDaily?: number
  keepWeekly?: number
  keepMonthly?: number
  /** list what would be removed, remove nothing */
  dryRun?: boolean
}

export interface PruneResult {
  kept: Snapshot[]
  removed: Snapshot[]
}

/** One difference between two trees, by path. */
export interface Change {
  /** relative to the snapshot root, '/'-separated; '.' for the root itself */
  path: string
  /** added / removed: only on one side; type: file ↔ directory ↔ symlink ↔ other; modified:
   * the content differs; metadata: same content, and mode, owner, mtime, xattrs or a symlink's
   * target differ */
  kind: 'added' | 'removed' | 'modified' | 'metadata' | 'type'
}
