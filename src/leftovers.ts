// A killed run leaves its temporary tree beside dst (temp.ts names it). The next run to the
// same dst removes such trees, but only those whose run is proven dead: beside each temporary
// tree is a lock file whose lock its run took before making the tree and holds for its whole
// life (cf_lock: an OFD lock on Linux, which other PID namespaces and, over NFS, other hosts
// see; a crashed run's lock is gone with it). A PID in a name proves nothing across containers
// or hosts. Paths are byte strings.
import * as fs from 'node:fs'
import { constants } from 'node:os'
import type { Binding } from './binding.js'
import { fromNative } from './errors.js'
import { named, native as nativeName } from './raw.js'
import { removeTreeAt } from './remove.js'
import { LOCK_SUFFIX, isTempFor } from './temp.js'
import type { TreeResult } from './types.js'

const { EAGAIN, EWOULDBLOCK, ENOENT } = constants.errno
/**
 * A temporary tree without a lock file was left by a version that did not lock (a run locks
 * before it makes its tree): removed only once it is this old (its mtime), in case such a run
 * still goes on.
 */
const UNLOCKED_AGE_MS = 24 * 3600 * 1000

/**
 * Removes the dead runs' temporary trees for `dstName` in the open directory `parentFd` (at
 * `parent`, for messages). What cannot be removed (another user's, in a sticky directory) is
 * left alone and said in the warnings; the run goes on.
 */
export function removeLeftovers(binding: Binding, parentFd: number, parent: string, dstName: string): TreeResult['warnings'] {
  return removeDeadTemps(binding, parentFd, parent, (name) => isTempFor(name, dstName))
}

/** removeLeftovers() for every temporary name `which` accepts (snapshots: a whole store). */
export function removeDeadTemps(binding: Binding, parentFd: number, parent: string, which: (name: string) => boolean): TreeResult['warnings'] {
  const warnings: TreeResult['warnings'] = []
  let names: Buffer[]
  try {
    names = fs.readdirSync(Buffer.from(parent, 'latin1'), { encoding: 'buffer' })
  } catch {
    return warnings
  }
  const all = new Set(names.map((b) => b.toString('latin1')))
  for (const name of all) {
    if (name.endsWith(LOCK_SUFFIX)) {
      const tree = name.slice(0, -LOCK_SUFFIX.length)
      if (which(tree) && !all.has(tree)) removeOrphanLock(binding, parentFd, name)
      continue
    }
    if (!which(name)) continue
    const path = `${parent}/${name}`
    let lock = ALIVE
    try {
      lock = deadRunLock(binding, parentFd, name, path)
      if (lock === ALIVE) continue
      removeTreeAt(binding, { dir: parentFd, name }, path)
      if (lock >= 0) binding.remove(parentFd, nativeName(name + LOCK_SUFFIX), false)
    } catch (e) {
      const code = (fromNative(e, named(path).path) as { code?: string }).code
      if (code !== 'EPERM' && code !== 'EACCES') throw e
      warnings.push({ ...named(path), code, message: `${code}: a dead run's temporary tree could not be removed (another user's?); left alone` })
    } finally {
      if (lock >= 0) binding.unlock(lock)
    }
  }
  return warnings
}

/** A lock file without its tree: a run killed between the two. Removed where its lock is free. */
function removeOrphanLock(binding: Binding, parentFd: number, name: string): void {
  let fd: number
  try {
    fd = binding.lock(parentFd, nativeName(name), false)
  } catch {
    return // held (that run is about to make its tree), or not ours to judge
  }
  try {
    binding.remove(parentFd, nativeName(name), false)
  } catch {
    // Someone else's to remove.
  } finally {
    binding.unlock(fd)
  }
}

const ALIVE = -1
const UNLOCKED = -2

/**
 * Whether the run that made temporary tree `name` is gone: its lock, taken (held while the
 * tree is removed: a run starting meanwhile sees it locked); UNLOCKED for an old tree without a
 * lock file; ALIVE where its run holds the lock, or it is too young to judge.
 */
function deadRunLock(binding: Binding, parentFd: number, name: string, path: string): number {
  try {
    return binding.lock(parentFd, nativeName(name + LOCK_SUFFIX), false)
  } catch (e) {
    const errno = (e as { errno?: number }).errno
    if (errno === EAGAIN || errno === EWOULDBLOCK) return ALIVE
    if (errno !== ENOENT) throw e
    const st = fs.lstatSync(Buffer.from(path, 'latin1'), { throwIfNoEntry: false })
    return st !== undefined && st.isDirectory() && Date.now() - st.mtimeMs > UNLOCKED_AGE_MS ? UNLOCKED : ALIVE
  }
}
