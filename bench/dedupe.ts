// Benchmark of `clonefile dedupe` against `jdupes -r -B` and `duperemove -dr`, side by side: a
// generated corpus (~4,000 files of 16 KiB-768 KiB in 1.5 GiB, ~35% of the bytes in extra copies,
// plus same-size decoys that differ in one byte), each contender on its own fresh physical copy,
// the page cache dropped before each, medians of rounds. Reports time, bytes freed (free space
// before and after), the ratios and the targets with a verdict each; a second clonefile
// run over the deduped copy shows what "never repeats work" is worth; peak RSS over 200k files.
// Standalone: `[ROUNDS=3] [RSS=1] node dist/bench/dedupe.js [MiB] [xfs,btrfs]` (default 300 MiB)
// mounts its own XFS and btrfs.
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { freshDir, mount, useImageSize, type TestMount } from '../test/helpers/mounts.js'
import { fmtBytes, fmtMs, fmtRatio, loadavg, median, rotate, table, verdict, type BenchContext } from './stats.js'

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

interface Contender {
  name: string
  tool: string
  args: string[]
  /** run again over its own result: the second run */
  again?: boolean
}

/** Where the opt-in cache is kept: off the filesystem measured (its free space is). */
const CACHE = path.join(os.tmpdir(), `clonefile-bench-dedupe-${process.pid}.cache`)

const contenders = (): Contender[] => [
  { name: 'clonefile dedupe', tool: process.execPath, args: [CLI, 'dedupe', '--no-progress'], again: true },
  { name: 'clonefile dedupe --cache', tool: process.execPath, args: [CLI, 'dedupe', '--no-progress', '--cache', CACHE], again: true },
  ...(has('jdupes') ? [{ name: 'jdupes -r -B', tool: 'jdupes', args: ['-r', '-B', '-q'] }] : []),
  ...(has('duperemove') ? [{ name: 'duperemove -dr', tool: 'duperemove', args: ['-dr', '-q'] }] : []),
]

/** Median wall time of `node -e 0`: what a second run cannot go below. */
function nodeStartMs(): number {
  const ms = Array.from({ length: 5 }, () => {
    const t = performance.now()
    spawnSync(process.execPath, ['-e', '0'])
    return performance.now() - t
  })
  return median(ms)
}

/**
 * `rounds` rounds on a fresh corpus of about `total` bytes: in each, every contender (in turn
 * first) on its own fresh physical copy, cold cache; clonefile a second time over its result.
 */
export async function benchDedupeOn(m: TestMount, total: number, rounds = 1): Promise<string> {
  const base = freshDir(m, 'dedupe-corpus')
  const { files, bytes } = genCorpus(base, total)
  const load0 = loadavg()
  const runs = new Map<string, Row[]>()
  for (let round = 0; round < rounds; round++) {
    for (const c of rotate(contenders(), round)) {
      const dir = path.join(path.dirname(base), `${path.basename(base)}-run`)
      sh('cp', ['-a', '--reflink=never', base, dir])
      fs.rmSync(CACHE, { force: true })
      const add = (r: Row): void => void runs.set(r.name, [...(runs.get(r.name) ?? []), r])
      add(timed(m, dir, c.name, c.tool, [...c.args, dir]))
      if (c.again) add(timed(m, dir, `${c.name}, second run`, c.tool, [...c.args, dir]))
      fs.rmSync(dir, { recursive: true })
    }
  }
  fs.rmSync(CACHE, { force: true })
  fs.rmSync(base, { recursive: true })
  return report(m, { files, bytes, rounds, load: [load0, loadavg()] }, runs)
}

