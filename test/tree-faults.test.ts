// cloneTree under real faults: a full filesystem, an unreadable file, a read-only destination,
// EXDEV in mode 'always', an abort at any point, a process killed mid-tree. After each,
// nothing at dst (atomic mode) and the source unchanged.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { cloneTree, cloneTreeSync } from '../src/index.js'
import type { CloneTreeOptions, TreeResult } from '../src/index.js'
import { freshDir, needMount, RO_DATA } from './helpers/mounts.js'
import type { TestMount } from './helpers/mounts.js'
import { buildSimpleTree, buildWideTree, compareSnapshots, hashTree, run, setDistinctTimes, snapshot, tempSiblings } from './helpers/trees.js'

type Variant = 'cloneTree' | 'cloneTreeSync'
const variants: Variant[] = ['cloneTree', 'cloneTreeSync']
const INDEX_JS = fileURLToPath(new URL('../src/index.js', import.meta.url))
const MiB = 1024 * 1024

function runTree(variant: Variant, src: string, dst: string, options?: CloneTreeOptions): Promise<TreeResult> {
  if (variant === 'cloneTree') return cloneTree(src, dst, options)
  return new Promise((resolve) => resolve(cloneTreeSync(src, dst, options)))
}

function exists(p: string): boolean {
  return fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined
}

function assertNothingAt(dst: string): void {
  assert.equal(exists(dst), false, `${dst} should not exist`)
  assert.deepEqual(tempSiblings(path.dirname(dst)), [], 'no temporary tree left beside dst')
}

/** Free bytes now, after a sync. */
function freeBytes(dir: string): number {
  run('sync', ['-f', dir])
  const st = fs.statfsSync(dir)
  return st.bavail * st.bsize
}

/**
 * Free bytes once they reach `atLeast` or stop growing: xfs frees the blocks of removed inodes
 * in the background (deferred inode inactivation), so they come back over a moment.
 */
async function settledFree(dir: string, atLeast = Infinity): Promise<number> {
  let last = freeBytes(dir)
  for (let i = 0; i < 50 && last < atLeast; i++) {
    await new Promise((r) => setTimeout(r, 100))
    const now = freeBytes(dir)
    if (now === last && atLeast === Infinity) break
    last = now
  }
  return last
}

describe('cloneTree faults: ENOSPC', () => {
  let big: { src: string; hash: string } | undefined

  /** A source on xfs with 8 MiB more data than xfs-tiny has free. */
  async function bigSource(m: TestMount, tiny: TestMount) {
    if (big !== undefined) return big
    const src = path.join(freshDir(m), 'src')
    const want = (await settledFree(tiny.dir)) + 8 * MiB
    for (let d = 0, total = 0; total < want; d++) {
      fs.mkdirSync(path.join(src, `d${d}`), { recursive: true })
      for (let f = 0; f < 4 && total < want; f++, total += MiB) fs.writeFileSync(path.join(src, `d${d}`, `f${f}`), randomBytes(MiB))
    }
    big = { src, hash: hashTree(src) }
    return big
  }

  for (const variant of variants) {
    test(`${variant}: a copy (xfs -> xfs-tiny) that runs out of space is ENOSPC, leaves nothing, frees what it took`, async (t) => {
      const m = await needMount(t, 'xfs')
      const tiny = await needMount(t, 'xfs-tiny')
      if (!m || !tiny) return
      const { src, hash } = await bigSource(m, tiny)
      const free = await settledFree(tiny.dir)
      const dst = path.join(freshDir(tiny), 'dst')
      await assert.rejects(runTree(variant, src, dst), (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, 'ENOSPC', e.message)
        assert.equal(e.errno, -28)
        assert.ok(!e.message.includes('.clonefile-tmp-'), `the message names dst, not the temporary tree: ${e.message}`)
        return true
      })
      assertNothingAt(dst)
      assert.ok((await settledFree(tiny.dir, free - 2 * MiB)) >= free - 2 * MiB, 'the space is given back')
      assert.equal(hashTree(src), hash, 'the source is unchanged')
    })
  }

  test('a clone within a full xfs-tiny is ENOSPC and leaves nothing', async (t) => {
    const tiny = await needMount(t, 'xfs-tiny')
    if (!tiny) return
    const base = freshDir(tiny)
    const src = path.join(base, 'src')
    buildSimpleTree(src)
    const hash = hashTree(src)
    const filler = path.join(base, 'filler')
    try {
      // Fill it: big writes first, then block by block until not even one block is left.
      const fd = fs.openSync(filler, 'w')
      for (const size of [MiB, 4096, 512]) {
        const chunk = randomBytes(size)
        try {
          for (;;) fs.writeSync(fd, chunk)
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e
        }
      }
      fs.closeSync(fd)
      for (const variant of variants) {
        const dst = path.join(base, `dst-${variant}`)
        await assert.rejects(runTree(variant, src, dst), { code: 'ENOSPC' })
        assertNothingAt(dst)
      }
      assert.equal(hashTree(src), hash)
    } finally {
      fs.rmSync(filler, { force: true })
    }
  })
})

