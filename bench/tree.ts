// Issue 3: whole trees. cloneTree against cp -a --reflink=always, fs.cpSync / fs.promises.cp with
// COPYFILE_FICLONE_FORCE, a @reflink/reflink walk and (when gcc is there) a C floor, on a
// generated node_modules-like tree; concurrency 1–8; a 200k-file tree in a child process.
import { execFileSync, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as fsp from 'node:fs/promises'
import * as os from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { reflinkFile } from '@reflink/reflink'
import { cloneTree } from '../src/index.js'
import * as cfs from '../src/fs.js'
import type { TreeResult } from '../src/index.js'
import { mount, type TestMount } from '../test/helpers/mounts.js'
import { genTree } from './gen-tree.js'
import type { GenStats } from './gen-tree.js'
import type { BenchContext } from './stats.js'
import { fmtBytes, fmtMs, fmtRatio, loadavg, max, median, min, rotate, sync, table, verdict } from './stats.js'

const SEED = 20_000
const FICLONE_FORCE = fs.constants.COPYFILE_FICLONE_FORCE

interface Contender {
  label: string
  run: (src: string, dst: string) => Promise<unknown> | unknown
}

function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0
  const waiting: Array<() => void> = []
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve))
    else active++
    try {
      return await fn()
    } finally {
      const next = waiting.shift()
      if (next !== undefined) next()
      else active--
    }
  }
}

/** What a user of @reflink/reflink writes: a walk, mkdir, symlink, reflinkFile; 16 in flight. */
async function reflinkWalk(src: string, dst: string): Promise<void> {
  const limit = limiter(16)
  const walk = async (s: string, d: string): Promise<void> => {
    const entries = await limit(async () => {
      await fsp.mkdir(d)
      return fsp.readdir(s, { withFileTypes: true })
    })
    await Promise.all(entries.map((e) => {
      const sp = join(s, e.name)
      const dp = join(d, e.name)
      if (e.isDirectory()) return walk(sp, dp)
      if (e.isSymbolicLink()) return limit(async () => fsp.symlink(await fsp.readlink(sp), dp))
      return limit(() => reflinkFile(sp, dp))
    }))
  }
  await walk(src, dst)
}

function countEntries(dir: string): number {
  return fs.readdirSync(dir, { recursive: true }).length
}

function rmTree(dir: string): void {
  execFileSync('rm', ['-rf', dir])
}

const here = fileURLToPath(import.meta.url)

/** gcc -O2 bench/floor.c, or undefined when that is not possible. */
function buildFloor(ctx: BenchContext): string | undefined {
  const source = join(ctx.repo, 'bench', 'floor.c')
  const out = join(ctx.repo, 'dist', 'bench', 'floor')
  try {
    execFileSync('gcc', ['-O2', '-pthread', '-o', out, source], { stdio: ['ignore', 'ignore', 'pipe'] })
    return out
  } catch (e) {
    ctx.log(`tree: no C floor (${(e as Error).message.split('\n')[0]})`)
    return undefined
  }
}

/** Whether `clonefile cp -a SRC DST` works here: it may not exist yet. */
function cliCanCopyTrees(ctx: BenchContext, m: TestMount): boolean {
  const work = fs.mkdtempSync(join(m.dir, 'cli-check-'))
  try {
    const src = join(work, 'src')
    fs.mkdirSync(join(src, 'sub'), { recursive: true })
    fs.writeFileSync(join(src, 'sub', 'f'), 'hello')
    fs.symlinkSync('sub/f', join(src, 'link'))
    const r = spawnSync(process.execPath, [join(ctx.repo, 'bin', 'clonefile.js'), 'cp', '-a', src, join(work, 'dst')], { encoding: 'utf8' })
    const ok = r.status === 0 && fs.readFileSync(join(work, 'dst', 'sub', 'f'), 'utf8') === 'hello' &&
      fs.readlinkSync(join(work, 'dst', 'link')) === 'sub/f'
    if (!ok) ctx.log(`tree: CLI cp -a does not work yet (status ${r.status}: ${(r.stderr || '').trim().split('\n')[0]})`)
    return ok
  } catch (e) {
    ctx.log(`tree: CLI cp -a does not work yet (${(e as Error).message.split('\n')[0]})`)
    return false
  } finally {
    rmTree(work)
  }
}

