// cloneTree / cloneTreeSync against `cp -a --reflink=always`, entry by entry, on real
// filesystems; then overwrite modes, refusals and options.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import { cloneTree, cloneTreeSync } from '../src/index.js'
import type { CloneTreeOptions, TreeEntry, TreeProgress, TreeResult } from '../src/index.js'
import { extentsOfMany, sharedBytes } from './helpers/fiemap.js'
import { freshDir, needMount } from './helpers/mounts.js'
import {
  buildNastyTree, buildSimpleTree, buildWideTree, compareSnapshots, cpA, dataBytes, dataFiles, expectedCounts,
  hashTree, LONG_ASCII, mkfifo, run, setDistinctTimes, setXattr, sharingProblems, snapshot, tempSiblings,
} from './helpers/trees.js'
import type { Entry } from './helpers/trees.js'

type Variant = 'cloneTree' | 'cloneTreeSync'
const variants: Variant[] = ['cloneTree', 'cloneTreeSync']

/** Either driver, as a promise, so that one test body covers both. */
function runTree(variant: Variant, src: string, dst: string, options?: CloneTreeOptions): Promise<TreeResult> {
  if (variant === 'cloneTree') return cloneTree(src, dst, options)
  return new Promise((resolve) => resolve(cloneTreeSync(src, dst, options)))
}

const noSockets = (e: Entry) => e.type === 'socket'

function exists(p: string): boolean {
  return fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined
}

/** Nothing at dst and no temporary tree beside it. */
function assertNothingAt(dst: string): void {
  assert.equal(exists(dst), false, `${dst} should not exist`)
  assert.deepEqual(tempSiblings(path.dirname(dst)), [], 'no temporary tree left beside dst')
}

interface Fixture {
  base: string
  src: string
  /** the cp -a copy */
  cp: string
  before: Entry[]
  cpSnap: Entry[]
  sockets: string[]
}

let nasty: Promise<Fixture> | undefined

/** The nasty tree on xfs and its cp -a copy, built once for the tests that only read them. */
async function nastyFixture(t: TestContext): Promise<Fixture | undefined> {
  const m = await needMount(t, 'xfs')
  if (m === undefined) return undefined
  nasty ??= (async () => {
    const base = freshDir(m, 'nasty')
    const src = path.join(base, 'src')
    const { sockets } = await buildNastyTree(src)
    const before = snapshot(src)
    const cp = path.join(base, 'cp')
    cpA(src, cp)
    return { base, src, cp, before, cpSnap: snapshot(cp), sockets }
  })()
  return nasty
}

