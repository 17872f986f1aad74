// dedupe() on real filesystems: XFS and btrfs share blocks; ext4 and tmpfs refuse.
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, test } from 'node:test'
import { dedupe } from '../src/dedupe.js'
import { sharedBytes } from '../src/usage.js'
import type { DedupeResult } from '../src/types.js'
import { extentsOf } from './helpers/fiemap.js'
import { libUrl, runCli, runNode } from './helpers/files.js'
import { freshDir, needMount } from './helpers/mounts.js'
import type { FsKind } from './helpers/mounts.js'

const KiB = 1024
const MiB = 1024 * KiB

function put(file: string | Buffer, data: Buffer, mode = 0o644, mtime?: number): void {
  const dir = path.dirname(file.toString('latin1'))
  fs.mkdirSync(typeof file === 'string' ? path.dirname(file) : Buffer.from(dir, 'latin1'), { recursive: true })
  fs.writeFileSync(file, data, { mode })
  fs.chmodSync(file, mode)
  if (mtime !== undefined) fs.utimesSync(file, mtime, mtime)
}

const sha = (file: string | Buffer): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex')

/** Every regular file below root (as Buffers: names may not be UTF-8). */
function filesBelow(root: string): Buffer[] {
  const out: Buffer[] = []
  const stack = [Buffer.from(root)]
  while (stack.length > 0) {
    const dir = stack.pop() as Buffer
    for (const e of fs.readdirSync(dir, { withFileTypes: true, encoding: 'buffer' })) {
      const p = Buffer.concat([dir, Buffer.from('/'), e.name])
      if (e.isDirectory()) stack.push(p)
      else if (e.isFile()) out.push(p)
    }
  }
  return out
}

/** Content and every stat field a program could see, per file. */
function snapshot(root: string): Map<string, string> {
  const m = new Map<string, string>()
  for (const f of filesBelow(root)) {
    const st = fs.lstatSync(f, { bigint: true })
    m.set(f.toString('latin1'), JSON.stringify([sha(f), st.mode, st.uid, st.gid, st.size, st.ino, st.nlink, st.mtimeNs, st.ctimeNs].map(String)))
  }
  return m
}

function flip(data: Buffer, at: number): Buffer {
  const copy = Buffer.from(data)
  copy[at] = (copy[at] as number) ^ 0xff
  return copy
}

function freeBytes(dir: string): number {
  execFileSync('sync', ['-f', dir])
  const st = fs.statfsSync(dir)
  return st.bavail * st.bsize
}

interface Corpus {
  root: string
  /** groups of identical files (first = one of them), each expected to end sharing every block */
  groups: string[][]
  nearDuplicates: string[]
  dupFiles: number
  alreadyShared: number
}

