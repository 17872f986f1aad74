// What clonefile/fs makes itself once cloneTree is done, because fs.cp makes it otherwise than
// cloneTree would: symlinks with their relative targets made absolute, devices copied as files,
// files' times as Node's utimes sets them, and then the modes of the directories these went
// into (cloneTree leaves them writable for this). Every entry is named through its parent
// directory, opened one component at a time from the root with O_NOFOLLOW (on the source side
// only where links are followed anyway): a directory swapped for a symlink meanwhile is
// ENOTDIR/ELOOP, never followed (cloneTree's rule). Linux names an open directory as
// /proc/self/fd/N (proc(5)); elsewhere the path is used as it is.
import * as fs from 'node:fs'
import { constants } from 'node:fs'
import type { CloneTreeOptions } from './types.js'

/** Entries relative to the roots (src and dest), '/'-separated; '' is the root itself. */
export interface After {
  /** symlinks to make: [target, rel, replace what is there] */
  links: Array<[string, string, boolean]>
  /** character and block devices, copied as fs.cp's copyFile copies them: [rel, replace] */
  devices: Array<[string, boolean]>
  /** files to give their source's times as fs.cp does (utimes with Dates) */
  times: string[]
  /** files to give their source's times as Node 22's C++ does (seconds as a double: to the µs) */
  exactTimes: string[]
  /** directories that got entries here, whose mode is set after them: rel -> the source's st_mode */
  modes: Map<string, number>
}

export const nothingAfter = (): After => ({ links: [], devices: [], times: [], exactTimes: [], modes: new Map() })

/** One run of fs.cp: what is made around cloneTree, shared by the sync and async drivers. */
export interface Plan {
  /** nothing to do: the filter left the root out, or force: false kept an existing file */
  done?: true
  /** the root is a symlink: made here */
  link?: { target: string; replace: boolean }
  /** the root is a file or directory: cloneTree's arguments */
  tree?: CloneTreeOptions
  /** the directory cloneTree walks, where it is not src itself (a followed root of Node 22's C++ walk) */
  walkFrom?: string
  /** what is made after cloneTree */
  after: After
  /** directories that were there before (relative to dest): fs.cp leaves their mode and times */
  kept: Set<string>
  /** the source directories' st_mode, relative to src: for those that get entries after cloneTree */
  dirModes: Map<string, number>
}

export const newPlan = (): Plan => ({ after: nothingAfter(), kept: new Set(), dirModes: new Map() })

/** An entry made after cloneTree in the directory of `rel`: that directory's mode waits for it. */
export function madeAfterIn(plan: Plan, rel: string): void {
  const slash = rel.lastIndexOf('/')
  const dir = slash < 0 ? '' : rel.slice(0, slash)
  const mode = plan.dirModes.get(dir)
  if (rel !== '' && !plan.kept.has(dir) && mode !== undefined) plan.after.modes.set(dir, mode)
}

// open(2): O_PATH holds the inode itself (no permission needed, no device opened); 010000000
// on every Linux architecture Node runs on, and not in fs.constants.
const O_PATH = 0o10000000
const { O_DIRECTORY, O_NOFOLLOW, COPYFILE_EXCL } = constants
const linux = process.platform === 'linux'

type Act = (at: Places) => void

/**
 * Makes what `after` lists from `src` into `dest`: `mode` is copyFile's for devices, `follow`
 * (dereference) lets the source side follow symlinks as cloneTree did.
 */