describe('cloneTree against cp -a --reflink=always', () => {
  test('cp -a reproduces the nasty tree exactly (the oracle is sound)', async (t) => {
    const f = await nastyFixture(t)
    if (!f) return
    assert.ok(f.before.length > 150, 'the tree has its entries')
    assert.deepEqual(compareSnapshots(f.before, f.cpSnap), [])
    assert.deepEqual(sharingProblems(f.src, f.cp, f.before), [])
  })

  for (const variant of variants) {
    test(`${variant}: every entry as cp -a makes it (type, content, mode, owner, ns times, targets, links, xattrs), blocks shared`, async (t) => {
      const f = await nastyFixture(t)
      if (!f) return
      const dst = path.join(f.base, `clone-${variant}`)
      const result = await runTree(variant, f.src, dst)
      const after = snapshot(dst)
      assert.deepEqual(compareSnapshots(f.cpSnap, after, { exclude: noSockets }), [])
      assert.deepEqual(compareSnapshots(f.before, snapshot(f.src)), [], 'the source is unchanged, atimes included')
      assert.deepEqual(sharingProblems(f.src, dst, f.before), [])
      assert.deepEqual(
        result.skipped.map((s) => s.path).sort(),
        f.sockets.map((s) => path.join(f.src, s)).sort(),
        'sockets, and only they, are reported skipped',
      )
      for (const s of result.skipped) assert.match(s.reason, /socket/)
      for (const s of f.sockets) assert.equal(exists(path.join(dst, s)), false)
      assert.deepEqual(result.errors, [])
    })
  }

  for (const variant of variants) {
    test(`${variant}: xfs -> btrfs in 'auto' copies the nasty tree as cp -a copies it, holes kept`, async (t) => {
      const f = await nastyFixture(t)
      const b = await needMount(t, 'btrfs')
      if (!f || !b) return
      const base = freshDir(b)
      const cp = path.join(base, 'cp')
      run('cp', ['-a', '--', f.src, cp])
      const dst = path.join(base, 'clone')
      const result = await runTree(variant, f.src, dst)
      // Xattrs of symlinks and FIFOs, and hard-linked symlinks and FIFOs, have tests of their own.
      const known = new Set(['fifo', 'links/relative', 'hard/sym-1', 'hard/sym-2', 'hard/fifo-1', 'hard/fifo-2'])
      const exclude = (e: Entry) => e.type === 'socket' || known.has(e.path)
      // XFS's own ACL xattrs (trusted.SGI_ACL_*) have a test of their own too.
      const got = snapshot(dst).map((e) => ({ ...e, xattrs: withoutSgi(e.xattrs) }))
      assert.deepEqual(compareSnapshots(snapshot(cp), got, { exclude }), [])
      assert.deepEqual(result.fallbacks, { EXDEV: result.files })
      assert.equal(result.copied.files, result.files)
      for (const sparse of ['sparse', 'hole-only']) {
        const st = fs.statSync(path.join(dst, sparse))
        assert.ok(st.blocks * 512 <= fs.statSync(path.join(cp, sparse)).blocks * 512 + 64 * 1024, `${sparse}: holes kept`)
        assert.ok(st.blocks * 512 < st.size / 2, `${sparse}: ${st.blocks * 512} bytes allocated of ${st.size}`)
      }
    })
  }

  test('cloneTreeSync makes the same tree, and the same result, as cloneTree', async (t) => {
    const f = await nastyFixture(t)
    if (!f) return
    const a = path.join(f.base, 'same-async')
    const s = path.join(f.base, 'same-sync')
    const ra = await cloneTree(f.src, a)
    const rs = cloneTreeSync(f.src, s)
    assert.deepEqual(compareSnapshots(snapshot(a), snapshot(s)), [])
    const norm = (r: TreeResult) => ({ ...r, skipped: [...r.skipped].sort((x, y) => (x.path < y.path ? -1 : 1)) })
    assert.deepEqual(norm(rs), norm(ra))
  })

  test('TreeResult counts files, directories, symlinks, hard links and FIFOs of the tree', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const base = freshDir(m)
    const src = path.join(base, 'src')
    const { sockets } = await buildNastyTree(src, { linkedSpecials: false, depth: 20 })
    const entries = snapshot(src)
    const want = expectedCounts(entries)
    const result = await cloneTree(src, path.join(base, 'dst'))
    assert.deepEqual(
      { files: result.files, directories: result.directories, symlinks: result.symlinks, hardLinks: result.hardLinks, specials: result.specials },
      want,
    )
    assert.deepEqual(result.cloned, { files: want.files, bytes: dataBytes(entries) })
    assert.deepEqual(result.copied, { files: 0, bytes: 0 })
    assert.deepEqual(result.fallbacks, {})
    assert.equal(result.skipped.length, sockets.length)
  })
})

const withoutSgi = (x: Record<string, string>) => Object.fromEntries(Object.entries(x).filter(([k]) => !k.startsWith('trusted.SGI_')))

