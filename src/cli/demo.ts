import { execFile } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { mkdtempSync, rmSync, statfsSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { clone } from '../clone.js'
import { probeSync } from '../probe.js'
import { UsageError, humanBytes, summaryLine } from './output.js'
import { parseCommand } from './argv.js'
import { interruptible } from './interrupt.js'

const HELP = `Usage: clonefile demo [--size N] [DIR]

Make a 1 GiB file in DIR (default: the current directory), then time a plain copy and a clone
of it and show the free space before and after each. Everything is removed afterwards.

  --size N   the file's size in MiB instead of 1024
`

const HOW_TO_GET_ONE = `To try it on a filesystem that clones (Linux, as root):
  truncate -s 4G /tmp/xfs.img && mkfs.xfs -m reflink=1 /tmp/xfs.img
  mkdir -p /mnt/xfs && mount -o loop /tmp/xfs.img /mnt/xfs && clonefile demo /mnt/xfs
On macOS any APFS volume clones; on Windows a ReFS volume or a Dev Drive.
`

// Everything below is asynchronous, in steps short enough that a Ctrl-C is handled at once:
// the handler removes the demo's files (a copy in flight is nameless and dies with the process).

async function freeBytes(dir: string): Promise<number> {
  // Delayed allocation and btrfs transactions show in statfs only once written back.
  try {
    await promisify(execFile)('sync')
  } catch {
    // no sync(1) here: the figures may lag a little
  }
  const s = statfsSync(dir)
  return s.bavail * s.bsize
}

async function writeRandomFile(path: string, size: number): Promise<void> {
  const file = await open(path, 'wx')
  const chunk = Buffer.allocUnsafe(Math.min(size, 8 << 20))
  try {
    for (let done = 0; done < size; done += chunk.length) await file.write(randomFillSync(chunk), 0, Math.min(chunk.length, size - done))
  } finally {
    await file.close()
  }
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint()
  await run()
  return Number(process.hrtime.bigint() - start) / 1e6
}

export async function demo(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    help: { type: 'boolean', short: 'h', default: false },
    size: { type: 'string', default: '1024' },
  })
  if (values.help) {
    process.stdout.write(HELP)
    return 0
  }
  const mib = Number(values.size)
  if (!Number.isInteger(mib) || mib < 1) throw new UsageError(`invalid --size '${values.size}': a whole number of MiB`)
  const size = mib * (1 << 20)
  const dir = resolve(positionals[0]?.toString() ?? '.')
  const p = probeSync(dir)
  if (!p.clone) {
    process.stdout.write(`${dir} is on ${p.filesystem}, which cannot clone here (${p.reason ?? 'unknown'}).\n${HOW_TO_GET_ONE}`)
    return 1
  }
  const free = await freeBytes(dir)
  if (free < size * 2.2) {
    process.stdout.write(`${dir} needs about ${humanBytes(size * 2.2)} free for the demo; it has ${humanBytes(free)}.\n`)
    return 1
  }
  const work = mkdtempSync(join(dir, '.clonefile-demo-'))
  const removeWork = () => rmSync(work, { recursive: true, force: true })
  const interrupt = interruptible(() => {
    removeWork()
    return 'now'
  })
  try {
    process.stdout.write(`Writing a ${humanBytes(size)} file of random bytes in ${dir} (${p.filesystem})...\n`)
    await experiment(dir, work, size)
  } finally {
    interrupt.done()
    removeWork()
  }
  return 0
}

async function experiment(dir: string, work: string, size: number): Promise<void> {
  const original = join(work, 'original.bin')
  await writeRandomFile(original, size)
  const rows: string[][] = []
  for (const [label, mode] of [['copy', 'never'], ['clone', 'always']] as const) {
    const before = await freeBytes(dir)
    const ms = await timed(() => clone(original, join(work, `${label}.bin`), { mode }))
    const used = before - (await freeBytes(dir))
    rows.push([label, `${ms.toFixed(1)} ms`, humanBytes(before), humanBytes(before - used), humanBytes(Math.max(used, 0))])
  }
  const [copy, cloned] = rows.map((r) => Number.parseFloat(r[1] ?? '0'))
  printTable([['', 'time', 'free before', 'free after', 'space used'], ...rows])
  process.stdout.write(`\nThe clone was ${((copy ?? 0) / Math.max(cloned ?? 1, 0.001)).toFixed(0)}x faster and took no space: ` +
    'both files share the same blocks until one of them is written.\n')
  process.stdout.write(await sharing(original, join(work, 'clone.bin')))
}

/** `du` counts the clone in full; what the two files really take, as `clonefile du` sees it. */
async function sharing(original: string, clone: string): Promise<string> {
  const { usage } = await import('../usage.js')
  const r = await usage([original, clone])
  if (r.reason !== undefined) return ''
  return `Original and clone together, as \`clonefile du\` measures them:\n  ${summaryLine(r.set, r.skipped)}`
}

function printTable(rows: string[][]): void {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  for (const row of rows) {
    process.stdout.write(`${row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ')}\n`)
  }
}
