// THE clone-or-copy policy, the one module that decides it: the modes, which failures of a
// clone mean "copy instead", what is known of each filesystem type, and how a range that is
// not block-aligned is split. The addon only does syscalls and reports errnos.
import { METHOD_CLONE, METHOD_COPY } from './binding.js'
import type { FsInfo } from './binding.js'
import { fsError } from './errors.js'
import type { CloneError, CloneMode, CloneResult, Fallback } from './types.js'

export const modes: readonly CloneMode[] = ['auto', 'always', 'never']

const cannotClone = new Set([
  'EXDEV', // different mounts: FICLONE(2const); bind mounts of one fs count as different
  'EOPNOTSUPP', // the filesystem has no reflink (ext4, tmpfs), or clonefile on HFS+
  'ENOTSUP',
  'EINVAL', // the fs refuses the range (misaligned, DAX, special inode)
  'EPERM', // FICLONE inside a user namespace with idmapped mounts
  'EAGAIN', // transient: ZFS block cloning under load
  'EBADF', // "the filesystem which src_fd resides on does not support reflink"
  'ETXTBSY', // a swap file cannot share storage, but can be read
  'ENOSYS', // Node's fs.copyFile on macOS/Windows with COPYFILE_FICLONE_FORCE
  'ENOTTY', // filesystems that do not know the ioctl at all
  'EMLINK', // ReFS: ERROR_BLOCK_TOO_MANY_REFERENCES (8175 references to one region)
])

/** Failures that say a whole filesystem (pair) cannot clone: later files from it go straight to
 * a copy, without trying. */
const filesystemWide = new Set(['EXDEV', 'EOPNOTSUPP', 'ENOTSUP', 'ENOTTY', 'ENOSYS'])

/** The syscalls that attempt the sharing itself; failures elsewhere are never a reason to copy. */
const cloneSyscalls = new Set([
  'ioctl_ficlone',
  'ioctl_ficlonerange',
  'clonefile',
  'fclonefileat',
  'FSCTL_DUPLICATE_EXTENTS_TO_FILE',
  'copyfile', // Node's fs.copyFile with COPYFILE_FICLONE_FORCE, used without the addon
  // Windows block cloning makes the target sparse first: FAT, exFAT and NTFS volumes without
  // sparse files refuse that (ERROR_INVALID_FUNCTION / ERROR_NOT_SUPPORTED: ENOTSUP) before
  // any sharing is tried, and that refusal means "this volume cannot clone" (issue 12 #5).
  'FSCTL_SET_SPARSE',
])

/** Windows flushes a clone's source first (a dirty cache gives a clone of zeros on ReFS); a
 * source it may not open for writing cannot be flushed, and is copied instead: a copy reads
 * through the cache. These codes of that one step fall back, whatever cannotClone says. */
const unflushable = new Set(['EACCES', 'EPERM', 'EROFS', 'EBUSY'])

/** Why a failed clone may become a copy in 'auto' mode, or undefined: then it is thrown. */
export function fallbackFor(err: unknown): Fallback | undefined {
  const e = err as Partial<CloneError>
  if (typeof e?.code !== 'string') return undefined
  const flushRefused = e.syscall === 'FlushFileBuffers' && unflushable.has(e.code)
  if (!flushRefused && (!cannotClone.has(e.code) || !cloneSyscalls.has(e.syscall ?? ''))) return undefined
  return { code: e.code, message: (err as Error).message }
}

/** A clone failed for a reason that holds for every file of that filesystem (pair). */
/**
 * Whether a file is cloned first (and copied only if that fails) or copied straight away: a
 * copy where the mode says so, or where its filesystem has already refused a clone with an
 * error that holds for the whole filesystem (cannotCloneHere).
 */
export function clonesFirst(mode: CloneMode, refusedHere: boolean): boolean {
  return mode !== 'never' && !refusedHere
}

export function cannotCloneHere(fallback: Fallback): boolean {
  return filesystemWide.has(fallback.code)
}

const same = (e: unknown) => e

/** A failed clone: in 'auto' mode, why to copy instead; otherwise (or for any other error) it is thrown. */
function copyInstead(mode: CloneMode, err: unknown): Fallback {
  const fallback = mode === 'auto' ? fallbackFor(err) : undefined
  if (fallback === undefined) throw err
  return fallback
}

/**
 * The clone-or-copy decision every operation shares: `attempt(METHOD_CLONE | METHOD_COPY)` does
 * the work and returns its bytes, or throws a Node-style error. 'never' copies, 'always' clones
 * or throws, 'auto' copies only where the clone failed for a reason fallbackFor() accepts.
 * `explain` may reword a clone's error first (cloneRange's misaligned EINVAL).
 */