describe('cloneTree: what cp -a keeps that is easy to lose', () => {
  test('copied off xfs, ACLs arrive as POSIX ACLs only, without XFS\'s trusted.SGI_ACL_* (cp -a skips them)', async (t) => {
    const m = await needMount(t, 'xfs')
    const b = await needMount(t, 'btrfs')
    if (!m || !b) return
    const src = path.join(freshDir(m), 'src')
    fs.mkdirSync(path.join(src, 'dir'), { recursive: true })
    fs.writeFileSync(path.join(src, 'file'), 'x')
    run('setfacl', ['-m', 'u:1000:rw-', path.join(src, 'file')])
    run('setfacl', ['-d', '-m', 'u:1000:r-x', path.join(src, 'dir')])
    setDistinctTimes(src)
    const before = snapshot(src)
    assert.ok('trusted.SGI_ACL_FILE' in (before.find((e) => e.path === 'file')?.xattrs ?? {}), 'xfs lists its raw ACL to root')
    const base = freshDir(b)
    run('cp', ['-a', '--', src, path.join(base, 'cp')])
    await cloneTree(src, path.join(base, 'dst'))
    const cp = snapshot(path.join(base, 'cp'))
    assert.deepEqual(cp.map((e) => e.xattrs), before.map((e) => withoutSgi(e.xattrs)), 'cp -a: the POSIX ACLs, nothing else')
    assert.deepEqual(compareSnapshots(cp, snapshot(path.join(base, 'dst'))), [])
  })

  test('xattrs of symlinks and FIFOs are kept (cp -a keeps them)', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const base = freshDir(m)
    const src = path.join(base, 'src')
    fs.mkdirSync(src)
    fs.symlinkSync('target', path.join(src, 'link'))
    mkfifo(path.join(src, 'fifo'))
    setXattr(path.join(src, 'link'), 'trusted.on-link', 'L')
    setXattr(path.join(src, 'fifo'), 'trusted.on-fifo', 'F')
    setDistinctTimes(src)
    cpA(src, path.join(base, 'cp'))
    await cloneTree(src, path.join(base, 'dst'))
    const cp = snapshot(path.join(base, 'cp'))
    assert.equal(cp.find((e) => e.path === 'link')?.xattrs['trusted.on-link'], Buffer.from('L').toString('hex'), 'cp keeps it')
    assert.deepEqual(compareSnapshots(cp, snapshot(path.join(base, 'dst'))), [])
  })

  test('hard-linked symlinks and FIFOs stay hard links (cp -a keeps them)', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const base = freshDir(m)
    const src = path.join(base, 'src')
    fs.mkdirSync(path.join(src, 'a'), { recursive: true })
    fs.symlinkSync('somewhere', path.join(src, 'sym'))
    fs.linkSync(path.join(src, 'sym'), path.join(src, 'a', 'sym-too'))
    mkfifo(path.join(src, 'fifo'))
    fs.linkSync(path.join(src, 'fifo'), path.join(src, 'a', 'fifo-too'))
    setDistinctTimes(src)
    cpA(src, path.join(base, 'cp'))
    const result = await cloneTree(src, path.join(base, 'dst'))
    const cp = snapshot(path.join(base, 'cp'))
    assert.equal(cp.find((e) => e.path === 'a/sym-too')?.inodeGroup, 'a/sym-too', 'cp keeps the group')
    assert.deepEqual(compareSnapshots(cp, snapshot(path.join(base, 'dst'))), [])
    assert.equal(result.hardLinks, 2)
  })

  test('directory atimes are the source\'s as they were before the clone read the directory (as cp -a)', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const base = freshDir(m)
    // Fresh directories: atime older than mtime, so under relatime the first readdir moves it.
    const make = (root: string) => {
      fs.mkdirSync(path.join(root, 'sub'), { recursive: true })
      fs.writeFileSync(path.join(root, 'sub', 'f'), 'f')
      fs.writeFileSync(path.join(root, 'g'), 'g')
    }
    const times = (p: string) => {
      const st = fs.lstatSync(p, { bigint: true })
      return { atimeNs: st.atimeNs, mtimeNs: st.mtimeNs }
    }
    for (const who of ['cp', 'cloneTree', 'cloneTreeSync'] as const) {
      const src = path.join(base, `src-${who}`)
      const dst = path.join(base, `dst-${who}`)
      make(src)
      const before = { root: times(src), sub: times(path.join(src, 'sub')) }
      if (who === 'cp') cpA(src, dst)
      else await runTree(who, src, dst)
      // cp's readdir moves the source's atime (relatime); the clone reads with O_NOATIME.
      if (who === 'cp') assert.notDeepEqual(times(src), before.root, 'reading the source moved its atime (relatime)')
      else assert.deepEqual(times(src), before.root, `${who} left the source's atime alone`)
      assert.deepEqual({ root: times(dst), sub: times(path.join(dst, 'sub')) }, before, `${who}: directory times`)
    }
  })

  test('a destination whose name is 255 bytes long', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const base = freshDir(m)
    const src = path.join(base, 'src')
    buildSimpleTree(src)
    const cp = path.join(base, 'cp', LONG_ASCII)
    fs.mkdirSync(path.dirname(cp))
    cpA(src, cp)
    for (const variant of variants) {
      const dst = path.join(base, variant, LONG_ASCII)
      fs.mkdirSync(path.dirname(dst))
      await runTree(variant, src, dst)
      assert.deepEqual(compareSnapshots(snapshot(cp), snapshot(dst)), [])
    }
  })
})