describe('cloneTree faults: permissions and read-only', () => {
  /** A tree readable by everyone except one file (or directory) 6 levels down. */
  function unreadableSetup(m: TestMount, what: 'file' | 'directory') {
    // The mounts live under a 0700 directory of root's: let others through it.
    fs.chmodSync(path.dirname(m.dir), 0o711)
    const base = freshDir(m)
    fs.chmodSync(base, 0o755)
    const src = path.join(base, 'src')
    let dir = src
    fs.mkdirSync(dir)
    for (let i = 0; i < 6; i++) {
      fs.writeFileSync(path.join(dir, `ok-${i}`), randomBytes(5000))
      dir = path.join(dir, `level-${i}`)
      fs.mkdirSync(dir)
    }
    fs.writeFileSync(path.join(dir, 'after'), 'readable')
    const secret = path.join(dir, 'secret')
    if (what === 'file') fs.writeFileSync(secret, 'root only', { mode: 0o600 })
    else {
      fs.mkdirSync(secret, { mode: 0o700 })
      fs.writeFileSync(path.join(secret, 'inside'), 'x')
    }
    setDistinctTimes(src)
    const out = path.join(base, 'out')
    fs.mkdirSync(out)
    fs.chmodSync(out, 0o777)
    return { src, secret, out, dst: path.join(out, 'dst'), hash: hashTree(src) }
  }

  /** Runs cloneTree (or the sync twin) as nobody (uid 65534) in a child process. */
  function asNobody(variant: Variant, src: string, dst: string, options: CloneTreeOptions = {}): Record<string, unknown> {
    const script = `
      import * as lib from ${JSON.stringify(INDEX_JS)}
      const [src, dst, variant, options] = JSON.parse(process.argv[1])
      try {
        const result = variant === 'cloneTree' ? await lib.cloneTree(src, dst, options) : lib.cloneTreeSync(src, dst, options)
        console.log(JSON.stringify({ result }))
      } catch (e) {
        console.log(JSON.stringify({ error: { code: e.code, path: e.path, dest: e.dest, syscall: e.syscall, message: e.message } }))
      }`
    const r = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script, JSON.stringify([src, dst, variant, options])],
      { encoding: 'utf8' },
    )
    assert.equal(r.status, 0, r.stderr)
    return JSON.parse(r.stdout) as Record<string, unknown>
  }

  for (const variant of variants) {
    for (const what of ['file', 'directory'] as const) {
      test(`${variant}: an unreadable ${what} deep inside is EACCES (as nobody), nothing at dst`, async (t) => {
        const m = await needMount(t, 'xfs')
        if (!m) return
        const s = unreadableSetup(m, what)
        const out = asNobody(variant, s.src, s.dst)
        const error = out.error as { code: string; path: string; syscall: string } | undefined
        assert.ok(error, `it should fail: ${JSON.stringify(out)}`)
        assert.equal(error.code, 'EACCES')
        assert.equal(error.path, s.secret)
        assertNothingAt(s.dst)
        assert.equal(hashTree(s.src), s.hash)
      })
    }

    test(`${variant}: continueOnError (as nobody) reports the unreadable file and clones the rest`, async (t) => {
      const m = await needMount(t, 'xfs')
      if (!m) return
      const s = unreadableSetup(m, 'file')
      const out = asNobody(variant, s.src, s.dst, { continueOnError: true })
      const result = out.result as TreeResult | undefined
      assert.ok(result, `it should resolve: ${JSON.stringify(out)}`)
      assert.deepEqual(result.errors.map((e) => [e.path, e.code]), [[s.secret, 'EACCES']])
      const rel = path.relative(s.src, s.secret)
      // nobody cannot give the clone root's owner: owners are left out of the comparison.
      assert.deepEqual(
        compareSnapshots(snapshot(s.src).filter((e) => e.path !== rel), snapshot(s.dst), { ignore: ['uid', 'gid'] }),
        [],
      )
      assert.equal(hashTree(s.src), s.hash)
    })

    test(`${variant}: a read-only destination is EROFS, nothing written`, async (t) => {
      const m = await needMount(t, 'xfs')
      const ro = await needMount(t, 'xfs-ro')
      if (!m || !ro) return
      const src = path.join(freshDir(m), 'src')
      buildSimpleTree(src)
      const hash = hashTree(src)
      const dst = path.join(ro.dir, 'new-tree')
      await assert.rejects(runTree(variant, src, dst), { code: 'EROFS' })
      assertNothingAt(dst)
      const roHash = hashTree(path.join(ro.dir, path.dirname(RO_DATA)))
      for (const overwrite of ['skip', 'replace'] as const) {
        await assert.rejects(runTree(variant, src, path.join(ro.dir, path.dirname(RO_DATA)), { overwrite }), { code: 'EROFS' })
      }
      assert.equal(hashTree(path.join(ro.dir, path.dirname(RO_DATA))), roHash)
      assert.equal(hashTree(src), hash)
    })

    test(`${variant}: EXDEV in mode 'always' (xfs -> btrfs), nothing at dst, the error names src and dst`, async (t) => {
      const m = await needMount(t, 'xfs')
      const b = await needMount(t, 'btrfs')
      if (!m || !b) return
      const src = path.join(freshDir(m), 'src')
      buildSimpleTree(src)
      const hash = hashTree(src)
      const dst = path.join(freshDir(b), 'dst')
      await assert.rejects(runTree(variant, src, dst, { mode: 'always' }), (e: NodeJS.ErrnoException & { dest?: string }) => {
        assert.equal(e.code, 'EXDEV')
        assert.equal(e.syscall, 'ioctl_ficlone')
        assert.ok(e.path?.startsWith(src + path.sep), `path ${e.path}`)
        assert.ok(e.dest?.startsWith(dst + path.sep), `dest ${e.dest}`)
        return true
      })
      assertNothingAt(dst)
      assert.equal(hashTree(src), hash)
    })
  }
})

