// A property of cloneTree over random trees: the clone equals the source entry by entry and
// shares its blocks, and afterwards the two are independent: a write on either side leaves
// the other exactly as it was.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import fc from 'fast-check'
import { cloneTree, cloneTreeSync } from '../src/index.js'
import { freshDir, needMount } from './helpers/mounts.js'
import { compareSnapshots, mkfifo, setDistinctTimes, setXattr, sharingProblems, snapshot } from './helpers/trees.js'
import type { Entry } from './helpers/trees.js'

type TreeNode =
  | { kind: 'file'; name: string; size: number; seed: number; sparse: boolean; mode: number; owner: readonly [number, number]; xattr: Uint8Array | null }
  | { kind: 'dir'; name: string; mode: number; owner: readonly [number, number]; xattr: Uint8Array | null; children: TreeNode[] }
  | { kind: 'symlink'; name: string; target: string }
  | { kind: 'hardlink'; name: string; to: number }
  | { kind: 'fifo'; name: string; mode: number }

const name = fc.oneof(
  fc.constantFrom('a', 'b', 'file', '-dash', '--', ' space ', 'new\nline', 'tab\tx', 'ünïcødé', '名前', '🙂', '.dot', 'x'.repeat(255), 'é'.repeat(127)),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
)
const owner = fc.constantFrom([0, 0] as const, [1000, 1000] as const, [123, 4567] as const)
const xattr = fc.option(fc.uint8Array({ maxLength: 200 }), { nil: null })
// Sizes around the edges that matter: empty, under and over a block, a few extents' worth.
const size = fc.oneof(fc.constantFrom(0, 1, 4095, 4096, 4097, 65536), fc.integer({ min: 0, max: 300_000 }))
const fileNode = fc.record({
  kind: fc.constant('file' as const),
  name,
  size,
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  sparse: fc.boolean(),
  mode: fc.constantFrom(0o644, 0o600, 0o755, 0o444, 0o000, 0o4755, 0o2755, 0o6711),
  owner,
  xattr,
})
const leaf = fc.oneof(
  { weight: 4, arbitrary: fileNode },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('symlink' as const), name, target: fc.oneof(name, fc.constantFrom('..', '../a', '/usr', '/nonexistent', 'a/b/c')) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('hardlink' as const), name, to: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fifo' as const), name, mode: fc.constantFrom(0o644, 0o600) }) },
)
const { tree } = fc.letrec<{ tree: TreeNode[]; node: TreeNode }>((tie) => ({
  tree: fc.array(tie('node'), { maxLength: 6 }),
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({
      kind: fc.constant('dir' as const),
      name,
      mode: fc.constantFrom(0o755, 0o700, 0o555, 0o1777, 0o2775, 0o000),
      owner,
      xattr,
      children: tie('tree'),
    }),
  ),
}))

/** Bytes from a seed (xorshift32): the same tree every time fast-check replays a seed. */
function content(length: number, seed: number): Buffer {
  const buf = Buffer.alloc(length)
  let x = seed | 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    buf[i] = x & 0xff
  }
  return buf
}

/** A usable file name: no '/' or NUL, not '.' or '..', at most 255 bytes. */
function safe(raw: string): string {
  let n = raw.replace(/[/\0]/g, '_')
  if (n === '' || n === '.' || n === '..') n = `_${n}`
  while (Buffer.byteLength(n) > 255) n = n.slice(0, -1)
  return n
}