describe('cloneTree: overwrite', () => {
  async function setup(t: TestContext) {
    const m = await needMount(t, 'xfs')
    if (!m) return undefined
    const base = freshDir(m)
    const src = path.join(base, 'src')
    buildSimpleTree(src)
    const dst = path.join(base, 'dst')
    fs.mkdirSync(path.join(dst, 'sub'), { recursive: true })
    fs.writeFileSync(path.join(dst, 'a.txt'), 'old a\n')
    fs.writeFileSync(path.join(dst, 'only-in-dst'), 'mine\n')
    fs.symlinkSync('elsewhere', path.join(dst, 'link'))
    return { base, src, dst }
  }

  for (const variant of variants) {
    test(`${variant}: 'error' (the default) refuses an existing dst and leaves it alone`, async (t) => {
      const s = await setup(t)
      if (!s) return
      const before = hashTree(s.dst)
      await assert.rejects(runTree(variant, s.src, s.dst), { code: 'EEXIST' })
      await assert.rejects(runTree(variant, s.src, s.dst, { overwrite: 'error' }), { code: 'EEXIST' })
      assert.equal(hashTree(s.dst), before)
      assert.deepEqual(tempSiblings(s.base), [])
      const file = path.join(s.base, 'a-file')
      fs.writeFileSync(file, 'x')
      await assert.rejects(runTree(variant, s.src, file), { code: 'EEXIST' })
      assert.equal(fs.readFileSync(file, 'utf8'), 'x')
    })

    test(`${variant}: 'skip' keeps existing entries, adds the rest, reports what it kept`, async (t) => {
      const s = await setup(t)
      if (!s) return
      const result = await runTree(variant, s.src, s.dst, { overwrite: 'skip' })
      assert.equal(fs.readFileSync(path.join(s.dst, 'a.txt'), 'utf8'), 'old a\n')
      assert.equal(fs.readlinkSync(path.join(s.dst, 'link')), 'elsewhere')
      assert.equal(fs.readFileSync(path.join(s.dst, 'only-in-dst'), 'utf8'), 'mine\n')
      const kept = new Set(['a.txt', 'link'])
      const src = snapshot(s.src).filter((e) => !kept.has(e.path) && e.path !== '')
      const dst = snapshot(s.dst).filter((e) => !kept.has(e.path) && e.path !== 'only-in-dst' && e.path !== '')
      assert.deepEqual(compareSnapshots(src, dst), [])
      assert.deepEqual(result.skipped.map((x) => path.relative(s.src, x.path)).sort(), [...kept].sort())
      for (const x of result.skipped) assert.match(x.reason, /^EEXIST/)
    })

    test(`${variant}: 'replace' replaces files and symlinks, keeps what only dst has`, async (t) => {
      const s = await setup(t)
      if (!s) return
      const result = await runTree(variant, s.src, s.dst, { overwrite: 'replace' })
      assert.equal(fs.readFileSync(path.join(s.dst, 'only-in-dst'), 'utf8'), 'mine\n')
      const src = snapshot(s.src)
      assert.deepEqual(compareSnapshots(src, snapshot(s.dst).filter((e) => e.path !== 'only-in-dst')), [])
      assert.deepEqual(result.skipped, [])
      assert.deepEqual(sharingProblems(s.src, s.dst, src), [])
    })

    test(`${variant}: 'replace' replaces hard-linked files and FIFOs too`, async (t) => {
      const s = await setup(t)
      if (!s) return
      fs.mkdirSync(path.join(s.dst, 'sub', 'deeper'))
      fs.writeFileSync(path.join(s.dst, 'sub', 'h1'), 'old h1')
      fs.writeFileSync(path.join(s.dst, 'sub', 'deeper', 'h2'), 'old h2')
      fs.writeFileSync(path.join(s.dst, 'sub', 'fifo'), 'a file where src has a FIFO')
      const result = await runTree(variant, s.src, s.dst, { overwrite: 'replace' })
      assert.deepEqual(compareSnapshots(snapshot(s.src), snapshot(s.dst).filter((e) => e.path !== 'only-in-dst')), [])
      assert.deepEqual(result.skipped, [])
    })

    test(`${variant}: 'skip' and 'replace' refuse a dst that is not a directory`, async (t) => {
      const s = await setup(t)
      if (!s) return
      const file = path.join(s.base, 'a-file')
      fs.writeFileSync(file, 'x')
      for (const overwrite of ['skip', 'replace'] as const) {
        await assert.rejects(runTree(variant, s.src, file, { overwrite }), { code: 'ENOTDIR' })
        assert.equal(fs.readFileSync(file, 'utf8'), 'x')
      }
    })

    test(`${variant}: 'replace' works for 255-byte names`, async (t) => {
      const m = await needMount(t, 'xfs')
      if (!m) return
      const base = freshDir(m)
      const src = path.join(base, 'src')
      fs.mkdirSync(src)
      fs.writeFileSync(path.join(src, LONG_ASCII), 'new')
      fs.symlinkSync('new-target', path.join(src, 'S'.repeat(255)))
      const dst = path.join(base, 'dst')
      fs.mkdirSync(dst)
      fs.writeFileSync(path.join(dst, LONG_ASCII), 'old')
      await runTree(variant, src, dst, { overwrite: 'replace' })
      assert.equal(fs.readFileSync(path.join(dst, LONG_ASCII), 'utf8'), 'new')
      assert.equal(fs.readlinkSync(path.join(dst, 'S'.repeat(255))), 'new-target')
    })
  }
})

