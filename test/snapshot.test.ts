// Snapshots (issue 14) on real filesystems: a btrfs subvolume (read-only btrfs snapshots), a plain
// directory on btrfs and on XFS (clone snapshots), ext4 (refused unless allowCopy). Every diff is
// held against a reference computed here from the bytes and lstat of both trees (never through
// the addon); every snapshot against the tree it was taken of, entry for entry, and its blocks
// against the source's (xfs_io FIEMAP).
import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import {
  deleteSnapshot, diffSnapshots, listSnapshots, pruneSnapshots, restoreSnapshot, snapshot, usage,
} from '../src/index.js'
import type { Change, PrunePolicy, Snapshot } from '../src/index.js'
import { extentsOfMany } from './helpers/fiemap.js'
import { cli, libUrl } from './helpers/files.js'
import { freshDir, needMount } from './helpers/mounts.js'
import type { TestMount } from './helpers/mounts.js'
import {
  buildNastyTree, buildWideTree, compareSnapshots, hashTree, mkfifo, run, setDistinctTimes, setXattr,
  snapshot as readTree,
} from './helpers/trees.js'
import type { Entry } from './helpers/trees.js'

const KiB = 1024
const MiB = 1024 * KiB

// ---------------------------------------------------------------------------------------------
// Where snapshots are taken

type Where = 'btrfs subvolume' | 'btrfs directory' | 'xfs'
const PLACES: readonly Where[] = ['btrfs subvolume', 'btrfs directory', 'xfs']

interface Place {
  m: TestMount
  /** dir's parent: holds dir and the default store, nothing else */
  base: string
  /** the directory snapshotted, `<base>/work` */
  dir: string
  /** the default store, `<base>/.work.snapshots` */
  store: string
  method: Snapshot['method']
}

async function place(t: TestContext, where: Where): Promise<Place | undefined> {
  const m = await needMount(t, where === 'xfs' ? 'xfs' : 'btrfs')
  if (m === undefined) return undefined
  const base = freshDir(m, 'snap')
  const dir = path.join(base, 'work')
  if (where === 'btrfs subvolume') run('btrfs', ['subvolume', 'create', dir])
  else fs.mkdirSync(dir)
  return { m, base, dir, store: path.join(base, '.work.snapshots'), method: where === 'btrfs subvolume' ? 'subvolume' : 'clone' }
}

// ---------------------------------------------------------------------------------------------
// The reference diff: the rules of issue 14, from two trees read with lstat, getfattr and every
// byte (test/helpers/trees.ts), written without looking at the implementation.

type Class = 'file' | 'directory' | 'symlink' | 'other'
const classOf = (e: Entry): Class => (e.type === 'file' || e.type === 'directory' || e.type === 'symlink' ? e.type : 'other')
const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
const rel = (p: string) => (p === '' ? '.' : p)
const parentOf = (p: string): string | undefined => (p === '.' ? undefined : p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '.')
const sameXattrs = (a: Entry, b: Entry) => JSON.stringify(Object.entries(a.xattrs).sort()) === JSON.stringify(Object.entries(b.xattrs).sort())

function referenceDiff(from: Entry[], to: Entry[]): Change[] {
  const a = new Map(from.map((e) => [rel(e.path), e]))
  const b = new Map(to.map((e) => [rel(e.path), e]))
  const kinds = new Map<string, Change['kind']>()
  for (const p of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(p)
    const y = b.get(p)
    if (x === undefined) kinds.set(p, 'added')
    else if (y === undefined) kinds.set(p, 'removed')
    else if (classOf(x) !== classOf(y)) kinds.set(p, 'type')
    else if (x.type === 'file' && (x.size !== y.size || x.sha256 !== y.sha256)) kinds.set(p, 'modified')
  }
  // A directory's mtime is explained by a direct child added, removed or changed in type.
  const explained = new Set<string>()
  for (const [p, k] of kinds) if (k !== 'modified') explained.add(parentOf(p) ?? '')
  for (const [p, x] of a) {
    const y = b.get(p)
    if (y === undefined || kinds.has(p)) continue
    const owner = x.mode !== y.mode || x.uid !== y.uid || x.gid !== y.gid || !sameXattrs(x, y) || x.linkTarget !== y.linkTarget
    const mtime = x.mtimeNs !== y.mtimeNs && !(x.type === 'directory' && explained.has(p))
    if (owner || mtime) kinds.set(p, 'metadata')
  }
  return [...kinds].map(([p, kind]) => ({ path: p, kind })).sort(byPath)
}

const LETTER: Record<Change['kind'], string> = { added: 'A', removed: 'D', modified: 'M', metadata: 'm', type: 'T' }
const lines = (cs: Change[]) => cs.map((c) => `${LETTER[c.kind]} ${c.path}`)

// ---------------------------------------------------------------------------------------------
// A tree to change in every way, and what the changes are by hand (which checks the reference).

function put(file: string, data: string | Buffer, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, data, { mode })
  fs.chmodSync(file, mode)
}

function buildChangeTree(dir: string): void {
  const at = (p: string) => path.join(dir, p)
  put(at('big.bin'), randomBytes(8 * MiB))
  put(at('log.txt'), 'line\n'.repeat(100))
  for (const f of ['mode.txt', 'owner.txt', 'touched.txt', 'xattr.txt', 'renamed-from', 'file2link', 'file2dir', 'gone.txt']) put(at(f), `${f}\n`)
  put(at('dir2file/a'), 'a')
  put(at('dir2file/sub/b'), 'b')
  put(at('olddir/x'), 'x')
  put(at('olddir/y/z'), 'z')
  put(at('sneaky.bin'), randomBytes(64 * KiB))
  put(at('tiny.bin'), randomBytes(100))
  fs.symlinkSync('big.bin', at('link'))
  put(at('dirmode/f'), 'f')
  put(at('dirtouch/f'), 'f')
  put(at('sub/keep.txt'), 'keep')
  for (let i = 0; i < 20; i++) put(at(`unchanged/u${i}`), randomBytes(4 * KiB + i))
  put(at('unchanged/deep/a/b/c/file'), randomBytes(300 * KiB))
  put(at('hard1'), 'linked')
  fs.linkSync(at('hard1'), at('hard2'))
  put(at('empty'), '')
  mkfifo(at('fifo2file'))
  fs.symlinkSync('sub', at('link2dir'))
  put(at('dirmode2/old'), 'old')
  setXattr(at('unchanged/u3'), 'user.kept', 'same')
  setDistinctTimes(dir)
}

/** mtime to the nanosecond, set again after the content changed (touch keeps the ns). */
function setMtimeNs(file: string, ns: bigint): void {
  const s = ns / 1_000_000_000n
  const frac = String(ns % 1_000_000_000n).padStart(9, '0')
  run('touch', ['-h', '-m', '-d', `@${s}.${frac}`, '--', file])
}