interface Measured {
  label: string
  ms: number[]
  note: string
}

/** Round-robin rounds, each run into an empty destination after a sync; deletes untimed. */
async function rounds(ctx: BenchContext, work: string, src: string, contenders: Contender[], n: number, what: string): Promise<Measured[]> {
  const out: Measured[] = contenders.map((c) => ({ label: c.label, ms: [], note: '' }))
  const expected = countEntries(src)
  const dst = join(work, 'dst')
  for (let r = 0; r < n; r++) {
    ctx.log(`  ${what}: round ${r + 1}/${n}`)
    for (const c of rotate(contenders, r)) {
      const m = out[contenders.indexOf(c)] as Measured
      sync()
      const t = performance.now()
      const result = await c.run(src, dst)
      m.ms.push(performance.now() - t)
      if (r === 0) {
        const got = countEntries(dst)
        if (got !== expected) m.note = `**${got} of ${expected} entries**`
        const tr = result as TreeResult | undefined
        if (tr?.copied !== undefined && tr.copied.files > 0) m.note += ` ${tr.copied.files} files copied, not cloned`
      }
      rmTree(dst)
    }
  }
  sync()
  return out
}

const describe = (g: GenStats) =>
  `${g.files.toLocaleString('en')} files + ${g.symlinks} symlinks in ${g.directories.toLocaleString('en')} directories (${g.packages} packages), ${fmtBytes(g.bytes)}, ${g.bigFiles} files ≥ 0.5 MiB`

interface ChildResult {
  ms: number
  maxRssKiB: number
  files: number
  copied: number
}

function runChild(args: string[]): ChildResult {
  const r = spawnSync(process.execPath, [here, '--child', ...args], { encoding: 'utf8', maxBuffer: 1 << 20 })
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as ChildResult
}

