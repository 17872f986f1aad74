// diffSnapshots(): what changed between two trees (two snapshots, or a snapshot and the live
// directory), by path. Both trees are listed with the walker (every entry's stat, extent map,
// xattr hash and symlink target hash in the same trip: Scan.Extents | Scan.Meta). Two regular
// files of one size whose extent maps are the same physical blocks hold the same bytes: the
// filesystem says so, and nothing is read. Only where it cannot say (inline, encoded, delalloc
// extents; blocks that differ) are the two files read and compared, in the addon.
//
// Against the live directory a cheaper first look is enough for most entries (`Hint`): the
// kernel sets an inode's ctime to "now" on every change of its data or metadata, and no call
// can set it back. A live entry whose ctime is older than the snapshot's start, whose copy in a
// clone snapshot has not changed since that snapshot was complete, and whose type, size, mtime,
// mode and owner agree, is the state the snapshot copied: unchanged, known from one stat each
// (as rsync's look), no extent map needed. In a btrfs snapshot the inode itself is kept: the
// same inode number with the same ctime to the nanosecond is the same state. Everything else
// gets the whole look (extents, xattrs, target; bytes where extents cannot tell).
import * as fs from 'node:fs'
import { join } from 'node:path'
import { CWD, RAW, STAT_STRIDE, Scan, Stat, requireNative, type Binding, type DirsScan } from './binding.js'
import { typeOf } from './entries.js'
import { fromNative, fsError } from './errors.js'
import { sameBlocks } from './extents.js'
import { resolveOptions } from './args.js'
import { bytes, joinRaw, shown, toRaw } from './raw.js'
import { checkName, findSnapshot, recordTimes, storeOf, storeTable, type StoreRef } from './snapshot-store.js'
import type { Change, EntryType, PathLike, Snapshot, StoreOptions } from './types.js'
import { Walker, joinNames, listAsync, newDir, type Listing, type WalkDir } from './walk.js'

/** What the diff knows of one entry: numbers only, compared field by field. */
interface Entry {
  type: EntryType
  /** permission bits (mode & 0o7777), uid, gid */
  perm: number
  uid: number
  gid: number
  mtimeSec: number
  mtimeNsec: number
  /** hashes of the xattrs and of a symlink's target, 32 bits at a time (Scan.Meta) */
  x0: number
  x1: number
  t0: number
  t1: number
  size: number
  /** regular files mapped: their extents are numbers [first, first + count) (in extents) of
   * `extents`, a whole batch's array (no copy per file); undefined where not mapped */
  extents: Float64Array | undefined
  first: number
  count: number
  ino: number
  ctimeSec: number
  ctimeNsec: number
  /** extents (files), xattr and target hashes are known: listed with Scan.Extents | Scan.Meta,
   * or looked up later (`deepen`) */
  full: boolean
}

/**
 * What makes the first look enough (a diff against the live directory): ctimes before `before`
 * (ms) on the live side, and on the snapshot side before `after` (a clone snapshot's completion),
 * or, for a btrfs snapshot (`sameInode`), the same inode with the same ctime.
 */
export interface Hint {
  before: number
  after: number
  sameInode: boolean
}

type Tree = Map<string, Entry>


/** How many pairs of files go to the addon in one trip, and how many trips at once. */
const COMPARE_BATCH = 32
const COMPARE_PARALLEL = 2

/**
 * The changes from snapshot `from` to snapshot `to` (omitted: to the live directory), one per
 * path, in path order.
 */
export async function diffSnapshots(dir: PathLike, from: string, to?: string, options?: StoreOptions): Promise<Change[]> {
  const o = resolveOptions('options', options, storeTable)
  const binding = requireNative('diffSnapshots')
  if (process.platform === 'win32') {
    // win.c lists no extended attributes and has no byte compare: a diff there would miss changes.
    throw fsError('ENOTSUP', 'diffSnapshots', { detail: 'snapshot diff is not available on Windows (no xattr listing or byte compare in win.c yet)' })
  }
  const ref = storeOf(dir, o.store)
  const a = findSnapshot(ref, checkName(from, 'from'))
  if (to === undefined) return diffTrees(binding, a.path, ref.source, hintFor(ref, a))
  const b = findSnapshot(ref, checkName(to, 'to'))
  // Two btrfs snapshots of one subvolume keep its inodes: the same inode with the same ctime is
  // the same state. Two clone snapshots are new inodes each: the whole look.
  const both = a.method === 'subvolume' && b.method === 'subvolume' && a.readOnly && b.readOnly
  return diffTrees(binding, a.path, b.path, both ? { before: Infinity, after: Infinity, sameInode: true } : undefined)
}

