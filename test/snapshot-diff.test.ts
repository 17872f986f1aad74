// diffSnapshots' first look (snapshot-diff.ts, Hint): against the live directory, an entry whose
// ctime is older than the snapshot is settled by its stat alone; in btrfs snapshots, by its
// inode and ctime. These tests build the tree, wait until its ctimes are older than the
// margin, and then change it in every way that keeps what a stat shows (a same-size,
// same-mtime rewrite; an xattr; a chmod and back) as well as the plain ways: the diff must
// still name every change, and must read no data of the files that did not change.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import { diffSnapshots, snapshot } from '../src/snapshot.js'
import type { Change } from '../src/types.js'
import { freshDir, needMount } from './helpers/mounts.js'

const MiB = 1024 * 1024
const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Bytes this process has read through read(2) and friends so far (/proc/self/io rchar). */
function rchar(): number {
  return Number(/rchar: (\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'))?.[1])
}

function build(dir: string): void {
  fs.mkdirSync(path.join(dir, 'src/deep'), { recursive: true })
  for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(dir, `src/big${i}`), Buffer.alloc(4 * MiB, i + 1))
  fs.writeFileSync(path.join(dir, 'src/same-size'), Buffer.alloc(64 * 1024, 7))
  fs.writeFileSync(path.join(dir, 'src/deep/xattr'), 'x')
  fs.writeFileSync(path.join(dir, 'src/deep/chmod-back'), 'c')
  fs.writeFileSync(path.join(dir, 'small'), 'inline on btrfs')
  fs.writeFileSync(path.join(dir, 'touched'), 't')
  fs.symlinkSync('small', path.join(dir, 'link'))
  execFileSync('sync')
}

/** Changes that keep size and mtime (the first look must not settle them), and plain ones. */
function change(dir: string): void {
  const p = (rel: string) => path.join(dir, rel)
  const st = fs.statSync(p('src/same-size'))
  const fd = fs.openSync(p('src/same-size'), 'r+')
  fs.writeSync(fd, Buffer.from([8]), 0, 1, 30000)
  fs.closeSync(fd)
  fs.utimesSync(p('src/same-size'), st.atime, st.mtime)
  execFileSync('setfattr', ['-n', 'user.k', '-v', 'v', p('src/deep/xattr')], { env: { ...process.env, PATH } })
  fs.chmodSync(p('src/deep/chmod-back'), 0o600)
  fs.chmodSync(p('src/deep/chmod-back'), 0o644)
  const tst = fs.statSync(p('touched'))
  fs.utimesSync(p('touched'), tst.atime, new Date(tst.mtimeMs + 5000))
  fs.rmSync(p('link'))
  fs.symlinkSync('touched', p('link'))
  fs.writeFileSync(p('added'), 'new')
}

const EXPECTED: Change[] = [
  { path: 'added', kind: 'added' },
  { path: 'link', kind: 'metadata' },
  { path: 'src/deep/xattr', kind: 'metadata' },
  { path: 'src/same-size', kind: 'modified' },
  { path: 'touched', kind: 'metadata' },
]

async function place(t: TestContext, where: 'xfs' | 'btrfs directory' | 'btrfs subvolume'): Promise<string | undefined> {
  const m = await needMount(t, where === 'xfs' ? 'xfs' : 'btrfs')
  if (m === undefined) return undefined
  const base = freshDir(m, 'snapdiff')
  const dir = path.join(base, 'proj')
  if (where === 'btrfs subvolume') execFileSync('btrfs', ['subvolume', 'create', dir], { env: { ...process.env, PATH } })
  else fs.mkdirSync(dir)
  return dir
}

describe('snapshot diff: the first look (stat only) settles only what did not change', () => {
  for (const where of ['xfs', 'btrfs directory', 'btrfs subvolume'] as const) {
    test(`${where}: every change found, unchanged files not read`, async (t) => {
      const dir = await place(t, where)
      if (dir === undefined) return
      build(dir)
      // Older than the snapshot by more than the margin (2 s): what the first look can settle.
      await sleep(2200)
      const s = await snapshot(dir, { name: 's1' })
      assert.equal(s.method, where === 'btrfs subvolume' ? 'subvolume' : 'clone')
      change(dir)
      execFileSync('sync')
      const before = rchar()
      const changes = await diffSnapshots(dir, 's1')
      const read = rchar() - before
      assert.deepEqual(changes, EXPECTED)
      // 48 MiB of unchanged big files: none of it read (the changed file is 64 KiB, the
      // records and /proc reads a few KiB).
      assert.ok(read < 1 * MiB, `read ${read} bytes`)
      // The whole look (two snapshots: no first look on XFS and in btrfs directories) agrees.
      await snapshot(dir, { name: 's2' })
      assert.deepEqual(await diffSnapshots(dir, 's1', 's2'), EXPECTED)
    })
  }
})