function report(m: TestMount, c: { files: number; bytes: number; rounds: number; load: string[] }, runs: Map<string, Row[]>): string {
  const ms = (name: string): number => median((runs.get(name) ?? []).map((r) => r.ms))
  const freed = (name: string): number => median((runs.get(name) ?? []).map((r) => r.freed))
  const ours = 'clonefile dedupe'
  const rows = [...runs.keys()].map((name) => [
    name, fmtMs(ms(name)), (runs.get(name) ?? []).map((r) => fmtMs(r.ms)).join(', '), fmtBytes(freed(name)),
    fmtRatio(ms(ours) / ms(name)), name.endsWith('second run') ? '-' : (freed(ours) / freed(name)).toFixed(2),
  ])
  const start = nodeStartMs()
  const check = (what: string, value: number, bound: number, sense: '<=' | '>='): string[] =>
    [what, Number.isFinite(value) ? value.toFixed(2) : 'n/a', `${sense} ${bound.toFixed(2)}`, verdict(value, bound, sense)]
  const targets = [
    check('time, clonefile / jdupes -r -B', ms(ours) / ms('jdupes -r -B'), 0.8, '<='),
    check('time, clonefile / duperemove -dr', ms(ours) / ms('duperemove -dr'), 1.0, '<='),
    check('bytes freed, clonefile / jdupes', freed(ours) / freed('jdupes -r -B'), 1.0, '>='),
    check('second run / first run (CLI, node start-up in both)', ms(`${ours}, second run`) / ms(ours), 0.3, '<='),
    check('the same, both runs with the opt-in --cache', ms(`${ours} --cache, second run`) / ms(`${ours} --cache`), 0.3, '<='),
  ]
  return [
    `### ${m.kind}: ${c.files.toLocaleString('en-US')} files, ${(c.bytes / MiB).toFixed(0)} MiB, cold cache, median of ${c.rounds} round${c.rounds === 1 ? '' : 's'}`,
    '',
    `Load average (1, 5, 15 min) before: ${c.load[0]}; after: ${c.load[1]}. \`node -e 0\` takes ${fmtMs(start)} here (in both clonefile runs).`,
    '',
    table(['contender', 'time (median)', 'each round', 'freed', 'clonefile time / this', 'clonefile freed / this'], rows),
    '',
    table(['target (issue 13)', 'measured', 'bound', 'verdict'], targets),
    '',
  ].join('\n')
}

/** Peak RSS for 200,000 files, against the 200 MB. */
function rssReport(m: TestMount): string {
  const r = rssOn(m)
  const bound = 200e6 / MiB
  return [
    `### Peak RSS: \`clonefile dedupe\` over ${r.files.toLocaleString('en-US')} files on ${m.kind}`,
    '',
    'Files of 1 B–4 KiB, 4,096 sizes, every file a duplicate (the most held per file); `/usr/bin/time -f %M` of the whole CLI process.',
    '',
    table(['measure', 'value', 'bound', 'verdict'], [
      ['peak RSS', `${r.maxRssMiB.toFixed(1)} MiB`, `< 200 MB (${bound.toFixed(1)} MiB)`, verdict(r.maxRssMiB, bound, '<=')],
      ['time', fmtMs(r.ms), '', ''],
    ]),
    '',
  ].join('\n')
}

/** The section of `npm run bench`: ~1.5 GiB, 3 rounds (BENCH_QUICK: 200 MiB, 1 round, no 200k
 * files) on XFS and on btrfs, and the 200k-file peak RSS on XFS. */
export async function benchDedupe(ctx: BenchContext): Promise<string> {
  const total = (ctx.quick ? 200 : 1536) * MiB
  const parts = ['## Issue 13 — dedupe', '', DESCRIPTION, '']
  for (const m of [ctx.mounts.xfs, ctx.mounts.btrfs]) {
    ctx.log(`dedupe: ${m.kind}`)
    parts.push(await benchDedupeOn(m, total, ctx.quick ? 1 : 3))
  }
  if (!ctx.quick) {
    ctx.log('dedupe: peak RSS over 200,000 files')
    parts.push(rssReport(ctx.mounts.xfs))
  }
  return parts.join('\n')
}

const DESCRIPTION = `Corpus: bench/dedupe.ts genCorpus (files of 16 KiB–768 KiB, ~35% of the bytes in extra copies, 8% of the files with a same-size decoy that differs in one byte); each contender on its own fresh physical copy (\`cp -a --reflink=never\`), page cache dropped before each; time is the wall time of the whole command (clonefile: node start-up included); freed is the change in free space after sync. Contenders in turn first, round by round.`

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const total = Number(process.argv[2] ?? 300) * MiB
  useImageSize(Math.max(2048 * MiB, total * 6))
  const kinds = (process.argv[3] ?? 'xfs,btrfs').split(',') as Array<'xfs' | 'btrfs'>
  const rounds = Number(process.env.ROUNDS ?? 1)
  for (const kind of kinds) process.stdout.write(`${await benchDedupeOn(await mount(kind), total, rounds)}\n`)
  if (process.env.RSS === '1') process.stdout.write(`${rssReport(await mount('xfs'))}\n`)
  process.exit(0)
}
