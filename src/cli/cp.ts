import { readdirSync, statSync } from 'node:fs'
import { basename, join } from 'node:path'
import { parseArgs } from 'node:util'
import { clone } from '../clone.js'
import type { CloneMode, CloneResult } from '../clone.js'
import { cloneTree } from '../tree.js'
import type { TreeResult } from '../tree.js'
import { fsError } from '../errors.js'
import { ProgressBar } from './progress.js'
import { UsageError, errorLine, summaryLine, writeJson } from './output.js'

const HELP = `Usage: clonefile cp [OPTION]... SRC DST
       clonefile cp [OPTION]... SRC... DIRECTORY

Clone SRC to DST: the two share their data blocks until one is written. Mode, times (to the
nanosecond), extended attributes and, as root, owners are always kept.

  -r, -R, --recursive  clone directories and everything in them
  -a, --archive        the same as -r -P, keeping hard links and FIFOs (cp -a)
  -p                   accepted for cp compatibility: metadata is always kept
  -P, --no-dereference recreate symlinks as symlinks (the default)
  -L, --dereference    follow symlinks in SRC
  --reflink=WHEN       auto (default): clone, or copy where the filesystem cannot;
                       always: clone or fail; never: a full copy that shares nothing
  -f, --force          replace what exists at DST (each file atomically)
  -n, --no-clobber     keep what exists at DST and succeed
  -v, --verbose        say what was cloned and what was copied, and why
      --progress       show a progress bar (the default on a terminal)
      --no-progress    never show one
      --json           print the result as JSON
  -h, --help           show this help

Unlike GNU cp, an existing DST is an error (EEXIST) unless -f or -n says otherwise. A tree is
built under a temporary name and renamed into place: if cp fails or is interrupted (Ctrl-C),
nothing is left at DST.
`