/**
 * The kernel stamps ctime from a coarse clock, up to a tick (1-10 ms) behind the real time
 * Date.now() reads, never ahead. A change made after a recorded time T has a ctime after
 * T - MARGIN; an entry is settled only with a ctime before that, so one changed after T never is.
 */
const MARGIN_MS = 50

function hintFor(ref: StoreRef, a: Snapshot): Hint | undefined {
  const times = recordTimes(ref.store, a.name)
  if (a.method === 'subvolume' && a.readOnly) return { before: Infinity, after: Infinity, sameInode: true }
  if (times?.completed === undefined || a.path !== join(ref.store, a.name)) return undefined
  return { before: times.created - MARGIN_MS, after: times.completed - MARGIN_MS, sameInode: false }
}

/** The changes from the tree at path `a` to the tree at path `b`. */
export async function diffTrees(binding: Binding, a: string, b: string, hint?: Hint): Promise<Change[]> {
  const [ra, rb] = [toRaw(a), toRaw(b)]
  const roots = [binding.openDir(CWD, a, 0).fd]
  try {
    roots.push(binding.openDir(CWD, b, 0).fd)
    const full = hint === undefined
    const [ta, tb] = await Promise.all([listTree(binding, ra, full), listTree(binding, rb, full)])
    if (hint !== undefined) await deepen(binding, roots as [number, number], ta, tb, hint)
    return await compareTrees(binding, roots as [number, number], ta, tb)
  } catch (e) {
    throw fromNative(e, a, b)
  } finally {
    binding.closeDirs(Int32Array.from(roots))
  }
}

/** Every entry of the tree at the byte-string path `root`, by its path below it ('' the root). */
async function listTree(binding: Binding, root: string, full: boolean): Promise<Tree> {
  const tree: Tree = new Map()
  const st = fs.lstatSync(bytes(root), { bigint: true })
  const sec = (ns: bigint): number => Number(ns / 1_000_000_000n)
  const nsec = (ns: bigint): number => Number(ns % 1_000_000_000n)
  // The root is no entry of a listing: its xattrs are asked for by its path.
  const m = await binding.metaMany(Int32Array.of(CWD), root, RAW, true)
  if (m[4] !== 0) throw fromNative({ errno: m[4] as number, syscall: 'listxattr' }, shown(root))
  tree.set('', {
    type: 'directory', perm: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid),
    mtimeSec: sec(st.mtimeNs), mtimeNsec: nsec(st.mtimeNs), ctimeSec: sec(st.ctimeNs), ctimeNsec: nsec(st.ctimeNs), ino: Number(st.ino),
    x0: m[0] as number, x1: m[1] as number, t0: 0, t1: 0, size: 0, extents: undefined, first: 0, count: 0, full: true,
  })
  // The whole look: stat, extents, xattrs, target in one trip; the first look: a stat each.
  const how = RAW | Scan.Names | (full ? Scan.Extents | Scan.Meta : 0)
  const walker = new Walker<WalkDir>(binding, { how }, (parent, name, rel) => newDir(parent, name, rel, {}))
  walker.start({ dir: CWD, name: root })
  await listAsync(walker, ({ dir, errno, syscall, listing }) => {
    if (errno !== 0) throw fromNative({ errno, syscall }, shown(joinRaw(root, dir.rel)))
    addListing(tree, walker, dir, listing, root)
  })
  return tree
}

function addListing(tree: Tree, walker: Walker<WalkDir>, dir: WalkDir, { out, first, count, firstExtent }: Listing, root: string): void {
  let extent = firstExtent
  for (let i = first; i < first + count; i++) {
    const name = out.names[i] as string
    const rel = dir.rel === '' ? name : `${dir.rel}/${name}`
    const n = out.counts?.[i] ?? 0
    const entry = entryOf(out, i, extent, n)
    extent += n
    const metaErr = out.meta?.[i * 5 + 4] ?? 0
    if (metaErr !== 0) throw fromNative({ errno: metaErr, syscall: 'listxattr' }, shown(joinRaw(root, rel)))
    tree.set(rel, entry)
    if (entry.type === 'directory') walker.child(dir, name)
  }
}