export function cloneOrCopySync(mode: CloneMode, attempt: (method: number) => number, explain = same): CloneResult {
  if (mode === 'never') return { method: 'copy', size: attempt(METHOD_COPY) }
  try {
    return { method: 'clone', size: attempt(METHOD_CLONE) }
  } catch (e) {
    const fallback = copyInstead(mode, explain(e))
    return { method: 'copy', size: attempt(METHOD_COPY), fallback }
  }
}

/** The asynchronous twin of {@link cloneOrCopySync}. */
export async function cloneOrCopy(mode: CloneMode, attempt: (method: number) => Promise<number>, explain = same): Promise<CloneResult> {
  if (mode === 'never') return { method: 'copy', size: await attempt(METHOD_COPY) }
  try {
    return { method: 'clone', size: await attempt(METHOD_CLONE) }
  } catch (e) {
    const fallback = copyInstead(mode, explain(e))
    return { method: 'copy', size: await attempt(METHOD_COPY), fallback }
  }
}

// ---- what is known of each filesystem ----

/**
 * Linux statfs f_type magics (<linux/magic.h>, and the filesystems' own sources where it has
 * none) with the name and whether the type can clone: true always, false never, undefined where
 * it depends (XFS formatted without reflink, NFS and SMB servers, FUSE, ZFS before 2.2, overlay
 * on whatever lies beneath): only a real clone tells.
 */
const linuxTypes = new Map<number, [string, boolean | undefined]>([
  [0x9123683e, ['btrfs', true]],
  [0x58465342, ['xfs', undefined]],
  [0xef53, ['ext4', false]],
  [0x01021994, ['tmpfs', false]],
  [0x794c7630, ['overlay', undefined]],
  [0x6969, ['nfs', undefined]],
  [0x2fc12fc1, ['zfs', undefined]],
  [0xca451a4e, ['bcachefs', true]],
  [0xfe534d42, ['smb2', undefined]],
  [0xff534d42, ['cifs', undefined]],
  [0x7461636f, ['ocfs2', true]],
  [0x65735546, ['fuse', undefined]],
  [0xf2f52010, ['f2fs', false]],
  [0x4d44, ['vfat', false]],
  [0x5346544e, ['ntfs', false]],
  [0x2011bab0, ['exfat', false]],
  [0x9fa0, ['proc', false]],
  [0x62656572, ['sysfs', false]],
])
const cloningNames = new Set(['btrfs', 'bcachefs', 'ocfs2', 'apfs', 'ReFS'])
const nonCloningNames = new Set([...linuxTypes.values()].filter(([, c]) => c === false).map(([n]) => n))

/** The name of a filesystem: what the OS says (FsInfo.name on macOS, Windows), else from
 * Linux's f_type, else the type in hex. */
export function filesystemName(info: Pick<FsInfo, 'type' | 'name'>): string {
  if (info.name !== '') return info.name
  return linuxTypes.get(info.type)?.[0] ?? `0x${info.type.toString(16)}`
}

/**
 * Whether a filesystem can clone, as far as its type tells: true, false, or undefined where it
 * depends and a real clone must tell. Takes an FsInfo (the OS's own answer wins where it gives
 * one), a Linux f_type, or a name.
 */
export function knownToClone(fs: Pick<FsInfo, 'type' | 'name' | 'canClone'> | number | string): boolean | undefined {
  if (typeof fs === 'object') {
    if (fs.canClone === 1 || fs.canClone === 0) return fs.canClone === 1
    return fs.name === '' ? knownToClone(fs.type) : knownToClone(fs.name)
  }
  if (typeof fs === 'number') return linuxTypes.get(fs)?.[1]
  if (cloningNames.has(fs)) return true
  return nonCloningNames.has(fs) ? false : undefined
}

// ---- ranges ----

/** A piece of a range: cloned or copied. */
export interface RangePiece {
  method: number
  srcOffset: number
  dstOffset: number
  length: number
}

/**
 * How a range that the filesystem refused to clone as it is (misaligned) is split: the middle
 * that is aligned to `block` at both ends is cloned, an unaligned head and tail are copied. A
 * range whose offsets are not aligned alike (src and dst differ modulo the block) has no such
 * middle: all of it is copied. `length` is the real length (never 0 here).
 */