function changeEverything(dir: string): void {
  const at = (p: string) => path.join(dir, p)
  put(at('added.txt'), 'new')
  put(at('newdir/n1'), 'n1')
  put(at('newdir/deeper/n2'), 'n2')
  fs.rmSync(at('gone.txt'))
  fs.rmSync(at('olddir'), { recursive: true })
  // One 4 KiB block in the middle of 8 MiB, written in place.
  const fd = fs.openSync(at('big.bin'), 'r+')
  fs.writeSync(fd, randomBytes(4 * KiB), 0, 4 * KiB, 4 * MiB)
  fs.closeSync(fd)
  fs.appendFileSync(at('log.txt'), 'one more line\n')
  fs.chmodSync(at('mode.txt'), 0o600)
  fs.chownSync(at('owner.txt'), 1234, 5678)
  run('touch', ['-m', '-d', '@1700000000.123456789', '--', at('touched.txt')])
  setXattr(at('xattr.txt'), 'user.snap', 'yes')
  fs.renameSync(at('renamed-from'), at('renamed-to'))
  fs.rmSync(at('file2link'))
  fs.symlinkSync('log.txt', at('file2link'))
  fs.rmSync(at('file2dir'))
  put(at('file2dir/inner'), 'inner')
  fs.rmSync(at('dir2file'), { recursive: true })
  put(at('dir2file'), 'now a file')
  // Same size, same mtime (to the ns), other bytes: what size+mtime tools (rsync) miss.
  const mtime = fs.lstatSync(at('sneaky.bin'), { bigint: true }).mtimeNs
  const sfd = fs.openSync(at('sneaky.bin'), 'r+')
  fs.writeSync(sfd, randomBytes(100), 0, 100, 30 * KiB)
  fs.closeSync(sfd)
  setMtimeNs(at('sneaky.bin'), mtime)
  // The same in a file small enough for btrfs to keep inline in its metadata, where FIEMAP's
  // physical address (FIEMAP_EXTENT_DATA_INLINE) says nothing about the bytes.
  const tmtime = fs.lstatSync(at('tiny.bin'), { bigint: true }).mtimeNs
  const tfd = fs.openSync(at('tiny.bin'), 'r+')
  fs.writeSync(tfd, randomBytes(10), 0, 10, 50)
  fs.closeSync(tfd)
  setMtimeNs(at('tiny.bin'), tmtime)
  fs.rmSync(at('link'))
  fs.symlinkSync('log.txt', at('link'))
  fs.chmodSync(at('dirmode'), 0o700)
  run('touch', ['-m', '-d', '@1600000000.5', '--', at('dirtouch')])
  put(at('sub/new.txt'), 'new in sub')
  // A FIFO becomes a file, a symlink a directory: 'other' and symlink are types of their own.
  fs.rmSync(at('fifo2file'))
  put(at('fifo2file'), 'a file now')
  fs.rmSync(at('link2dir'))
  put(at('link2dir/x'), 'x')
  // Hard links: both names of the inode show its new bytes.
  const hfd = fs.openSync(at('hard1'), 'r+')
  fs.writeSync(hfd, 'LINKED', 0)
  fs.closeSync(hfd)
  // A directory's mode counts even when a child explains its mtime.
  fs.chmodSync(at('dirmode2'), 0o750)
  put(at('dirmode2/new'), 'new')
  // The root's own metadata: an xattr (its mtime alone is explained by what was added).
  setXattr(dir, 'user.root', 'changed')
}

/** What changeEverything does, by the rules, written out. */
const EXPECTED_CHANGES = [
  'm .', 'A added.txt', 'M big.bin', 'T dir2file', 'D dir2file/a', 'D dir2file/sub', 'D dir2file/sub/b',
  'm dirmode', 'm dirmode2', 'A dirmode2/new', 'm dirtouch', 'T fifo2file', 'M hard1', 'M hard2', 'T link2dir', 'A link2dir/x', 'T file2dir', 'A file2dir/inner', 'T file2link', 'D gone.txt', 'm link',
  'M log.txt', 'm mode.txt', 'A newdir', 'A newdir/deeper', 'A newdir/deeper/n2', 'A newdir/n1',
  'D olddir', 'D olddir/x', 'D olddir/y', 'D olddir/y/z', 'm owner.txt', 'D renamed-from',
  'A renamed-to', 'M sneaky.bin', 'A sub/new.txt', 'M tiny.bin', 'm touched.txt', 'm xattr.txt',
].sort((x, y) => (x.slice(2) < y.slice(2) ? -1 : 1))

// ---------------------------------------------------------------------------------------------
// Small helpers

const exists = (p: string) => fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined
const sorted = (xs: string[]) => [...xs].sort()
const names = (ss: Snapshot[]) => ss.map((s) => s.name)

/**
 * What the store holds: exactly each listed snapshot's tree and its record, nothing half-made
 * (and `.lock`, the store's lock file, which every run that changes the store takes).
 */
function assertStoreHolds(store: string, snaps: Snapshot[], why: string): void {
  const held = fs.readdirSync(store).filter((n) => n !== '.lock')
  assert.deepEqual(sorted(held), sorted(snaps.flatMap((s) => [s.name, `.${s.name}.json`])), why)
}

/** Data extents that say where the data is (not inline, encoded, delayed or unknown). */
const PLACED = (flags: string[]) => !flags.some((f) => ['data_inline', 'encoded', 'unknown', 'delalloc', 'not_aligned', 'data_encrypted'].includes(f))

/** Files of `entries` whose data is not the source's blocks in the copy (FIEMAP through xfs_io). */
function unsharedFiles(src: string, copy: string, entries: Entry[]): string[] {
  const files = entries.filter((e) => e.type === 'file' && e.size > 0 && (e.inodeGroup ?? e.path) === e.path).map((e) => e.path)
  const a = extentsOfMany(files.map((f) => path.join(src, f)))
  const b = extentsOfMany(files.map((f) => path.join(copy, f)))
  const bad: string[] = []
  for (const [i, f] of files.entries()) {
    const placed = (a[i] ?? []).filter((x) => PLACED(x.flags))
    if (placed.length === 0) continue // inline on btrfs: nothing to share
    const show = (xs: typeof placed) => xs.map((x) => `${x.logical}:${x.physical}:${x.length}`).join(' ')
    const other = (b[i] ?? []).filter((x) => PLACED(x.flags))
    if (show(placed) !== show(other) || !other.every((x) => x.shared)) bad.push(f)
  }
  return bad
}

/** Sets the `created` of a snapshot's record (`<store>/.<name>.json`), keeping the rest of it. */
function setCreated(store: string, name: string, created: string): void {
  const file = path.join(store, `.${name}.json`)
  const record = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>
  assert.ok('created' in record, `the record has a created field: ${JSON.stringify(record)}`)
  record.created = created
  fs.writeFileSync(file, JSON.stringify(record))
}

function readIo(): { rchar: number; readBytes: number } {
  const text = fs.readFileSync('/proc/self/io', 'utf8')
  const field = (k: string) => Number(new RegExp(`^${k}: (\\d+)$`, 'm').exec(text)?.[1])
  return { rchar: field('rchar'), readBytes: field('read_bytes') }
}

/** Evicts the files' pages from the page cache (posix_fadvise DONTNEED after a sync). */
function evict(files: string[]): void {
  execFileSync('sync')
  execFileSync('python3', ['-c', `
import os, sys
for f in sys.argv[1:]:
    fd = os.open(f, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
`, ...files])
}

/** Bytes of each file in the page cache (fincore). */
function resident(files: string[]): number[] {
  const out = execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', '--', ...files], { encoding: 'utf8' })
  return out.trim().split('\n').map((l) => Number(l.trim()))
}

const INDEX_JS = libUrl

/**
 * A child node process running one snapshot call, for kill -9. `started` resolves when the
 * package is loaded and the call is about to be made, `done` when the call returned, so that
 * kills land in the call, not in Node's start or exit.
 */
function child(code: string, args: string[]): { started: Promise<void>; done: Promise<void>; exited: Promise<number | null>; kill: () => void } {
  const script = `import * as lib from ${JSON.stringify(INDEX_JS)}\nprocess.stdout.write('go\\n')\n${code}\nprocess.stdout.write('done\\n')`
  const c = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  let stdout = ''
  c.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<number | null>((resolve) => c.on('exit', (status) => {
    if (status !== 0 && status !== null) process.stderr.write(`child failed: ${stderr}\n`)
    resolve(status)
  }))
  const when = (word: string) => Promise.race([
    new Promise<void>((resolve) => c.stdout.on('data', (d: Buffer) => ((stdout += d.toString()).includes(word) ? resolve() : undefined))),
    exited.then(() => undefined),
  ])
  return { started: when('go\n'), done: when('done\n'), exited, kill: () => c.kill('SIGKILL') }
}