function entryOf(out: DirsScan, i: number, extent: number, n: number): Entry {
  const stats = out.stats
  const b = i * STAT_STRIDE
  const mode = stats[b + Stat.Mode] as number
  const type = typeOf(mode)
  const m = out.meta
  const mapped = type === 'file' && (out.errnos?.[i] ?? 1) === 0
  return {
    type, perm: mode & 0o7777, uid: stats[b + Stat.Uid] as number, gid: stats[b + Stat.Gid] as number,
    mtimeSec: stats[b + Stat.MtimeSec] as number, mtimeNsec: stats[b + Stat.MtimeNsec] as number,
    ctimeSec: stats[b + Stat.CtimeSec] as number, ctimeNsec: stats[b + Stat.CtimeNsec] as number, ino: stats[b + Stat.Ino] as number,
    x0: m?.[i * 5] ?? 0, x1: m?.[i * 5 + 1] ?? 0, t0: m?.[i * 5 + 2] ?? 0, t1: m?.[i * 5 + 3] ?? 0,
    size: type === 'file' ? (stats[b + Stat.Size] as number) : 0,
    extents: mapped ? out.extents : undefined, first: extent, count: n, full: m !== undefined,
  }
}

const ctimeMs = (e: Entry): number => e.ctimeSec * 1000 + e.ctimeNsec / 1e6

/** The first look: whether the pair is known unchanged from its stats alone (see Hint). */
function unchangedByStat(x: Entry, y: Entry, hint: Hint): boolean {
  if (x.type !== y.type || x.size !== y.size || x.perm !== y.perm || x.uid !== y.uid || x.gid !== y.gid) return false
  if (x.mtimeSec !== y.mtimeSec || x.mtimeNsec !== y.mtimeNsec) return false
  if (hint.sameInode) return x.ino === y.ino && x.ctimeSec === y.ctimeSec && x.ctimeNsec === y.ctimeNsec
  return ctimeMs(y) < hint.before && ctimeMs(x) < hint.after
}

/**
 * After the first look: every pair it could not settle gets the whole look, on both sides,
 * named from the roots (component by component, never through a symlink).
 */
async function deepen(binding: Binding, roots: [number, number], a: Tree, b: Tree, hint: Hint): Promise<void> {
  const rels: string[] = []
  for (const [rel, x] of a) {
    const y = b.get(rel)
    if (rel !== '' && y !== undefined && y.type === x.type && !unchangedByStat(x, y, hint)) rels.push(rel)
  }
  for (let k = 0; k < rels.length; k += COMPARE_BATCH * 4) {
    const batch = rels.slice(k, k + COMPARE_BATCH * 4)
    await Promise.all([lookCloser(binding, roots[0], a, batch), lookCloser(binding, roots[1], b, batch)])
  }
}

async function lookCloser(binding: Binding, root: number, tree: Tree, rels: string[]): Promise<void> {
  const dirs = new Int32Array(rels.length).fill(root)
  const names = joinNames(rels)
  const files = rels.filter((rel) => tree.get(rel)?.type === 'file')
  const [meta, ext] = await Promise.all([
    binding.metaMany(dirs, names, RAW, true),
    files.length === 0 ? undefined : binding.extentsMany(dirs.subarray(0, files.length), joinNames(files), RAW, true),
  ])
  rels.forEach((rel, i) => {
    const e = tree.get(rel) as Entry
    if (meta[i * 5 + 4] !== 0) throw fromNative({ errno: meta[i * 5 + 4] as number, syscall: 'listxattr' }, shown(rel))
    e.x0 = meta[i * 5] as number
    e.x1 = meta[i * 5 + 1] as number
    e.t0 = meta[i * 5 + 2] as number
    e.t1 = meta[i * 5 + 3] as number
    e.full = true
  })
  let first = 0
  files.forEach((rel, i) => {
    const e = tree.get(rel) as Entry
    const n = ext?.counts[i] ?? 0
    e.extents = (ext?.errnos[i] ?? 1) === 0 ? ext?.extents : undefined
    e.first = first
    e.count = n
    first += n
  })
}