export function splitRange(srcOffset: number, dstOffset: number, length: number, block: number): RangePiece[] {
  const piece = (method: number, skip: number, n: number): RangePiece =>
    ({ method, srcOffset: srcOffset + skip, dstOffset: dstOffset + skip, length: n })
  if (block <= 0 || srcOffset % block !== dstOffset % block) return [piece(METHOD_COPY, 0, length)]
  const head = (block - (srcOffset % block)) % block
  const middle = Math.floor(Math.max(0, length - head) / block) * block
  if (middle === 0) return [piece(METHOD_COPY, 0, length)]
  const pieces = [piece(METHOD_CLONE, head, middle)]
  if (head > 0) pieces.unshift(piece(METHOD_COPY, 0, head))
  if (head + middle < length) pieces.push(piece(METHOD_COPY, head + middle, length - head - middle))
  return pieces
}

/** Where a range is not aligned to `block`: the offending fields and their aligned neighbours. */
export function misalignment(range: { srcOffset: number; dstOffset: number; length: number }, block: number, endsAtEof: boolean): string | undefined {
  const fields = [['srcOffset', range.srcOffset], ['dstOffset', range.dstOffset], ['length', range.length]] as const
  const bad = fields.filter(([k, v]) => v % block !== 0 && !(k === 'length' && endsAtEof))
  if (bad.length === 0) return undefined
  const near = bad.map(([k, v]) => `${k} ${v} -> ${Math.floor(v / block) * block} or ${Math.ceil(v / block) * block}`)
  return `range not aligned to the filesystem block size ${block} (${near.join('; ')}; ` +
    'a length may be unaligned only when the range ends at the end of the source)'
}

/**
 * cloneRange's policy, as a list of steps: it yields each piece to run (clone or copy) and is
 * given back the bytes done, or the error thrown into it. One policy for the sync and the async
 * API: {@link runSteps} and {@link runStepsAsync} drive it. 'never' copies; 'always' clones the
 * range as asked or throws (`explain` rewords the error: a misaligned EINVAL names the block);
 * 'auto' clones it as asked, else clones the block-aligned middle and copies the unaligned head
 * and tail (`block()` says the block size, where it is known), else copies all.
 */
export function* rangeSteps(mode: CloneMode, whole: RangePiece, realLength: number, block: () => number | undefined,
  explain: (e: unknown) => unknown): Generator<RangePiece, CloneResult, number> {
  if (mode === 'never') return { method: 'copy', size: yield { ...whole, method: METHOD_COPY } }
  let fallback: Fallback | undefined
  try {
    return { method: 'clone', size: yield { ...whole, method: METHOD_CLONE } }
  } catch (e) {
    fallback = copyInstead(mode, mode === 'always' ? explain(e) : e)
  }
  const b = fallback.code === 'EINVAL' && realLength > 0 ? block() : undefined
  const pieces = b === undefined ? [{ ...whole, method: METHOD_COPY }] : splitRange(whole.srcOffset, whole.dstOffset, realLength, b)
  let size = 0
  let cloned = 0
  for (const piece of pieces) {
    if (piece.method === METHOD_CLONE) {
      try {
        const n = yield piece
        size += n
        cloned += n
        continue
      } catch (e) {
        if (fallbackFor(e) === undefined) throw e
      }
    }
    try {
      size += yield { ...piece, method: METHOD_COPY }
    } catch (e) {
      throw writtenBefore(e, size)
    }
  }
  if (cloned === 0) return { method: 'copy', size, fallback }
  return { method: 'clone', size, fallback: { code: fallback.code, message: `${size - cloned} bytes not aligned to the block were copied (${fallback.message})` } }
}

/** A copy that failed after earlier pieces were written: its bytesWritten counts them too. */
function writtenBefore(e: unknown, before: number): unknown {
  const err = e as Partial<CloneError>
  if (before === 0 || typeof err.code !== 'string' || typeof err.syscall !== 'string') return e
  return fsError(err.code, err.syscall, { path: err.path, dest: err.dest, bytesWritten: before + (err.bytesWritten ?? 0) })
}

/** Runs {@link rangeSteps} (or any such policy) with a synchronous `run`. */
export function runSteps<T, R>(steps: Generator<T, R, number>, run: (step: T) => number): R {
  let next = steps.next()
  while (next.done !== true) {
    let n: number
    try {
      n = run(next.value)
    } catch (e) {
      next = steps.throw(e)
      continue
    }
    next = steps.next(n)
  }
  return next.value
}

/** Runs {@link rangeSteps} with an asynchronous `run`. */
export async function runStepsAsync<T, R>(steps: Generator<T, R, number>, run: (step: T) => Promise<number>): Promise<R> {
  let next = steps.next()
  while (next.done !== true) {
    let n: number
    try {
      n = await run(next.value)
    } catch (e) {
      next = steps.throw(e)
      continue
    }
    next = steps.next(n)
  }
  return next.value
}
