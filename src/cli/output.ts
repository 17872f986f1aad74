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