/** Same mode bits, owner, xattrs and symlink target (and mtime, unless `ignoreMtime`). */
function sameMeta(x: Entry, y: Entry, ignoreMtime: boolean): boolean {
  return x.perm === y.perm && x.uid === y.uid && x.gid === y.gid && x.x0 === y.x0 && x.x1 === y.x1 && x.t0 === y.t0 &&
    x.t1 === y.t1 && (ignoreMtime || (x.mtimeSec === y.mtimeSec && x.mtimeNsec === y.mtimeNsec))
}

/** Whether the extent maps say the bytes are the same (false: not known). */
function sameFileBlocks(x: Entry, y: Entry): boolean {
  if (x.extents === undefined || y.extents === undefined) return false
  return sameBlocks(x.extents, x.first, y.extents, y.first, x.count, y.count)
}

/** Path order: the paths as people see them, compared as JavaScript strings. */
const byPath = (x: Change, y: Change): number => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0)

async function compareTrees(binding: Binding, roots: [number, number], a: Tree, b: Tree): Promise<Change[]> {
  const changes = new Map<string, Change['kind']>()
  /** directories with a direct child added, removed or changed in type: their mtime moved for it */
  const reshaped = new Set<string>()
  const parentOf = (rel: string): string => rel.slice(0, Math.max(0, rel.lastIndexOf('/')))
  const toRead: string[] = []
  const metaOnly = new Set<string>()
  for (const [rel, x] of a) {
    const y = b.get(rel)
    if (y === undefined || y.type !== x.type) {
      changes.set(rel, y === undefined ? 'removed' : 'type')
      if (rel !== '') reshaped.add(parentOf(rel))
      continue
    }
    // Settled by the first look (neither side was looked at closer).
    if (!x.full && !y.full) continue
    const metaDiffers = !sameMeta(x, y, x.type === 'directory')
    if (x.type === 'file' && x.size !== y.size) changes.set(rel, 'modified')
    else if (x.type === 'file' && !sameFileBlocks(x, y)) {
      toRead.push(rel)
      if (metaDiffers) metaOnly.add(rel)
    } else if (metaDiffers) changes.set(rel, 'metadata')
  }
  for (const rel of b.keys()) {
    if (a.has(rel)) continue
    changes.set(rel, 'added')
    reshaped.add(parentOf(rel))
  }
  // A directory's mtime moves when an entry is added or removed in it: said by those entries.
  for (const [rel, x] of a) {
    const y = b.get(rel)
    if (x.type !== 'directory' || y?.type !== 'directory' || changes.has(rel) || reshaped.has(rel) || (!x.full && !y.full)) continue
    if (x.mtimeSec !== y.mtimeSec || x.mtimeNsec !== y.mtimeNsec) changes.set(rel, 'metadata')
  }
  const differ = await readAndCompare(binding, roots, toRead)
  toRead.forEach((rel, k) => {
    if (differ[k] === true) changes.set(rel, 'modified')
    else if (metaOnly.has(rel)) changes.set(rel, 'metadata')
  })
  return [...changes].map(([rel, kind]) => ({ path: rel === '' ? '.' : shown(rel), kind })).sort(byPath)
}

/** Whether each pair of files (the same path below both roots) differs, read in the addon. */
async function readAndCompare(binding: Binding, roots: [number, number], rels: string[]): Promise<boolean[]> {
  const differ: boolean[] = new Array<boolean>(rels.length)
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < rels.length) {
      const start = next
      const batch = rels.slice(start, (next += COMPARE_BATCH))
      const [da, db] = [new Int32Array(batch.length).fill(roots[0]), new Int32Array(batch.length).fill(roots[1])]
      const names = joinNames(batch)
      const { results, syscalls } = await binding.compareFiles(da, names, db, names, RAW, true)
      results.forEach((r, k) => {
        if (r < 0) throw fromNative({ errno: -r, syscall: syscalls[k] ?? 'read' }, shown(batch[k] as string))
        differ[start + k] = r === 1
      })
    }
  }
  await Promise.all(Array.from({ length: COMPARE_PARALLEL }, lane))
  return differ
}
