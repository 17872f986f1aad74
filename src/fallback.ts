// When an 'auto' clone may become a copy. Only errors that mean "this pair of files cannot
// share blocks" qualify; every other error (ENOENT, EACCES, ENOSPC, EISDIR, EROFS, ...) is thrown.
import { METHOD_CLONE, METHOD_COPY } from './binding.js'
import type { CloneMode, CloneResult } from './clone.js'
import type { CloneError } from './errors.js'

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

/** The syscalls that attempt the sharing itself; failures elsewhere are never a reason to copy. */
const cloneSyscalls = new Set([
  'ioctl_ficlone',
  'ioctl_ficlonerange',
  'clonefile',
  'fclonefileat',
  'FSCTL_DUPLICATE_EXTENTS_TO_FILE',
  'copyfile', // Node's fs.copyFile with COPYFILE_FICLONE_FORCE, used without the addon
])

export interface Fallback {
  /** the errno code of the failed clone, e.g. 'EXDEV' or 'EOPNOTSUPP' */
  code: string
  message: string
}

export function fallbackFor(err: unknown): Fallback | undefined {
  const e = err as Partial<CloneError>
  if (typeof e?.code !== 'string' || !cannotClone.has(e.code) || !cloneSyscalls.has(e.syscall ?? '')) return undefined
  return { code: e.code, message: (err as Error).message }
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
 * or throws, 'auto' copies only where the clone failed for a reason copyInstead() accepts.
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
