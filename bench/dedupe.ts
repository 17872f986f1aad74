// Benchmark of `clonefile dedupe` against `jdupes -r -B` and `duperemove -dr`, side by side: a
// generated corpus (files of 16 KiB-1 MiB, ~25% of the bytes in extra copies, plus same-size decoys
// that differ in one byte), each contender on its own fresh physical copy, the page cache dropped
// before each. Reports time, bytes freed (free space before and after) and the ratios; a second
// clonefile run over the deduped copy shows what "never repeats work" is worth.
// Standalone: `node dist/bench/dedupe.js [MiB]` (default 300) mounts its own XFS and btrfs.
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { freshDir, mount, useImageSize, type TestMount } from '../test/helpers/mounts.js'
import type { BenchContext } from './stats.js'

const KiB = 1024
const MiB = 1024 * KiB
const CLI = fileURLToPath(new URL('../../bin/clonefile.js', import.meta.url))
const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`

const sh = (tool: string, args: string[]): string =>
  execFileSync(tool, args, { encoding: 'utf8', env: { ...process.env, PATH }, maxBuffer: 256 * MiB, stdio: ['ignore', 'pipe', 'pipe'] })

function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { env: { ...process.env, PATH } }).status === 0
}

/** A corpus of about `total` bytes in `dir` (files of 16 KiB-768 KiB, ~390 KiB on average: ~4,000
 * files in 1.5 GiB): 45% of files get a copy (30% of those a third), 8% a same-size decoy that
 * differs in one byte; ~35% of the bytes are extra copies. */
export function genCorpus(dir: string, total: number): { files: number; bytes: number } {
  let bytes = 0
  let files = 0
  let seq = 0
  const write = (data: Buffer): void => {
    const sub = path.join(dir, `d${seq % 37}`, `e${seq % 5}`)
    fs.mkdirSync(sub, { recursive: true })
    fs.writeFileSync(path.join(sub, `f${seq++}.bin`), data)
    bytes += data.length
    files++
  }
  while (bytes < total) {
    const size = 16 * KiB + Math.floor(Math.random() * (768 * KiB - 16 * KiB))
    const data = randomBytes(size)
    write(data)
    const r = Math.random()
    if (r < 0.45) {
      write(data)
      if (Math.random() < 0.3) write(data)
    } else if (r < 0.53) {
      const decoy = Buffer.from(data)
      const at = Math.floor(Math.random() * size)
      decoy[at] = (decoy[at] as number) ^ 0xff
      write(decoy)
    }
  }
  return { files, bytes }
}

/** `count` small files (1 B-4 KiB, 4,096 sizes, 1,000 a directory) whose content is fixed by
 * their size: every file is a duplicate, the worst case for what dedupe holds per file. */
export function genManySmall(dir: string, count: number): void {
  const pool = randomBytes(4 * KiB)
  for (let i = 0; i < count; i++) {
    const sub = path.join(dir, `d${Math.floor(i / 1000)}`)
    if (i % 1000 === 0) fs.mkdirSync(sub, { recursive: true })
    fs.writeFileSync(path.join(sub, `f${i}`), pool.subarray(0, 1 + ((i * 7919) % (4 * KiB))))
  }
}

/** Peak RSS and time of `clonefile dedupe` (the whole process) over 200,000 small files. */
export function rssOn(m: TestMount, count = 200_000): { maxRssMiB: number; ms: number; files: number } {
  const dir = freshDir(m, 'dedupe-rss')
  genManySmall(dir, count)
  sh('sync', [])
  const t = performance.now()
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, CLI, 'dedupe', '--no-progress', '--json', dir], { encoding: 'utf8', maxBuffer: 512 * MiB })
  const ms = performance.now() - t
  if (r.status !== 0) throw new Error(`dedupe over ${count} files: exit ${r.status}: ${r.stderr.slice(-400)}`)
  const maxRssKiB = Number(r.stderr.trim().split('\n').pop())
  const files = (JSON.parse(r.stdout) as { files: number }).files
  fs.rmSync(dir, { recursive: true })
  return { maxRssMiB: maxRssKiB / 1024, ms, files }
}

function freeBytes(dir: string): number {
  sh('sync', ['-f', dir])
  const st = fs.statfsSync(dir)
  return st.bavail * st.bsize
}

function settle(m: TestMount, dir: string): void {
  if (m.kind === 'btrfs') sh('btrfs', ['filesystem', 'sync', dir])
  sh('sync', [])
}

function dropCaches(): void {
  sh('sync', [])
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3')
}

interface Row {
  name: string
  ms: number
  freed: number
}

function timed(m: TestMount, dir: string, name: string, tool: string, args: string[], cold = true): Row {
  settle(m, dir)
  const free0 = freeBytes(dir)
  if (cold) dropCaches()
  const t = performance.now()
  const r = spawnSync(tool, args, { env: { ...process.env, PATH }, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
  const ms = performance.now() - t
  if (r.status !== 0 && !(tool === 'jdupes' && r.status === 1)) throw new Error(`${name}: exit ${r.status}: ${r.stderr.slice(0, 400)}`)
  settle(m, dir)
  return { name, ms, freed: freeBytes(dir) - free0 }
}

export async function benchDedupeOn(m: TestMount, total: number): Promise<string> {
  const base = freshDir(m, 'dedupe-corpus')
  const { files, bytes } = genCorpus(base, total)
  const copy = (name: string): string => {
    const dir = path.join(path.dirname(base), `${path.basename(base)}-${name}`)
    sh('cp', ['-a', '--reflink=never', base, dir])
    return dir
  }
  const rows: Row[] = []
  const ours = copy('clonefile')
  rows.push(timed(m, ours, 'clonefile dedupe', process.execPath, [CLI, 'dedupe', '--no-progress', ours]))
  rows.push(timed(m, ours, 'clonefile dedupe, second run', process.execPath, [CLI, 'dedupe', '--no-progress', ours]))
  fs.rmSync(ours, { recursive: true })
  if (has('jdupes')) {
    const dir = copy('jdupes')
    rows.push(timed(m, dir, 'jdupes -r -B', 'jdupes', ['-r', '-B', '-q', dir]))
    fs.rmSync(dir, { recursive: true })
  }
  if (has('duperemove')) {
    const dir = copy('duperemove')
    rows.push(timed(m, dir, 'duperemove -dr', 'duperemove', ['-dr', '-q', dir]))
    fs.rmSync(dir, { recursive: true })
  }
  fs.rmSync(base, { recursive: true })
  const first = rows[0] as Row
  const lines = [
    `### ${m.kind}: ${files.toLocaleString('en-US')} files, ${(bytes / MiB).toFixed(0)} MiB, cold cache`,
    '',
    '| contender | time | freed | time vs clonefile | freed vs clonefile |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${(r.ms / 1000).toFixed(2)} s | ${(r.freed / MiB).toFixed(1)} MiB | ${(r.ms / first.ms).toFixed(2)}× | ${first.freed === 0 ? '-' : (r.freed / first.freed).toFixed(2)} |`),
    '',
  ]
  return lines.join('\n')
}

/** The section of `npm run bench`: ~1.5 GiB (BENCH_QUICK: 200 MiB) on XFS and on btrfs. */
export async function benchDedupe(ctx: BenchContext): Promise<string> {
  const total = (ctx.quick ? 200 : 1536) * MiB
  const parts = ['## Issue 13 — dedupe', '']
  for (const m of [ctx.mounts.xfs, ctx.mounts.btrfs]) {
    ctx.log(`dedupe: ${m.kind}`)
    parts.push(await benchDedupeOn(m, total))
  }
  return parts.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const total = Number(process.argv[2] ?? 300) * MiB
  useImageSize(Math.max(2048 * MiB, total * 6))
  const kinds = (process.argv[3] ?? 'xfs,btrfs').split(',') as Array<'xfs' | 'btrfs'>
  for (const kind of kinds) process.stdout.write(`${await benchDedupeOn(await mount(kind), total)}\n`)
  process.exit(0)
}
