// The one place that loads the native addon and declares its interface.
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/** Mirrors src/native/platform.h. */
export const METHOD_CLONE = 0
export const METHOD_COPY = 1
export const Flag = {
  NoFollow: 0x001,
  Owner: 0x002,
  Acl: 0x004,
  Xattr: 0x008,
  Mode: 0x010,
  Times: 0x020,
  SetId: 0x040,
  Overwrite: 0x080,
  Direct: 0x100,
  Tree: 0x200,
  FollowDirs: 0x400,
} as const

export interface FsInfo {
  /** statfs f_type on Linux; a hash of the type name on macOS; 0 on Windows */
  type: number
  /** the type's name where the OS gives one (macOS, Windows); '' on Linux */
  name: string
  blockSize: number
  dev: number
  mountId: number
  /** what the OS itself says: 1 yes, 0 no (macOS, Windows capability flags); -1 where it says
   * nothing (Linux: fallback.ts knows the types) */
  canClone: number
}

export type NativePath = string | Buffer

/**
 * The directory "descriptor" that stands for the current directory: a name relative to it is a
 * path as the user gave it, resolved as the OS resolves any path (CF_CWD in platform.h).
 */
export const CWD = -100

/** No directory: scanDirs' `make.dirs[i]` where that directory has nothing to make. */
export const NONE = -1

/**
 * How the addon lays out what it says of an entry (cf_stat in platform.h): STAT_STRIDE numbers
 * per entry, in this order. Only src/entries.ts reads them.
 */
export const STAT_STRIDE = 12
export const Stat = { Mode: 0, Dev: 1, Ino: 2, Size: 3, Nlink: 4, MtimeSec: 5, MtimeNsec: 6, CtimeSec: 7, CtimeNsec: 8, Blocks: 9, Uid: 10, Gid: 11 } as const

/**
 * The addon's interface. Names travel as strings of names joined by '\0' (one conversion for a
 * whole batch); with the RAW bit in `flags`/`how` they are byte strings (raw.ts). Every entry is
 * addressed as (directory descriptor, name): see cf_at in platform.h: a name relative to an open
 * directory is resolved component by component, never following a symlink (no PATH_MAX limit);
 * relative to CWD it is a user's path.
 */
