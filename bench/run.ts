// npm run bench: every benchmark in one run, on loop-mounted XFS and btrfs (test/helpers/mounts),
// printed as one markdown report and written to bench/RESULTS.md. BENCH_QUICK=1 for a short run.
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { mount } from '../test/helpers/mounts.js'
import type { TestMount } from '../test/helpers/mounts.js'
import { benchSingle } from './single.js'
import { benchTree } from './tree.js'
import type { BenchContext } from './stats.js'
import { fmtBytes, fmtMs, loadavg } from './stats.js'

const GiB = 1 << 30
/** The test mounts are 512 MiB; the 1 GiB file and the 200k-file tree need more. */
const SIZE = 8 * GiB

// dist/bench/run.js -> the repository root
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const quick = process.env.BENCH_QUICK === '1'
const started = performance.now()
const log = (line: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`)

const sh = (tool: string, args: string[]) =>
  execFileSync(tool, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } })

/** Grows a test mount in place: its sparse image, the loop device, then the filesystem. */
function grow(m: TestMount): void {
  const image = join(dirname(m.dir), `${m.kind}.img`)
  if (m.device === undefined || !fs.existsSync(image)) throw new Error(`cannot find the image of the ${m.kind} mount`)
  fs.truncateSync(image, SIZE)
  sh('losetup', ['-c', m.device])
  if (m.kind === 'xfs') sh('xfs_growfs', [m.dir])
  else sh('btrfs', ['filesystem', 'resize', 'max', m.dir])
}

/** bench/du.ts belongs to someone else and may not exist yet. */
async function duSection(ctx: BenchContext): Promise<string | undefined> {
  const spec = './du.js'
  let mod: { benchDu?: unknown }
  try {
    mod = (await import(spec)) as { benchDu?: unknown }
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && !fs.existsSync(join(dirname(fileURLToPath(import.meta.url)), 'du.js'))) return undefined
    return `## du\n\nbench/du.ts failed to load: ${(e as Error).message}\n`
  }
  if (typeof mod.benchDu !== 'function') return '## du\n\nbench/du.ts does not export a function benchDu.\n'
  try {
    const r: unknown = await (mod.benchDu as (c: BenchContext) => unknown)(ctx)
    if (typeof r === 'string') return r
    if (r && typeof r === 'object' && typeof (r as { markdown?: unknown }).markdown === 'string') return (r as { markdown: string }).markdown
    return r === undefined ? undefined : `## du\n\n\`\`\`\n${JSON.stringify(r, null, 2)}\n\`\`\`\n`
  } catch (e) {
    return `## du\n\nbenchDu failed: ${(e as Error).stack ?? String(e)}\n`
  }
}

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
  const [xfs, btrfs] = await Promise.all([mount('xfs'), mount('btrfs')])
  for (const m of [xfs, btrfs]) grow(m)
  const fsNotes = [
    `- filesystems: loop-mounted sparse images on the host's ${sh('stat', ['-f', '-c', '%T', os.tmpdir()]).trim()} (${os.tmpdir()}), made by test/helpers/mounts.ts at 512 MiB and grown to ${fmtBytes(SIZE)} (xfs_growfs, btrfs filesystem resize); XFS with reflink=1, btrfs with default mkfs options`,
  ]
  const ctx: BenchContext = { mounts: { xfs, btrfs }, quick, repo, log }
  const sections: string[] = []
  const timings: string[] = []
  const section = async (name: string, fn: () => Promise<string | undefined>) => {
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
  await section('du', () => duSection(ctx))
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
  fs.writeFileSync(join(repo, 'bench', 'RESULTS.md'), `${report}\n`)
  log('bench: done; report written to bench/RESULTS.md')
}

await main()
