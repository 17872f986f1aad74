// Benchmark of usage() and `clonefile du -s` against `btrfs filesystem du -s` and GNU `du -s`, on
// a node_modules-like tree of 20,000 files plus one clone of it, on a btrfs test mount. Also the
// peak RSS of usage() on a 200,000-file tree, measured in a child process.
import { execFileSync, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { usage } from '../src/usage.js'
import { freshDir, mount } from '../test/helpers/mounts.js'
import { genTree } from './gen-tree.js'

const FILES = 20_000
const RSS_FILES = 200_000
const RUNS = 7
const KiB = 1024
const MiB = 1024 * KiB
const CLI = fileURLToPath(new URL('../../bin/clonefile.js', import.meta.url))
const SELF = fileURLToPath(import.meta.url)
const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`

function run(tool: string, args: string[]): string {
  return execFileSync(tool, args, { encoding: 'utf8', env: { ...process.env, PATH }, maxBuffer: 64 * MiB })
}

interface Numbers {
  total: number
  exclusive: number
  setShared: number
}

function btrfsDu(dir: string): Numbers {
  const line = run('btrfs', ['filesystem', 'du', '-s', '--raw', dir]).trim().split('\n')[1] ?? ''
  const [total, exclusive, setShared] = line.trim().split(/\s+/).map(Number)
  return { total: total ?? NaN, exclusive: exclusive ?? NaN, setShared: setShared ?? NaN }
}

function cliDu(dir: string): Numbers {
  const out = JSON.parse(run(process.execPath, [CLI, 'du', '-s', '--json', dir])) as { set: Numbers }
  return out.set
}

/**
 * CPU time in ms of this process (all its threads) plus its waited-for children: utime, stime,
 * cutime and cstime of /proc/self/stat, in clock ticks of 10 ms (USER_HZ is 100 on Linux).
 */
function cpuMs(): number {
  const fields = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? []
  return fields.slice(11, 15).reduce((sum, f) => sum + Number(f), 0) * 10
}

interface Timing {
  wall: number
  cpu: number
}

async function timed(fn: () => unknown): Promise<Timing> {
  const [start, cpu] = [performance.now(), cpuMs()]
  await fn()
  return { wall: performance.now() - start, cpu: cpuMs() - cpu }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN
const same = (a: Numbers, b: Numbers) => a.total === b.total && a.exclusive === b.exclusive && a.setShared === b.setShared
const show = (n: Numbers) => `${n.total} / ${n.exclusive} / ${n.setShared}`

/** Peak RSS of usage() over `dir`, in a fresh process so nothing else counts. */
function peakRss(dir: string): { files: number; ms: number; maxRssMiB: number } {
  const r = spawnSync(process.execPath, [SELF, '--rss-child', dir], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`RSS child failed: ${r.stderr}`)
  return JSON.parse(r.stdout) as { files: number; ms: number; maxRssMiB: number }
}

async function rssChild(dir: string): Promise<void> {
  const start = performance.now()
  const result = await usage(dir)
  const ms = performance.now() - start
  const maxRssMiB = process.resourceUsage().maxRSS / 1024
  process.stdout.write(JSON.stringify({ files: result.set.files, ms, maxRssMiB }))
}

/** A 200,000-file tree of cloned 4 KiB files (so each has one shared extent): 1,000 files, cloned. */
function buildRssTree(dir: string): void {
  const seed = path.join(dir, 'c-0')
  fs.mkdirSync(seed)
  const block = Buffer.alloc(4 * KiB, 7)
  for (let i = 0; i < 1000; i++) fs.writeFileSync(path.join(seed, `f-${i}`), block)
  for (let c = 1; c < RSS_FILES / 1000; c++) run('cp', ['-a', '--reflink=always', seed, path.join(dir, `c-${c}`)])
}

export async function benchDu(): Promise<string> {
  const m = await mount('btrfs')
  const root = freshDir(m, 'du-bench')
  // The node_modules-like tree of the tree benchmark (bench/gen-tree.ts, the same seed).
  genTree(path.join(root, 'tree'), { files: FILES, seed: 20_000 })
  run('cp', ['-a', '--reflink=always', path.join(root, 'tree'), path.join(root, 'clone')])
  run('sync', [])

  const reference = btrfsDu(root)
  const fromCli = cliDu(root)
  const fromApi = (await usage(root)).set
  const times: Record<string, Timing[]> = { 'clonefile du -s': [], 'usage()': [], 'btrfs filesystem du -s': [], 'GNU du -s': [] }
  for (let i = 0; i < RUNS; i++) {
    times['btrfs filesystem du -s']!.push(await timed(() => btrfsDu(root)))
    times['clonefile du -s']!.push(await timed(() => cliDu(root)))
    times['usage()']!.push(await timed(() => usage(root)))
    times['GNU du -s']!.push(await timed(() => run('du', ['-s', root])))
  }
  const numbers: Record<string, string> = {
    'clonefile du -s': `${show(fromCli)} ${same(fromCli, reference) ? '(= btrfs)' : '(DIFFERS from btrfs)'}`,
    'usage()': `${show(fromApi)} ${same(fromApi, reference) ? '(= btrfs)' : '(DIFFERS from btrfs)'}`,
    'btrfs filesystem du -s': show(reference),
    'GNU du -s': `${run('du', ['-s', '-B1', root]).split('\t')[0]} allocated (counts clones twice)`,
  }
  const wall = (tool: string) => median(times[tool]!.map((t) => t.wall))
  const cpu = (tool: string) => median(times[tool]!.map((t) => t.cpu))
  const base = wall('btrfs filesystem du -s')
  const lines = [
    '## du',
    '',
    `On btrfs: ${FILES.toLocaleString('en-US')} files plus one reflink clone of them, median of ${RUNS} interleaved runs ` +
      `(${os.cpus().length} CPUs, load average ${os.loadavg()[0]?.toFixed(1)} at the end)`,
    '',
    '| tool | median wall ms | speed vs btrfs fi du | median CPU ms (user+sys, all threads) | total / exclusive / set shared (bytes) |',
    '|---|---:|---:|---:|---|',
    ...Object.keys(times).map((tool) =>
      `| ${tool} | ${wall(tool).toFixed(0)} | ${(base / wall(tool)).toFixed(2)}× | ${cpu(tool)} | ${numbers[tool]} |`),
  ]
  fs.rmSync(root, { recursive: true, force: true })

  const rssRoot = freshDir(m, 'du-rss')
  buildRssTree(rssRoot)
  run('sync', [])
  const rss = peakRss(rssRoot)
  fs.rmSync(rssRoot, { recursive: true, force: true })
  lines.push('', `usage() on ${rss.files.toLocaleString('en-US')} files: ${rss.ms.toFixed(0)} ms, peak RSS ${rss.maxRssMiB.toFixed(0)} MiB`)
  return `${lines.join('\n')}\n`
}

if (process.argv[1] === SELF) {
  if (process.argv[2] === '--rss-child') await rssChild(process.argv[3] ?? '.')
  else process.stdout.write(await benchDu())
}