describe('cloneTree: refusals write nothing', () => {
  async function setup(t: TestContext) {
    const m = await needMount(t, 'xfs')
    if (!m) return undefined
    const base = freshDir(m)
    const src = path.join(base, 'src')
    buildSimpleTree(src)
    return { base, src, hash: hashTree(src) }
  }

  for (const variant of variants) {
    test(`${variant}: dst inside src is EINVAL`, async (t) => {
      const s = await setup(t)
      if (!s) return
      fs.symlinkSync(path.join(s.src, 'sub'), path.join(s.base, 'into-src'))
      for (const dst of [path.join(s.src, 'copy'), path.join(s.src, 'sub', 'deeper', 'copy'), path.join(s.base, 'into-src', 'copy')]) {
        await assert.rejects(runTree(variant, s.src, dst), { code: 'EINVAL' })
        assertNothingAt(dst)
      }
      assert.deepEqual(tempSiblings(s.src), [])
      assert.equal(hashTree(s.src), s.hash)
    })

    test(`${variant}: src === dst is EINVAL, however spelled, whatever overwrite says`, async (t) => {
      const s = await setup(t)
      if (!s) return
      fs.symlinkSync(s.base, path.join(s.base, 'base-again'))
      const spellings = [s.src, `${s.src}/`, path.join(s.src, '..', 'src'), `${s.base}/./src`, path.join(s.base, 'base-again', 'src')]
      for (const dst of spellings) {
        for (const overwrite of ['error', 'skip', 'replace'] as const) {
          await assert.rejects(runTree(variant, s.src, dst, { overwrite }), { code: 'EINVAL' }, `${dst} ${overwrite}`)
        }
      }
      assert.equal(hashTree(s.src), s.hash)
      assert.deepEqual(tempSiblings(s.base), [])
    })

    test(`${variant}: a missing src is ENOENT`, async (t) => {
      const s = await setup(t)
      if (!s) return
      const dst = path.join(s.base, 'dst')
      await assert.rejects(runTree(variant, path.join(s.base, 'missing'), dst), { code: 'ENOENT' })
      assertNothingAt(dst)
    })

    test(`${variant}: bad options are TypeErrors with Node's codes`, async (t) => {
      const s = await setup(t)
      if (!s) return
      const dst = path.join(s.base, 'dst')
      const bad: Array<[unknown, string]> = [
        [{ mode: 'sometimes' }, 'ERR_INVALID_ARG_VALUE'],
        [{ overwrite: 'yes' }, 'ERR_INVALID_ARG_VALUE'],
        [{ concurrency: 0 }, 'ERR_INVALID_ARG_VALUE'],
        [{ concurrency: 1.5 }, 'ERR_INVALID_ARG_VALUE'],
        [{ filter: 'no' }, 'ERR_INVALID_ARG_TYPE'],
        [{ onProgress: 1 }, 'ERR_INVALID_ARG_TYPE'],
        [{ signal: {} }, 'ERR_INVALID_ARG_TYPE'],
      ]
      for (const [options, code] of bad) {
        await assert.rejects(runTree(variant, s.src, dst, options as CloneTreeOptions), { name: 'TypeError', code })
        assertNothingAt(dst)
      }
    })
  }
})