describe('cloneTree faults: abort', () => {
  // The code is checked on its own below, so that these tests tell an ignored abort apart.
  const isAbort = (e: Error) => {
    assert.equal(e.name, 'AbortError', e.message)
    return true
  }
  /** What Node's own fs functions reject with when aborted (fs.promises.readFile, stream.pipeline). */
  const isNodeAbortError = (e: Error & { code?: unknown }) => {
    assert.equal(e.name, 'AbortError')
    assert.equal(e.code, 'ABORT_ERR')
    return true
  }

  async function nested(t: TestContext) {
    const m = await needMount(t, 'xfs')
    if (!m) return undefined
    const base = freshDir(m)
    const src = path.join(base, 'src')
    buildWideTree(src, 12, 30, 2000)
    buildSimpleTree(path.join(src, 'simple'))
    return { base, src, hash: hashTree(src), entries: snapshot(src).length - 1 }
  }

  for (const variant of variants) {
    test(`${variant}: an already aborted signal writes nothing`, async (t) => {
      const s = await nested(t)
      if (!s) return
      const dst = path.join(s.base, 'dst')
      await assert.rejects(runTree(variant, s.src, dst, { signal: AbortSignal.abort() }), isAbort)
      assertNothingAt(dst)
    })

    test(`${variant}: an abort rejects with Node's AbortError, code 'ABORT_ERR'`, async (t) => {
      const s = await nested(t)
      if (!s) return
      const dst = path.join(s.base, 'dst')
      await assert.rejects(runTree(variant, s.src, dst, { signal: AbortSignal.abort() }), isNodeAbortError)
      const ac = new AbortController()
      await assert.rejects(runTree(variant, s.src, dst, { signal: ac.signal, filter: () => (ac.abort(), true) }), isNodeAbortError)
      assertNothingAt(dst)
    })

    test(`${variant}: abort at random points of the walk (from filter) leaves nothing`, async (t) => {
      const s = await nested(t)
      if (!s) return
      // The first entry, the last one, and random ones between.
      const points = [1, s.entries, ...Array.from({ length: 4 }, () => randomInt(1, s.entries))]
      for (const [i, point] of points.entries()) {
        const ac = new AbortController()
        let seen = 0
        const dst = path.join(s.base, `dst-${i}`)
        const filter = () => {
          if (++seen === point) ac.abort()
          return true
        }
        await assert.rejects(runTree(variant, s.src, dst, { signal: ac.signal, filter }), (e: Error) => isAbort(e), `abort at entry ${point} of ${s.entries}`)
        assertNothingAt(dst)
      }
      assert.equal(hashTree(s.src), s.hash)
    })

    test(`${variant}: abort from onProgress in one flat directory leaves nothing`, async (t) => {
      const m = await needMount(t, 'xfs')
      if (!m) return
      const base = freshDir(m)
      const src = path.join(base, 'src')
      buildWideTree(src, 1, 1000, 100)
      const flat = path.join(src, 'dir-0')
      const ac = new AbortController()
      const dst = path.join(base, 'dst')
      let calls = 0
      await assert.rejects(
        runTree(variant, flat, dst, { signal: ac.signal, onProgress: () => (calls++, ac.abort()) }),
        (e: Error) => isAbort(e),
      )
      assert.ok(calls >= 1)
      assertNothingAt(dst)
    })
  }

  test('cloneTree: abort from a timer at random times: AbortError and nothing, or done before the abort', async (t) => {
    const s = await nested(t)
    if (!s) return
    const t0 = performance.now()
    await cloneTree(s.src, path.join(s.base, 'timing'))
    const took = performance.now() - t0
    for (let i = 0; i < 6; i++) {
      const ac = new AbortController()
      const dst = path.join(s.base, `dst-${i}`)
      const delay = Math.random() * took
      const timer = setTimeout(() => ac.abort(), delay)
      const outcome = await cloneTree(s.src, dst, { signal: ac.signal }).then(
        () => 'resolved',
        (e: Error) => (isAbort(e), 'aborted'),
      )
      clearTimeout(timer)
      // A timer cannot fire between the last step and the settling of the promise.
      if (outcome === 'resolved') assert.equal(ac.signal.aborted, false, `resolved although aborted after ${delay.toFixed(1)} ms`)
      else assertNothingAt(dst)
    }
    assert.equal(hashTree(s.src), s.hash)
  })
})

