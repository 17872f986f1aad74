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
} as const

export interface FsInfo {
  /** statfs f_type on Linux; a hash of the type name on macOS; 0 on Windows */
  type: number
  name: string
  blockSize: number
  dev: number
  mountId: number
  /** 1 yes, 0 no, -1 unknown: from the filesystem type or its capability flags */
  canClone: number
}

export type NativePath = string | Buffer

export interface Binding {
  cloneFile(src: NativePath | number, dst: NativePath, method: number, flags: number, async: false): number
  cloneFile(src: NativePath | number, dst: NativePath, method: number, flags: number, async: true): Promise<number>
  cloneRange(srcFd: number, dstFd: number, srcOffset: number, dstOffset: number, length: number, method: number, async: false): number
  cloneRange(srcFd: number, dstFd: number, srcOffset: number, dstOffset: number, length: number, method: number, async: true): Promise<number>
  dedupeRange(srcFd: number, dstFd: number, srcOffset: number, dstOffset: number, length: number): number
  fsInfo(path: NativePath): FsInfo
  /** [logical, physical, length, flags] for each extent */
  extents(path: NativePath): Float64Array
  /** Extents of many files in one trip: counts[i] extents of file i follow each other in
   * `extents` (4 numbers each); errnos[i] is non-zero where file i could not be mapped. */
  extentsMany(paths: NativePath[], async: false): ExtentBatch
  extentsMany(paths: NativePath[], async: true): Promise<ExtentBatch>
  /** Runs kinds[i] from srcs[i] to dsts[i], every one of them, in order. */
  /** srcs and dsts: arrays, or (cheaper to pass) strings of the paths joined by '\0' */
  runOps(kinds: Uint8Array, srcs: NativePath[] | string, dsts: NativePath[] | string, flags: number, async: false): OpResults
  runOps(kinds: Uint8Array, srcs: NativePath[] | string, dsts: NativePath[] | string, flags: number, async: true): Promise<OpResults>
  /** Lists a directory and stats each entry (lstat, or stat with Scan.Follow). */
  scanDir(path: string, how: number): DirScan
  /** Many directories in one trip; a directory that fails does not stop the others. */
  scanDirs(paths: string[], how: number, async: true, makes?: Array<string | undefined>, modes?: Uint32Array): Promise<DirsScan>
  /** With `makes`, directory makes[i] (where given) is made with mode modes[i] before paths[i]
   * is listed; a failure to make it is that directory's error (dirOnDest set). */
  scanDirs(paths: string[], how: number, async: false, makes?: Array<string | undefined>, modes?: Uint32Array): DirsScan
  /** What the filesystem says of each file's space, in one trip: one getattrlist(2) a file on
   * macOS; elsewhere every errno is ENOTSUP. A final symlink is not followed. */
  fileSpace(paths: NativePath[], async: true): Promise<FileSpaceBatch>
  rename(from: NativePath, to: NativePath, noreplace: boolean): void
}

/** Kinds of tree operation for runOps(), as in src/native/binding.c. */
export const Op = { Clone: 0, Copy: 1, Symlink: 2, Special: 3, DirMeta: 4, Link: 5 } as const

export interface OpResults {
  /** bytes of data for each operation, or -errno where it failed */
  results: Float64Array
  /** the failing syscall, at the index of each failed operation */
  syscalls: Array<string | undefined>
}

export interface DirScan {
  names: string[]
  /** [mode, dev, ino, size, nlink] for each name */
  stats: Float64Array
}

/** scanDir() `how` bits, as CF_SCAN_* in src/native/platform.h; Merge (scanDirs with `makes`:
 * an existing directory is fine) as SCAN_MERGE in src/native/binding.c. */
export const Scan = { Follow: 0x1, Extents: 0x2, Merge: 0x100 } as const

/**
 * A bit of runOps' `flags` and scanDir(s)' `how` (JOB_RAW in src/native/binding.c): paths given
 * as strings are byte strings, and names come back so (see raw.ts).
 */
export const RAW = 0x40000000

/**
 * Bits of runOps' `flags` and scanDirs' `how` (JOB_LANE_* in src/native/binding.c): the jobs
 * of lane `n` (1 to 15) run one after another, process-wide; different lanes side by side.
 */
export const LANES = 15
export const lane = (n: number): number => (n >= 1 && n <= LANES ? Math.trunc(n) << 26 : 0)

/** Several directories' entries one after the other; with Scan.Extents each entry's extents
 * too, laid out as extentsMany() gives them, and `names` left empty for the regular files that
 * were mapped without error (a name is then wanted only to report one). */
export interface DirsScan extends DirScan, ExtentBatch {
  /** how many entries of `names` belong to each directory */
  dirs: Uint32Array
  /** non-zero where a directory could not be listed (its entries are then none) */
  dirErrnos: Int32Array
  dirSyscalls: Array<string | undefined>
  /** 1 where the failure was making the directory rather than listing its source */
  dirOnDest: Uint8Array
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