export interface Binding {
  /** clone()/copy of one file: `temp` (a sibling path of dst, from temp.ts) is where a file not
   * made in place (Flag.Direct) is built when it cannot be built nameless, or always with
   * Flag.Overwrite. */
  cloneFile(src: NativePath | number, dst: NativePath, temp: NativePath | undefined, method: number, flags: number, async: false): number
  cloneFile(src: NativePath | number, dst: NativePath, temp: NativePath | undefined, method: number, flags: number, async: true): Promise<number>
  cloneRange(srcFd: number, dstFd: number, srcOffset: number, dstOffset: number, length: number, method: number, async: false): number
  cloneRange(srcFd: number, dstFd: number, srcOffset: number, dstOffset: number, length: number, method: number, async: true): Promise<number>
  dedupeRange(srcFd: number, dstFd: number, srcOffset: number, dstOffset: number, length: number): number
  fsInfo(path: NativePath): FsInfo
  /** Each file opened (O_RDONLY|O_NOFOLLOW|O_NOATIME where allowed) and its start, middle and
   * end (`block` bytes each; a small file whole) hashed: hashes[2i], hashes[2i+1] (low, high);
   * stats as read by fstat; errnos[i] non-zero where file i failed. Every sample is asked for
   * first, `ahead` bytes around it (posix_fadvise WILLNEED), the batch's reads together. */
  sampleFiles(dirs: Int32Array, names: string, flags: number, block: number, ahead: number, async: true): Promise<SampleBatch>
  /** FIDEDUPERANGE of bytes [0, length) of file 0 onto every other: status[i] 0 or -errno
   * (-EBADE: the bytes differ), deduped[i] bytes shared, stats and extent maps before and after.
   * Rejects where file 0 cannot be opened. */
  dedupeFiles(dirs: Int32Array, names: string, flags: number, length: number, async: true): Promise<DedupeBatch>
  /** macOS (cf_swap_files): file 0 cloned beside every other under temps[i] (bare names in
   * file i's directory, from temp.ts; temps[0] unused), compared byte for byte, given file i's
   * metadata and swapped in; status, deduped, before and after as dedupeFiles gives them
   * (-EBADE: different or changed meanwhile, -EMLINK: more than one link). ENOTSUP elsewhere. */
  swapFiles(dirs: Int32Array, names: string, flags: number, temps: string, async: true): Promise<DedupeBatch>
  /** Extents of many files in one trip: counts[i] extents of file i follow each other in
   * `extents` (4 numbers each); errnos[i] is non-zero where file i could not be mapped. */
  extentsMany(dirs: Int32Array, names: string, flags: number, async: false): ExtentBatch
  extentsMany(dirs: Int32Array, names: string, flags: number, async: true): Promise<ExtentBatch>
  /** What the filesystem says of each file's space, in one trip: one getattrlist(2) a file on
   * macOS; elsewhere every errno is ENOTSUP. A final symlink is not followed. */
  fileSpace(dirs: Int32Array, names: string, flags: number, async: true): Promise<FileSpaceBatch>
  /**
   * Runs kinds[i] (Op) from (srcDirs[i], srcNames[i]) to (dstDirs[i], dstNames[i]), every one of
   * them, in order; `temps` (one name per operation relative to dstDirs[i], '' for none) where
   * flags has Flag.Overwrite or not Flag.Direct. Where cancel[0] is non-zero when an operation's
   * turn comes, it is not run: its result is -ECANCELED.
   */
  runOps(kinds: Uint8Array, srcDirs: Int32Array, srcNames: string, dstDirs: Int32Array, dstNames: string,
    temps: string | undefined, flags: number, async: false, cancel?: Int32Array): OpResults
  runOps(kinds: Uint8Array, srcDirs: Int32Array, srcNames: string, dstDirs: Int32Array, dstNames: string,
    temps: string | undefined, flags: number, async: true, cancel?: Int32Array): Promise<OpResults>
  runOps(kinds: Uint8Array, srcDirs: Int32Array, srcNames: string, dstDirs: Int32Array, dstNames: string,
    temps: string | undefined, flags: number, async: 'thread', cancel?: Int32Array): Started<OpResults>
  /**
   * The result of a call started with async 'thread' (on a thread of its own, for a synchronous
   * caller that runs several side by side): waits for its thread, then returns or throws as the
   * synchronous call would. Every started call must be finished, once.
   */
  finish<T>(started: Started<T>): T
  /** The index of a call in `started` whose run is over (its finish() returns at once),
   * waiting until one is. */
  waitAny(started: Array<Started<unknown>>): number
  /**
   * Opens directories (dirs[i], names[i]) and lists them, many in one trip; where `make` gives
   * one (make.dirs[i] !== NONE), directory (make.dirs[i], make.names[i]) is first made with mode
   * make.modes[i] (with Scan.Merge an existing directory is fine) and opened too. A directory that
   * fails does not stop the others. Every descriptor returned (fds[i], dstFds[i] >= 0) is the
   * caller's to close with closeDirs(), whether or not that directory had an error.
   */
  scanDirs(dirs: Int32Array, names: string, how: number, async: false, make?: MakeDirs, cancel?: Int32Array): DirsScan
  scanDirs(dirs: Int32Array, names: string, how: number, async: true, make?: MakeDirs, cancel?: Int32Array): Promise<DirsScan>
  scanDirs(dirs: Int32Array, names: string, how: number, async: 'thread', make?: MakeDirs, cancel?: Int32Array): Started<DirsScan>
  /** Opens one directory (a root of a walk), as scanDirs does: its descriptor and its stat
   * (STAT_STRIDE numbers). */
  openDir(dir: number, name: NativePath, how: number): { fd: number; stat: Float64Array }
  closeDirs(fds: Int32Array): void
  /** mkdirat: 0 made, 1 an existing directory with `merge` */
  makeDir(dir: number, name: NativePath, mode: number, merge: boolean): number
  rename(fromDir: number, fromName: NativePath, toDir: number, toName: NativePath, noreplace: boolean): void
  /** renameat2(RENAME_EXCHANGE) / renameatx_np(RENAME_SWAP) of two existing entries; ENOTSUP on
   * Windows, EINVAL where the filesystem has none. */
  exchange(aDir: number, aName: NativePath, bDir: number, bName: NativePath): void
  /** btrfs: a snapshot of the subvolume (srcDir, srcName) as the new subvolume (dstDir,
   * dstName), one component; ENOTSUP off Linux. */
  subvolSnapshot(srcDir: number, srcName: NativePath, dstDir: number, dstName: NativePath, readOnly: boolean): void
  /** btrfs: deletes the subvolume (dir, name), a read-only one too. */
  subvolDelete(dir: number, name: NativePath): void
  /** Each pair's contents compared byte for byte (both opened O_NOFOLLOW, never a symlink):
   * results[i] 0 the same, 1 different, or -errno. */
  /** Scan.Meta's five numbers (xattr hash, symlink target hash, errno) for entries named one
   * by one (a final symlink never followed). */
  metaMany(dirs: Int32Array, names: string, flags: number, async: true): Promise<Uint32Array>
  compareFiles(aDirs: Int32Array, aNames: string, bDirs: Int32Array, bNames: string, flags: number, async: true): Promise<{ results: Int32Array; syscalls: Array<string | undefined> }>
  remove(dir: number, name: NativePath, isDir: boolean): void
  /** (dev, ino) pairs of the directory at path and each of its ancestors up to the root. */
  ancestors(path: NativePath): Float64Array
  /** cf_lock: the descriptor holding an exclusive lock on (dir, name), created O_EXCL with
   * `create`; throws EAGAIN where another holds it. unlock() closes it. */
  lock(dir: number, name: NativePath, create: boolean): number
  unlock(fd: number): void
}