function build(dir: string, nodes: TreeNode[], files: string[]): void {
  for (const node of nodes) {
    const p = path.join(dir, safe(node.name))
    if (fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined) continue
    switch (node.kind) {
      case 'file': {
        const data = content(node.size, node.seed)
        if (node.sparse && node.size > 8192) {
          // Data only in the last quarter: a hole before it.
          fs.writeFileSync(p, '')
          const fd = fs.openSync(p, 'r+')
          const from = Math.floor((node.size * 3) / 4)
          fs.writeSync(fd, data, from, node.size - from, from)
          fs.closeSync(fd)
        } else fs.writeFileSync(p, data)
        if (node.xattr !== null) setXattr(p, 'user.prop', Buffer.from(node.xattr))
        fs.chownSync(p, node.owner[0], node.owner[1])
        fs.chmodSync(p, node.mode)
        files.push(p)
        break
      }
      case 'dir':
        fs.mkdirSync(p)
        build(p, node.children, files)
        if (node.xattr !== null) setXattr(p, 'user.prop', Buffer.from(node.xattr))
        fs.chownSync(p, node.owner[0], node.owner[1])
        fs.chmodSync(p, node.mode)
        break
      case 'symlink':
        fs.symlinkSync(safe(node.target), p)
        break
      case 'hardlink': {
        const to = files[node.to % Math.max(files.length, 1)]
        if (to !== undefined) fs.linkSync(to, p)
        break
      }
      case 'fifo':
        mkfifo(p, node.mode)
        break
    }
  }
}

const write = fc.record({
  side: fc.constantFrom('src' as const, 'dst' as const),
  file: fc.nat(),
  offset: fc.nat({ max: 400_000 }),
  data: fc.uint8Array({ minLength: 1, maxLength: 5000 }),
})

/** The other entries of a hard-link group with `rel` (those with the same inode). */
function groupOf(entries: Entry[], rel: string): string[] {
  const group = entries.find((e) => e.path === rel)?.inodeGroup
  return group === undefined ? [rel] : entries.filter((e) => e.inodeGroup === group).map((e) => e.path)
}

test('random trees: clone equals source, shares its blocks, and the two stay independent', async (t) => {
  const m = await needMount(t, 'xfs')
  if (!m) return
  const base = freshDir(m, 'property')
  let run = 0
  await fc.assert(
    fc.asyncProperty(tree, fc.boolean(), fc.array(write, { minLength: 1, maxLength: 3 }), async (nodes, sync, writes) => {
      const dir = path.join(base, `run-${++run}`)
      const src = path.join(dir, 'src')
      const dst = path.join(dir, 'dst')
      fs.mkdirSync(src, { recursive: true })
      try {
        build(src, nodes, [])
        setDistinctTimes(src, run)
        const before = snapshot(src)
        const result = sync ? cloneTreeSync(src, dst) : await cloneTree(src, dst)
        assert.deepEqual(result.errors, [])
        assert.deepEqual(result.skipped, [])
        let srcSnap = snapshot(src)
        let dstSnap = snapshot(dst)
        assert.deepEqual(compareSnapshots(before, srcSnap), [], 'the source is unchanged')
        assert.deepEqual(compareSnapshots(before, dstSnap), [], 'the clone equals the source')
        assert.deepEqual(sharingProblems(src, dst, before), [])

        const files = before.filter((e) => e.type === 'file').map((e) => e.path)
        for (const w of writes) {
          if (files.length === 0) break
          const rel = files[w.file % files.length] as string
          const [side, other] = w.side === 'src' ? [src, dst] : [dst, src]
          const otherBefore = w.side === 'src' ? dstSnap : srcSnap
          const sideBefore = w.side === 'src' ? srcSnap : dstSnap
          const file = path.join(side, rel)
          const offset = w.offset % (fs.statSync(file).size + 1)
          const fd = fs.openSync(file, 'r+')
          fs.writeSync(fd, w.data, 0, w.data.length, offset)
          fs.closeSync(fd)
          const otherAfter = snapshot(other)
          const sideAfter = snapshot(side)
          assert.deepEqual(compareSnapshots(otherBefore, otherAfter), [], `writing ${w.side}/${JSON.stringify(rel)} left the other side alone`)
          // On the written side, only the written inode changed, and all its names see it.
          const group = groupOf(sideBefore, rel)
          const sha = sideAfter.find((e) => e.path === rel)?.sha256
          for (const g of group) assert.equal(sideAfter.find((e) => e.path === g)?.sha256, sha, `hard link ${g} sees the write`)
          assert.deepEqual(
            compareSnapshots(sideBefore, sideAfter, { exclude: (e) => group.includes(e.path) }),
            [],
            'nothing else changed on the written side',
          )
          if (w.side === 'src') srcSnap = sideAfter
          else dstSnap = sideAfter
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }),
    { numRuns: 20 },
  )
})