describe('cloneTree: options', () => {
  for (const variant of variants) {
    test(`${variant}: filter leaves out entries, and directories with all they hold`, async (t) => {
      const m = await needMount(t, 'xfs')
      if (!m) return
      const base = freshDir(m)
      const src = path.join(base, 'src')
      buildSimpleTree(src)
      fs.writeFileSync(path.join(src, 'sub', 'skip-me'), 'no')
      fs.mkdirSync(path.join(src, 'skip-dir', 'inner'), { recursive: true })
      fs.writeFileSync(path.join(src, 'skip-dir', 'inner', 'f'), 'no')
      const seen: Array<[string, TreeEntry]> = []
      const dst = path.join(base, 'dst')
      const result = await runTree(variant, src, dst, {
        filter: (p, entry) => {
          seen.push([p, entry])
          return entry.name !== 'skip-me' && entry.name !== 'skip-dir'
        },
      })
      const all = snapshot(src)
      const kept = all.filter((e) => !/(^|\/)skip-(me|dir)(\/|$)/.test(e.path))
      assert.deepEqual(compareSnapshots(kept, snapshot(dst)), [])
      // Called once for each entry outside skip-dir, with what lstat says of it.
      const expectedPaths = all.filter((e) => e.path !== '' && !e.path.startsWith('skip-dir/')).map((e) => path.join(src, e.path))
      assert.deepEqual(seen.map(([p]) => p).sort(), expectedPaths.sort())
      for (const [p, entry] of seen) {
        const st = fs.lstatSync(p)
        assert.equal(entry.name, path.basename(p))
        assert.equal(entry.mode, st.mode)
        const type = st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : 'file'
        assert.equal(entry.type, type, p)
        if (type === 'file') assert.equal(entry.size, st.size, p)
      }
      assert.deepEqual(
        { files: result.files, directories: result.directories, symlinks: result.symlinks, hardLinks: result.hardLinks, specials: result.specials },
        expectedCounts(kept),
      )
    })

    test(`${variant}: dereference copies what symlinks point to (as cp -aL), keeps dangling ones`, async (t) => {
      const m = await needMount(t, 'xfs')
      if (!m) return
      const base = freshDir(m)
      const src = path.join(base, 'src')
      fs.mkdirSync(path.join(src, 'real', 'dir'), { recursive: true })
      fs.writeFileSync(path.join(src, 'real', 'file'), 'file')
      fs.writeFileSync(path.join(src, 'real', 'dir', 'f'), 'f')
      fs.symlinkSync('real/file', path.join(src, 'to-file'))
      fs.symlinkSync('real/dir', path.join(src, 'to-dir'))
      fs.symlinkSync(path.join(src, 'real', 'file'), path.join(src, 'real', 'dir', 'absolute'))
      setDistinctTimes(src)
      const cp = path.join(base, 'cp')
      cpA(src, cp, '-L')
      const dst = path.join(base, 'dst')
      const result = await runTree(variant, src, dst, { dereference: true })
      // Files reached twice are one hard-link group, as cp -aL makes them.
      const want = snapshot(cp)
      assert.ok(want.some((e) => e.inodeGroup !== undefined))
      assert.deepEqual(compareSnapshots(want, snapshot(dst)), [])
      assert.equal(result.symlinks, 0)
      assert.equal(result.hardLinks, expectedCounts(want).hardLinks)
      assert.equal(result.hardLinks, 4, 'real/file reached 4 times, real/dir/f twice')
      fs.symlinkSync('nowhere', path.join(src, 'dangling'))
      const dst2 = path.join(base, 'dst2')
      await runTree(variant, src, dst2, { dereference: true })
      assert.equal(fs.readlinkSync(path.join(dst2, 'dangling')), 'nowhere')
    })

    test(`${variant}: dereference skips symlinks back to an enclosing directory, the root included`, async (t) => {
      const m = await needMount(t, 'xfs')
      if (!m) return
      const base = freshDir(m)
      const src = path.join(base, 'src')
      fs.mkdirSync(path.join(src, 'a', 'b'), { recursive: true })
      fs.writeFileSync(path.join(src, 'a', 'b', 'f'), 'f')
      fs.symlinkSync('..', path.join(src, 'a', 'b', 'to-a'))
      fs.symlinkSync('..', path.join(src, 'a', 'to-root'))
      const dst = path.join(base, 'dst')
      const result = await runTree(variant, src, dst, { dereference: true })
      assert.deepEqual(
        result.skipped.map((x) => path.relative(src, x.path)).sort(),
        ['a/b/to-a', 'a/to-root'],
      )
      for (const x of result.skipped) assert.match(x.reason, /^ELOOP/)
      assert.equal(result.files, 1, 'a/b/f, once')
    })

    test(`${variant}: continueOnError collects per-entry errors and goes on (mode 'always', xfs -> btrfs)`, async (t) => {
      const m = await needMount(t, 'xfs')
      const b = await needMount(t, 'btrfs')
      if (!m || !b) return
      const src = path.join(freshDir(m), 'src')
      buildSimpleTree(src)
      const entries = snapshot(src)
      const dst = path.join(freshDir(b), 'dst')
      const result = await runTree(variant, src, dst, { mode: 'always', continueOnError: true })
      const files = new Set(entries.filter((e) => e.type === 'file').map((e) => path.join(src, e.path)))
      assert.equal(result.files, 0)
      // Each error names a file of the source (never the temporary tree); every file that is not
      // a second member of a hard-link group failed with EXDEV.
      for (const e of result.errors) assert.ok(files.has(e.path), `${e.path} (${e.message}) is a file of the source`)
      const codes = new Map(result.errors.map((e) => [path.relative(src, e.path), e.code]))
      for (const e of entries.filter((x) => x.type === 'file' && x.inodeGroup === undefined)) assert.equal(codes.get(e.path), 'EXDEV', e.path)
      for (const group of new Set(entries.map((x) => x.inodeGroup).filter((g) => g !== undefined))) {
        const members = entries.filter((x) => x.inodeGroup === group).map((x) => codes.get(x.path))
        assert.ok(members.includes('EXDEV'), `hard-link group ${group}: ${members.join(', ')}`)
      }
      for (const e of result.errors.filter((x) => x.code === 'EXDEV')) assert.match(e.message, /^EXDEV: .*ioctl_ficlone/)
      // Everything that is not file data was made.
      const made = snapshot(dst)
      for (const e of entries.filter((x) => x.type === 'directory' || x.type === 'symlink' || x.type === 'fifo')) {
        assert.ok(made.some((x) => x.path === e.path && x.type === e.type), e.path)
      }
      assert.equal(result.directories, entries.filter((e) => e.type === 'directory').length)
    })

    test(`${variant}: onProgress is called with growing counts, and last with the totals`, async (t) => {
      const m = await needMount(t, 'xfs')
      if (!m) return
      const base = freshDir(m)
      const src = path.join(base, 'src')
      buildWideTree(src, 20, 60, 3000)
      const calls: TreeProgress[] = []
      const result = await runTree(variant, src, path.join(base, 'dst'), {
        onProgress: (p) => {
          calls.push({ ...p })
          // Hold the first report long enough that the 100 ms throttle lets another through.
          if (calls.length === 1) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 150)
        },
      })
      assert.ok(calls.length >= 2, `${calls.length} calls`)
      for (let i = 1; i < calls.length; i++) {
        const [a, b] = [calls[i - 1] as TreeProgress, calls[i] as TreeProgress]
        assert.ok(b.files >= a.files && b.bytes >= a.bytes, `call ${i} does not go back`)
      }
      assert.ok((calls[0] as TreeProgress).files < result.files, 'the first report comes before the end')
      assert.deepEqual(calls.at(-1), { files: result.files, bytes: result.cloned.bytes + result.copied.bytes })
      assert.equal(result.files, 1200)
      assert.equal(result.cloned.bytes, 1200 * 3000)
    })

    test(`${variant}: xfs -> ext4 in 'auto' copies every file, fallbacks { EXDEV: n }`, async (t) => {
      const m = await needMount(t, 'xfs')
      const e4 = await needMount(t, 'ext4')
      if (!m || !e4) return
      const src = path.join(freshDir(m), 'src')
      buildSimpleTree(src)
      // Enough files for several batches in flight when the first EXDEV comes back.
      buildWideTree(path.join(src, 'wide'), 4, 100, 100)
      setDistinctTimes(src, 4)
      const entries = snapshot(src)
      const dst = path.join(freshDir(e4), 'dst')
      const result = await runTree(variant, src, dst)
      const want = expectedCounts(entries)
      assert.equal(result.files, want.files)
      assert.deepEqual(result.fallbacks, { EXDEV: want.files })
      assert.deepEqual(result.cloned, { files: 0, bytes: 0 })
      assert.deepEqual(result.copied, { files: want.files, bytes: dataBytes(entries) })
      assert.deepEqual(compareSnapshots(entries, snapshot(dst)), [])
      const files = dataFiles(entries)
      const maps = extentsOfMany(files.map((f) => path.join(dst, f)))
      for (const [i, f] of files.entries()) assert.deepEqual(maps[i]?.filter((x) => x.shared), [], f)
    })

    test(`${variant}: mode 'never' copies on xfs, shares nothing, and is no fallback`, async (t) => {
      const m = await needMount(t, 'xfs')
      if (!m) return
      const base = freshDir(m)
      const src = path.join(base, 'src')
      buildSimpleTree(src)
      const entries = snapshot(src)
      const dst = path.join(base, 'dst')
      const result = await runTree(variant, src, dst, { mode: 'never' })
      assert.deepEqual(result.fallbacks, {})
      assert.deepEqual(result.copied, { files: expectedCounts(entries).files, bytes: dataBytes(entries) })
      assert.deepEqual(compareSnapshots(entries, snapshot(dst)), [])
      for (const f of dataFiles(entries)) {
        assert.equal(sharedBytes(path.join(dst, f)), 0, f)
        assert.equal(sharedBytes(path.join(src, f)), 0, `${f} in the source`)
      }
    })

    test(`${variant}: preserve, field by field, leaves out only what is turned off`, async (t) => {
      const m = await needMount(t, 'xfs')
      if (!m) return
      const base = freshDir(m)
      const src = path.join(base, 'src')
      buildSimpleTree(src)
      fs.chownSync(path.join(src, 'b.bin'), 1000, 1000)
      fs.chmodSync(path.join(src, 'b.bin'), 0o4755)
      setDistinctTimes(src, 2)
      const entries = snapshot(src)
      const cases: Array<[keyof NonNullable<CloneTreeOptions['preserve']>, Array<keyof Entry>, (dst: Entry[], r: TreeResult) => void]> = [
        ['ownership', ['uid', 'gid', 'mode'], (d) => assert.ok(d.every((e) => e.uid === 0 && e.gid === 0 && (e.mode & 0o6000) === 0))],
        ['mode', ['mode'], (d) => assert.equal(d.find((e) => e.path === 'b.bin')?.mode, 0o755)],
        ['timestamps', ['atimeNs', 'mtimeNs'], (d) => assert.ok(d.every((e) => e.mtimeNs > 1_700_000_000_000_000_000n))],
        ['xattr', ['xattrs'], (d) => assert.ok(d.every((e) => Object.keys(e.xattrs).length === 0))],
        ['links', ['inodeGroup'], (d, r) => {
          assert.ok(d.every((e) => e.inodeGroup === undefined))
          assert.equal(r.hardLinks, 0)
        }],
      ]
      for (const [field, ignore, check] of cases) {
        const dst = path.join(base, `no-${field}`)
        const result = await runTree(variant, src, dst, { preserve: { [field]: false } })
        const got = snapshot(dst)
        assert.deepEqual(compareSnapshots(entries, got, { ignore }), [], `preserve.${field} = false`)
        check(got, result)
      }
      const dst = path.join(base, 'no-specials')
      const result = await runTree(variant, src, dst, { preserve: { specials: false } })
      assert.deepEqual(compareSnapshots(entries.filter((e) => e.type !== 'fifo'), snapshot(dst)), [])
      assert.deepEqual(result.skipped.map((x) => [path.relative(src, x.path), /specials/.test(x.reason)]), [['sub/fifo', true]])
    })

    test(`${variant}: concurrency and atomic: false make the same tree`, async (t) => {
      const m = await needMount(t, 'xfs')
      if (!m) return
      const base = freshDir(m)
      const src = path.join(base, 'src')
      buildWideTree(src, 5, 60, 1000)
      buildSimpleTree(path.join(src, 'simple'))
      setDistinctTimes(src, 3)
      const entries = snapshot(src)
      for (const options of [{ concurrency: 1 }, { concurrency: 16 }, { atomic: false }] as CloneTreeOptions[]) {
        const dst = path.join(base, `dst-${JSON.stringify(options).replace(/\W/g, '')}`)
        let sawTemp = false
        await runTree(variant, src, dst, { ...options, filter: () => ((sawTemp ||= tempSiblings(base).length > 0), true) })
        assert.deepEqual(compareSnapshots(entries, snapshot(dst)), [], JSON.stringify(options))
        // FIEMAP through xfs_io is two processes a file: the small subtree stands for the rest.
        assert.deepEqual(sharingProblems(src, dst, entries.filter((e) => e.path.startsWith('simple/') || e.path === 'dir-0/file-0')), [])
        assert.equal(sawTemp, options.atomic !== false, 'a temporary sibling only in atomic mode')
      }
    })

    test(`${variant}: a file as src is cloned like clone() does`, async (t) => {
      const m = await needMount(t, 'xfs')
      if (!m) return
      const base = freshDir(m)
      const src = path.join(base, 'src')
      buildSimpleTree(src)
      const result = await runTree(variant, path.join(src, 'b.bin'), path.join(base, 'b.bin'))
      assert.equal(result.files, 1)
      assert.deepEqual(result.cloned, { files: 1, bytes: 300 * 1024 })
      assert.deepEqual(fs.readFileSync(path.join(base, 'b.bin')), fs.readFileSync(path.join(src, 'b.bin')))
      const skipped = await runTree(variant, path.join(src, 'a.txt'), path.join(base, 'b.bin'), { overwrite: 'skip' })
      assert.equal(skipped.files, 0)
      assert.equal(skipped.skipped.length, 1)
    })
  }
})

