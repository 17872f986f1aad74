import type { Usage } from '../types.js'

/** Bad usage: exit status 2. */
export class UsageError extends Error {
  code = 'ERR_USAGE'
}

/** One line for stderr, with the error's code. */
export function errorLine(e: unknown): string {
  if (!(e instanceof Error)) return String(e)
  const code = (e as { code?: string }).code
  const message = e.message.split('\n')[0] ?? ''
  return code === undefined || message.includes(code) ? message : `${message} (${code})`
}

export function writeJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** 1536 -> '1.5 KiB' */
export function humanBytes(n: number): string {
  let i = 0
  let v = Math.abs(n)
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  const digits = i === 0 || v >= 100 ? 0 : 1
  return `${n < 0 ? '-' : ''}${v.toFixed(digits)} ${units[i]}`
}

/** `20,000 files · 195 MiB referenced · 97.5 MiB on disk · sharing saves 97.5 MiB (50%)` */
export function summaryLine(set: Usage, skipped: number): string {
  const files = `${set.files.toLocaleString('en-US')} file${set.files === 1 ? '' : 's'}`
  const parts = [files, `${humanBytes(set.total)} referenced`]
  if (!Number.isNaN(set.onDisk)) {
    const percent = set.total === 0 ? 0 : Math.round((set.saved / set.total) * 100)
    parts.push(`${humanBytes(set.onDisk)} on disk`, `sharing saves ${humanBytes(set.saved)} (${percent}%)`)
  }
  if (skipped > 0) parts.push(`${skipped.toLocaleString('en-US')} vanished during the scan`)
  return `${parts.join(' · ')}\n`
}