const BINDING_JS = fileURLToPath(new URL('../src/binding.js', import.meta.url))

/** A child process that creates `file` and holds its lock (cf_lock) until killed. */
export function holdLock(file: string, argv0: string[] = []): { child: ReturnType<typeof spawn>; locked: Promise<void> } {
  const script = `
    const { CWD, requireNative } = await import(${JSON.stringify(BINDING_JS)})
    requireNative('test').lock(CWD, process.argv[1], true)
    console.log('locked')
    setInterval(() => {}, 1000)`
  const child = spawn(argv0[0] ?? process.execPath, [...argv0.slice(1), ...(argv0.length ? [process.execPath] : []), '--input-type=module', '-e', script, file], { stdio: ['ignore', 'pipe', 'inherit'] })
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', () => resolve())
    child.on('exit', (code) => reject(new Error(`the lock holder exited (${code})`)))
  })
  return { child, locked }
}

describe('cloneTree faults: kill -9 mid-tree', () => {
  test('a killed run leaves only its temporary tree, which the next run removes', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const base = freshDir(m)
    const src = path.join(base, 'src')
    buildWideTree(src, 40, 50, 4096)
    const hash = hashTree(src)
    const dst = path.join(base, 'dst')
    // The child's filter sleeps a little per entry: the run takes seconds, not milliseconds.
    const script = `
      import { cloneTree } from ${JSON.stringify(INDEX_JS)}
      const sleep = new Int32Array(new SharedArrayBuffer(4))
      await cloneTree(process.argv[1], process.argv[2], { filter: () => (Atomics.wait(sleep, 0, 0, 2), true) })
      console.log('finished')`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, src, dst], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
    const deadline = Date.now() + 20_000
    let temp: string[] = []
    const trees = () => tempSiblings(base).filter((n) => !n.endsWith('.lock'))
    while (Date.now() < deadline && (temp = trees()).length === 0) await new Promise((r) => setTimeout(r, 5))
    assert.equal(temp.length, 1, 'the child started building its temporary tree')
    assert.match(temp[0] ?? '', /^\.clonefile-tmp-.*-dst$/)
    // Let it get some way into the tree.
    await new Promise((r) => setTimeout(r, 300))
    child.kill('SIGKILL')
    assert.equal(await exited, 'SIGKILL')
    assert.equal(stdout, '', 'killed before it finished')
    assert.equal(exists(dst), false, 'nothing at dst')
    assert.deepEqual(trees(), temp, 'the leftover is still there')
    assert.deepEqual(tempSiblings(base).sort(), [temp[0], `${temp[0]}.lock`].sort(), 'with its lock file, whose lock died with the run')
    assert.ok(fs.readdirSync(path.join(base, temp[0] ?? '')).length > 0, 'the leftover holds part of the tree')
    assert.equal(hashTree(src), hash)

    // A leftover whose run still holds its lock is not touched, nor one too young to judge
    // that has no lock file yet.
    const liveTemp = path.join(base, '.clonefile-tmp-live-1-dst')
    const youngTemp = path.join(base, '.clonefile-tmp-young-1-dst')
    fs.mkdirSync(liveTemp)
    fs.mkdirSync(youngTemp)
    const alive = holdLock(`${liveTemp}.lock`)
    try {
      await alive.locked
      const result = await cloneTree(src, dst)
      assert.equal(result.files, 2000)
      assert.deepEqual(tempSiblings(base).sort(), [path.basename(liveTemp), `${path.basename(liveTemp)}.lock`, path.basename(youngTemp)].sort(), 'the dead run\'s leftover is gone, the live and the unlocked young ones kept')
      assert.deepEqual(compareSnapshots(snapshot(src), snapshot(dst)), [])
    } finally {
      alive.child.kill('SIGKILL')
      for (const p of [liveTemp, `${liveTemp}.lock`, youngTemp]) fs.rmSync(p, { recursive: true, force: true })
    }
  })
})

