// npm run bench: every benchmark in one run, on loop-mounted XFS and btrfs (test/helpers/mounts),
// printed as one markdown report and written to bench/RESULTS.md. BENCH_QUICK=1 for a short run.
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { mount, useImageSize } from '../test/helpers/mounts.js'
import { benchDu } from './du.js'
import { benchDedupe } from './dedupe.js'
import { benchSingle } from './single.js'
import { benchSnapshot } from './snapshot.js'
import { benchTree } from './tree.js'
import type { BenchContext } from './stats.js'
import { fmtBytes, fmtMs, loadavg } from './stats.js'

const GiB = 1 << 30
/** The test mounts are 512 MiB; the 1 GiB file and the 200k-file tree need more. Made at
 * this size, not grown: a grown XFS keeps the small allocation groups of its first size. */
const SIZE = 8 * GiB

// dist/bench/run.js -> the repository root
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const quick = process.env.BENCH_QUICK === '1'
/** BENCH_ONLY=single,tree,du,dedupe runs only those sections, and leaves bench/RESULTS.md as it is. */
const only = process.env.BENCH_ONLY?.split(',')
const started = performance.now()
const log = (line: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`)

const sh = (tool: string, args: string[]) =>
  execFileSync(tool, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } })

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  const lines = [
    `- date: ${new Date().toISOString()}`,
    `- machine: ${os.availableParallelism()} CPUs (nproc ${sh('nproc', []).trim()}, ${cpu}), ${fmtBytes(os.totalmem())} RAM`,
    `- kernel: ${sh('uname', ['-r']).trim()}`,
    `- node: ${process.version}; ${sh('cp', ['--version']).split('\n')[0]}; ${quick ? 'BENCH_QUICK=1' : 'full run'}`,
  ]
  return lines.join('\n')
}

async function main(): Promise<void> {
  const loadBefore = loadavg()
  log(`bench: ${quick ? 'quick' : 'full'} run; mounting XFS and btrfs`)
  useImageSize(SIZE)
  const [xfs, btrfs] = await Promise.all([mount('xfs'), mount('btrfs')])
  const fsNotes = [
    `- filesystems: loop-mounted sparse images on the host's ${sh('stat', ['-f', '-c', '%T', os.tmpdir()]).trim()} (${os.tmpdir()}), made by test/helpers/mounts.ts at ${fmtBytes(SIZE)} with mkfs's default geometry (XFS: reflink=1, ${/agcount=(\d+)/.exec(sh('xfs_info', [xfs.dir]))?.[1] ?? '?'} allocation groups; btrfs: default options)`,
  ]
  const ctx: BenchContext = { mounts: { xfs, btrfs }, quick, repo, log }
  const sections: string[] = []
  const timings: string[] = []
  const section = async (name: string, fn: () => Promise<string | undefined>) => {
    if (only !== undefined && !only.includes(name)) return
    const t = performance.now()
    try {
      const s = await fn()
      if (s !== undefined) sections.push(s)
    } catch (e) {
      log(`${name} failed: ${(e as Error).stack ?? String(e)}`)
      sections.push(`## ${name}\n\nFAILED: ${(e as Error).message}\n`)
    }
    timings.push(`${name} ${fmtMs(performance.now() - t)}`)
  }
  await section('single', () => benchSingle(ctx))
  await section('tree', () => benchTree(ctx))
  await section('du', () => benchDu())
  await section('dedupe', () => benchDedupe(ctx))
  await section('snapshot', () => benchSnapshot(ctx))
  const report = [
    '# clonefile benchmarks',
    '',
    machine(),
    ...fsNotes,
    `- took: ${fmtMs(performance.now() - started)} (${timings.join(', ')})`,
    `- load average (1, 5, 15 min) at the start: ${loadBefore}; at the end: ${loadavg()} (the benchmark itself included; other work on this shared 2-CPU machine during the run makes the figures noisier)`,
    '',
    ...sections,
  ].join('\n')
  process.stdout.write(`${report}\n`)
  if (only !== undefined) {
    log(`bench: done (${only.join(', ')} only: bench/RESULTS.md left as it was)`)
    return
  }
  fs.writeFileSync(join(repo, 'bench', 'RESULTS.md'), `${report}\n`)
  log('bench: done; report written to bench/RESULTS.md')
}

await main()