export async function benchTree(ctx: BenchContext): Promise<string> {
  const kinds = [ctx.mounts.xfs, ctx.mounts.btrfs]
  const out: string[] = ['## Issue 3 — trees', '']
  const floor = buildFloor(ctx)
  const nRounds = ctx.quick ? 3 : 7
  const bin = join(ctx.repo, 'bin', 'clonefile.js')
  const libUrl = pathToFileURL(join(ctx.repo, 'dist', 'src', 'index.js')).href
  const cli = cliCanCopyTrees(ctx, ctx.mounts.xfs)
  const contenders: Contender[] = [
    { label: 'cloneTree', run: (s, d) => cloneTree(s, d) },
    ...(cli ? [{ label: 'clonefile cp -a (CLI)', run: (s: string, d: string) => execFileSync(process.execPath, [bin, 'cp', '-a', s, d]) }] : []),
    // What the CLI costs beyond node itself: the same call from a script in a fresh process.
    { label: 'cloneTree from `node script.js`', run: (s, d) => execFileSync(process.execPath, ['--input-type=module', '-e', `import { cloneTree } from ${JSON.stringify(libUrl)}; await cloneTree(process.argv[1], process.argv[2])`, s, d]) },
    { label: 'cp -a --reflink=always', run: (s, d) => execFileSync('cp', ['-a', '--reflink=always', s, d]) },
    { label: 'fs.cpSync(FICLONE_FORCE)', run: (s, d) => fs.cpSync(s, d, { recursive: true, mode: FICLONE_FORCE }) },
    { label: 'fs.promises.cp(FICLONE_FORCE)', run: (s, d) => fsp.cp(s, d, { recursive: true, mode: FICLONE_FORCE }) },
    // Issue 15: the drop-in fs.cp, with the options of the node:fs rows above.
    { label: 'clonefile/fs cpSync', run: (s, d) => cfs.cpSync(s, d, { recursive: true, mode: FICLONE_FORCE }) },
    { label: 'clonefile/fs promises.cp', run: (s, d) => cfs.promises.cp(s, d, { recursive: true, mode: FICLONE_FORCE }) },
    { label: 'reflinkFile walk, 16 in flight', run: (s, d) => reflinkWalk(s, d) },
    ...(floor ? [{ label: 'C floor (FICLONE+futimens, 2 threads)', run: (s: string, d: string) => execFileSync(floor, [s, d, '2']) }] : []),
  ]

  const sources = new Map<string, { work: string; src: string; gen: GenStats }>()
  const results = new Map<string, Measured[]>()
  const loads: string[] = []
  for (const m of kinds) {
    const work = fs.mkdtempSync(join(m.dir, 'tree-'))
    const src = join(work, 'src')
    ctx.log(`tree: generating 20k files on ${m.kind}`)
    const gen = genTree(src, { files: 20_000, seed: SEED })
    sync()
    sources.set(m.kind, { work, src, gen })
    // Warm up (untimed): JIT, the addon, the source's inodes and dentries.
    for (const c of contenders.filter((c) => c.label === 'cloneTree' || c.label.startsWith('cp -a'))) {
      await c.run(src, join(work, 'dst'))
      rmTree(join(work, 'dst'))
    }
    const load = loadavg()
    results.set(m.kind, await rounds(ctx, work, src, contenders, nRounds, `tree 20k on ${m.kind}`))
    loads.push(`${m.kind} ${load} → ${loadavg()}`)
  }

  const g = sources.get('xfs')?.gen
  out.push(`### 20k-file tree: each contender from an empty destination (median of ${nRounds} interleaved rounds)`, '')
  if (g) out.push(`Tree (seed ${SEED}): ${describe(g)}. \`sync\` before each run; deleting the copy is not timed.`, '')
  out.push(`Targets are judged on the medians. Load average (1, 5, 15 min) before → after the rounds (other work on this machine adds noise): ${loads.join('; ')}.`, '')
  if (!cli) out.push('The CLI row is n/a: `clonefile cp -a SRC DST` did not work when this ran.', '')
  const rows: string[][] = []
  for (const m of kinds) {
    const ms = results.get(m.kind) ?? []
    const get = (label: string) => median(ms.find((x) => x.label === label)?.ms ?? [])
    const cpA = get('cp -a --reflink=always')
    const lib = get('cloneTree')
    const promisesCp = get('fs.promises.cp(FICLONE_FORCE)')
    const bound = m.kind === 'xfs' ? 0.85 : 1.0
    for (const x of ms) {
      const med = median(x.ms)
      let target = ''
      if (x.label === 'cloneTree') {
        target = `≤ ${bound.toFixed(2)}× cp -a: ${verdict(med / cpA, bound, '<=')}; ${fmtRatio(promisesCp / med)} faster than fs.promises.cp (≥ 10×: ${verdict(promisesCp / med, 10, '>=')})`
      } else if (x.label === 'clonefile/fs promises.cp') {
        target = `${fmtRatio(med / promisesCp)} of fs.promises.cp (≤ 0.2×: ${verdict(med / promisesCp, 0.2, '<=')})`
      } else if (x.label === 'clonefile/fs cpSync') {
        const cpSync = get('fs.cpSync(FICLONE_FORCE)')
        target = `${fmtRatio(med / cpSync)} of fs.cpSync (≤ 0.6×: ${verdict(med / cpSync, 0.6, '<=')})`
      } else if (x.label.startsWith('clonefile cp -a')) {
        const script = get('cloneTree from `node script.js`')
        target = `${fmtRatio(med / lib)} of cloneTree (≤ 1.10×: ${verdict(med / lib, 1.1, '<=')}); ${fmtRatio(med / script)} of cloneTree from a script in a fresh node process`
      }
      const best = fmtRatio(min(x.ms) / min(ms.find((y) => y.label === 'cp -a --reflink=always')?.ms ?? []))
      rows.push([m.kind, x.label, fmtMs(med), `${fmtMs(min(x.ms))}–${fmtMs(max(x.ms))}`, fmtRatio(med / cpA), best, [target, x.note].filter(Boolean).join(' ')])
    }
    if (!cli) rows.splice(rows.length - ms.length + 1, 0, [m.kind, 'clonefile cp -a (CLI)', 'n/a (CLI -a missing)', '', '', '', ''])
  }
  out.push(table(['fs', 'contender', 'median', 'range', 'vs cp -a', 'best vs best cp -a', 'targets / notes'], rows), '')
  out.push('Notes: cp -a, cloneTree and the CLI keep modes, times, owners and xattrs; fs.cp keeps modes only (no times); the reflink walk and the floor keep no metadata beyond what FICLONE gives (the floor sets mode and file times). The CLI row includes starting node (see the `node -e 0` figure below); so does the \`node script.js\` row, a script that imports the library and calls cloneTree: what the CLI costs beyond that is its own.', '')
  const nodeStart = median(Array.from({ length: 5 }, () => {
    const t = performance.now()
    execFileSync(process.execPath, ['-e', '0'])
    return performance.now() - t
  }))
  out.push(`Starting a bare \`node -e 0\`: ${fmtMs(nodeStart)}.`, '')

  // Concurrency, on both filesystems: the defaults are chosen from these.
  for (const m of kinds) {
    const s = sources.get(m.kind)
    if (!s) continue
    ctx.log(`tree: cloneTree concurrency 1, 2, 3, 4, 8 on ${m.kind}`)
    const levels = [1, 2, 3, 4, 8]
    const cs: Contender[] = levels.map((c) => ({ label: `concurrency ${c}`, run: (a, b) => cloneTree(a, b, { concurrency: c }) }))
    const n = ctx.quick ? 2 : 3
    const res = await rounds(ctx, s.work, s.src, cs, n, `concurrency on ${m.kind}`)
    const base = median(res[0]?.ms ?? [])
    const cpus = Math.min(4, os.availableParallelism())
    const chosen = m.kind === 'btrfs' ? Math.min(2, cpus) : cpus
    out.push(`### cloneTree concurrency on ${m.kind}, 20k-file tree (median of ${n} interleaved rounds; the default here is ${chosen}: ${m.kind === 'btrfs' ? 'one per CPU, at most 2 on btrfs' : 'one per CPU, at most 4'})`, '')
    out.push(table(['concurrency', 'median', 'range', 'vs concurrency 1'], res.map((x) => [x.label.replace('concurrency ', ''), fmtMs(median(x.ms)), `${fmtMs(min(x.ms))}–${fmtMs(max(x.ms))}`, fmtRatio(median(x.ms) / base)])), '')
  }
  for (const s of sources.values()) rmTree(s.work)
  sync()
  out.push(...(await fsOnExt4(ctx, nRounds)))

  // 200k files, in a child process for its peak RSS
  if (ctx.quick) {
    out.push('### 200k-file tree', '', 'Skipped (BENCH_QUICK=1).', '')
    return out.join('\n')
  }
  const idle = runChild(['--idle'])
  const bigRows: string[][] = []
  let bigGen: GenStats | undefined
  for (const m of kinds) {
    const work = fs.mkdtempSync(join(m.dir, 'tree200k-'))
    const src = join(work, 'src')
    ctx.log(`tree: generating 200k files on ${m.kind}`)
    bigGen = genTree(src, { files: 200_000, seed: SEED })
    sync()
    const dst = join(work, 'dst')
    const lib: ChildResult[] = []
    const cp: number[] = []
    for (let r = 0; r < 2; r++) {
      ctx.log(`  tree 200k on ${m.kind}: round ${r + 1}/2`)
      for (const which of rotate(['lib', 'cp'], r)) {
        sync()
        if (which === 'lib') lib.push(runChild([src, dst]))
        else {
          const t = performance.now()
          execFileSync('cp', ['-a', '--reflink=always', src, dst])
          cp.push(performance.now() - t)
        }
        rmTree(dst)
      }
    }
    rmTree(work)
    sync()
    const libMs = median(lib.map((x) => x.ms))
    const copied = lib.reduce((a, x) => a + x.copied, 0)
    bigRows.push([m.kind, fmtMs(libMs), fmtMs(median(cp)), fmtRatio(libMs / median(cp)),
      fmtBytes(max(lib.map((x) => x.maxRssKiB)) * 1024), copied > 0 ? `${copied} files copied` : ''])
  }
  out.push('### 200k-file tree: cloneTree in a child process (median of 2 rounds, interleaved with cp -a)', '')
  if (bigGen) out.push(`Tree (seed ${SEED}): ${describe(bigGen)}. Peak RSS is \`process.resourceUsage().maxRSS\` in the child; a child that only loads the library peaks at ${fmtBytes(idle.maxRssKiB * 1024)}. cloneTree's time is measured inside the child (no node start-up).`, '')
  out.push(table(['fs', 'cloneTree', 'cp -a --reflink=always', 'vs cp -a', 'peak RSS', 'notes'], bigRows), '')
  return out.join('\n')
}