/** Milliseconds the call itself takes in a child (from `started` to `done`). */
async function timedChild(code: string, args: string[]): Promise<number> {
  const c = child(code, args)
  await c.started
  const start = Date.now()
  await c.done
  const ms = Date.now() - start
  assert.equal(await c.exited, 0, 'the calibration run succeeds')
  return ms
}

/** Runs the call in a child and kills it (SIGKILL) at a random moment of it. */
async function killMidway(code: string, args: string[], full: number): Promise<void> {
  const c = child(code, args)
  await c.started
  await sleep(Math.random() * full * 1.2)
  c.kill()
  await c.exited
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function cliRun(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

// ---------------------------------------------------------------------------------------------

describe('snapshot: the reference diff (the oracle is sound)', () => {
  test('cp -a copies before and after changeEverything differ by exactly the changes made', async (t) => {
    const m = await needMount(t, 'xfs')
    if (m === undefined) return
    const base = freshDir(m)
    const dir = path.join(base, 'work')
    buildChangeTree(dir)
    run('cp', ['-a', '--reflink=always', dir, path.join(base, 'before')])
    changeEverything(dir)
    assert.deepEqual(lines(referenceDiff(readTree(path.join(base, 'before')), readTree(dir))), EXPECTED_CHANGES)
    assert.deepEqual(referenceDiff(readTree(dir), readTree(dir)), [])
  })
})

for (const where of PLACES) {
  describe(`snapshot on ${where}`, () => {
    test('the snapshot is entry-for-entry the tree it was taken of, shares its blocks, and later writes to dir leave it as it was', async (t) => {
      const p = await place(t, where)
      if (p === undefined) return
      const { sockets } = await buildNastyTree(p.dir, { depth: 40 })
      const before = readTree(p.dir)
      const s = await snapshot(p.dir, { name: 'one' })
      assert.equal(s.name, 'one')
      assert.equal(s.path, path.join(p.store, 'one'))
      assert.equal(s.source, p.dir)
      assert.equal(s.method, p.method)
      assert.equal(s.readOnly, p.method === 'subvolume')
      assert.ok(s.created instanceof Date && Math.abs(s.created.getTime() - Date.now()) < 10 * 60_000, String(s.created))
      assert.ok(exists(path.join(p.store, '.one.json')), 'the record is beside the tree')
      assert.deepEqual(sorted(fs.readdirSync(p.base)), ['.work.snapshots', 'work'], 'dir is not polluted; nothing else beside it')
      // cloneTree leaves sockets out (they cannot be cloned); a btrfs snapshot keeps everything.
      // The root is compared last, on its own (see there).
      const exclude = (e: Entry) => e.path === '' || (p.method === 'clone' && sockets.includes(e.path))
      const snap = readTree(s.path)
      assert.deepEqual(compareSnapshots(before, snap, { exclude }), [])
      assert.deepEqual(compareSnapshots(before, readTree(p.dir), { exclude: (e) => e.path === '' }), [], 'dir unchanged, atimes included')
      assert.deepEqual(unsharedFiles(p.dir, s.path, before), [], 'every file shares its blocks with the source')
      if (p.method === 'subvolume') {
        assert.throws(() => fs.writeFileSync(path.join(s.path, 'plain.txt'), 'x'), { code: 'EROFS' })
      }
      // Writes to dir afterwards: in place, appended, chmod, new files, removals.
      const fd = fs.openSync(path.join(p.dir, 'big.bin'), 'r+')
      fs.writeSync(fd, Buffer.alloc(8192, 1), 0, 8192, 4096)
      fs.closeSync(fd)
      fs.appendFileSync(path.join(p.dir, 'plain.txt'), 'more')
      fs.chmodSync(path.join(p.dir, 'small.bin'), 0o600)
      fs.writeFileSync(path.join(p.dir, 'new-after'), 'x')
      fs.rmSync(path.join(p.dir, 'hard', 'z'))
      assert.deepEqual(compareSnapshots(snap, readTree(s.path)), [], 'the snapshot did not move')
      // A snapshot must not write inside dir (an earlier build probed it, moving its mtime).
      const root = (es: Entry[]) => es.filter((e) => e.path === '')
      assert.deepEqual(compareSnapshots(root(before), root(snap)), [], 'the root as it was')
    })

    test('diff of two snapshots, and of a snapshot against the live tree, equal the reference', async (t) => {
      const p = await place(t, where)
      if (p === undefined) return
      buildChangeTree(p.dir)
      // Past the margin diff allows the kernel's coarse ctime clock: the unchanged entries are
      // then settled by their ctimes alone (the first look), the changed ones must not be.
      await sleep(3000)
      const a = await snapshot(p.dir, { name: 'a' })
      changeEverything(p.dir)
      const b = await snapshot(p.dir, { name: 'b' })
      const ta = readTree(a.path)
      const tb = readTree(b.path)
      const live = readTree(p.dir)
      assert.deepEqual(lines(referenceDiff(ta, tb)), EXPECTED_CHANGES, 'the snapshots hold the two states')
      assert.deepEqual(await diffSnapshots(p.dir, 'a', 'b'), referenceDiff(ta, tb))
      assert.deepEqual(await diffSnapshots(p.dir, 'a'), referenceDiff(ta, live))
      assert.deepEqual(await diffSnapshots(p.dir, 'b'), [])
      assert.deepEqual(await diffSnapshots(p.dir, 'a', 'a'), [])
      assert.deepEqual(await diffSnapshots(p.dir, 'b', 'a'), referenceDiff(tb, ta), 'and backwards')
      // One more change that only the bytes show, to the live tree.
      const f = path.join(p.dir, 'unchanged', 'u7')
      const mtime = fs.lstatSync(f, { bigint: true }).mtimeNs
      const data = fs.readFileSync(f)
      data[17] = (data[17] as number) ^ 1
      fs.writeFileSync(f, data)
      setMtimeNs(f, mtime)
      assert.deepEqual(await diffSnapshots(p.dir, 'b'), [{ path: 'unchanged/u7', kind: 'modified' }])
      assert.deepEqual(await diffSnapshots(p.dir, 'a'), referenceDiff(ta, readTree(p.dir)))
    })

    if (where !== 'btrfs subvolume') {
      test('a clone snapshot is writable: bytes written into it afterwards show in its diff against dir', async (t) => {
        const p = await place(t, where)
        if (p === undefined) return
        put(path.join(p.dir, 'f.bin'), randomBytes(64 * KiB))
        put(path.join(p.dir, 'g.bin'), randomBytes(64 * KiB))
        await sleep(3000) // dir's ctimes past diff's margin: its first look settles dir's side
        const s = await snapshot(p.dir, { name: 'a' })
        // Same size, same mtime: only the bytes differ, right after the snapshot was taken.
        for (const f of ['f.bin', 'g.bin']) {
          const file = path.join(s.path, f)
          const mtime = fs.lstatSync(file, { bigint: true }).mtimeNs
          const fd = fs.openSync(file, 'r+')
          fs.writeSync(fd, Buffer.from('changed'), 0, 7, 1000)
          fs.closeSync(fd)
          setMtimeNs(file, mtime)
          if (f === 'f.bin') await sleep(3000) // g.bin: written past the margin after completion
        }
        const want = referenceDiff(readTree(s.path), readTree(p.dir))
        assert.deepEqual(lines(want), ['M f.bin', 'M g.bin'])
        // A write into the snapshot right after it was taken must not be settled by ctimes
        // (an earlier build's margin of `completed` + 2 s missed f.bin).
        assert.deepEqual(await diffSnapshots(p.dir, 'a'), want)
      })
    }

    test('restore brings back exactly the snapshot; the kept snapshot is the state before; keepCurrent false keeps nothing', async (t) => {
      const p = await place(t, where)
      if (p === undefined) return
      buildChangeTree(p.dir)
      const a = await snapshot(p.dir, { name: 'a' })
      const stateA = readTree(a.path)
      changeEverything(p.dir)
      const stateB = readTree(p.dir)
      const r = await restoreSnapshot(p.dir, 'a')
      assert.equal(r.restored.name, 'a')
      assert.deepEqual(compareSnapshots(stateA, readTree(p.dir), { ignore: ['atimeNs'] }), [], 'dir is the snapshot')
      assert.ok(r.kept !== undefined, 'the replaced state is kept by default')
      assert.match(r.kept.name, /^before-restore-/)
      assert.equal(r.kept.path, path.join(p.store, r.kept.name), 'kept in the store')
      assert.deepEqual(compareSnapshots(stateB, readTree(r.kept.path), { ignore: ['atimeNs'] }), [], 'the kept snapshot is the state before')
      assert.deepEqual(names(await listSnapshots(p.dir)), ['a', r.kept.name])
      assert.deepEqual(compareSnapshots(stateA, readTree(a.path), { ignore: ['atimeNs'] }), [], 'the restored snapshot is untouched')
      if (p.method === 'subvolume') {
        assert.equal(fs.statSync(p.dir).ino, 256, 'a subvolume is restored as a subvolume')
      }
      // dir is writable again, and the restored tree no longer shares writes with the snapshot.
      fs.writeFileSync(path.join(p.dir, 'log.txt'), 'written after the restore')
      assert.deepEqual(compareSnapshots(stateA, readTree(a.path), { ignore: ['atimeNs'] }), [])
      assert.deepEqual(sorted(fs.readdirSync(p.base)), ['.work.snapshots', 'work'], 'no temporary left beside dir')

      const before = readTree(p.dir)
      const listed = await listSnapshots(p.dir)
      const r2 = await restoreSnapshot(p.dir, r.kept.name, { keepCurrent: false })
      assert.equal(r2.kept, undefined)
      assert.deepEqual(names(await listSnapshots(p.dir)), names(listed), 'nothing kept')
      assert.deepEqual(compareSnapshots(stateB, readTree(p.dir), { ignore: ['atimeNs'] }), [])
      assert.notDeepEqual(compareSnapshots(before, readTree(p.dir), { ignore: ['atimeNs'] }), [])
      assert.deepEqual(sorted(fs.readdirSync(p.base)), ['.work.snapshots', 'work'])
      assertStoreHolds(p.store, await listSnapshots(p.dir), 'the replaced tree is gone, not left in the store')
    })

    test('delete and prune never touch the bytes of a snapshot they keep, nor dir', async (t) => {
      const p = await place(t, where)
      if (p === undefined) return
      buildWideTree(p.dir, 5, 20, 6000)
      const made: Snapshot[] = []
      for (const name of ['s1', 's2', 's3', 's4']) {
        made.push(await snapshot(p.dir, { name }))
        fs.writeFileSync(path.join(p.dir, 'dir-0', 'file-0'), randomBytes(6000))
      }
      const hashes = new Map(made.map((s) => [s.name, hashTree(s.path)]))
      const dirHash = hashTree(p.dir)
      await deleteSnapshot(p.dir, 's2')
      assert.equal(exists(path.join(p.store, 's2')), false)
      assert.equal(exists(path.join(p.store, '.s2.json')), false)
      assert.deepEqual(names(await listSnapshots(p.dir)), ['s1', 's3', 's4'])
      for (const n of ['s1', 's3', 's4']) assert.equal(hashTree(path.join(p.store, n)), hashes.get(n), n)
      const dry = await pruneSnapshots(p.dir, { keepLast: 1, dryRun: true })
      assert.deepEqual(names(dry.kept), ['s4'])
      assert.deepEqual(sorted(names(dry.removed)), ['s1', 's3'])
      assert.deepEqual(names(await listSnapshots(p.dir)), ['s1', 's3', 's4'], 'dryRun removes nothing')
      const pr = await pruneSnapshots(p.dir, { keepLast: 1 })
      assert.deepEqual(names(pr.kept), ['s4'])
      assert.deepEqual(sorted(names(pr.removed)), ['s1', 's3'])
      assert.deepEqual(names(await listSnapshots(p.dir)), ['s4'])
      assertStoreHolds(p.store, await listSnapshots(p.dir), 'removed snapshots are gone, tree and record')
      assert.equal(hashTree(path.join(p.store, 's4')), hashes.get('s4'))
      assert.equal(hashTree(p.dir), dirHash, 'dir untouched')
    })
  })
}

describe('snapshot: list, names, errors', () => {
  test('list: oldest first, with method and readOnly; btrfs subvolume and plain directory side by side', async (t) => {
    const sv = await place(t, 'btrfs subvolume')
    const plain = await place(t, 'btrfs directory')
    if (sv === undefined || plain === undefined) return
    fs.writeFileSync(path.join(sv.dir, 'f'), 'x')
    fs.writeFileSync(path.join(plain.dir, 'f'), 'x')
    assert.deepEqual(await listSnapshots(sv.dir), [], 'no store yet: no snapshots')
    const made: Snapshot[] = []
    // Names in the opposite order of creation: the list goes by time, not by name.
    for (const name of ['zz', 'mm', 'aa']) {
      made.push(await snapshot(sv.dir, { name }))
      await sleep(15)
    }
    const first = await snapshot(sv.dir)
    assert.match(first.name, /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z$/, 'the default name is the UTC time')
    assert.equal(first.name, first.created.toISOString().replace(/:/g, '-'))
    const listed = await listSnapshots(sv.dir)
    assert.deepEqual(names(listed), ['zz', 'mm', 'aa', first.name])
    assert.deepEqual(listed, [...made, first], 'listSnapshots gives back what snapshot() returned')
    for (const s of listed) assert.deepEqual([s.method, s.readOnly, s.source], ['subvolume', true, sv.dir])
    const c = await snapshot(plain.dir, { name: 'c' })
    assert.deepEqual(await listSnapshots(plain.dir), [c])
    assert.deepEqual([c.method, c.readOnly], ['clone', false])
    // An explicit store.
    const store = path.join(plain.base, 'elsewhere')
    const d = await snapshot(plain.dir, { name: 'd', store })
    assert.equal(d.path, path.join(store, 'd'))
    assert.deepEqual(await listSnapshots(plain.dir, { store }), [d])
    assert.deepEqual(names(await listSnapshots(plain.dir)), ['c'])
  })

  test('errors: missing dir, unknown snapshot (naming it and the store), bad names, duplicates, a prune policy without a keep rule', async (t) => {
    const p = await place(t, 'xfs')
    if (p === undefined) return
    fs.writeFileSync(path.join(p.dir, 'f'), 'x')
    const missing = path.join(p.base, 'missing')
    await assert.rejects(snapshot(missing), { code: 'ENOENT' })
    await assert.rejects(listSnapshots(missing), { code: 'ENOENT' })
    await snapshot(p.dir, { name: 'ok' })
    const unknown = (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.message.includes('nope') && e.message.includes(p.store)
    await assert.rejects(diffSnapshots(p.dir, 'nope'), unknown)
    await assert.rejects(diffSnapshots(p.dir, 'ok', 'nope'), unknown)
    await assert.rejects(restoreSnapshot(p.dir, 'nope'), unknown)
    await assert.rejects(deleteSnapshot(p.dir, 'nope'), unknown)
    for (const bad of ['a/b', '..', '../x', '.hidden', '.', '', 'x/../y']) {
      await assert.rejects(snapshot(p.dir, { name: bad }), { code: 'ERR_INVALID_ARG_VALUE' }, `snapshot name ${JSON.stringify(bad)}`)
      await assert.rejects(deleteSnapshot(p.dir, bad), { code: 'ERR_INVALID_ARG_VALUE' }, `delete ${JSON.stringify(bad)}`)
      await assert.rejects(restoreSnapshot(p.dir, bad), { code: 'ERR_INVALID_ARG_VALUE' }, `restore ${JSON.stringify(bad)}`)
      await assert.rejects(diffSnapshots(p.dir, bad), { code: 'ERR_INVALID_ARG_VALUE' }, `diff ${JSON.stringify(bad)}`)
    }
    await assert.rejects(snapshot(p.dir, { name: 'ok' }), { code: 'EEXIST' })
    for (const policy of [{}, { dryRun: true }] as PrunePolicy[]) {
      await assert.rejects(pruneSnapshots(p.dir, policy), { code: 'ERR_INVALID_ARG_VALUE' }, JSON.stringify(policy))
    }
    assert.deepEqual(names(await listSnapshots(p.dir)), ['ok'])
    assert.deepEqual(sorted(fs.readdirSync(p.base)), ['.work.snapshots', 'work'], 'the parent holds nothing the refusals made')
    assertStoreHolds(p.store, await listSnapshots(p.dir), 'nor the store')
  })

  test('ext4 cannot clone: EOPNOTSUPP, unless allowCopy (then a copy, as cp -a makes it)', async (t) => {
    const m = await needMount(t, 'ext4')
    if (m === undefined) return
    const base = freshDir(m)
    const dir = path.join(base, 'work')
    buildWideTree(dir, 3, 5, 3000)
    fs.symlinkSync('dir-0/file-0', path.join(dir, 'link'))
    setDistinctTimes(dir)
    const before = readTree(dir)
    await assert.rejects(snapshot(dir), { code: 'EOPNOTSUPP' })
    assert.deepEqual(await listSnapshots(dir).catch(() => []), [])
    const s = await snapshot(dir, { allowCopy: true, name: 'copy' })
    assert.deepEqual([s.method, s.readOnly], ['clone', false])
    const root = (e: Entry) => e.path === ''
    assert.deepEqual(compareSnapshots(before, readTree(s.path), { exclude: root }), [])
    assert.deepEqual((await diffSnapshots(dir, 'copy')).filter((c) => c.path !== '.'), [])
    assert.deepEqual(compareSnapshots(before.filter(root), readTree(s.path).filter(root)), [], 'the root as it was')
  })

  test('a store on another filesystem: EXDEV naming --store; a restore of a mount point: EBUSY', async (t) => {
    const p = await place(t, 'xfs')
    const tmpfs = await needMount(t, 'tmpfs')
    const other = await needMount(t, 'btrfs')
    if (p === undefined || tmpfs === undefined || other === undefined) return
    fs.writeFileSync(path.join(p.dir, 'f'), 'x')
    for (const store of [path.join(freshDir(tmpfs), 'store'), path.join(freshDir(other), 'store')]) {
      await assert.rejects(snapshot(p.dir, { store }), (e: NodeJS.ErrnoException) => e.code === 'EXDEV' && /--store/.test(e.message))
      assert.equal(exists(store), false, 'a refused snapshot leaves no store behind on the other filesystem')
    }
    const s = await snapshot(p.dir, { name: 'before-mount' })
    // dir made a mount point (bound onto itself): an exchange cannot move it.
    run('mount', ['--bind', p.dir, p.dir])
    try {
      await assert.rejects(restoreSnapshot(p.dir, s.name), (e: NodeJS.ErrnoException) => e.code === 'EBUSY' && e.message.length > 20)
      assert.equal(fs.readFileSync(path.join(p.dir, 'f'), 'utf8'), 'x')
    } finally {
      run('umount', [p.dir])
    }
    assert.deepEqual(sorted(fs.readdirSync(p.base)), ['.work.snapshots', 'work'])
  })
})

describe('snapshot: abort, and a store on another subvolume', () => {
  test('an abort during create: AbortError; dir, the store and the other snapshots as they were', async (t) => {
    const p = await place(t, 'xfs')
    if (p === undefined) return
    buildWideTree(p.dir, 20, 100, 500)
    await snapshot(p.dir, { name: 'first' })
    const h = hashTree(path.join(p.store, 'first'))
    const entries = readTree(p.dir)
    const controller = new AbortController()
    let calls = 0
    await assert.rejects(snapshot(p.dir, { name: 'aborted', signal: controller.signal, onProgress: () => void (++calls === 1 && controller.abort()) }), { name: 'AbortError' })
    assert.ok(calls >= 1, 'progress was reported')
    assert.deepEqual(names(await listSnapshots(p.dir)), ['first'])
    assertStoreHolds(p.store, await listSnapshots(p.dir), 'nothing of the aborted snapshot is left')
    assert.deepEqual(sorted(fs.readdirSync(p.base)), ['.work.snapshots', 'work'])
    assert.equal(hashTree(path.join(p.store, 'first')), h)
    assert.deepEqual(compareSnapshots(entries, readTree(p.dir), { ignore: ['atimeNs'] }), [])
    const pre = new AbortController()
    pre.abort()
    await assert.rejects(snapshot(p.dir, { signal: pre.signal }), { name: 'AbortError' })
  })

  test('btrfs: a store on another subvolume than dir\'s parent: restore keeps the replaced state beside dir, and says where', async (t) => {
    const m = await needMount(t, 'btrfs')
    if (m === undefined) return
    const base = freshDir(m, 'snap')
    const dir = path.join(base, 'work')
    buildChangeTree(dir)
    run('btrfs', ['subvolume', 'create', path.join(base, 'vol')])
    const store = path.join(base, 'vol', 'store')
    const a = await snapshot(dir, { name: 'a', store })
    assert.deepEqual([a.method, a.path], ['clone', path.join(store, 'a')])
    changeEverything(dir)
    const before = readTree(dir)
    const r = await restoreSnapshot(dir, 'a', { store })
    assert.deepEqual(compareSnapshots(readTree(a.path), readTree(dir), { ignore: ['atimeNs'] }), [])
    assert.ok(r.kept !== undefined)
    assert.equal(path.dirname(r.kept.path), base, `kept beside dir: ${r.kept.path}`)
    assert.deepEqual(compareSnapshots(before, readTree(r.kept.path), { ignore: ['atimeNs'] }), [], 'the kept state is the state before')
    const listed = await listSnapshots(dir, { store })
    assert.deepEqual(listed.find((s) => s.name === r.kept?.name)?.path, r.kept.path, 'listed, with where it is')
    const diff = await diffSnapshots(dir, r.kept.name, 'a', { store })
    const want = referenceDiff(readTree(r.kept.path), readTree(a.path))
    await deleteSnapshot(dir, r.kept.name, { store })
    assert.equal(exists(r.kept.path), false, 'delete removes it where it is')
    assert.deepEqual(sorted(fs.readdirSync(base)), ['vol', 'work'])
    assert.deepEqual(lines(diff), lines(want))
  })
})

describe('snapshot: runs at the same time', () => {
  test('two creates and a restore at once on one store: each succeeds or is refused with EBUSY, never half done', async (t) => {
    const p = await place(t, 'xfs')
    if (p === undefined) return
    buildWideTree(p.dir, 10, 50, 500)
    await snapshot(p.dir, { name: 'base' })
    fs.writeFileSync(path.join(p.dir, 'dir-0', 'file-0'), 'changed')
    const live = hashTree(p.dir)
    const base = hashTree(path.join(p.store, 'base'))
    const runs = await Promise.allSettled([
      snapshot(p.dir, { name: 'x' }), snapshot(p.dir, { name: 'y' }), restoreSnapshot(p.dir, 'base'),
    ])
    for (const r of runs) if (r.status === 'rejected') assert.equal((r.reason as NodeJS.ErrnoException).code, 'EBUSY', String(r.reason))
    assert.ok(runs.some((r) => r.status === 'fulfilled'), 'one of them ran')
    t.diagnostic(runs.map((r) => (r.status === 'fulfilled' ? 'ran' : (r.reason as NodeJS.ErrnoException).code)).join(', '))
    const listed = await listSnapshots(p.dir)
    assertStoreHolds(p.store, listed, 'only whole snapshots')
    assert.deepEqual(sorted(fs.readdirSync(p.base)), ['.work.snapshots', 'work'])
    for (const s of listed) assert.ok([live, base].includes(hashTree(s.path)), `${s.name} is one whole state`)
    assert.equal(hashTree(p.dir), runs[2]?.status === 'fulfilled' ? base : live)
  })
})

describe('snapshot: prune retention (restic/borg rules, UTC periods)', () => {
  // Created times chosen across hours, days, weeks and months; s13 is a Sunday and s14 the
  // Monday after: weeks are ISO weeks (from Monday), as the README says.
  const CREATED: Array<[string, string]> = [
    ['s01', '2025-01-06T10:00:00.000Z'], ['s02', '2025-01-06T10:30:00.000Z'], ['s03', '2025-01-06T11:15:00.000Z'],
    ['s04', '2025-01-07T09:00:00.000Z'], ['s05', '2025-01-07T18:00:00.000Z'], ['s06', '2025-01-14T12:00:00.000Z'],
    ['s07', '2025-02-03T08:00:00.000Z'], ['s08', '2025-02-04T08:00:00.000Z'], ['s09', '2025-03-05T08:00:00.000Z'],
    ['s10', '2025-03-05T08:20:00.000Z'], ['s11', '2025-03-05T09:10:00.000Z'], ['s12', '2025-03-06T07:00:00.000Z'],
    ['s13', '2025-03-09T23:59:00.000Z'], ['s14', '2025-03-10T00:01:00.000Z'],
  ]

  /** Monday 00:00 UTC of the date's week, as a key. */
  const weekOf = (d: Date) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - ((d.getUTCDay() + 6) % 7))).toISOString().slice(0, 10)
  const PERIODS: Array<[keyof PrunePolicy, (d: Date) => string]> = [
    ['keepHourly', (d) => d.toISOString().slice(0, 13)],
    ['keepDaily', (d) => d.toISOString().slice(0, 10)],
    ['keepWeekly', weekOf],
    ['keepMonthly', (d) => d.toISOString().slice(0, 7)],
  ]

  /** The names kept: the newest keepLast, and the newest of each of the last N periods that have a snapshot. */
  function expectedKept(snaps: Array<[string, string]>, policy: PrunePolicy): string[] {
    const newestFirst = [...snaps].sort((a, b) => (a[1] < b[1] ? 1 : -1))
    const kept = new Set(newestFirst.slice(0, policy.keepLast ?? 0).map(([n]) => n))
    for (const [rule, period] of PERIODS) {
      const n = (policy[rule] as number | undefined) ?? 0
      const seen = new Set<string>()
      for (const [name, created] of newestFirst) {
        const key = period(new Date(created))
        if (seen.has(key) || seen.size >= n) continue
        seen.add(key)
        kept.add(name)
      }
    }
    return [...kept].sort()
  }

  test('kept and removed as the rules say, dryRun removes nothing, kept snapshots keep their bytes', async (t) => {
    const p = await place(t, 'xfs')
    if (p === undefined) return
    fs.writeFileSync(path.join(p.dir, 'f'), randomBytes(20_000))
    for (const [name] of CREATED) {
      await snapshot(p.dir, { name })
      fs.appendFileSync(path.join(p.dir, 'f'), name)
    }
    for (const [name, created] of CREATED) setCreated(p.store, name, created)
    const listed = await listSnapshots(p.dir)
    assert.deepEqual(listed.map((s) => [s.name, s.created.toISOString()]), CREATED, 'list reads created from the records')
    const all = CREATED.map(([n]) => n)
    const policies: PrunePolicy[] = [
      { keepLast: 3 }, { keepHourly: 4 }, { keepDaily: 3 }, { keepWeekly: 2 }, { keepMonthly: 2 },
      { keepLast: 1, keepMonthly: 3 }, { keepDaily: 100 }, { keepHourly: 2, keepWeekly: 3 }, { keepLast: 100 },
    ]
    for (const policy of policies) {
      const want = expectedKept(CREATED, policy)
      const r = await pruneSnapshots(p.dir, { ...policy, dryRun: true })
      assert.deepEqual(sorted(names(r.kept)), want, `kept by ${JSON.stringify(policy)}`)
      assert.deepEqual(sorted(names(r.removed)), all.filter((n) => !want.includes(n)), `removed by ${JSON.stringify(policy)}`)
    }
    assert.deepEqual(names(await listSnapshots(p.dir)), all, 'dry runs removed nothing')
    const hashes = new Map(all.map((n) => [n, hashTree(path.join(p.store, n))]))
    const policy = { keepDaily: 2, keepMonthly: 2 }
    const want = expectedKept(CREATED, policy)
    const r = await pruneSnapshots(p.dir, policy)
    assert.deepEqual(sorted(names(r.kept)), want)
    assert.deepEqual(names(await listSnapshots(p.dir)), all.filter((n) => want.includes(n)))
    assertStoreHolds(p.store, await listSnapshots(p.dir), 'what was removed is gone, tree and record')
    for (const n of want) assert.equal(hashTree(path.join(p.store, n)), hashes.get(n), `${n} keeps its bytes`)
    // A before-restore snapshot counts like any other: the newest, so keepLast 1 keeps it alone.
    const restored = await restoreSnapshot(p.dir, want[0] as string)
    const last = await pruneSnapshots(p.dir, { keepLast: 1, dryRun: true })
    assert.deepEqual(names(last.kept), [restored.kept?.name])
  })
})

describe('snapshot: diff reads no data of unchanged files', () => {
  for (const where of ['xfs', 'btrfs subvolume'] as const) {
    test(`${where}: 20 unchanged 4 MiB files are not read; a changed one and a rewritten-equal one are`, async (t) => {
      const p = await place(t, where)
      if (p === undefined) return
      const SIZE = 4 * MiB
      for (let i = 0; i < 20; i++) put(path.join(p.dir, `u${i}.bin`), randomBytes(SIZE))
      put(path.join(p.dir, 'changed.bin'), randomBytes(SIZE))
      put(path.join(p.dir, 'rewritten.bin'), randomBytes(SIZE))
      await snapshot(p.dir, { name: 'a' })
      // changed.bin: its last block rewritten; rewritten.bin: the same bytes in new blocks (a
      // full copy put in its place, mtime kept), which only reading can prove equal.
      const fd = fs.openSync(path.join(p.dir, 'changed.bin'), 'r+')
      fs.writeSync(fd, randomBytes(4096), 0, 4096, SIZE - 4096)
      fs.closeSync(fd)
      const rootMtime = fs.lstatSync(p.dir, { bigint: true }).mtimeNs
      run('cp', ['--reflink=never', '-p', path.join(p.dir, 'rewritten.bin'), path.join(p.dir, 'rewritten.tmp')])
      fs.renameSync(path.join(p.dir, 'rewritten.tmp'), path.join(p.dir, 'rewritten.bin'))
      setMtimeNs(p.dir, rootMtime)
      await snapshot(p.dir, { name: 'b' })
      const unchanged = (root: string) => Array.from({ length: 20 }, (_, i) => path.join(root, `u${i}.bin`))
      const everything = [p.dir, path.join(p.store, 'a'), path.join(p.store, 'b')].flatMap((r) => [...unchanged(r), path.join(r, 'changed.bin'), path.join(r, 'rewritten.bin')])
      for (const [from, to] of [['a', 'b'], ['a', undefined]] as const) {
        evict(everything)
        const io = readIo()
        const changes = await diffSnapshots(p.dir, from, to)
        const read = readIo().rchar - io.rchar
        assert.deepEqual(changes, [{ path: 'changed.bin', kind: 'modified' }])
        const roots = [path.join(p.store, from), to === undefined ? p.dir : path.join(p.store, to)]
        const cachedUnchanged = resident(roots.flatMap(unchanged))
        assert.deepEqual(cachedUnchanged, cachedUnchanged.map(() => 0), 'no page of an unchanged file was read')
        // The measures work: rewritten.bin must be read whole, on at least one side.
        const cachedRewritten = resident(roots.map((r) => path.join(r, 'rewritten.bin')))
        assert.ok(read >= SIZE || Math.max(...cachedRewritten) >= SIZE, `rewritten.bin was read: rchar ${read}, cached ${cachedRewritten}`)
        // Both sides of changed.bin and rewritten.bin at most; one unchanged file more would pass it.
        assert.ok(read < 5 * SIZE, `read ${read} bytes; the two trees hold ${44 * SIZE}`)
      }
    })
  }
})

describe('snapshot: kill -9', () => {
  for (const where of ['xfs', 'btrfs subvolume'] as const) {
    test(`${where}: during a restore of a 3,000-file tree, at random moments, dir is always wholly one of the two states; the next run clears what was left`, async (t) => {
      const p = await place(t, where)
      if (p === undefined) return
      buildWideTree(p.dir, 30, 100, 700)
      await snapshot(p.dir, { name: 'one' })
      for (let d = 0; d < 30; d += 3) fs.writeFileSync(path.join(p.dir, `dir-${d}`, 'file-7'), `state two ${d}`)
      fs.rmSync(path.join(p.dir, 'dir-29'), { recursive: true })
      fs.mkdirSync(path.join(p.dir, 'only-in-two'))
      await snapshot(p.dir, { name: 'two' })
      const states = new Map([[hashTree(path.join(p.store, 'one')), 'one'], [hashTree(path.join(p.store, 'two')), 'two']])
      assert.equal(states.size, 2)
      const stateOf = () => {
        assert.ok(exists(p.dir), 'dir is never missing')
        const s = states.get(hashTree(p.dir))
        assert.ok(s !== undefined, 'dir is one of the two states, never a mix')
        return s
      }
      const code = `await lib.restoreSnapshot(process.argv[1], process.argv[2], { keepCurrent: process.argv[3] === 'keep' })`
      let current = stateOf()
      const full = await timedChild(code, [p.dir, current === 'one' ? 'two' : 'one', 'keep'])
      current = stateOf()
      let changedUnderKill = 0
      for (let i = 0; i < 16; i++) {
        const target = current === 'one' ? 'two' : 'one'
        await killMidway(code, [p.dir, target, i % 2 === 0 ? 'keep' : 'no'], full)
        const now = stateOf()
        if (now !== current) changedUnderKill++
        current = now
      }
      t.diagnostic(`full restore ${full} ms; ${changedUnderKill} of 16 killed runs had swapped dir in`)
      // The next run finishes the job and clears every leftover: beside dir and in the store.
      const r = await restoreSnapshot(p.dir, current === 'one' ? 'two' : 'one', { keepCurrent: false })
      assert.equal(stateOf(), r.restored.name)
      assert.deepEqual(sorted(fs.readdirSync(p.base)), ['.work.snapshots', 'work'], 'no temporary beside dir')
      const listed = await listSnapshots(p.dir)
      assertStoreHolds(p.store, listed, 'no temporary in the store')
      for (const s of listed) assert.ok(states.has(hashTree(s.path)), `${s.name} is a whole state, not half of one`)
    })
  }

  for (const where of PLACES) {
    test(`${where}: during create, dir and every existing snapshot stay as they were, no half-snapshot is listed; the next run clears what was left`, async (t) => {
      const p = await place(t, where)
      if (p === undefined) return
      buildWideTree(p.dir, 30, 100, 700)
      await snapshot(p.dir, { name: 'first' })
      const entries = readTree(p.dir)
      // The root is compared at the end, on its own: what else a kill leaves shows first.
      const notRoot = { ignore: ['atimeNs'] as Array<keyof Entry>, exclude: (e: Entry) => e.path === '' }
      const code = `await lib.snapshot(process.argv[1], { name: process.argv[2] })`
      const full = await timedChild(code, [p.dir, 'calibrate'])
      const whole = new Set<string>()
      for (let i = 0; i < 10; i++) {
        await killMidway(code, [p.dir, `k${i}`], full)
        // Nothing is ever made inside dir, so a kill leaves nothing there.
        assert.deepEqual(compareSnapshots(entries, readTree(p.dir), notRoot), [], 'dir as it was')
        for (const s of await listSnapshots(p.dir)) {
          if (whole.has(s.name)) continue
          assert.deepEqual(compareSnapshots(entries, readTree(s.path), notRoot), [], `${s.name} is listed, so whole`)
          whole.add(s.name)
        }
      }
      t.diagnostic(`full create ${full} ms; ${whole.size - 2} of 10 killed runs finished their snapshot`)
      await snapshot(p.dir, { name: 'after' })
      const listed = await listSnapshots(p.dir)
      assert.ok(names(listed).includes('first') && names(listed).includes('after'))
      assertStoreHolds(p.store, listed, 'no temporary or half-made snapshot left in the store')
      assert.deepEqual(sorted(fs.readdirSync(p.base)), ['.work.snapshots', 'work'], 'nor beside dir')
      assert.deepEqual(compareSnapshots(entries, readTree(path.join(p.store, 'after')), notRoot), [])
      const root = (es: Entry[]) => es.filter((e) => e.path === '')
      assert.deepEqual(compareSnapshots(root(entries), root(readTree(p.dir)), { ignore: ['atimeNs'] }), [], "dir's root as it was")
    })
  }
})

describe('clonefile snapshot (CLI)', () => {
  test('create, list, diff, restore, delete, prune: output, --json and exit codes', async (t) => {
    const p = await place(t, 'xfs')
    if (p === undefined) return
    buildChangeTree(p.dir)
    let r = cliRun(['snapshot', 'create', p.dir, '--name', 'a'])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /^a\b.*clone/)
    changeEverything(p.dir)
    r = cliRun(['snapshot', 'create', p.dir, '--name', 'b', '--json'])
    assert.equal(r.status, 0, r.stderr)
    const b = JSON.parse(r.stdout) as Record<string, unknown>
    assert.deepEqual(Object.keys(b).sort(), ['created', 'method', 'name', 'path', 'readOnly', 'source'])
    assert.deepEqual([b.name, b.path, b.source, b.method, b.readOnly], ['b', path.join(p.store, 'b'), p.dir, 'clone', false])
    assert.equal(new Date(b.created as string).toISOString(), b.created, 'created as an ISO string')

    r = cliRun(['snapshot', 'list', p.dir, '--json'])
    assert.equal(r.status, 0, r.stderr)
    const api = await listSnapshots(p.dir)
    assert.deepEqual(JSON.parse(r.stdout), JSON.parse(JSON.stringify(api)))
    r = cliRun(['snapshot', 'list', p.dir])
    assert.equal(r.status, 0, r.stderr)
    const rows = r.stdout.trimEnd().split('\n')
    assert.equal(rows.length, 3, r.stdout)
    assert.match(rows[0] ?? '', /NAME\s+CREATED\s+METHOD\s+FILES\s+FREES/)
    for (const [i, s] of api.entries()) {
      assert.match(rows[i + 1] ?? '', new RegExp(`^${s.name}\\s+${s.created.toISOString().replace(/\./g, '\\.')}\\s+clone\\s+\\d+\\s+\\d`))
    }
    const files = (await usage(api.map((s) => s.path))).paths.map((u) => u.files)
    for (const [i, n] of files.entries()) assert.match(rows[i + 1] ?? '', new RegExp(`\\s${n}\\s`), 'the files usage() counts')

    r = cliRun(['snapshot', 'diff', p.dir, 'a', 'b'])
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.stdout.trimEnd().split('\n'), EXPECTED_CHANGES)
    r = cliRun(['snapshot', 'diff', p.dir, 'a', '--json'])
    assert.deepEqual(JSON.parse(r.stdout), await diffSnapshots(p.dir, 'a'))
    r = cliRun(['snapshot', 'diff', p.dir, 'b'])
    assert.deepEqual([r.status, r.stdout], [0, ''], 'no change: no output, exit 0')
    r = cliRun(['snapshot', 'create', p.dir, '--name', 'b'])
    assert.equal(r.status, 1)
    assert.match(r.stderr, /EEXIST/)
    // Asserted at the end: a refused create changes nothing, dir included.
    const afterRefusal = cliRun(['snapshot', 'diff', p.dir, 'b']).stdout

    r = cliRun(['snapshot', 'restore', p.dir, 'a'])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /before-restore-/)
    assert.deepEqual(await diffSnapshots(p.dir, 'a'), [])
    r = cliRun(['snapshot', 'restore', p.dir, 'b', '--no-keep', '--json'])
    assert.equal(r.status, 0, r.stderr)
    const restored = JSON.parse(r.stdout) as { restored: { name: string }; kept?: unknown }
    assert.equal(restored.restored.name, 'b')
    assert.equal(restored.kept, undefined)
    assert.equal((await listSnapshots(p.dir)).length, 3, 'a, b and the one before-restore')

    r = cliRun(['snapshot', 'prune', p.dir])
    assert.equal(r.status, 2, 'no keep rule: bad usage')
    r = cliRun(['snapshot', 'prune', p.dir, '--keep-last', 'x'])
    assert.equal(r.status, 2)
    r = cliRun(['snapshot', 'prune', p.dir, '--keep-last', '2', '-n', '--json'])
    assert.equal(r.status, 0, r.stderr)
    const pr = JSON.parse(r.stdout) as { kept: Array<{ name: string }>; removed: Array<{ name: string }> }
    assert.deepEqual(pr.removed.map((s) => s.name), ['a'])
    assert.equal(pr.kept.length, 2)
    assert.equal((await listSnapshots(p.dir)).length, 3, '-n removed nothing')
    r = cliRun(['snapshot', 'prune', p.dir, '--keep-last=2'])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /removed a\n/)
    assert.deepEqual(names(await listSnapshots(p.dir)).includes('a'), false)

    r = cliRun(['snapshot', 'create', p.dir, '--name=c', '--progress'])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stderr, /\d+ files, /, 'a progress bar on stderr')
    for (const n of ['d', 'e']) assert.equal(cliRun(['snapshot', 'create', p.dir, `--name=${n}`]).status, 0)
    r = cliRun(['snapshot', 'delete', p.dir, 'c', 'd'])
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(names(await listSnapshots(p.dir)).filter((n) => n.length === 1), ['b', 'e'])
    r = cliRun(['snapshot', 'delete', p.dir, 'nope'])
    assert.equal(r.status, 1)
    assert.match(r.stderr, /ENOENT/)
    assert.match(r.stderr, /nope/)
    r = cliRun(['snapshot', 'delete', p.dir, '..'])
    assert.equal(r.status, 1)
    assert.match(r.stderr, /ERR_INVALID_ARG_VALUE/)
    assert.ok(exists(p.dir) && exists(p.store))
    assert.equal(afterRefusal, '', 'the refused create left dir as it was')
  })

  test('diff prints a name with a control character as a JSON string, on one line; --json as it is', async (t) => {
    const p = await place(t, 'xfs')
    if (p === undefined) return
    fs.writeFileSync(path.join(p.dir, 'plain'), 'x')
    assert.equal(cliRun(['snapshot', 'create', p.dir, '--name', 'a']).status, 0)
    for (const name of ['new\nline', 'tab\there', '-rf', 'ünï code']) fs.writeFileSync(path.join(p.dir, name), 'x')
    const r = cliRun(['snapshot', 'diff', p.dir, 'a'])
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.stdout.split('\n'), ['A -rf', 'A "new\\nline"', 'A "tab\\there"', 'A ünï code', ''])
    const json = JSON.parse(cliRun(['snapshot', 'diff', p.dir, 'a', '--json']).stdout) as Change[]
    assert.deepEqual(json.map((c) => c.path), ['-rf', 'new\nline', 'tab\there', 'ünï code'])
  })

  test('create interrupted by SIGINT: the CLI cleans up and dies by the signal; no half snapshot', async (t) => {
    const p = await place(t, 'xfs')
    if (p === undefined) return
    buildWideTree(p.dir, 30, 100, 700)
    const entries = readTree(p.dir)
    const c = spawn(process.execPath, [cli, 'snapshot', 'create', p.dir, '--name', 'x'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => c.on('exit', (code, sig) => resolve([code, sig])))
    // Interrupted while the tree is being cloned: once its temporary tree is in the store.
    const building = () => (exists(p.store) ? fs.readdirSync(p.store) : []).some((n) => n.startsWith('.clonefile-tmp-') && !n.endsWith('.lock'))
    for (let i = 0; i < 4000 && !building(); i++) await sleep(1)
    c.kill('SIGINT')
    const [code, sig] = await exited
    assert.deepEqual([code, sig], [null, 'SIGINT'], `dies by the signal: ${stderr}`)
    const listed = await listSnapshots(p.dir)
    t.diagnostic(`interrupted ${listed.length === 0 ? 'before' : 'after'} the snapshot was made`)
    for (const s of listed) assert.deepEqual(compareSnapshots(entries, readTree(s.path), { ignore: ['atimeNs'] }), [], 'a listed snapshot is whole')
    // The store itself may go too (made by this run for nothing).
    if (exists(p.store) || listed.length > 0) assertStoreHolds(p.store, listed, 'the interrupted run removed what it built')
    assert.deepEqual(sorted(fs.readdirSync(p.base)).filter((n) => n !== '.work.snapshots'), ['work'])
  })

  test('bad usage is exit 2 and changes nothing; --help is exit 0', async (t) => {
    const p = await place(t, 'xfs')
    if (p === undefined) return
    fs.writeFileSync(path.join(p.dir, 'f'), 'x')
    assert.equal(cliRun(['snapshot']).status, 2)
    for (const args of [
      ['snapshot', 'frob', p.dir], ['snapshot', 'create'], ['snapshot', 'create', p.dir, 'extra'],
      ['snapshot', 'create', p.dir, '--bogus'], ['snapshot', 'diff', p.dir], ['snapshot', 'diff', p.dir, 'a', 'b', 'c'],
      ['snapshot', 'restore', p.dir], ['snapshot', 'delete', p.dir], ['snapshot', 'list'], ['snapshot', 'list', p.dir, '--keep-last=1'],
      ['snapshot', 'create', p.dir, ''],
    ]) {
      const r = cliRun(args)
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.notEqual(r.stderr, '')
    }
    assert.equal(exists(p.store), false, 'no store was made')
    for (const args of [['snapshot', '--help'], ['snapshot', 'create', '--help'], ['snapshot', 'prune', '-h']]) {
      const r = cliRun(args)
      assert.equal(r.status, 0)
      assert.match(r.stdout, /clonefile snapshot create DIR/)
    }
    assert.match(cliRun(['--help']).stdout, /snapshot create\|list\|diff\|restore\|delete\|prune/)
    const missing = cliRun(['snapshot', 'list', path.join(p.base, 'missing')])
    assert.equal(missing.status, 1)
    assert.match(missing.stderr, /^clonefile snapshot: .*ENOENT/)
  })
})