describe('cloneTree: concurrency', () => {
  test('three runs at once with concurrency 1 share the serial lane (the thread that has it runs the others\' jobs): every tree is whole and shares its blocks', async (t) => {
    const m = await needMount(t, 'btrfs')
    if (!m) return
    const base = freshDir(m)
    const src = path.join(base, 'src')
    // 3 runs x 4 jobs in flight: the lane's queue fills, so it is handed over after LANE_RUN jobs too.
    buildWideTree(src, 30, 30, 5000)
    setDistinctTimes(src)
    const before = snapshot(src)
    const dsts = [1, 2, 3].map((i) => path.join(base, `dst-${i}`))
    const results = await Promise.all(dsts.map((d) => cloneTree(src, d, { concurrency: 1 })))
    for (const [i, d] of dsts.entries()) {
      assert.equal(results[i]?.cloned.files, 900)
      assert.deepEqual(compareSnapshots(before, snapshot(d)), [], d)
      assert.deepEqual(sharingProblems(src, d, before), [], d)
    }
    assert.deepEqual(compareSnapshots(before, snapshot(src)), [], 'source unchanged')
  })

  test('rejects a concurrency that is not a positive integer', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const base = freshDir(m)
    buildSimpleTree(path.join(base, 'src'))
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => cloneTreeSync(path.join(base, 'src'), path.join(base, 'dst'), { concurrency: bad }), { code: 'ERR_INVALID_ARG_VALUE' })
      await assert.rejects(cloneTree(path.join(base, 'src'), path.join(base, 'dst'), { concurrency: bad }), { code: 'ERR_INVALID_ARG_VALUE' })
    }
    assert.equal(exists(path.join(base, 'dst')), false)
  })
})
