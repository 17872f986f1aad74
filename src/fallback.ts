// When an 'auto' clone may become a copy. Only errors that mean "this pair of files cannot
// share blocks" qualify; every other error (ENOENT, EACCES, ENOSPC, EISDIR, EROFS, ...) is thrown.
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