function buildCorpus(root: string): Corpus {
  const r1 = randomBytes(300 * KiB)
  const big = randomBytes(20 * MiB + 123)
  const r3 = randomBytes(128 * KiB)
  const r4 = randomBytes(64 * KiB)
  const near = randomBytes(200 * KiB)
  const g1 = [`${root}/a/orig.bin`, `${root}/b/copy1.bin`, `${root}/c/deep er/copy 2`, `${root}/c/-leading-dash`, `${root}/with\nnewline`]
  put(g1[0] as string, r1, 0o644, 1_000_000)
  put(g1[1] as string, r1, 0o600, 1_500_000)
  put(g1[2] as string, r1, 0o755, 2_000_000)
  put(g1[3] as string, r1, 0o640)
  put(g1[4] as string, r1, 0o444)
  const bad = Buffer.concat([Buffer.from(`${root}/b/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from('.bin')])
  put(bad, r1, 0o600, 3_000_000)
  const gBig = [`${root}/big/one`, `${root}/big/two`, `${root}/other/three`]
  for (const f of gBig) put(f, big)
  // already cloned: x and its reflink share every block; x-copy is a plain copy
  put(`${root}/x/x.bin`, r3)
  execFileSync('cp', ['--reflink=always', `${root}/x/x.bin`, `${root}/x/x-clone.bin`])
  put(`${root}/x/x-copy.bin`, r3)
  // hard links: h2 is h1; h3 is a copy
  put(`${root}/h/h1`, r4)
  fs.linkSync(`${root}/h/h1`, `${root}/h/h2`)
  put(`${root}/h/h3`, r4)
  // empty files
  put(`${root}/e/e1`, Buffer.alloc(0))
  put(`${root}/e/e2`, Buffer.alloc(0))
  // near-duplicates: same size, one byte differs (first, a quarter in (not sampled), middle, last)
  const nearDuplicates = [`${root}/n/n0`, `${root}/n/n-first`, `${root}/n/n-quarter`, `${root}/n/n-middle`, `${root}/n/n-last`]
  put(nearDuplicates[0] as string, near)
  put(nearDuplicates[1] as string, flip(near, 0))
  put(nearDuplicates[2] as string, flip(near, near.length / 4))
  put(nearDuplicates[3] as string, flip(near, near.length / 2))
  put(nearDuplicates[4] as string, flip(near, near.length - 1))
  // a sparse file and its sparse copy
  const fd = fs.openSync(`${root}/s1`, 'w')
  fs.writeSync(fd, randomBytes(64 * KiB), 0, 64 * KiB, 512 * KiB)
  fs.ftruncateSync(fd, 1 * MiB)
  fs.closeSync(fd)
  execFileSync('cp', ['--sparse=always', '--reflink=never', `${root}/s1`, `${root}/s2`])
  return {
    root,
    groups: [[...g1, bad.toString('latin1')], gBig, [`${root}/x/x.bin`, `${root}/x/x-clone.bin`, `${root}/x/x-copy.bin`], [`${root}/h/h1`, `${root}/h/h3`], [`${root}/s1`, `${root}/s2`]],
    nearDuplicates,
    // duplicates to dedupe: 5 + 2 + 1 (x-copy) + 1 (h3) + 1 (s2)
    dupFiles: 10,
    alreadyShared: 1,
  }
}

const asPath = (p: string): string | Buffer => (/[^\x00-\x7f]/.test(p) ? Buffer.from(p, 'latin1') : p)

/** Bytes of data (FIEMAP) of a file. */
const dataOf = (p: string): number => extentsOf(asPath(p).toString()).reduce((n, e) => n + e.length, 0)

function checkShared(c: Corpus): void {
  for (const g of c.groups) {
    const [first, ...rest] = g as [string, ...string[]]
    for (const other of rest) {
      if (/[^\x00-\x7f]/.test(other)) continue // xfs_io cannot be handed a non-UTF-8 path here; see below
      assert.equal(sharedBytes_(other, first), dataOf(other), `${JSON.stringify(other)} shares every data block with ${first}`)
    }
  }
  for (const a of c.nearDuplicates) for (const b of c.nearDuplicates) if (a !== b) assert.equal(sharedBytes_(a, b), 0, `${a} and ${b} share nothing`)
}

let shared: Map<string, number>
function sharedBytes_(a: string, b: string): number {
  return shared.get(`${a}\0${b}`) as number
}

async function measureShared(c: Corpus): Promise<void> {
  shared = new Map()
  for (const g of c.groups) for (const other of g.slice(1)) shared.set(`${other}\0${g[0]}`, await sharedBytes(asPath(other) as string, asPath(g[0] as string) as string))
  for (const a of c.nearDuplicates) for (const b of c.nearDuplicates) if (a !== b) shared.set(`${a}\0${b}`, await sharedBytes(a, b))
}

/** Bytes this process had the block layer read for it (its own reads, its read-ahead hints and
 * the kernel's compare inside FIDEDUPERANGE alike): what rchar misses. */
function readBytes(): number {
  return Number(/read_bytes: (\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'))?.[1])
}

/** An empty page cache: whatever is read next comes from the disk. */
function dropCaches(): void {
  execFileSync('sync')
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3')
}

for (const kind of ['xfs', 'btrfs'] as FsKind[]) {
  describe(`dedupe on ${kind}`, () => {
    test('exact duplicates share every block, nothing else changes, saved is what df frees; a second run does nothing and reads nothing shared', async (t) => {
      const m = await needMount(t, kind)
      if (m === undefined) return
      const root = freshDir(m, 'dedupe')
      const c = buildCorpus(root)
      const before = snapshot(root)
      const dry = await dedupe(root, { dryRun: true })
      assert.deepEqual(snapshot(root), before, 'a dry run changes nothing')
      const free0 = freeBytes(root)
      const result = await dedupe(root)
      // btrfs frees extents in its transaction commit
      if (kind === 'btrfs') execFileSync('btrfs', ['filesystem', 'sync', root])
      const freed = freeBytes(root) - free0
      assert.deepEqual(snapshot(root), before, 'every file keeps its bytes, mode, owner, inode, mtime and ctime')
      assert.equal(result.errors.length, 0, JSON.stringify(result.errors))
      assert.equal(result.deduped.files, c.dupFiles, JSON.stringify(result))
      assert.equal(result.alreadyShared.files, c.alreadyShared)
      assert.equal(result.groups, c.groups.length)
      assert.deepEqual(result.skipped.map((s) => s.code), ['HARDLINK'])
      assert.equal(result.skipped[0]?.path, `${root}/h/h2`)
      // every file, a hard link once
      assert.equal(result.files, 6 + 3 + 3 + 2 + 2 + 5 + 2)
      await measureShared(c)
      checkShared(c)
      assert.ok(Math.abs(result.saved - freed) <= Math.max(0.01 * freed, 64 * KiB), `saved ${result.saved} ~ freed ${freed}`)
      assert.ok(Math.abs(dry.saved - result.saved) <= 0.01 * result.saved, `dry run would save ${dry.saved}, the run saved ${result.saved}`)
      assert.equal(dry.deduped.files, c.dupFiles + 1, 'the dry run counts the near-duplicate the kernel tells apart too (its samples agree)')

      dropCaches()
      const read0 = readBytes()
      const again = await dedupe(root)
      const read = readBytes() - read0
      assert.equal(again.deduped.files, 0)
      assert.equal(again.deduped.bytes, 0)
      assert.equal(again.saved, 0)
      assert.equal(again.alreadyShared.files, c.dupFiles + c.alreadyShared)
      assert.equal(again.groups, c.groups.length)
      // from the disk: only the near-duplicates (5 of 200 KiB, sampled and compared again) and
      // metadata; the groups already shared (20 MiB three times, 300 KiB six times) not at all
      assert.ok(read < 4 * MiB, `the second run read ${read} bytes from the disk`)
      assert.deepEqual(snapshot(root), before)
    })

    test('an opt-in cache: a second run reads none of the near-duplicates and says the same; a file changed since is read again', async (t) => {
      const m = await needMount(t, kind)
      if (m === undefined) return
      const root = freshDir(m, 'cached')
      const cacheDir = freshDir(m, 'cache')
      const cache = `${cacheDir}/runs`
      const near: Array<[string, Buffer]> = []
      for (let i = 0; i < 3; i++) {
        const data = randomBytes(4 * MiB)
        put(`${root}/near/a${i}`, data)
        put(`${root}/near/b${i}`, flip(data, 3 * MiB + i)) // past every sample: only a full compare tells
        near.push([`${root}/near/a${i}`, data])
      }
      const dup = randomBytes(MiB)
      for (const f of ['x/1', 'y/2', 'z/3']) put(`${root}/${f}`, dup)
      const before = snapshot(root)

      const dry = await dedupe(root, { cache, dryRun: true })
      assert.equal(dry.deduped.files, 2 + 3, 'a dry run counts the pairs whose samples agree (only the kernel tells them apart)')
      assert.equal(fs.existsSync(cache), false, 'a dry run does not write the cache')
      const first = await dedupe(root, { cache })
      assert.equal(first.deduped.files, 2)
      assert.ok(fs.statSync(cache).size > 0)

      const run = async (o: { cache?: string }): Promise<{ r: DedupeResult; read: number }> => {
        dropCaches()
        const read0 = readBytes()
        const r = await dedupe(root, o)
        return { r, read: readBytes() - read0 }
      }
      const without = await run({})
      const cached = await run({ cache })
      const counts = (r: DedupeResult): unknown => [r.files, r.groups, r.deduped, r.alreadyShared, r.saved, r.skipped, r.errors]
      assert.deepEqual(counts(cached.r), counts(without.r), 'the cache changes what is read, not what is said')
      assert.equal(cached.r.alreadyShared.files, 2)
      // without the cache, the three pairs are read again up to their difference (3 MiB each) to
      // tell them apart; with it,
      // only metadata (and whatever the process pages in after the caches were dropped)
      assert.ok(cached.read < 4 * MiB, `with the cache the second run read ${cached.read} bytes`)
      assert.ok(without.read - cached.read >= 15 * MiB, `without the cache the second run read ${without.read} bytes, with it ${cached.read}`)
      assert.deepEqual(snapshot(root), before)

      // b0 rewritten to a0's bytes: its mtime and ctime move, so its record no longer holds
      put(`${root}/near/b0`, (near[0] as [string, Buffer])[1])
      const changed = await dedupe(root, { cache })
      assert.equal(changed.deduped.files, 1)
      assert.equal(await sharedBytes(`${root}/near/b0`, `${root}/near/a0`), 4 * MiB)
      assert.deepEqual(fs.readdirSync(cacheDir), ['runs'], 'no temporary file is left beside the cache')

      // anything at the cache's path that is not a cache is an error, and left as it is
      const other = `${cacheDir}/notes.txt`
      fs.writeFileSync(other, 'not a cache')
      fs.symlinkSync(cache, `${cacheDir}/link`)
      execFileSync('mkfifo', [`${cacheDir}/fifo`])
      for (const bad of [other, cacheDir, `${cacheDir}/link`, `${cacheDir}/fifo`]) {
        const b0 = fs.readFileSync(cache)
        await assert.rejects(dedupe(root, { cache: bad }), (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && /dedupe cache/.test(e.message))
        assert.deepEqual(fs.readFileSync(cache), b0)
      }
      assert.equal(fs.readFileSync(other, 'utf8'), 'not a cache')
      await assert.rejects(dedupe(root, { cache: `${cacheDir}/no/such/dir/c` }), { code: 'ENOENT' })
    })

    test('saved adds up over many groups shared at once (concurrency 4): what df frees', async (t) => {
      const m = await needMount(t, kind)
      if (m === undefined) return
      const root = freshDir(m, 'many')
      for (let i = 0; i < 24; i++) {
        const data = randomBytes(64 * KiB + i * 4 * KiB)
        put(`${root}/a/${i}`, data)
        put(`${root}/b/${i}`, data)
      }
      const free0 = freeBytes(root)
      const r = await dedupe(root, { concurrency: 4 })
      if (kind === 'btrfs') execFileSync('btrfs', ['filesystem', 'sync', root])
      assert.equal(r.deduped.files, 24)
      const freed = freeBytes(root) - free0
      // btrfs may move a little metadata too
      assert.ok(Math.abs(r.saved - freed) <= 64 * KiB, `saved ${r.saved} ~ freed ${freed}`)
    })

    test('a writer rewriting duplicates during the run: every file ends with what the writer last wrote', async (t) => {
      const m = await needMount(t, kind)
      if (m === undefined) return
      const root = freshDir(m, 'live')
      const data = randomBytes(1 * MiB)
      const files = Array.from({ length: 40 }, (_, i) => `${root}/f${i}`)
      for (const f of files) put(f, data)
      const victims = files.filter((_, i) => i % 3 === 1)
      const writer = spawn(process.execPath, ['-e', `
        const fs = require('fs'), crypto = require('crypto')
        const files = ${JSON.stringify(victims)}
        const last = {}
        let stop = false
        process.stdin.on('data', () => { stop = true })
        const step = () => {
          if (stop) { process.stdout.write(JSON.stringify(last), () => process.exit(0)); return }
          for (const f of files) {
            const b = crypto.randomBytes(${MiB})
            const fd = fs.openSync(f, 'r+'); fs.writeSync(fd, b, 0, b.length, 0); fs.closeSync(fd)
            last[f] = crypto.createHash('sha256').update(b).digest('hex')
          }
          setImmediate(step)
        }
        step()
      `], { stdio: ['pipe', 'pipe', 'inherit'] })
      let out = ''
      writer.stdout.on('data', (d: Buffer) => { out += d.toString() })
      await new Promise((r) => setTimeout(r, 50))
      const result = await dedupe(root)
      const done = new Promise((r) => writer.on('exit', r))
      writer.stdin.write('stop\n')
      await done
      const last = JSON.parse(out) as Record<string, string>
      const original = createHash('sha256').update(data).digest('hex')
      for (const f of files) assert.equal(sha(f), last[f] ?? original, `${f} holds what was last written to it`)
      assert.equal(result.errors.length, 0, JSON.stringify(result.errors))
      for (const s of result.skipped) assert.equal(s.code, 'EBADE')
      assert.ok(result.deduped.files >= files.length - victims.length - 1 - 1, JSON.stringify(result))
    })

    test('fault test of the test: a FICLONE-over dedupe loses what the writer wrote, and the check sees it', async (t) => {
      const m = await needMount(t, kind)
      if (m === undefined) return
      const root = freshDir(m, 'ficlone')
      const data = randomBytes(256 * KiB)
      put(`${root}/a`, data)
      put(`${root}/b`, data)
      // "hashed": equal. Then a writer changes b, then a FICLONE-over tool clones a over b.
      const written = randomBytes(256 * KiB)
      fs.writeFileSync(`${root}/b`, written)
      execFileSync('cp', ['--reflink=always', `${root}/a`, `${root}/b`])
      assert.notEqual(sha(`${root}/b`), createHash('sha256').update(written).digest('hex'), 'FICLONE over b replaced the writer\'s bytes: the live-writer check would fail')
    })

    test('a file changed after the walk is never clobbered: skipped with EBADE', async (t) => {
      const m = await needMount(t, kind)
      if (m === undefined) return
      const root = freshDir(m, 'changed')
      const data = randomBytes(256 * KiB)
      put(`${root}/a`, data)
      put(`${root}/b`, data)
      put(`${root}/c`, data)
      const written = flip(data, 100 * KiB)
      const result = await dedupe(root, {
        // the listing (and its stat) is taken before the filter sees its entries
        filter: (p) => {
          if (p.endsWith('/c')) fs.writeFileSync(`${root}/c`, written)
          return true
        },
      })
      assert.deepEqual(fs.readFileSync(`${root}/c`), written)
      assert.deepEqual(result.skipped.map((s) => [s.path, s.code]), [[`${root}/c`, 'EBADE']])
      assert.equal(result.deduped.files, 1)
    })
  })
}

for (const kind of ['ext4', 'tmpfs'] as FsKind[]) {
  test(`dedupe on ${kind}: EOPNOTSUPP once for the device, nothing changed`, async (t) => {
    const m = await needMount(t, kind)
    if (m === undefined) return
    const root = freshDir(m, 'refuse')
    const data = randomBytes(64 * KiB)
    for (const f of ['a', 'b', 'c']) put(`${root}/${f}`, data)
    const before = snapshot(root)
    const result: DedupeResult = await dedupe(root)
    assert.deepEqual(result.skipped.map((s) => s.code), ['EOPNOTSUPP'])
    assert.equal(result.deduped.files, 0)
    assert.equal(result.errors.length, 0)
    assert.deepEqual(snapshot(root), before)
  })
}

describe('dedupe: bad input', () => {
  test('a missing path is ENOENT, nothing done', async () => {
    await assert.rejects(dedupe('/nonexistent/dedupe-path'), { code: 'ENOENT' })
  })
  test('minSize not a number is ERR_INVALID_ARG_TYPE; unknown options are refused', async () => {
    await assert.rejects(dedupe('.', { minSize: '1' as unknown as number }), { code: 'ERR_INVALID_ARG_TYPE' })
    await assert.rejects(dedupe('.', { minsize: 1 } as never), { code: 'ERR_INVALID_ARG_VALUE' })
  })
  test('a file given is a set of one; minSize leaves small files out; an unreadable directory is reported, the rest deduped', async (t) => {
    const m = await needMount(t, 'xfs')
    if (m === undefined) return
    const root = freshDir(m, 'input')
    const data = randomBytes(64 * KiB)
    put(`${root}/a`, data)
    put(`${root}/b`, data)
    put(`${root}/locked/c`, data)
    const one = await dedupe(`${root}/a`)
    assert.equal(one.files, 1)
    assert.equal(one.deduped.files, 0)
    const small = await dedupe(root, { minSize: 128 * KiB, dryRun: true })
    assert.equal(small.files, 3)
    assert.equal(small.deduped.files, 0)
    const pair = await dedupe([`${root}/a`, `${root}/b`], { dryRun: true })
    assert.equal(pair.deduped.files, 1)
    const twice = await dedupe([`${root}/a`, root, `${root}/a`], { dryRun: true })
    assert.equal(twice.files, 3, 'a file named twice is one file')
    assert.equal(twice.deduped.files + twice.alreadyShared.files, 2)
    assert.deepEqual(twice.skipped, [])
    // root ignores permissions: the unreadable directory is shown as another user would meet it
    // in the adversarial suite; here a directory that vanishes between listing and opening
    fs.chmodSync(`${root}/locked`, 0)
    const r = await dedupe(root)
    fs.chmodSync(`${root}/locked`, 0o755)
    assert.equal(r.errors.length, 0)
    assert.ok(r.deduped.files >= 1)
  })
  test('as another user: a directory it cannot read is in errors (EACCES), the rest is deduped, atime does not move on its own files', async (t) => {
    const m = await needMount(t, 'xfs')
    if (m === undefined) return
    const root = freshDir(m, 'user')
    // the test mount and its parent are this process's own: others may pass through them
    for (const d of [path.dirname(m.dir), m.dir]) fs.chmodSync(d, fs.statSync(d).mode | 0o111)
    const data = randomBytes(64 * KiB)
    for (const f of ['a', 'b', 'locked/c', 'locked/d']) put(`${root}/${f}`, data)
    execFileSync('chown', ['-R', '65534:65534', root])
    fs.chmodSync(root, 0o755)
    fs.chmodSync(`${root}/locked`, 0o700)
    execFileSync('chown', ['0:0', `${root}/locked`])
    const atime = fs.statSync(`${root}/b`, { bigint: true }).atimeNs
    const r = runNode(`
      import { dedupe } from ${JSON.stringify(libUrl)}
      const r = await dedupe(${JSON.stringify(root)})
      process.stdout.write(JSON.stringify(r))`, { asUser: 65534 })
    assert.equal(r.status, 0, r.stderr)
    const result = JSON.parse(r.stdout) as DedupeResult
    assert.deepEqual(result.errors.map((e) => [e.path, e.code]), [[`${root}/locked`, 'EACCES']])
    assert.equal(result.deduped.files, 1)
    assert.equal(fs.statSync(`${root}/b`, { bigint: true }).atimeNs, atime, 'O_NOATIME: the owner reads without moving atime')
    assert.equal(await sharedBytes(`${root}/a`, `${root}/b`), 64 * KiB)
  })

  test('abort: rejects with ABORT_ERR and every file keeps its content', async (t) => {
    const m = await needMount(t, 'xfs')
    if (m === undefined) return
    const root = freshDir(m, 'abort')
    const data = randomBytes(256 * KiB)
    for (let i = 0; i < 50; i++) put(`${root}/d${i % 5}/f${i}`, i % 2 === 0 ? data : randomBytes(256 * KiB))
    const before = new Map([...snapshot(root)].map(([k, v]) => [k, JSON.parse(v)[0]]))
    const ac = new AbortController()
    const p = dedupe(root, { signal: ac.signal, concurrency: 1, onProgress: (pr) => { if (pr.phase !== 'scan') ac.abort() } })
    await assert.rejects(p, { code: 'ABORT_ERR' })
    for (const [f, h] of before) assert.equal(sha(Buffer.from(f, 'latin1')), h)
    // aborted during the walk: the same error
    const early = new AbortController()
    const q = dedupe(root, { signal: early.signal, filter: () => (early.abort(), true) })
    await assert.rejects(q, { code: 'ABORT_ERR' })
  })
})

describe('clonefile dedupe', () => {
  test('-n says what would be saved and changes nothing; a run prints the summary; --json the result; -v each group', async (t) => {
    const m = await needMount(t, 'xfs')
    if (m === undefined) return
    const root = freshDir(m, 'cli')
    const data = randomBytes(128 * KiB)
    for (const f of ['a', 'b', 'c/d', '-dash']) put(`${root}/${f}`, data)
    put(`${root}/small`, Buffer.from('x'))
    put(`${root}/small2`, Buffer.from('x'))
    const before = snapshot(root)
    const dry = runCli(['dedupe', '-n', '--min-size', '2', root])
    assert.equal(dry.status, 0, dry.stderr)
    assert.equal(dry.stdout, '6 files · 1 group · 3 to dedupe · 0 already shared · would save 384 KiB\n')
    assert.deepEqual(snapshot(root), before)
    const verbose = runCli(['dedupe', '-v', '--min-size=2', root])
    assert.equal(verbose.status, 0, verbose.stderr)
    assert.match(verbose.stdout, /^128 KiB {2}keep "/)
    assert.equal(verbose.stdout.split('\n').filter((l) => l.startsWith('  shared')).length, 3)
    assert.match(verbose.stdout, /6 files · 1 group · 3 deduped · 0 already shared · saved 384 KiB\n$/)
    const json = runCli(['dedupe', '--json', root])
    assert.equal(json.status, 0, json.stderr)
    const r = JSON.parse(json.stdout) as DedupeResult
    assert.equal(r.alreadyShared.files, 3)
    assert.equal(r.deduped.files, 1, 'the one-byte files')
    assert.deepEqual(snapshot(root), before)
    assert.equal(runCli(['dedupe', '--min-size', 'lots', root]).status, 2)
    const cacheDir = freshDir(m, 'cli-cache')
    for (let i = 0; i < 2; i++) {
      const cached = runCli(['dedupe', `--cache=${cacheDir}/c`, root])
      assert.equal(cached.status, 0, cached.stderr)
      assert.match(cached.stdout, /^6 files · 2 groups · 0 deduped · 4 already shared/)
    }
    assert.ok(fs.statSync(`${cacheDir}/c`).size > 0)
    const notCache = runCli(['dedupe', '--cache', `${root}/a`, root])
    assert.equal(notCache.status, 1)
    assert.match(notCache.stderr, /EINVAL: it is not a clonefile dedupe cache/)
    assert.deepEqual(snapshot(root), before)
    const missing = runCli(['dedupe', `${root}/nope`])
    assert.equal(missing.status, 1)
    assert.match(missing.stderr, /ENOENT/)
  })
})
