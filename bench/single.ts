// Issue 2: one file. A 1 GiB copy against a clone (time and space), and the per-call cost of
// cloning a 4 KiB file, sync and async, against fs.copyFileSync(FICLONE_FORCE) and @reflink/reflink.
import { execFileSync } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import * as fs from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { reflinkFile, reflinkFileSync } from '@reflink/reflink'
import { clone, cloneSync } from '../src/index.js'
import type { TestMount } from '../test/helpers/mounts.js'
import type { BenchContext } from './stats.js'
import { fmtBytes, fmtMs, fmtRatio, fmtUs, freeBytes, median, pool, rotate, sync, table, verdict } from './stats.js'

const GiB = 1 << 30

interface BigRow {
  label: string
  ms: number[]
  msWithSync: number[]
  used: number[]
}

function writeRandomFile(path: string, size: number): void {
  const fd = fs.openSync(path, 'wx')
  const chunk = Buffer.allocUnsafe(64 << 20)
  try {
    for (let done = 0; done < size; done += chunk.length) fs.writeSync(fd, randomFillSync(chunk))
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

async function bigFile(ctx: BenchContext, m: TestMount): Promise<BigRow[]> {
  const work = fs.mkdtempSync(join(m.dir, 'big-'))
  const src = join(work, '1GiB.bin')
  ctx.log(`  ${m.kind}: writing a 1 GiB file`)
  writeRandomFile(src, GiB)
  const contenders: Array<{ label: string; run: (dst: string) => void }> = [
    { label: "cloneSync(…, {mode:'never'}) (copy)", run: (dst) => cloneSync(src, dst, { mode: 'never' }) },
    { label: 'cp --reflink=never (copy)', run: (dst) => execFileSync('cp', ['--reflink=never', src, dst]) },
    { label: 'cloneSync (clone)', run: (dst) => cloneSync(src, dst) },
  ]
  const rows: BigRow[] = contenders.map((c) => ({ label: c.label, ms: [], msWithSync: [], used: [] }))
  // Untimed, one each first: a loop image is a sparse file, and the first writes to a region of
  // it make the host allocate (seconds for 1 GiB); the filesystem does not hand freed blocks out
  // again at once, so without this whoever writes first in a round pays for it.
  for (const c of contenders) {
    const dst = join(work, 'warm.bin')
    c.run(dst)
    sync()
    fs.rmSync(dst)
    sync()
  }
  const rounds = ctx.quick ? 1 : 5
  for (let r = 0; r < rounds; r++) {
    for (const c of rotate(contenders, r)) {
      const row = rows[contenders.indexOf(c)] as BigRow
      const dst = join(work, 'dst.bin')
      const before = freeBytes(m.dir) // syncs
      const t0 = performance.now()
      c.run(dst)
      const t1 = performance.now()
      sync()
      const t2 = performance.now()
      row.ms.push(t1 - t0)
      row.msWithSync.push(t2 - t0)
      row.used.push(before - freeBytes(m.dir))
      fs.rmSync(dst)
      sync()
    }
  }
  fs.rmSync(work, { recursive: true })
  sync()
  return rows
}

type Sync = (src: string, dst: string) => unknown
type Async = (src: string, dst: string) => Promise<unknown>

const CALLS = 10_000

/** Per-call µs of each contender: rounds × (CALLS / rounds) calls, interleaved, fresh names. */
async function perCall<F>(ctx: BenchContext, m: TestMount, contenders: Array<{ label: string; fn: F }>,
  run: (fn: F, src: string, dsts: string[]) => Promise<void> | void): Promise<Map<string, number[]>> {
  const work = fs.mkdtempSync(join(m.dir, 'small-'))
  const src = join(work, 'src.bin')
  fs.writeFileSync(src, randomFillSync(Buffer.alloc(4096)))
  sync()
  const rounds = 5
  const calls = ctx.quick ? CALLS / 5 : CALLS
  const per = calls / rounds
  const out = new Map<string, number[]>(contenders.map((c) => [c.label, []]))
  const names = (dir: string, n: number) => Array.from({ length: n }, (_, i) => join(dir, `f${i}`))
  // Warm up: JIT, the addon's first load, directory caches.
  for (const [i, c] of contenders.entries()) {
    const dir = join(work, `warm${i}`)
    fs.mkdirSync(dir)
    await run(c.fn, src, names(dir, 200))
    fs.rmSync(dir, { recursive: true })
  }
  sync()
  for (let r = 0; r < rounds; r++) {
    for (const c of rotate(contenders, r)) {
      const dir = join(work, `r${r}`)
      fs.mkdirSync(dir)
      const dsts = names(dir, per)
      sync()
      const t = performance.now()
      await run(c.fn, src, dsts)
      const us = ((performance.now() - t) * 1000) / per
      out.get(c.label)?.push(us)
      fs.rmSync(dir, { recursive: true })
    }
  }
  fs.rmSync(work, { recursive: true })
  sync()
  return out
}

export async function benchSingle(ctx: BenchContext): Promise<string> {
  const kinds = [ctx.mounts.xfs, ctx.mounts.btrfs]
  const out: string[] = ['## Issue 2 — one file', '']

  // 1 GiB
  const big = new Map<string, BigRow[]>()
  for (const m of kinds) {
    ctx.log(`single: 1 GiB copy vs clone on ${m.kind}`)
    big.set(m.kind, await bigFile(ctx, m))
  }
  out.push(`### A 1 GiB file: copy vs clone (median of ${ctx.quick ? 1 : 5} interleaved rounds, after one untimed run of each)`, '')
  out.push('"time" is the call alone; "+ sync" adds the `sync` that writes the copy back. "space used" is the drop in statfs free space (after `sync`); the ratio is copy time ÷ clone time.', '')
  const bigRows: string[][] = []
  for (const m of kinds) {
    const rows = big.get(m.kind) ?? []
    const cloneRow = rows[2] as BigRow
    for (const row of rows) {
      const ratio = row === cloneRow ? '1×' : `${fmtRatio(median(row.ms) / median(cloneRow.ms))} (+ sync ${fmtRatio(median(row.msWithSync) / median(cloneRow.msWithSync))})`
      bigRows.push([m.kind, row.label, fmtMs(median(row.ms)), fmtMs(median(row.msWithSync)), fmtBytes(median(row.used)), ratio])
    }
  }
  out.push(table(['fs', 'method', 'time', '+ sync', 'space used', 'slower than clone'], bigRows), '')

  // 4 KiB × 10,000, sync
  const COPYFILE = fs.constants.COPYFILE_FICLONE_FORCE
  const syncContenders: Array<{ label: string; fn: Sync }> = [
    { label: 'cloneSync', fn: (s, d) => cloneSync(s, d) },
    { label: 'fs.copyFileSync(FICLONE_FORCE)', fn: (s, d) => fs.copyFileSync(s, d, COPYFILE) },
    { label: 'reflinkFileSync (@reflink/reflink)', fn: (s, d) => reflinkFileSync(s, d) },
    { label: "cloneSync({preserveOwner:false}) (info)", fn: (s, d) => cloneSync(s, d, { preserveOwner: false }) },
  ]
  const asyncContenders: Array<{ label: string; fn: Async }> = [
    { label: 'clone', fn: (s, d) => clone(s, d) },
    { label: 'reflinkFile (@reflink/reflink)', fn: (s, d) => reflinkFile(s, d) },
  ]
  const calls = ctx.quick ? CALLS / 5 : CALLS
  const syncRows: string[][] = []
  const asyncRows: string[][] = []
  const methods: string[] = []
  for (const m of kinds) {
    const dir = fs.mkdtempSync(join(m.dir, 'check-'))
    fs.writeFileSync(join(dir, 'a'), randomFillSync(Buffer.alloc(4096)))
    const r = cloneSync(join(dir, 'a'), join(dir, 'b'))
    methods.push(`${m.kind}: ${r.method}${r.fallback ? ` (${r.fallback.code})` : ''}`)
    fs.rmSync(dir, { recursive: true })
    ctx.log(`single: ${calls} × 4 KiB sync clones on ${m.kind}`)
    const s = await perCall(ctx, m, syncContenders, (fn, src, dsts) => {
      for (const d of dsts) fn(src, d)
    })
    const best = Math.min(median(s.get(syncContenders[1]!.label) ?? []), median(s.get(syncContenders[2]!.label) ?? []))
    for (const c of syncContenders) {
      const us = s.get(c.label) ?? []
      const r = median(us) / best
      const target = c.label === 'cloneSync' ? `≤ 1.15×: ${verdict(r, 1.15, '<=')}` : ''
      syncRows.push([m.kind, c.label, fmtUs(median(us)), `${fmtUs(Math.min(...us))}–${fmtUs(Math.max(...us))}`, fmtRatio(r), target])
    }
    ctx.log(`single: ${calls} × 4 KiB async clones (16 in flight) on ${m.kind}`)
    const a = await perCall(ctx, m, asyncContenders, (fn, src, dsts) => pool(dsts, 16, (d) => fn(src, d)))
    const ref = median(a.get(asyncContenders[1]!.label) ?? [])
    for (const c of asyncContenders) {
      const us = a.get(c.label) ?? []
      const r = median(us) / ref
      const target = c.label === 'clone' ? `≤ 1.0×: ${verdict(r, 1.0, '<=')}` : ''
      asyncRows.push([m.kind, c.label, fmtUs(median(us)), `${fmtUs(Math.min(...us))}–${fmtUs(Math.max(...us))}`, fmtRatio(r), target])
    }
  }
  out.push(`### Per call: a 4 KiB file cloned ${calls.toLocaleString('en')} times, synchronous`, '')
  out.push(`5 interleaved rounds of ${calls / 5} calls per contender, each into fresh names; destinations deleted (and \`sync\`) between rounds, outside the timing. Per-call time is the median over rounds; ratio to the faster of copyFileSync and reflinkFileSync. Note: cloneSync also copies mode, times, xattrs and owner; copyFileSync keeps the mode only; reflinkFileSync only clones. What cloneSync did with the 4 KiB file: ${methods.join(', ')}.`, '')
  out.push(table(['fs', 'call', 'per call', 'range over rounds', 'ratio', 'target'], syncRows), '')
  out.push(`### Per file: async, 16 in flight`, '')
  out.push(`Same rounds; ratio to reflinkFile.`, '')
  out.push(table(['fs', 'call', 'per file', 'range over rounds', 'ratio', 'target'], asyncRows), '')
  return out.join('\n')
}