/**
 * Issue 15 where nothing can be cloned (ext4): clonefile/fs copies, as node:fs does, and must
 * be no slower (≤ 1.0×). Both with Node's default options (mode 0: a copy, no clone attempted
 * by node:fs; clonefile/fs tries once per filesystem and then copies).
 */
async function fsOnExt4(ctx: BenchContext, nRounds: number): Promise<string[]> {
  const m = await mount('ext4')
  const work = fs.mkdtempSync(join(m.dir, 'tree-'))
  const src = join(work, 'src')
  ctx.log('tree: generating 20k files on ext4')
  const gen = genTree(src, { files: 20_000, seed: SEED })
  sync()
  const o = { recursive: true }
  const contenders: Contender[] = [
    { label: 'fs.cpSync', run: (s, d) => fs.cpSync(s, d, o) },
    { label: 'clonefile/fs cpSync', run: (s, d) => cfs.cpSync(s, d, o) },
    { label: 'fs.promises.cp', run: (s, d) => fsp.cp(s, d, o) },
    { label: 'clonefile/fs promises.cp', run: (s, d) => cfs.promises.cp(s, d, o) },
  ]
  for (const c of contenders) {
    await c.run(src, join(work, 'dst'))
    rmTree(join(work, 'dst'))
  }
  const load = loadavg()
  const res = await rounds(ctx, work, src, contenders, nRounds, 'clonefile/fs on ext4')
  const loads = `${load} → ${loadavg()}`
  rmTree(work)
  sync()
  const get = (label: string) => median(res.find((x) => x.label === label)?.ms ?? [])
  const rows = res.map((x) => {
    const reference = x.label.startsWith('clonefile/fs') ? get(x.label.replace('clonefile/fs ', 'fs.')) : NaN
    const ratio = median(x.ms) / reference
    return [x.label, fmtMs(median(x.ms)), `${fmtMs(min(x.ms))}–${fmtMs(max(x.ms))}`, Number.isNaN(ratio) ? '' : `${fmtRatio(ratio)} of node:fs (≤ 1.0×: ${verdict(ratio, 1.0, '<=')})`, x.note]
  })
  return [
    `### clonefile/fs on ext4 (no cloning): the 20k-file tree copied (median of ${nRounds} interleaved rounds)`,
    '',
    `Tree (seed ${SEED}): ${describe(gen)}. Node's default options (\`{ recursive: true }\`, mode 0) for both. Load average before → after: ${loads}.`,
    '',
    table(['contender', 'median', 'range', 'target', 'notes'], rows),
    '',
  ]
}

// Child mode: node dist/bench/tree.js --child SRC DST [CONCURRENCY] | --child --idle
if (process.argv[2] === '--child' && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[3] === '--idle') {
    process.stdout.write(`${JSON.stringify({ ms: 0, maxRssKiB: process.resourceUsage().maxRSS, files: 0, copied: 0 })}\n`)
  } else {
    const [src, dst, conc] = process.argv.slice(3) as [string, string, string | undefined]
    const t = performance.now()
    const r = await cloneTree(src, dst, conc === undefined ? {} : { concurrency: Number(conc) })
    const ms = performance.now() - t
    process.stdout.write(`${JSON.stringify({ ms, maxRssKiB: process.resourceUsage().maxRSS, files: r.files, copied: r.copied.files })}\n`)
  }
}