const options = {
  recursive: { type: 'boolean', short: 'r', default: false },
  R: { type: 'boolean', short: 'R', default: false },
  archive: { type: 'boolean', short: 'a', default: false },
  p: { type: 'boolean', short: 'p', default: false },
  'no-dereference': { type: 'boolean', short: 'P', default: false },
  dereference: { type: 'boolean', short: 'L', default: false },
  reflink: { type: 'string', default: 'auto' },
  force: { type: 'boolean', short: 'f', default: false },
  'no-clobber': { type: 'boolean', short: 'n', default: false },
  verbose: { type: 'boolean', short: 'v', default: false },
  progress: { type: 'boolean' },
  'no-progress': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const

type Values = ReturnType<typeof parse>['values']

function parse(args: string[]) {
  return parseArgs({ args, options, allowPositionals: true })
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

function fileLine(src: string, dst: string, r: CloneResult): string {
  const verb = r.method === 'clone' ? 'cloned' : 'copied'
  return `${verb} ${src} -> ${dst}${r.fallback ? ` (${r.fallback.code})` : ''}`
}

function treeLine(src: string, dst: string, r: TreeResult): string {
  const reasons = Object.entries(r.fallbacks).map(([code, n]) => `${code} ${n}`).join(', ')
  return `${src} -> ${dst}: ${r.files} files (${r.cloned.files} cloned, ${r.copied.files} copied` +
    `${reasons ? `: ${reasons}` : ''}), ${r.directories} directories, ${r.symlinks} symlinks, ` +
    `${r.hardLinks} hard links, ${r.specials} special` +
    `${r.skipped.length ? `, ${r.skipped.length} skipped` : ''}${r.errors.length ? `, ${r.errors.length} errors` : ''}`
}

/**
 * What the clone saves, for -v: source and destination measured together, as `clonefile du`
 * measures them. Nothing where sharing cannot be measured (not Linux, or no addon).
 */
async function savingsLine(src: string, dst: string): Promise<string> {
  try {
    const { usage } = await import('../usage.js')
    const r = await usage([src, dst])
    return r.reason === undefined ? `  ${summaryLine(r.set, r.skipped)}` : ''
  } catch {
    return ''
  }
}

/**
 * Counts the regular files quickly (readdir's types, no stat) so that the progress bar, which
 * counts files, can show how far it is and an ETA. Names as Buffers: a directory whose name is
 * not UTF-8 is counted too.
 */
function countFiles(dir: string): number | undefined {
  let files = 0
  const walk = (path: Buffer) => {
    for (const entry of readdirSync(path, { withFileTypes: true, encoding: 'buffer' })) {
      if (entry.isFile()) files++
      else if (entry.isDirectory()) walk(Buffer.concat([path, SLASH, entry.name]))
    }
  }
  try {
    walk(Buffer.from(dir))
    return files
  } catch {
    return undefined
  }
}
const SLASH = Buffer.from('/')

async function copyOne(src: string, dst: string, v: Values, signal: AbortSignal): Promise<{ ok: boolean; report: unknown }> {
  const mode = v.reflink as CloneMode
  const overwrite = v.force ? 'replace' : v['no-clobber'] ? 'skip' : 'error'
  if (isDirectory(src)) {
    if (!v.recursive && !v.R && !v.archive) throw fsError('EISDIR', 21, 'cp', src, dst, `omitting directory (use -r or -a)`)
    const showBar = v.progress ?? (!v['no-progress'] && process.stderr.isTTY === true && !v.json)
    const bar = showBar ? new ProgressBar(countFiles(src)) : undefined
    try {
      const r = await cloneTree(src, dst, {
        mode, overwrite, dereference: v.dereference, signal,
        ...(bar ? { onProgress: (p) => bar.update(p) } : {}),
      })
      bar?.done()
      if (v.verbose) process.stdout.write(`${treeLine(src, dst, r)}\n${await savingsLine(src, dst)}`)
      for (const e of r.errors) process.stderr.write(`clonefile cp: ${e.message}\n`)
      return { ok: r.errors.length === 0, report: { src, dst, ...r } }
    } catch (e) {
      bar?.done()
      throw e
    }
  }
  try {
    // As GNU cp: a symlink named on the command line is followed, unless -P or -a says otherwise.
    const followSymlinks = v.dereference || !(v.archive || v['no-dereference'])
    const r = await clone(src, dst, { mode, overwrite: v.force, followSymlinks })
    if (v.verbose) process.stdout.write(`${fileLine(src, dst, r)}\n${await savingsLine(src, dst)}`)
    return { ok: true, report: { src, dst, ...r } }
  } catch (e) {
    if (!v['no-clobber'] || (e as { code?: string }).code !== 'EEXIST') throw e
    if (v.verbose) process.stdout.write(`skipped ${dst} (exists)\n`)
    return { ok: true, report: { src, dst, skipped: 'EEXIST' } }
  }
}

export async function cp(args: string[]): Promise<number> {
  const { values: v, positionals } = parse(args)
  if (v.help) {
    process.stdout.write(HELP)
    return 0
  }
  if (!['auto', 'always', 'never'].includes(v.reflink)) throw new UsageError(`invalid --reflink '${v.reflink}': use auto, always or never`)
  if (v.force && v['no-clobber']) throw new UsageError('-f and -n cannot be used together')
  if (v.dereference && v['no-dereference']) throw new UsageError('-L and -P cannot be used together')
  if (positionals.length < 2) throw new UsageError(`expected SRC and DST\n${HELP}`)
  const target = positionals[positionals.length - 1] as string
  const sources = positionals.slice(0, -1)
  const intoDir = isDirectory(target)
  if (sources.length > 1 && !intoDir) throw new UsageError(`target '${target}' is not a directory`)
  // Ctrl-C aborts: the tree being built is removed, nothing is left at DST.
  const controller = new AbortController()
  const onSignal = () => controller.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  let failed = false
  const reports: unknown[] = []
  try {
    for (const src of sources) {
      const dst = intoDir ? join(target, basename(src)) : target
      try {
        const { ok, report } = await copyOne(src, dst, v, controller.signal)
        failed ||= !ok
        reports.push(report)
      } catch (e) {
        if (controller.signal.aborted) {
          process.stderr.write('clonefile cp: interrupted; nothing was left at the destination\n')
          return 130
        }
        process.stderr.write(`clonefile cp: ${errorLine(e)}\n`)
        failed = true
      }
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  if (v.json) writeJson(reports.length === 1 ? reports[0] : reports)
  return failed ? 1 : 0
}
