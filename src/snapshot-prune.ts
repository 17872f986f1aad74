// Which snapshots a retention policy keeps (restic/borg style): the newest `keepLast`, and for
// each period the newest snapshot of each of the newest N periods that have one. Periods are
// counted in UTC; a week is an ISO week. Kept by any rule is kept.
import type { PruneResult, Snapshot } from './types.js'

export interface Keep {
  keepLast: number
  keepHourly: number
  keepDaily: number
  keepWeekly: number
  keepMonthly: number
}

const pad = (n: number): string => String(n).padStart(2, '0')

/** ISO 8601 week of a UTC date: `2026-W49`. */
export function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()))
  const day = t.getUTCDay() || 7
  t.setUTCDate(t.getUTCDate() + 4 - day) // the Thursday of this week decides its year
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1)
  const week = Math.ceil(((t.getTime() - yearStart) / 86400000 + 1) / 7)
  return `${t.getUTCFullYear()}-W${pad(week)}`
}

const periods: Array<[keyof Keep, (d: Date) => string]> = [
  ['keepHourly', (d) => d.toISOString().slice(0, 13)],
  ['keepDaily', (d) => d.toISOString().slice(0, 10)],
  ['keepWeekly', isoWeek],
  ['keepMonthly', (d) => d.toISOString().slice(0, 7)],
]

/** `snapshots` oldest first (as listSnapshots gives them); both lists come back oldest first. */
export function planPrune(snapshots: Snapshot[], keep: Keep): PruneResult {
  const newest = [...snapshots].reverse()
  const kept = new Set<Snapshot>(newest.slice(0, keep.keepLast))
  for (const [rule, period] of periods) {
    const seen = new Set<string>()
    for (const s of newest) {
      if (seen.size >= keep[rule]) break
      const key = period(s.created)
      if (seen.has(key)) continue
      seen.add(key)
      kept.add(s)
    }
  }
  return { kept: snapshots.filter((s) => kept.has(s)), removed: snapshots.filter((s) => !kept.has(s)) }
}
