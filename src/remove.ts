// Removing a tree clonefile made (a failed run's temporary tree, a killed run's leftover):
// through the walker, so as deep as any tree can be and never through a symlink. Paths here
// are byte strings (raw.ts).
import { constants } from 'node:os'
import { Op, RAW, Scan, type Binding } from './binding.js'
import { isDir, modeAt } from './entries.js'
import { fromNative } from './errors.js'
import { native as nativeName, shown } from './raw.js'
import { Walker, newDir, type At, type WalkDir } from './walk.js'

const { ENOENT } = constants.errno
/** Directories listed per scanDirs() call. */
const GROUP = 16

/**
 * Removes the tree at (at.dir, at.name), its directories made writable first where the process
 * owns them (a clone of read-only directories cannot otherwise be emptied). `label` names it in
 * errors. An entry that is already gone is no error.
 */
export function removeTreeAt(binding: Binding, at: At, label: string): void {
  const walker = new Walker<WalkDir>(binding, { how: RAW | Scan.Writable }, (parent, name, rel) => newDir(parent, name, rel, {}))
  const root = walker.start(at)
  const fail = (errno: number, syscall: string, rel: string): never => {
    throw fromNative({ errno, syscall }, shown(rel === '' ? label : `${label}/${rel}`))
  }
  // A directory is removed once everything in it is: then its parent has one entry fewer.
  const done = (dir: WalkDir): void => {
    for (let d: WalkDir | undefined = dir; d !== undefined && --d.pending === 0; d = d.parent) {
      walker.reopenParent(d)
      walker.close(d)
      const place = d.parent === undefined ? at : walker.entryAt(d.parent, d.name)
      try {
        binding.remove(place.dir, nativeName(place.name), true)
      } catch (e) {
        if ((e as { errno?: number }).errno !== ENOENT) fail((e as { errno: number }).errno, 'rmdir', d.rel)
      }
    }
  }
  try {
    for (let req = walker.nextScan(GROUP); req !== undefined; req = walker.nextScan(GROUP)) {
      const out = binding.scanDirs(req.at, req.names, req.how, false)
      for (const { dir, errno, syscall, listing } of walker.absorb(req, out)) {
        if (errno === ENOENT && dir !== root) {
          dir.pending = 1
          done(dir)
          continue
        }
        if (errno !== 0) fail(errno, syscall, dir.rel)
        const names: string[] = []
        for (let i = listing.first; i < listing.first + listing.count; i++) {
          const name = out.names[i] as string
          if (isDir(modeAt(out.stats, i))) {
            dir.pending++
            walker.child(dir, name)
          } else {
            names.push(name)
          }
        }
        removeFiles(binding, dir, names, fail)
        done(dir)
      }
    }
  } finally {
    walker.end()
  }
}

function removeFiles(binding: Binding, dir: WalkDir, names: string[], fail: (errno: number, syscall: string, rel: string) => never): void {
  if (names.length === 0) return
  const dirs = new Int32Array(names.length).fill(dir.fd)
  const joined = names.join('\0')
  const { results, syscalls } = binding.runOps(new Uint8Array(names.length).fill(Op.Remove), dirs, joined, dirs, joined, undefined, RAW, false)
  results.forEach((r, i) => {
    if (r < 0 && -r !== ENOENT) fail(-r, syscalls[i] ?? 'unlink', dir.rel === '' ? names[i] as string : `${dir.rel}/${names[i]}`)
  })
}
