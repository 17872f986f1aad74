// usage() and sharedBytes() on real filesystems: on btrfs every figure must equal
// `btrfs filesystem du --raw`; on XFS it must equal a computation from xfs_io's FIEMAP output.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { after, describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { tmpdir, constants } from 'node:os'
import { Space, native } from '../src/binding.js'
import type { FileSpaceBatch } from '../src/binding.js'
import { sharedBytes, usage, usageWithSpace } from '../src/usage.js'
import type { SpaceBinding } from '../src/usage.js'
import type { Usage, UsageEntry } from '../src/types.js'
import { CWD, RAW } from '../src/binding.js'
import { extentsOf } from './helpers/fiemap.js'
import { freshDir, needMount } from './helpers/mounts.js'
import type { FsKind } from './helpers/mounts.js'

const KiB = 1024
const MiB = 1024 * KiB
const CLI = fileURLToPath(new URL('../../bin/clonefile.js', import.meta.url))
const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`

function sh(tool: string, ...args: string[]): string {
  return execFileSync(tool, args, { encoding: 'utf8', env: { ...process.env, PATH } })
}

function writeRandom(file: string, bytes: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, randomBytes(bytes))
}

/** Overwrites `bytes` at `offset` in place, as `dd conv=notrunc seek=...` does. */
function rewrite(file: string, offset: number, bytes: number): void {
  const fd = fs.openSync(file, 'r+')
  try {
    fs.writeSync(fd, randomBytes(bytes), 0, bytes, offset)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

const reflink = (src: string, dst: string) => sh('cp', '-a', '--reflink=always', src, dst)
/** FICLONERANGE through xfs_io: `len` bytes of src at srcOffset to dst at dstOffset. */
const rangeClone = (src: string, srcOffset: number, dst: string, dstOffset: number, len: number) =>
  sh('xfs_io', '-f', '-c', `reflink ${src} ${srcOffset} ${dstOffset} ${len}`, dst)

// ---- the scenarios, the same on every filesystem ----

type Scenario = (dir: string) => string[]

const scenarios: Record<string, Scenario> = {
  'a fresh tree': (dir) => {
    freshTree(path.join(dir, 'tree'))
    return [path.join(dir, 'tree')]
  },
  'a tree cloned once and twice': (dir) => {
    freshTree(path.join(dir, 'tree'))
    reflink(path.join(dir, 'tree'), path.join(dir, 'clone1'))
    reflink(path.join(dir, 'tree'), path.join(dir, 'clone2'))
    return [path.join(dir, 'tree'), path.join(dir, 'clone1'), path.join(dir, 'clone2')]
  },
  'a clone partly rewritten': (dir) => {
    freshTree(path.join(dir, 'tree'))
    reflink(path.join(dir, 'tree'), path.join(dir, 'clone'))
    rewrite(path.join(dir, 'clone', 'big'), 256 * KiB, 64 * KiB)
    rewrite(path.join(dir, 'clone', 'sub', 'b'), 0, 4 * KiB)
    return [path.join(dir, 'tree'), path.join(dir, 'clone')]
  },
  'a range cloned inside one file': (dir) => {
    const f = path.join(dir, 'one', 'f')
    writeRandom(f, MiB)
    rangeClone(f, 0, f, 512 * KiB, 256 * KiB)
    rangeClone(f, 0, path.join(dir, 'one', 'g'), 0, 128 * KiB)
    return [path.join(dir, 'one')]
  },
  'sparse files': (dir) => {
    const f = path.join(dir, 'sparse', 'f')
    fs.mkdirSync(path.dirname(f))
    fs.writeFileSync(f, '')
    fs.truncateSync(f, 8 * MiB)
    rewrite(f, MiB, 64 * KiB)
    rewrite(f, 5 * MiB + 4 * KiB, 12 * KiB)
    fs.writeFileSync(path.join(dir, 'sparse', 'hole'), '')
    fs.truncateSync(path.join(dir, 'sparse', 'hole'), 3 * MiB)
    reflink(f, path.join(dir, 'sparse', 'f-clone'))
    return [path.join(dir, 'sparse')]
  },
  'tiny inline files': (dir) => {
    const tiny = path.join(dir, 'tiny')
    fs.mkdirSync(tiny)
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(tiny, `t${i}`), randomBytes(1 + i * 97))
    fs.writeFileSync(path.join(tiny, 'empty'), '')
    reflink(path.join(tiny, 't3'), path.join(tiny, 't3-clone'))
    writeRandom(path.join(tiny, 'not-tiny'), 16 * KiB)
    return [tiny]
  },
}

/** Files of many sizes, a subdirectory, a symlink (not followed) and a hard link (counted once). */
function freshTree(dir: string): void {
  writeRandom(path.join(dir, 'big'), MiB)
  writeRandom(path.join(dir, 'odd'), 300 * KiB + 17)
  writeRandom(path.join(dir, 'small'), 700)
  writeRandom(path.join(dir, 'sub', 'a'), 64 * KiB)
  writeRandom(path.join(dir, 'sub', 'b'), 8 * KiB)
  fs.mkdirSync(path.join(dir, 'sub', 'empty'))
  fs.symlinkSync('../big', path.join(dir, 'sub', 'link'))
  fs.linkSync(path.join(dir, 'sub', 'a'), path.join(dir, 'sub', 'a-link'))
}

async function measured(paths: string[]): Promise<{ usage: Awaited<ReturnType<typeof usage>>; entries: UsageEntry[] }> {
  const entries: UsageEntry[] = []
  return { usage: await usage(paths, { onEntry: (e) => entries.push(e) }), entries }
}

// ---- btrfs: `btrfs filesystem du --raw` is the reference ----

interface BtrfsRow {
  total: number
  exclusive: number
  setShared: number | undefined
}

function btrfsDu(...args: string[]): Map<string, BtrfsRow> {
  // btrfs-progs maps extents without FIEMAP_FLAG_SYNC: flush first so nothing is delalloc.
  sh('sync')
  const rows = new Map<string, BtrfsRow>()
  for (const line of sh('btrfs', 'filesystem', 'du', '--raw', ...args).split('\n').slice(1)) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+|-)\s+(.+)$/.exec(line)
    if (m === null) continue
    rows.set(m[4]!, { total: Number(m[1]), exclusive: Number(m[2]), setShared: m[3] === '-' ? undefined : Number(m[3]) })
  }
  return rows
}

function apparentSize(dir: string): number {
  const seen = new Set<number>()
  let sum = 0
  for (const line of sh('find', dir, '-type', 'f', '-printf', '%i %s\n').trim().split('\n')) {
    const [ino, size] = line.split(' ').map(Number)
    if (ino !== undefined && !seen.has(ino)) sum += size ?? 0
    if (ino !== undefined) seen.add(ino)
  }
  return sum
}

describe('usage on btrfs equals btrfs filesystem du --raw', () => {
  for (const [name, make] of Object.entries(scenarios)) {
    test(name, async (t) => {
      const m = await needMount(t, 'btrfs')
      if (!m) return
      const dir = freshDir(m, 'usage')
      const paths = make(dir)
      const { usage: result, entries } = await measured(paths)
      const reference = btrfsDu(...paths)
      assert.equal(entries.length, reference.size, 'one entry for each line btrfs prints')
      for (const e of entries) {
        const row = reference.get(e.path)
        assert.ok(row, `btrfs lists ${e.path}`)
        assert.deepEqual({ total: e.total, exclusive: e.exclusive, setShared: e.setShared }, row, e.path)
      }
      for (const p of result.paths) {
        assert.deepEqual({ total: p.total, exclusive: p.exclusive, setShared: p.setShared }, reference.get(p.path))
        assert.equal(p.onDisk, p.exclusive + p.setShared)
        assert.equal(p.saved, p.total - p.onDisk)
        assert.equal(p.apparent, apparentSize(p.path))
      }
      const [whole] = btrfsDu('-s', dir).values()
      assert.deepEqual({ total: result.set.total, exclusive: result.set.exclusive, setShared: result.set.setShared }, whole,
        'the set of all paths is what btrfs says of their parent directory')
      assert.equal(result.skipped, 0)
    })
  }

  test('preallocated extents are not data: the one place usage() departs from btrfs-progs', async (t) => {
    const m = await needMount(t, 'btrfs')
    if (!m) return
    const dir = freshDir(m, 'usage')
    const f = path.join(dir, 'f')
    writeRandom(f, 256 * KiB)
    sh('xfs_io', '-c', `falloc ${256 * KiB} ${MiB}`, f)
    const [row] = btrfsDu('-s', dir).values()
    const { set } = await usage(dir)
    assert.equal(row?.total, 256 * KiB + MiB, 'btrfs filesystem du counts unwritten extents')
    assert.equal(set.total, 256 * KiB)
    assert.equal(set.exclusive, 256 * KiB)
  })

  test('a subvolume snapshot shares everything with its source', async (t) => {
    const m = await needMount(t, 'btrfs')
    if (!m) return
    const dir = freshDir(m, 'usage')
    sh('btrfs', 'subvolume', 'create', path.join(dir, 'vol'))
    freshTree(path.join(dir, 'vol', 'tree'))
    sh('btrfs', 'subvolume', 'snapshot', path.join(dir, 'vol'), path.join(dir, 'snap'))
    const { usage: result } = await measured([dir])
    const [whole] = btrfsDu('-s', dir).values()
    assert.deepEqual({ total: result.set.total, exclusive: result.set.exclusive, setShared: result.set.setShared }, whole)
    assert.equal(result.set.exclusive, 0)
  })
})

// ---- XFS: an independent computation from xfs_io's FIEMAP output ----

// Unwritten (preallocated), inline, delalloc and unknown extents hold no data yet.
const NOT_DATA = ['unwritten', 'data_inline', 'delalloc', 'unknown']

/** What usage() should say of `paths` taken together, from the FIEMAP oracle. */
function oracle(paths: string[]): Pick<Usage, 'files' | 'total' | 'exclusive' | 'setShared'> {
  const seen = new Set<string>()
  const shared: Array<[number, number]> = []
  let files = 0
  let total = 0
  let exclusive = 0
  for (const p of paths) {
    for (const line of sh('find', p, '-type', 'f', '-printf', '%D:%i %p\n').trim().split('\n')) {
      const [inode, file] = [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)]
      if (line === '' || seen.has(inode)) continue
      seen.add(inode)
      files++
      for (const e of extentsOf(file).filter((x) => !x.flags.some((f) => NOT_DATA.includes(f)))) {
        total += e.length
        if (e.shared) shared.push([e.physical, e.physical + e.length])
        else exclusive += e.length
      }
    }
  }
  return { files, total, exclusive, setShared: unionLength(shared) }
}

function unionLength(ranges: Array<[number, number]>): number {
  let covered = 0
  let reach = -1
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (end <= reach) continue
    covered += end - Math.max(start, reach)
    reach = end
  }
  return covered
}

const pick = (u: Usage) => ({ files: u.files, total: u.total, exclusive: u.exclusive, setShared: u.setShared })

describe('usage on XFS equals an independent FIEMAP computation', () => {
  for (const [name, make] of Object.entries(scenarios)) {
    test(name, async (t) => {
      const m = await needMount(t, 'xfs')
      if (!m) return
      const paths = make(freshDir(m, 'usage'))
      const result = await usage(paths)
      for (const p of result.paths) assert.deepEqual(pick(p), oracle([p.path]), p.path)
      assert.deepEqual(pick(result.set), oracle(paths))
      assert.equal(result.set.onDisk, result.set.exclusive + result.set.setShared)
      assert.equal(result.set.saved, result.set.total - result.set.onDisk)
    })
  }

  test('a fresh tree shares nothing', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const tree = path.join(freshDir(m, 'usage'), 'tree')
    freshTree(tree)
    const { set } = await usage(tree)
    assert.equal(set.setShared, 0)
    assert.equal(set.exclusive, set.total)
    assert.ok(set.total > 0)
  })

  test('a tree and its clone: nothing exclusive, on disk what the tree alone was', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m, 'usage')
    freshTree(path.join(dir, 'tree'))
    const before = (await usage(path.join(dir, 'tree'))).set
    reflink(path.join(dir, 'tree'), path.join(dir, 'clone'))
    const { set } = await usage([path.join(dir, 'tree'), path.join(dir, 'clone')])
    assert.equal(set.exclusive, 0)
    assert.equal(set.onDisk, before.total)
    assert.equal(set.saved, before.total)
    assert.equal(set.files, 2 * before.files)
  })

  for (const k of [1, 3, 16]) {
    test(`rewriting ${k} blocks of one of two clones leaves each with ${k} exclusive blocks`, async (t) => {
      const m = await needMount(t, 'xfs')
      if (!m) return
      const dir = freshDir(m, 'usage')
      const block = fs.statfsSync(dir).bsize
      const [a, b] = [path.join(dir, 'a'), path.join(dir, 'b')]
      writeRandom(a, 64 * block)
      reflink(a, b)
      rewrite(b, 5 * block, k * block)
      const { paths } = await usage([a, b])
      assert.deepEqual(paths.map((p) => p.exclusive), [k * block, k * block])
      assert.equal((await usage(dir)).set.onDisk, (64 + k) * block)
    })
  }
})

// ---- sharedBytes ----

describe('sharedBytes', () => {
  for (const kind of ['btrfs', 'xfs'] as const satisfies FsKind[]) {
    test(`${kind}: clones, range clones, unrelated files, a file with itself`, async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m, 'shared')
      const [a, clone, partial, other] = ['a', 'clone', 'partial', 'other'].map((n) => path.join(dir, n)) as [string, string, string, string]
      writeRandom(a, MiB)
      writeRandom(other, MiB)
      reflink(a, clone)
      writeRandom(partial, 512 * KiB)
      rangeClone(a, 256 * KiB, partial, 64 * KiB, 128 * KiB)
      fs.linkSync(a, path.join(dir, 'a-link'))

      assert.equal(await sharedBytes(a, clone), MiB)
      assert.equal(await sharedBytes(clone, a), MiB)
      assert.equal(await sharedBytes(a, partial), 128 * KiB)
      assert.equal(await sharedBytes(partial, a), 128 * KiB)
      assert.equal(await sharedBytes(partial, clone), 128 * KiB, 'clone holds the same blocks as a')
      assert.equal(await sharedBytes(a, other), 0)
      assert.equal(await sharedBytes(other, other), MiB, 'a file shares all its data with itself')
      assert.equal(await sharedBytes(a, path.join(dir, 'a-link')), MiB)

      rewrite(clone, 0, 256 * KiB)
      const left = await sharedBytes(a, clone)
      assert.equal(left, MiB - 256 * KiB)
    })
  }

  test('rejects bad arguments and missing files like fs does', async () => {
    await assert.rejects(sharedBytes('', 'x'), { code: 'ERR_INVALID_ARG_VALUE' })
    await assert.rejects(sharedBytes(42 as unknown as string, 'x'), { code: 'ERR_INVALID_ARG_TYPE' })
    await assert.rejects(sharedBytes('/nonexistent/a', '/nonexistent/b'), { code: 'ENOENT', path: '/nonexistent/a' })
  })
})

// ---- the rest of the contract ----

async function btrfsOrXfs(t: TestContext): Promise<string | undefined> {
  const m = (await needMount(t, 'btrfs')) ?? (await needMount(t, 'xfs'))
  return m === undefined ? undefined : freshDir(m, 'usage')
}

describe('usage', () => {
  test('directories that vanish during the parallel scan are skipped and counted', async (t) => {
    const dir = await btrfsOrXfs(t)
    if (dir === undefined) return
    // 600 files at the top: the first progress report comes once the top is measured and its
    // ten subdirectories are found but not yet listed; half of them go then.
    for (let i = 0; i < 600; i++) fs.writeFileSync(path.join(dir, `f${i}`), 'x'.repeat(5000))
    for (let d = 0; d < 10; d++) {
      fs.mkdirSync(path.join(dir, `d${d}`))
      for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(dir, `d${d}`, `f${i}`), 'x'.repeat(5000))
    }
    let removed = false
    const result = await usage(dir, {
      onProgress: () => {
        if (removed) return
        removed = true
        for (let d = 0; d < 5; d++) fs.rmSync(path.join(dir, `d${d}`), { recursive: true })
      },
    })
    assert.ok(removed)
    assert.equal(result.skipped, 5)
    assert.equal(result.set.files, 650)
  })

  test('files removed while the ordered scan (onEntry) runs are never counted twice nor fail it', async (t) => {
    const dir = await btrfsOrXfs(t)
    if (dir === undefined) return
    // A chain of 60 directories, 100 files each: a level is listed only after the one above it,
    // so files removed at the first progress report (after 512 files) vanish from levels not
    // listed yet.
    const levels = Array.from({ length: 60 }, (_, k) => path.join(...Array.from({ length: k + 1 }, (_, j) => `l${j}`)))
    fs.mkdirSync(path.join(dir, levels[59] as string), { recursive: true })
    const names = levels.flatMap((l) => Array.from({ length: 100 }, (_, i) => path.join(l, `f${String(i).padStart(3, '0')}`)))
    for (const n of names) fs.writeFileSync(path.join(dir, n), 'x'.repeat(5000))
    let removed = false
    const seen: string[] = []
    const result = await usage(dir, {
      onEntry: (e) => void (!e.directory && seen.push(e.path)),
      onProgress: () => {
        if (removed) return
        removed = true
        for (const n of names.filter((_, i) => i % 2 === 1)) fs.rmSync(path.join(dir, n))
      },
    })
    assert.ok(removed)
    assert.equal(new Set(seen).size, seen.length, 'no file reported twice')
    assert.equal(seen.length, result.set.files)
    assert.ok(result.set.files >= 3000 && result.set.files + result.skipped < 6000, `${result.set.files} files, ${result.skipped} skipped`)
  })

  test('progress is reported and an abort stops the scan', async (t) => {
    const dir = await btrfsOrXfs(t)
    if (dir === undefined) return
    for (let i = 0; i < 1500; i++) fs.writeFileSync(path.join(dir, `f${i}`), 'x'.repeat(5000))
    const seen: number[] = []
    const result = await usage(dir, { onProgress: (p) => seen.push(p.files) })
    assert.equal(seen.at(-1), 1500)
    assert.equal(result.set.files, 1500)
    const controller = new AbortController()
    const aborted = usage(dir, { signal: controller.signal, onProgress: () => controller.abort() })
    await assert.rejects(aborted, { name: 'AbortError' })
    await assert.rejects(usage(dir, { signal: AbortSignal.abort() }), { name: 'AbortError' })
  })

  test('maxDepth limits the entries; the paths and the set are unchanged', async (t) => {
    const dir = await btrfsOrXfs(t)
    if (dir === undefined) return
    freshTree(path.join(dir, 'tree'))
    const entries: UsageEntry[] = []
    const shallow = await usage(path.join(dir, 'tree'), { maxDepth: 1, onEntry: (e) => entries.push(e) })
    assert.ok(entries.every((e) => e.depth <= 1))
    assert.deepEqual(entries.map((e) => path.basename(e.path)).sort(), ['big', 'odd', 'small', 'sub', 'tree'])
    const sub = entries.find((e) => e.path.endsWith('sub'))
    assert.equal(sub?.files, 2, 'a and its hard link are one file')
    assert.deepEqual(shallow, await usage(path.join(dir, 'tree')))
  })

  test('a path given as a symlink is followed; symlinks inside are not', async (t) => {
    const dir = await btrfsOrXfs(t)
    if (dir === undefined) return
    freshTree(path.join(dir, 'tree'))
    fs.symlinkSync('tree', path.join(dir, 'tree-link'))
    fs.symlinkSync('tree/big', path.join(dir, 'big-link'))
    const [tree, treeLink, big, bigLink] = (await usage(['tree', 'tree-link', 'tree/big', 'big-link'].map((n) => path.join(dir, n)))).paths
    assert.deepEqual({ ...treeLink, path: '' }, { ...tree, path: '' })
    assert.deepEqual({ ...bigLink, path: '' }, { ...big, path: '' })
    assert.equal(big?.apparent, MiB)
    assert.equal(tree?.files, 5, 'big, odd, small, sub/a (linked twice), sub/b; not sub/link')
  })

  test('rejects bad arguments with Node error codes', async () => {
    await assert.rejects(usage([]), { code: 'ERR_INVALID_ARG_VALUE' })
    await assert.rejects(usage(['']), { code: 'ERR_INVALID_ARG_VALUE' })
    await assert.rejects(usage('.', { maxDepth: -1 }), { code: 'ERR_INVALID_ARG_VALUE' })
    await assert.rejects(usage('.', { maxDepth: '1' as unknown as number }), { code: 'ERR_INVALID_ARG_TYPE' })
    await assert.rejects(usage('.', { onEntry: 1 as unknown as () => void }), { code: 'ERR_INVALID_ARG_TYPE' })
    await assert.rejects(usage('/nonexistent'), { code: 'ENOENT' })
  })
})

// ---- macOS: APFS private sizes, run here with made-up answers ----

/** What APFS would say of one file; a field left out is one the filesystem does not report. */
interface ApfsFile {
  allocated: number
  private?: number
  /** EF_* bits; EF_MAY_SHARE_BLOCKS is 0x1 */
  flags?: bigint
  errno?: number
}

/** A fileSpace() that answers from `files`, by file name. */
function fakeApfs(files: Record<string, ApfsFile>): SpaceBinding {
  return {
    fileSpace: async (_dirs, names) => {
      const paths = names.split('\0')
      const n = paths.length
      const out: FileSpaceBatch = {
        allocated: new Float64Array(n), privateSize: new Float64Array(n), cloneId: new BigUint64Array(n),
        extFlags: new BigUint64Array(n), cloneRefcount: new Uint32Array(n), known: new Uint32Array(n), errnos: new Int32Array(n),
      }
      for (const [i, p] of paths.entries()) {
        const f = files[path.basename(p.toString())]
        assert.ok(f !== undefined, `asked about ${p.toString()}`)
        out.errnos[i] = f.errno ?? 0
        out.allocated[i] = f.allocated
        out.privateSize[i] = f.private ?? 0
        out.extFlags[i] = f.flags ?? 0n
        out.known[i] = Space.Allocated | (f.private === undefined ? 0 : Space.PrivateSize) | (f.flags === undefined ? 0 : Space.ExtFlags)
      }
      return out
    },
  }
}

const apfsDirs: string[] = []
after(() => {
  for (const dir of apfsDirs) fs.rmSync(dir, { recursive: true, force: true })
})

/** Files named as in `files`, 1000 bytes each, in a fresh directory: only their names matter. */
function apfsTree(files: Record<string, ApfsFile>): string {
  const dir = freshDir(tmpdir(), 'apfs')
  apfsDirs.push(dir)
  for (const name of Object.keys(files)) fs.writeFileSync(path.join(dir, name), 'x'.repeat(1000))
  return dir
}

describe('usage on macOS (APFS private sizes), with made-up answers', () => {
  test('the addon says ENOTSUP for every file here: Linux measures with FIEMAP', async () => {
    const binding = native()
    assert.ok(binding !== undefined, 'the addon is built')
    const dir = apfsTree({ a: { allocated: 0 }, b: { allocated: 0 } })
    const space = await binding.fileSpace(Int32Array.of(CWD, CWD), `${path.join(dir, 'a')}\0${path.join(dir, 'b')}`, RAW, true)
    assert.deepEqual([...space.errnos], [constants.errno.ENOTSUP, constants.errno.ENOTSUP])
    assert.deepEqual([...space.known], [0, 0])
    assert.equal(space.cloneId.length, 2)
    assert.equal((await binding.fileSpace(new Int32Array(0), '', RAW, true)).errnos.length, 0)
    assert.throws(() => binding.fileSpace([1] as unknown as Int32Array, '', RAW, true), { code: 'ERR_INVALID_ARG_TYPE' })
  })

  test('no two files may share blocks: every figure exact, held bytes are set-shared, nothing saved', async () => {
    // c's 4 KiB held by a snapshot; d may share blocks but holds none; e shares with a clone elsewhere.
    const files: Record<string, ApfsFile> = {
      a: { allocated: 8192, private: 8192, flags: 0n },
      c: { allocated: 8192, private: 4096, flags: 0n },
      d: { allocated: 4096, private: 4096, flags: 1n },
      e: { allocated: 16384, private: 0, flags: 1n },
    }
    const dir = apfsTree(files)
    const result = await usageWithSpace(fakeApfs(files), dir)
    assert.equal(result.reason, undefined)
    assert.deepEqual(result.set, { files: 4, apparent: 4000, total: 36864, exclusive: 16384, setShared: 20480, onDisk: 36864, saved: 0 })
  })

  test('two files that may share blocks: exclusive exact, the shared figures NaN, and a reason', async () => {
    const files: Record<string, ApfsFile> = {
      original: { allocated: 16384, private: 0, flags: 0x41n },
      clone: { allocated: 16384, private: 0, flags: 0x41n },
    }
    const dir = apfsTree(files)
    const entries: UsageEntry[] = []
    const result = await usageWithSpace(fakeApfs(files), [path.join(dir, 'original'), path.join(dir, 'clone')], {
      onEntry: (e) => entries.push(e),
    })
    assert.match(result.reason ?? '', /APFS does not say which blocks files share/)
    // Each path alone is one file: exact. Together they may share.
    for (const row of result.paths) assert.equal(row.saved, 0)
    assert.equal(result.set.total, 32768)
    assert.equal(result.set.exclusive, 0)
    assert.ok([result.set.setShared, result.set.onDisk, result.set.saved].every(Number.isNaN))
    assert.deepEqual(entries.map((e) => e.setShared), [16384, 16384])
  })

  test('a filesystem without private sizes (not APFS): exclusive is NaN too', async () => {
    const files: Record<string, ApfsFile> = { a: { allocated: 4096 }, b: { allocated: 8192, private: 8192, flags: 0n } }
    const dir = apfsTree(files)
    const result = await usageWithSpace(fakeApfs(files), dir)
    assert.equal(result.set.total, 12288)
    assert.ok([result.set.exclusive, result.set.setShared, result.set.onDisk, result.set.saved].every(Number.isNaN))
    assert.ok(result.reason !== undefined)
  })

  test('a file that vanished is skipped; another failure rejects like fs', async () => {
    const files: Record<string, ApfsFile> = { a: { allocated: 4096, private: 4096, flags: 0n }, gone: { allocated: 0, errno: constants.errno.ENOENT } }
    const dir = apfsTree(files)
    const result = await usageWithSpace(fakeApfs(files), dir)
    assert.equal(result.skipped, 1)
    assert.equal(result.set.files, 1)
    files.gone = { allocated: 0, errno: constants.errno.EACCES }
    await assert.rejects(usageWithSpace(fakeApfs(files), dir), { code: 'EACCES', syscall: 'getattrlist', path: path.join(dir, 'gone') })
  })

  test('without the addon: allocated sizes only, and the reason says why', async () => {
    const dir = apfsTree({ a: { allocated: 0 } })
    const result = await usageWithSpace(undefined, dir)
    assert.match(result.reason ?? '', /native addon is not loaded/)
    assert.ok(Number.isNaN(result.set.exclusive))
    assert.equal(result.set.files, 1)
  })
})

// ---- clonefile du ----

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, 'du', ...args], { encoding: 'utf8' })
}

describe('clonefile du', () => {
  test('-s prints the btrfs columns and a line a person can read', async (t) => {
    const m = await needMount(t, 'btrfs')
    if (!m) return
    const dir = freshDir(m, 'cli')
    freshTree(path.join(dir, 'tree'))
    reflink(path.join(dir, 'tree'), path.join(dir, 'clone'))
    const r = cli('-s', dir)
    assert.equal(r.status, 0, r.stderr)
    const [header, row, summary] = r.stdout.split('\n')
    assert.match(header ?? '', /^\s+Total\s+Exclusive\s+Set shared\s+Filename$/)
    const [reference] = btrfsDu('-s', dir).values()
    assert.equal(row, `${[reference?.total, reference?.exclusive, reference?.setShared].map((n) => String(n).padStart(10)).join('  ')}  ${dir}`)
    const { set } = await usage(dir)
    assert.equal(summary, `${set.files} files · ${humanish(set.total)} referenced · ${humanish(set.onDisk)} on disk · ` +
      `sharing saves ${humanish(set.saved)} (${Math.round((100 * set.saved) / set.total)}%)`)
  })

  test('-d, -h and --json', async (t) => {
    const dir = await btrfsOrXfs(t)
    if (dir === undefined) return
    freshTree(path.join(dir, 'tree'))
    const listed = cli('-d', '1', '-h', dir).stdout.trim().split('\n').slice(1, -1)
    assert.deepEqual(listed.map((l) => l.slice(36)), [`${dir}/tree`, dir])
    assert.match(listed[0] ?? '', /MiB/)
    const json = JSON.parse(cli('--json', '-s', dir).stdout) as { set: Usage; paths: unknown[] }
    assert.deepEqual(json.set, (await usage(dir)).set)
    assert.equal(json.paths.length, 1)
    assert.equal(cli('-d', 'x', dir).status, 2)
    assert.equal(cli().status, 2)
    assert.equal(cli('/nonexistent').status, 1)
  })
})

/** humanBytes as the CLI prints it, recomputed here. */
function humanish(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return `${n.toFixed(i === 0 || n >= 100 ? 0 : 1)} ${units[i]}`
}