export interface SampleBatch {
  errnos: Int32Array
  hashes: Uint32Array
  stats: Float64Array
}

export interface DedupeBatch {
  status: Int32Array
  deduped: Float64Array
  before: Float64Array
  after: Float64Array
  /** dedupeFiles: each file's extent map read through its descriptor before (counts[i]) and after
   * (counts[n + i]) the calls, one after another in `extents` (4 numbers an extent); a map that
   * could not be read has none */
  counts?: Uint32Array
  extents?: Float64Array
}

/** A native call running on a thread of its own (async 'thread'): its result comes from finish(). */
declare const result: unique symbol
export interface Started<T> {
  readonly [result]: T
}

/** Directories for scanDirs() to make before listing, one slot per directory listed. */
export interface MakeDirs {
  dirs: Int32Array
  names: string
  modes: Uint32Array
}

/** Kinds of operation for runOps(), as in src/native/jobs.c. */
export const Op = { Clone: 0, Copy: 1, Symlink: 2, Special: 3, DirMeta: 4, Link: 5, Remove: 6, RemoveDir: 7 } as const

export interface OpResults {
  /** bytes of data for each operation, or -errno where it failed */
  results: Float64Array
  /** the failing syscall, at the index of each failed operation */
  syscalls: Array<string | undefined>
  /** non-zero where an operation left out an extended attribute the destination could not
   * hold: its errno (cf_error.dropped) */
  dropped: Int32Array
}

/** scanDirs() `how` bits, as CF_SCAN_* in src/native/platform.h; Merge (scanDirs with `make`:
 * an existing directory is fine) and Names (with Extents: every name, a mapped file's too) as
 * SCAN_MERGE and SCAN_NAMES in src/native/jobs.c. */
export const Scan = { Follow: 0x1, Extents: 0x2, Writable: 0x4, Meta: 0x8, Merge: 0x100, Names: 0x200 } as const

/**
 * A bit of runOps' `flags` and scanDirs' `how` (JOB_RAW in src/native/jobs.c): names given
 * as strings are byte strings, and names come back so (see raw.ts).
 */
export const RAW = 0x40000000

/**
 * Bits of runOps' `flags` and scanDirs' `how` (JOB_LANE_* in src/native/jobs.c): the jobs
 * of lane `n` (1 to 15) run one after another, process-wide; different lanes side by side.
 */
