// Issue 14, snapshots: (a) snapshot() of a btrfs subvolume against a whole `btrfs subvolume
// snapshot -r` process, at 20k and 200k files, and the CLI against a script that only loads the
// package; (b) a clone snapshot on XFS against cloneTree of the same tree; (c) diffSnapshots of a
// 20k-file ~1 GiB tree with 20 changed files (6 of them same size, same mtime) against
// `diff -rq` and `rsync -ani --delete`, the page cache dropped before each contender.
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { cloneTree, deleteSnapshot, diffSnapshots, snapshot } from '../src/index.js'
import { genTree } from './gen-tree.js'
import type { BenchContext } from './stats.js'
import { fmtBytes, fmtMs, fmtRatio, loadavg, max, median, min, rotate, table, verdict } from './stats.js'

const MiB = 1024 * 1024
const SEED = 20_000
const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`

const sh = (tool: string, args: string[], cwd?: string): string =>
  execFileSync(tool, args, { encoding: 'utf8', env: { ...process.env, PATH }, maxBuffer: 256 * MiB, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd === undefined ? {} : { cwd }) })

/** Exit status 1 is an answer for diff (the trees differ), not a failure. */
function shAnyStatus(tool: string, args: string[]): string {
  const r = spawnSync(tool, args, { encoding: 'utf8', env: { ...process.env, PATH }, maxBuffer: 256 * MiB })
  if (r.error !== undefined || (r.status !== 0 && r.status !== 1)) throw new Error(`${tool} ${args.join(' ')}: status ${r.status} ${r.stderr}`)
  return r.stdout
}

/** syncfs of one filesystem: a global sync waits for what the other users of the machine write. */
const syncFs = (dir: string) => () => void sh('sync', ['-f', dir])

function dropCaches(dir: string): () => void {
  return () => {
    syncFs(dir)()
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3')
  }
}

async function ms(fn: () => unknown): Promise<number> {
  const t = performance.now()
  await fn()
  return performance.now() - t
}

interface Row {
  label: string
  ms: number[]
}

const range = (xs: number[]) => `${fmtMs(min(xs))}–${fmtMs(max(xs))}`

/** Rounds of every contender in turn (rotated), `before` untimed ahead of each, `after` after. */
async function rounds(ctx: BenchContext, what: string, n: number, contenders: Array<{ label: string; run: () => unknown; after?: () => unknown }>, before: () => void): Promise<Row[]> {
  const rows = contenders.map((c) => ({ label: c.label, ms: [] as number[] }))
  for (let r = 0; r < n; r++) {
    ctx.log(`  snapshot ${what}: round ${r + 1}/${n}`)
    for (const c of rotate(contenders, r)) {
      before()
      rows[contenders.indexOf(c)]?.ms.push(await ms(c.run))
      await c.after?.()
    }
  }
  return rows
}

/** (a) A subvolume of `files` files: snapshot() and `btrfs subvolume snapshot -r`, round by round. */
async function subvolumeCreate(ctx: BenchContext, files: number, n: number): Promise<{ api: number[]; btrfs: number[]; dir: string; settle: () => void }> {
  const base = fs.mkdtempSync(join(ctx.mounts.btrfs.dir, 'snap-bench-'))
  const dir = join(base, 'work')
  sh('btrfs', ['subvolume', 'create', dir])
  ctx.log(`snapshot: generating ${files.toLocaleString('en-US')} files in a btrfs subvolume`)
  genTree(join(dir, 'tree'), { files, seed: SEED })
  sh('btrfs', ['filesystem', 'sync', base])
  const store = join(base, '.work.snapshots')
  // Loads the addon and answers the probe of this filesystem, as any process does once.
  await deleteSnapshot(dir, (await snapshot(dir, { name: 'warm-up' })).name)
  // What a deleted snapshot leaves to the cleaner is done before the next contender: a
  // transaction commit wakes it (else `subvolume sync` waits for the 30 s commit interval).
  const settle = () => {
    sh('btrfs', ['filesystem', 'sync', ctx.mounts.btrfs.dir])
    sh('btrfs', ['subvolume', 'sync', ctx.mounts.btrfs.dir])
  }
  let seq = 0
  const [api, btrfs] = await rounds(ctx, `create ${files} files`, n, [
    { label: 'snapshot()', run: () => snapshot(dir, { name: `api-${++seq}` }), after: () => deleteSnapshot(dir, `api-${seq}`) },
    { label: 'btrfs subvolume snapshot -r', run: () => sh('btrfs', ['subvolume', 'snapshot', '-r', dir, join(store, 'tool')]), after: () => sh('btrfs', ['subvolume', 'delete', join(store, 'tool')]) },
  ], settle)
  return { api: api?.ms ?? [], btrfs: btrfs?.ms ?? [], dir, settle }
}

/** The subvolume (its snapshots already deleted) and its store. */
function removeSubvolume(dir: string): void {
  sh('btrfs', ['subvolume', 'delete', dir])
  sh('rm', ['-rf', dirname(dir)])
}

/** (a) The CLI, and a script that loads the package and exits, from the repository root. */
async function cliCreate(ctx: BenchContext, dir: string, n: number, settle: () => void): Promise<{ cli: number[]; script: number[] }> {
  const cli = join(ctx.repo, 'bin', 'clonefile.js')
  let seq = 0
  const [c, s] = await rounds(ctx, 'CLI', n, [
    { label: 'cli', run: () => sh(process.execPath, [cli, 'snapshot', 'create', dir, '--name', `cli-${++seq}`]), after: () => deleteSnapshot(dir, `cli-${seq}`) },
    { label: 'script', run: () => sh(process.execPath, ['--input-type=module', '-e', "import 'clonefile'"], ctx.repo) },
  ], settle)
  return { cli: c?.ms ?? [], script: s?.ms ?? [] }
}

/** (b) A clone snapshot and cloneTree of the same 20k-file tree on XFS. */
async function cloneCreate(ctx: BenchContext, n: number): Promise<Row[]> {
  const base = fs.mkdtempSync(join(ctx.mounts.xfs.dir, 'snap-bench-'))
  const dir = join(base, 'work')
  genTree(dir, { files: 20_000, seed: SEED })
  syncFs(ctx.mounts.xfs.dir)()
  await deleteSnapshot(dir, (await snapshot(dir, { name: 'warm-up' })).name)
  let seq = 0
  const rows = await rounds(ctx, 'clone method', n, [
    { label: 'snapshot() (clone)', run: () => snapshot(dir, { name: `s-${++seq}` }), after: () => deleteSnapshot(dir, `s-${seq}`) },
    { label: 'cloneTree', run: () => cloneTree(dir, join(base, 'dst')), after: () => sh('rm', ['-rf', join(base, 'dst')]) },
  ], syncFs(ctx.mounts.xfs.dir))
  sh('rm', ['-rf', base])
  return rows
}

/** The mtime of a file, to the nanosecond, set again (touch keeps the ns). */
function keepMtime(file: string): () => void {
  const ns = fs.lstatSync(file, { bigint: true }).mtimeNs
  return () => void sh('touch', ['-m', '-d', `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`, '--', file])
}

function regularFiles(root: string): Array<{ path: string; size: number }> {
  return (fs.readdirSync(root, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))
    .map((p) => ({ path: p, size: fs.statSync(p).size }))
}

/** (c) diffSnapshots, diff -rq and rsync -ani on two snapshots of a ~1 GiB tree, 20 files apart. */
async function diffBench(ctx: BenchContext, n: number): Promise<{ rows: Row[]; found: Record<string, string>; describe: string }> {
  const base = fs.mkdtempSync(join(ctx.mounts.xfs.dir, 'snap-diff-'))
  const dir = join(base, 'work')
  const files = ctx.quick ? 5_000 : 20_000
  const target = ctx.quick ? 128 * MiB : 1024 * MiB
  ctx.log(`snapshot: generating the diff tree (${files.toLocaleString('en-US')} files, ~${fmtBytes(target)})`)
  const g = genTree(join(dir, 'tree'), { files: files - Math.ceil(target / (8 * MiB)), seed: SEED })
  let bytes = g.bytes
  fs.mkdirSync(join(dir, 'blobs'))
  for (let i = 0; bytes < target; i++) {
    fs.writeFileSync(join(dir, 'blobs', `blob-${i}`), randomBytes(8 * MiB))
    bytes += 8 * MiB
  }
  const all = regularFiles(dir)
  await snapshot(dir, { name: 'a' })
  // 20 changes: 7 appended, 7 rewritten in place, 6 same size and same mtime (what rsync misses).
  const blobs = all.filter((f) => f.path.includes('/blobs/'))
  const small = all.filter((f) => !f.path.includes('/blobs/') && f.size >= 4096)
  const chosen = [...blobs.slice(0, 10), ...small.filter((_, i) => i % Math.max(1, Math.floor(small.length / 10)) === 0).slice(0, 10)]
  for (const [i, f] of chosen.entries()) {
    if (i % 3 === 0) fs.appendFileSync(f.path, 'appended')
    else {
      const restore = i % 3 === 2 ? keepMtime(f.path) : undefined
      const fd = fs.openSync(f.path, 'r+')
      fs.writeSync(fd, randomBytes(1024), 0, 1024, Math.floor(f.size / 2) - 512)
      fs.closeSync(fd)
      restore?.()
    }
  }
  const sneaky = chosen.filter((_, i) => i % 3 === 2).length
  await snapshot(dir, { name: 'b' })
  const store = join(base, '.work.snapshots')
  const [a, b] = [join(store, 'a'), join(store, 'b')]
  const answers: Record<string, number> = {}
  const rows = await rounds(ctx, 'diff', n, [
    { label: 'diffSnapshots', run: async () => (answers.diffSnapshots = (await diffSnapshots(dir, 'a', 'b')).filter((c) => c.kind === 'modified').length) },
    { label: 'diff -rq', run: () => (answers['diff -rq'] = shAnyStatus('diff', ['-rq', a, b]).split('\n').filter((l) => l.endsWith(' differ')).length) },
    { label: 'rsync -ani --delete', run: () => (answers['rsync -ani --delete'] = sh('rsync', ['-ani', '--delete', `${a}/`, `${b}/`]).split('\n').filter((l) => /^[.>]f/.test(l)).length) },
  ], dropCaches(ctx.mounts.xfs.dir))
  const found = Object.fromEntries(Object.entries(answers).map(([k, v]) => [k, `${v} of ${chosen.length} changed files${v < chosen.length ? ` (misses ${chosen.length - v})` : ''}`]))
  const describe = `${all.length.toLocaleString('en-US')} files, ${fmtBytes(all.reduce((s, f) => s + f.size, 0))}; ${chosen.length} changed (${sneaky} of them same size, same mtime)`
  sh('rm', ['-rf', base])
  return { rows, found, describe }
}

export async function benchSnapshot(ctx: BenchContext): Promise<string> {
  const n = ctx.quick ? 3 : 7
  const out = ['## snapshot', '']

  // (a) btrfs subvolume: snapshot() against the btrfs tool, at 20k and 200k files.
  const sizes = ctx.quick ? [20_000] : [20_000, 200_000]
  const subRows: string[][] = []
  let api20k = NaN
  let cli: { cli: number[]; script: number[] } = { cli: [], script: [] }
  for (const files of sizes) {
    const r = await subvolumeCreate(ctx, files, n)
    const ratio = median(r.api) / median(r.btrfs)
    if (files === 20_000) {
      api20k = median(r.api)
      cli = await cliCreate(ctx, r.dir, n, r.settle)
    }
    removeSubvolume(r.dir)
    subRows.push([files.toLocaleString('en-US'), 'snapshot()', fmtMs(median(r.api)), range(r.api), fmtRatio(ratio), `≤ 1.0×: ${verdict(ratio, 1.0, '<=')}`])
    subRows.push([files.toLocaleString('en-US'), 'btrfs subvolume snapshot -r (process)', fmtMs(median(r.btrfs)), range(r.btrfs), '1.00×', ''])
    if (files === 200_000) {
      const growth = median(r.api) / api20k
      subRows.push(['200k ÷ 20k', 'snapshot()', '', '', fmtRatio(growth), `the same time (≤ 1.5×): ${verdict(growth, 1.5, '<=')}`])
    }
  }
  out.push(`### create on a btrfs subvolume (median of ${n}, btrfs filesystem sync + subvolume sync before each)`, '')
  out.push(table(['files', 'contender', 'median', 'range', 'vs btrfs tool', 'target'], subRows), '')

  const c = cli
  const added = (median(c.cli) - api20k) / median(c.script)
  out.push(`CLI: \`clonefile snapshot create\` (20k-file subvolume) ${fmtMs(median(c.cli))} (${range(c.cli)}); a script that imports 'clonefile' and exits ${fmtMs(median(c.script))} (${range(c.script)}); ` +
    `CLI ÷ script ${fmtRatio(median(c.cli) / median(c.script))}; what the CLI adds to the call (CLI − snapshot()) ÷ script ${fmtRatio(added)} (≤ 1.0×: ${verdict(added, 1.0, '<=')})`, '')

  // (b) clone method on XFS.
  const [snap, tree] = await cloneCreate(ctx, n)
  const cloneRatio = median(snap?.ms ?? []) / median(tree?.ms ?? [])
  out.push(`### create by clone (XFS, 20,000 files; median of ${n})`, '')
  out.push(table(['contender', 'median', 'range', 'vs cloneTree', 'target'], [
    ['snapshot() (clone)', fmtMs(median(snap?.ms ?? [])), range(snap?.ms ?? []), fmtRatio(cloneRatio), `as fast as cloneTree (≤ 1.10×): ${verdict(cloneRatio, 1.1, '<=')}`],
    ['cloneTree', fmtMs(median(tree?.ms ?? [])), range(tree?.ms ?? []), '1.00×', ''],
  ]), '')

  // (c) diff, cold cache.
  const d = await diffBench(ctx, ctx.quick ? 1 : 3)
  const t = (label: string) => median(d.rows.find((r) => r.label === label)?.ms ?? [])
  const api = t('diffSnapshots')
  out.push(`### diff of two snapshots (XFS; ${d.describe}; page cache dropped before each; median of ${ctx.quick ? 1 : 3})`, '')
  out.push(table(['contender', 'median', 'range', 'diffSnapshots ÷ it', 'target', 'found'], d.rows.map((r) => {
    const ratio = api / median(r.ms)
    const target = r.label === 'diff -rq' ? `≤ 0.2×: ${verdict(ratio, 0.2, '<=')}` : r.label.startsWith('rsync') ? `≤ 1.0×: ${verdict(ratio, 1.0, '<=')}` : ''
    return [r.label, fmtMs(median(r.ms)), range(r.ms), r.label === 'diffSnapshots' ? '1.00×' : fmtRatio(ratio), target, d.found[r.label] ?? '']
  })), '')
  out.push(`load average at the end of the section: ${loadavg()}`, '')
  return out.join('\n')
}