describe('cloneTree faults: descriptors the walk closes', () => {
  // The walk keeps at most 256 directories open and closes idle ones past that. A directory
  // whose entries wait for an async filter's answers (and the others of its scan behind it)
  // must stay open until they are planned; before, they could be closed meanwhile and their
  // entries' operations named a closed descriptor (EBADF), or one since given to another
  // directory. 2,000 directories; every answer after a timer, every 100th 5 ms late.
  test('an async filter that answers late, over more directories than stay open: every entry made', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m)
    const src = path.join(dir, 'src')
    for (let i = 0; i < 40; i++) {
      for (let j = 0; j < 50; j++) {
        fs.mkdirSync(path.join(src, `a${i}`, `b${j}`), { recursive: true })
        fs.writeFileSync(path.join(src, `a${i}`, `b${j}`, 'f'), `${i}.${j}`)
      }
    }
    for (let round = 0; round < 3; round++) {
      const dst = path.join(dir, `dst${round}`)
      let n = 0
      const r = await cloneTree(src, dst, {
        filter: async () => {
          await new Promise((resolve) => setTimeout(resolve, n++ % 100 === 0 ? 5 : 0))
          return true
        },
      })
      assert.equal(r.files, 2000)
      assert.deepEqual(r.errors ?? [], [])
      assert.equal(fs.readFileSync(path.join(dst, 'a39', 'b49', 'f'), 'utf8'), '39.49')
      fs.rmSync(dst, { recursive: true })
    }
  })
})