export const LANES = 15
export const lane = (n: number): number => (n >= 1 && n <= LANES ? Math.trunc(n) << 26 : 0)

/** Several directories' entries one after the other; with Scan.Extents each entry's extents
 * too, laid out as extentsMany() gives them, and `names` left empty for the regular files that
 * were mapped without error (a name is then wanted only to report one). */
export interface DirsScan extends Partial<ExtentBatch> {
  /** the opened source directory of each, or -1 */
  fds: Int32Array
  /** the made (or, merging, existing) destination directory of each, or -1 */
  dstFds: Int32Array
  /** each opened directory's own stat, STAT_STRIDE numbers each */
  dirStats: Float64Array
  /** how many entries of `names` belong to each directory */
  dirs: Uint32Array
  /** non-zero where a directory could not be opened, made or listed (its entries are then none) */
  dirErrnos: Int32Array
  dirSyscalls: Array<string | undefined>
  /** 1 where the failure was making the directory rather than opening or listing its source */
  dirOnDest: Uint8Array
  names: string[]
  /** STAT_STRIDE numbers for each entry (entries.ts reads them) */
  stats: Float64Array
  /** with Scan.Meta: 5 numbers an entry: a hash of its xattrs (low, high 32 bits; 0 for none),
   * of a symlink's target (low, high), and the errno that kept them from being read, or 0 */
  meta?: Uint32Array
}

/** fileSpace() `known` bits, as CF_SPACE_* in src/native/platform.h. */
export const Space = { Allocated: 0x01, PrivateSize: 0x02, CloneId: 0x04, ExtFlags: 0x08, CloneRefcount: 0x10 } as const

/** One element per path; a field means something only where its Space bit is set in `known`
 * (it is 0 otherwise). */
export interface FileSpaceBatch {
  /** bytes allocated to the file, all forks (what st_blocks counts) */
  allocated: Float64Array
  /** bytes freed at once if the file were deleted: held by no clone and no snapshot (APFS) */
  privateSize: Float64Array
  /** the same for a file and its pure clones, which share all their blocks; a clone written
   * to gets a new one (APFS) */
  cloneId: BigUint64Array
  /** EF_* bits of <sys/stat.h>: EF_MAY_SHARE_BLOCKS 0x1, EF_SHARES_ALL_BLOCKS 0x40 */
  extFlags: BigUint64Array
  /** how many files have this cloneId, this one included (macOS 14+) */
  cloneRefcount: Uint32Array
  /** Space bits: the fields the filesystem reported */
  known: Uint32Array
  /** non-zero where the file could not be asked (nothing of it is known then) */
  errnos: Int32Array
}

export interface ExtentBatch {
  counts: Uint32Array
  errnos: Int32Array
  extents: Float64Array
}

let loaded: Binding | null | undefined
let loadError: unknown

/** The addon, or undefined when it is not built or hidden with CLONEFILE_NATIVE=0. */
export function native(): Binding | undefined {
  if (loaded === undefined) {
    loaded = null
    if (process.env.CLONEFILE_NATIVE !== '0') {
      try {
        const require = createRequire(import.meta.url)
        const load = require('node-gyp-build') as (dir: string) => Binding
        loaded = load(fileURLToPath(new URL('../..', import.meta.url)))
      } catch (e) {
        loadError = e
      }
    }
  }
  return loaded ?? undefined
}

/** The addon, or an error with code ERR_CLONEFILE_NATIVE_MISSING naming what needs it. */
export function requireNative(feature: string): Binding {
  const binding = native()
  if (binding !== undefined) return binding
  const why = process.env.CLONEFILE_NATIVE === '0'
    ? 'it is disabled by CLONEFILE_NATIVE=0'
    : `it is not built (${loadError instanceof Error ? loadError.message.split('\n')[0] : 'not found'})`
  const err = new Error(
    `${feature} needs clonefile's native addon, but ${why}. ` +
      'Install a C toolchain (python3, make, a C compiler) and run `npm rebuild clonefile`.',
  ) as Error & { code: string }
  err.code = 'ERR_CLONEFILE_NATIVE_MISSING'
  throw err
}
