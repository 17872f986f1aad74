// Small helpers shared by the benchmarks: timing, medians, ratios and markdown tables.
import { execFileSync } from 'node:child_process'
import { statfsSync } from 'node:fs'
import * as os from 'node:os'
import { performance } from 'node:perf_hooks'
import type { TestMount } from '../test/helpers/mounts.js'

/** What every benchmark section gets from bench/run.ts. */
export interface BenchContext {
  /** loop-mounted, grown test filesystems */
  mounts: { xfs: TestMount; btrfs: TestMount }
  /** BENCH_QUICK=1: fewer rounds, no 200k-file tree */
  quick: boolean
  /** the repository root (bin/clonefile.js lives under it) */
  repo: string
  /** progress lines go here (stderr), never into the report */
  log: (line: string) => void
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

export function min(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : Math.min(...xs)
}

export function max(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : Math.max(...xs)
}

/** Milliseconds taken by a synchronous function. */
export function timeSync(fn: () => void): number {
  const t = performance.now()
  fn()
  return performance.now() - t
}

/** Milliseconds taken by an asynchronous function. */
export async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now()
  await fn()
  return performance.now() - t
}

export function sync(): void {
  execFileSync('sync', { stdio: 'ignore' })
}

const pause = new Int32Array(new SharedArrayBuffer(4))

/**
 * Free bytes for an unprivileged user, after writing back what is pending and once the figure
 * stops moving: XFS frees a deleted file's blocks later, in the background (inode GC), so a
 * file removed just before would otherwise show up as space a clone "gave back".
 */
export function freeBytes(dir: string): number {
  sync()
  const read = () => {
    const s = statfsSync(dir)
    return s.bavail * s.bsize
  }
  let last = read()
  // Settled: the same figure 200 ms running, or give up after 5 s.
  for (let i = 0, same = 0; i < 100 && same < 4; i++) {
    Atomics.wait(pause, 0, 0, 50)
    const now = read()
    same = now === last ? same + 1 : 0
    last = now
  }
  return last
}

/** Rotates the contenders so that none always runs first (or right after a given other). */
export function rotate<T>(xs: readonly T[], round: number): T[] {
  const k = xs.length === 0 ? 0 : round % xs.length
  return [...xs.slice(k), ...xs.slice(0, k)]
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a'
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`
  if (ms >= 100) return `${ms.toFixed(0)} ms`
  if (ms >= 10) return `${ms.toFixed(1)} ms`
  return `${ms.toFixed(2)} ms`
}

export function fmtUs(us: number): string {
  if (!Number.isFinite(us)) return 'n/a'
  return us >= 100 ? `${us.toFixed(0)} µs` : `${us.toFixed(1)} µs`
}

export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return 'n/a'
  return r >= 10 ? `${r.toFixed(1)}×` : `${r.toFixed(2)}×`
}

export function fmtBytes(n: number): string {
  if (!Number.isFinite(n)) return 'n/a'
  const sign = n < 0 ? '-' : ''
  let v = Math.abs(n)
  if (v < 1024) return `${sign}${v} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let u = -1
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${sign}${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`
}

/** 'met' / 'MISSED' against a bound on a ratio. */
export function verdict(value: number, bound: number, sense: '<=' | '>='): string {
  if (!Number.isFinite(value)) return 'n/a'
  const ok = sense === '<=' ? value <= bound : value >= bound
  return ok ? 'met' : '**MISSED**'
}

/** A markdown table; cells of right-aligned columns are numbers or times. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('l' | 'r')[]): string {
  const a = headers.map((_, i) => align?.[i] ?? (i === 0 ? 'l' : 'r'))
  const line = (cells: readonly string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`
  const sep = `|${a.map((x) => (x === 'r' ? '---:' : ':---')).join('|')}|`
  return [line(headers), sep, ...rows.map((r) => line(headers.map((_, i) => r[i] ?? '')))].join('\n')
}

/** Runs fn over items with at most `limit` promises in flight. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T
      await fn(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/** The 1-, 5- and 15-minute load averages, for judging how quiet the machine was. */
export function loadavg(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ')
}