export function makeAfter(after: After, src: string, dest: string, mode: number, follow: boolean): void {
  const entries: Array<[string, Act]> = [
    ...after.links.map(([target, rel, replace]): [string, Act] => [rel, (at) => makeLink(target, at.dest, replace)]),
    ...after.devices.map(([rel, replace]): [string, Act] => [rel, (at) => copyDevice(at, replace, mode, follow)]),
    ...after.times.map((rel): [string, Act] => [rel, (at) => copyTimes(at, follow)]),
    ...after.exactTimes.map((rel): [string, Act] => [rel, (at) => copyExactTimes(at)]),
  ].sort((a, b) => compare(a[0], b[0]))
  const chains = new Chains(src, dest, follow)
  try {
    for (const [rel, act] of entries) chains.at(rel, act)
    // Deepest first: a directory's mode may take away what reaching those below it needs.
    const dirs = [...after.modes].sort((a, b) => depth(b[0]) - depth(a[0]) || compare(a[0], b[0]))
    for (const [rel, m] of dirs) chains.at(rel, (at) => fs.chmodSync(at.dest, m & 0o7777), true)
  } finally {
    chains.close()
  }
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
const depth = (rel: string): number => (rel === '' ? 0 : rel.split('/').length)

/** An entry as the calls below take it (the source side opened only when asked for); `shown*`
 * as people see it, for errors. */
interface Places {
  src: () => string
  dest: string
  shownSrc: string
  shownDest: string
}

interface OpenDir {
  name: string
  /** -1 until an entry needs it */
  src: number
  dest: number
}

/**
 * The directories that lead to the entries, taken in the order of their paths: each is opened
 * once (a source directory only where an entry needs it), O_PATH|O_DIRECTORY relative to its
 * parent's descriptor, and closed once no later entry is below it.
 */
class Chains {
  /** [0] the roots' parents' children: the roots themselves; [i] the i-th component down */
  private readonly open: OpenDir[] = []

  constructor(private readonly src: string, private readonly dest: string, private readonly follow: boolean) {}

  /** Runs `act` on the entry `rel`; a directory itself (`self`) is named by its own descriptor. */
  at(rel: string, act: Act, self = false): void {
    const parts = rel === '' ? [] : rel.split('/')
    const shownSrc = rel === '' ? this.src : `${this.src}/${rel}`
    const shownDest = rel === '' ? this.dest : `${this.dest}/${rel}`
    let places: Places = { src: () => shownSrc, dest: shownDest, shownSrc, shownDest }
    let srcUsed = shownSrc
    try {
      if (linux && (self || parts.length > 0)) {
        const name = self ? '' : `/${parts.pop() as string}`
        const level = this.reach(parts)
        places = { ...places, src: () => (srcUsed = `/proc/self/fd/${this.srcFd(level)}${name}`), dest: `/proc/self/fd/${this.open[level]!.dest}${name}` }
      }
      act(places)
    } catch (e) {
      throw renamed(e, { ...places, src: () => srcUsed })
    }
  }

  /** The level of the open destination directory at `parts` below the roots, its ancestors
   * opened on the way. */
  private reach(parts: string[]): number {
    if (this.open.length === 0) this.open.push({ name: '', src: -1, dest: openDir(this.dest, true) })
    let keep = 1
    while (keep < this.open.length && keep - 1 < parts.length && this.open[keep]!.name === parts[keep - 1]) keep++
    while (this.open.length > keep) this.pop()
    for (let i = keep - 1; i < parts.length; i++) {
      const up = this.open[this.open.length - 1]!
      const name = parts[i]!
      this.open.push({ name, src: -1, dest: openDir(`/proc/self/fd/${up.dest}/${name}`, false) })
    }
    return this.open.length - 1
  }

  /** The source directory at `level`, opened (with its ancestors) where it is not yet. */
  private srcFd(level: number): number {
    const d = this.open[level]!
    if (d.src < 0) d.src = level === 0 ? openDir(this.src, true) : openDir(`/proc/self/fd/${this.srcFd(level - 1)}/${d.name}`, this.follow)
    return d.src
  }

  private pop(): void {
    const d = this.open.pop() as OpenDir
    if (d.src >= 0) fs.closeSync(d.src)
    fs.closeSync(d.dest)
  }

  close(): void {
    while (this.open.length > 0) this.pop()
  }
}

const openDir = (path: string, follow: boolean): number => fs.openSync(path, O_PATH | O_DIRECTORY | (follow ? 0 : O_NOFOLLOW))

/** Errors name the entry as the user knows it, not the descriptors it was reached through. */
function renamed(e: unknown, at: Places): unknown {
  const err = e as NodeJS.ErrnoException & { dest?: string }
  if (typeof err?.message !== 'string') return e
  const known: Array<[string, string]> = [[at.src(), at.shownSrc], [at.dest, at.shownDest]]
  const fix = (s: string): string => {
    for (const [from, to] of known) if (s === from) return to
    // A directory on the way, reached through its parent's descriptor.
    return s.startsWith('/proc/self/fd/') ? at.shownDest : s
  }
  const [path, dest] = [err.path, err.dest]
  if (typeof path === 'string') err.path = fix(path)
  if (typeof dest === 'string') err.dest = fix(dest)
  if (typeof path === 'string') err.message = err.message.replace(`'${path}'`, `'${err.path}'`)
  if (typeof dest === 'string') err.message = err.message.replace(`'${dest}'`, `'${err.dest}'`)
  return err
}

function makeLink(target: string, dest: string, replace: boolean): void {
  if (replace) fs.unlinkSync(dest)
  fs.symlinkSync(target, dest)
}

/**
 * fs.cp's copyFile of a character or block device: the device opened and read as a file, what
 * it gives up to its st_size (0 for devices: an empty file) written to a new regular file with
 * the device's mode, or copyFile's error (ENXIO for a device without a driver, EINVAL from
 * FICLONE_FORCE). On Linux the source is held by O_PATH, with O_NOFOLLOW unless links are
 * followed (a symlink swapped in is ELOOP, and holding a device does not open it), and opened by
 * copyFile through that descriptor; the new file is created O_EXCL, so a symlink planted at its
 * name is never written through.
 */
function copyDevice(at: Places, replace: boolean, mode: number, follow: boolean): void {
  if (replace) fs.unlinkSync(at.dest)
  const held = linux ? fs.openSync(at.src(), O_PATH | (follow ? 0 : O_NOFOLLOW)) : -1
  const src = held >= 0 ? `/proc/self/fd/${held}` : at.src()
  try {
    fs.copyFileSync(src, at.dest, mode | COPYFILE_EXCL)
  } catch (e) {
    throw renamed(e, { ...at, src: () => src })
  } finally {
    if (held >= 0) fs.closeSync(held)
  }
}

/**
 * fs.cp's preserveTimestamps: the source's atime and mtime as stat gives them (Dates, whole
 * milliseconds), set with utimes, which libuv turns into a timespec from a double and rounds
 * down to the microsecond: set by the same calls, they are Node's to the nanosecond.
 */
function copyTimes(at: Places, follow: boolean): void {
  const st = follow ? fs.statSync(at.src()) : fs.lstatSync(at.src())
  fs.lutimesSync(at.dest, st.atime, st.mtime)
}

/**
 * Node 22's C++ (CopyUtimes): the source's times from stat(2) as tv_sec + tv_nsec / 1e9, a double
 * libuv turns back into a timespec to the microsecond; the same double here, by the same sums.
 */
function copyExactTimes(at: Places): void {
  const st = fs.statSync(at.src(), { bigint: true })
  const seconds = (ns: bigint): number => {
    const sec = (ns >= 0n ? ns : ns - 999_999_999n) / 1_000_000_000n // tv_sec: rounded down
    return Number(sec) + Number(ns - sec * 1_000_000_000n) / 1e9
  }
  fs.lutimesSync(at.dest, seconds(st.atimeNs), seconds(st.mtimeNs))
}

/**
 * Removes the empty directory `rel` of `dest`, reached as everything here is (O_NOFOLLOW, one
 * component at a time): where Node 22's cpSync replaces a directory with a file (rmdir's error,
 * ENOTEMPTY, where it is not empty).
 */
export function removeDir(dest: string, rel: string): void {
  const chains = new Chains(dest, dest, false)
  try {
    chains.at(rel, (at) => fs.rmdirSync(at.dest))
  } finally {
    chains.close()
  }
}
