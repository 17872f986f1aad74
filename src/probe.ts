import * as fs from 'node:fs'
import { dirname, join } from 'node:path'
import { Flag, METHOD_CLONE, requireNative } from './binding.js'
import type { Binding, FsInfo } from './binding.js'
import { fromNative } from './errors.js'
import { filesystemName, knownToClone } from './fallback.js'
import { toPath } from './args.js'
import { TEMP_PREFIX } from './temp.js'
import type { CloneError, PathLike, Probe } from './types.js'

const cache = new Map<string, Probe>()

function keyOf(a: FsInfo, b: FsInfo): string {
  return `${a.type}:${a.dev}:${a.mountId}|${b.type}:${b.dev}:${b.mountId}`
}

function dirOf(path: string): string {
  try {
    return fs.statSync(path).isDirectory() ? path : dirname(path)
  } catch {
    return dirname(path)
  }
}

/** Creates a one-block file, clones it into `otherDir` and tries a dedupe: the proof. */
function confirm(binding: Binding, info: FsInfo, dir: string, otherDir: string): Probe {
  const base: Probe = { clone: false, range: false, dedupe: false, filesystem: filesystemName(info), blockSize: info.blockSize }
  const a = join(dir, `${TEMP_PREFIX}probe-${process.pid}-a`)
  const b = join(otherDir, `${TEMP_PREFIX}probe-${process.pid}-b`)
  try {
    fs.writeFileSync(a, Buffer.alloc(Math.max(info.blockSize, 4096), 0x5a), { flag: 'wx' })
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN'
    const clone = knownToClone(info) === true
    return { ...base, clone, range: clone && process.platform !== 'darwin', reason: `${code}: unconfirmed, ${dir} is not writable; answered from the filesystem type` }
  }
  try {
    binding.cloneFile(a, b, undefined, METHOD_CLONE, Flag.Direct, false)
  } catch (e) {
    fs.rmSync(a, { force: true })
    const err = fromNative(e, a, b) as CloneError
    return { ...base, reason: `${err.code}: ${err.message.split(',')[0]?.replace(`${err.code}: `, '')}` }
  }
  const probe = { ...base, clone: true, range: process.platform !== 'darwin', dedupe: dedupes(binding, a, b) }
  fs.rmSync(a, { force: true })
  fs.rmSync(b, { force: true })
  return probe
}

function dedupes(binding: Binding, a: string, b: string): boolean {
  if (process.platform !== 'linux') return false
  const fa = fs.openSync(a, 'r')
  const fb = fs.openSync(b, 'r')
  try {
    binding.dedupeRange(fa, fb, 0, 0, fs.fstatSync(fa).size)
    return true
  } catch {
    return false
  } finally {
    fs.closeSync(fa)
    fs.closeSync(fb)
  }
}

/**
 * Says whether files can be cloned within `path`'s filesystem, or from `path` to `otherPath`,
 * without cloning anything of the caller's: from the filesystem type or capability flags,
 * confirmed by cloning a temporary file where the directory is writable. Cached per device pair.
 */
export function probeSync(path: PathLike, otherPath?: PathLike): Probe {
  const p = toPath('path', path).toString()
  const other = otherPath === undefined ? p : toPath('otherPath', otherPath).toString()
  const binding = requireNative('probe')
  let info: FsInfo, otherInfo: FsInfo
  try {
    info = binding.fsInfo(p)
    otherInfo = other === p ? info : binding.fsInfo(other)
  } catch (e) {
    throw fromNative(e, p, other === p ? undefined : other)
  }
  const key = keyOf(info, otherInfo)
  const known = cache.get(key)
  if (known !== undefined) return { ...known }
  // Since Linux 5.18 FICLONE works across mounts of one filesystem (bind mounts, btrfs
  // subvolumes), so only a real clone tells; two filesystem types never share blocks.
  const probe = info.type !== otherInfo.type
    ? { clone: false, range: false, dedupe: false, filesystem: filesystemName(info), blockSize: info.blockSize, reason: 'EXDEV: different filesystems' }
    : confirm(binding, info, dirOf(p), dirOf(other))
  cache.set(key, probe)
  return { ...probe }
}

/** The asynchronous twin of {@link probeSync}; the answer is cached, so this is cheap after the first. */
export async function probe(path: PathLike, otherPath?: PathLike): Promise<Probe> {
  return probeSync(path, otherPath)
}
