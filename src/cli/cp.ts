import { statSync } from 'node:fs'
import { CWD, RAW, native as nativeBinding } from '../binding.js'
import { isDir, isFile, modeAt } from '../entries.js'
import { Walker, listSync, newDir, type WalkDir } from '../walk.js'
import { basename, join } from 'node:path'
import { clone } from '../clone.js'
import type { CloneMode, CloneResult, TreeResult } from '../types.js'
import { fsError } from '../errors.js'
import { bytes, native, shown, toRaw } from '../raw.js'
import { parseCommand } from './argv.js'
import { interruptible } from './interrupt.js'
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
  --reflink[=WHEN]     auto (the default without the option): clone, or copy where
                       the filesystem cannot; always (--reflink alone): clone or fail;
                       never: a full copy that shares nothing
  -f, --force          replace what exists at DST (each file atomically)
  -n, --no-clobber     keep what exists at DST and succeed
  -v, --verbose        say what was cloned and what was copied, and why
      --progress       show a progress bar (the default on a terminal)
      --no-progress    never show one
      --json           print the result as JSON
  -h, --help           show this help

Unlike GNU cp, an existing DST is an error (EEXIST) unless -f or -n says otherwise. A tree is
built under a temporary name and renamed into place, a file's copy nameless: if cp fails or
is interrupted (Ctrl-C, SIGTERM), nothing is left at DST, and cp dies by that signal.
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

/** As GNU cp: `--reflink` without a value means always (it never takes the next argument). */
function bareReflink(args: string[]): string[] {
  const end = args.indexOf('--')
  return args.map((a, i) => (a === '--reflink' && (end < 0 || i < end) ? '--reflink=always' : a))
}

function parse(args: string[]) {
  return parseCommand(args, options, bareReflink)
}

type Values = ReturnType<typeof parse>['values']

/** Paths travel as byte strings (raw.ts): the library gets them as native(), people see shown(). */
function isDirectory(path: string): boolean {
  try {
    return statSync(bytes(path)).isDirectory()
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
    const r = await usage([shown(src), shown(dst)])
    return r.reason === undefined ? `  ${summaryLine(r.set, r.skipped)}` : ''
  } catch {
    return ''
  }
}

/**
 * Counts the regular files beforehand (one walk, names as bytes), so that the progress bar,
 * which counts files, can show how far it is and an ETA. Undefined where it cannot be told.
 */
function countFiles(raw: string): number | undefined {
  const binding = nativeBinding()
  if (binding === undefined) return undefined
  let files = 0
  const walker = new Walker<WalkDir>(binding, { how: RAW }, (parent, name, rel) => newDir(parent, name, rel, {}))
  walker.start({ dir: CWD, name: raw })
  try {
    listSync(walker, ({ dir: at, errno, listing: { out, first, count } }) => {
      if (errno !== 0) throw new Error('unreadable')
      for (let i = first; i < first + count; i++) {
        const mode = modeAt(out.stats, i)
        if (isFile(mode)) files++
        else if (isDir(mode)) walker.child(at, out.names[i] as string)
      }
    })
    return files
  } catch {
    return undefined
  }
}

interface Report {
  ok: boolean
  report: unknown
}

async function copyTree(src: string, dst: string, v: Values, signal: AbortSignal): Promise<Report> {
  const [s, d] = [shown(src), shown(dst)]
  if (!v.recursive && !v.R && !v.archive) throw fsError('EISDIR', 'cp', { path: s, dest: d, detail: 'omitting directory (use -r or -a)' })
  const showBar = v.progress ?? (!v['no-progress'] && process.stderr.isTTY === true && !v.json)
  const bar = showBar ? new ProgressBar(countFiles(src)) : undefined
  try {
    // Loaded only for a tree: copying a file does not pay for the tree code.
    const { cloneTree } = await import('../tree.js')
    const r = await cloneTree(native(src), native(dst), {
      mode: v.reflink as CloneMode,
      overwrite: v.force ? 'replace' : v['no-clobber'] ? 'skip' : 'error',
      dereference: v.dereference,
      signal,
      ...(bar ? { onProgress: (p) => bar.update(p) } : {}),
    })
    if (v.verbose) process.stdout.write(`${treeLine(s, d, r)}\n${await savingsLine(src, dst)}`)
    for (const e of r.errors) process.stderr.write(`clonefile cp: ${e.message}\n`)
    for (const w of r.warnings) process.stderr.write(`clonefile cp: warning: ${w.message}\n`)
    return { ok: r.errors.length === 0, report: { src: s, dst: d, ...r } }
  } finally {
    bar?.done()
  }
}

async function copyFile(src: string, dst: string, v: Values): Promise<Report> {
  const [s, d] = [shown(src), shown(dst)]
  try {
    // As GNU cp: a symlink named on the command line is followed, unless -P or -a says otherwise.
    const followSymlinks = v.dereference || !(v.archive || v['no-dereference'])
    const r = await clone(native(src), native(dst), { mode: v.reflink as CloneMode, overwrite: v.force, followSymlinks })
    if (v.verbose) process.stdout.write(`${fileLine(s, d, r)}\n${await savingsLine(src, dst)}`)
    return { ok: true, report: { src: s, dst: d, ...r } }
  } catch (e) {
    if (!v['no-clobber'] || (e as { code?: string }).code !== 'EEXIST') throw e
    if (v.verbose) process.stdout.write(`skipped ${d} (exists)\n`)
    return { ok: true, report: { src: s, dst: d, skipped: 'EEXIST' } }
  }
}

/** SRC... and DST as byte strings, checked. */
function operands(v: Values, positionals: Array<string | Buffer>): { sources: string[]; target: string; intoDir: boolean } {
  if (!['auto', 'always', 'never'].includes(v.reflink)) throw new UsageError(`invalid --reflink '${v.reflink}': use auto, always or never`)
  if (v.force && v['no-clobber']) throw new UsageError('-f and -n cannot be used together')
  if (v.dereference && v['no-dereference']) throw new UsageError('-L and -P cannot be used together')
  if (positionals.length < 2) throw new UsageError(`expected SRC and DST\n${HELP}`)
  const paths = positionals.map((p) => toRaw(p))
  const target = paths.pop() as string
  const intoDir = isDirectory(target)
  if (paths.length > 1 && !intoDir) throw new UsageError(`target '${shown(target)}' is not a directory`)
  return { sources: paths, target, intoDir }
}

const exitStatus = (sig: NodeJS.Signals) => 128 + ({ SIGINT: 2, SIGTERM: 15 } as Record<string, number>)[sig]!

export async function cp(args: string[]): Promise<number> {
  const { values: v, positionals } = parse(args)
  if (v.help) {
    process.stdout.write(HELP)
    return 0
  }
  const { sources, target, intoDir } = operands(v, positionals)
  // A signal aborts a tree, which removes what it built, then cp dies by it; a file's copy
  // is nameless until complete (or its temporary is removed at once): cp dies at once.
  let inTree = false
  const interrupt = interruptible(() => (inTree ? 'wait' : 'now'))
  let failed = false
  const reports: unknown[] = []
  try {
    for (const src of sources) {
      const dst = intoDir ? join(target, basename(src)) : target
      try {
        inTree = isDirectory(src)
        const { ok, report } = await (inTree ? copyTree(src, dst, v, interrupt.signal) : copyFile(src, dst, v))
        failed ||= !ok
        reports.push(report)
      } catch (e) {
        if (interrupt.caught() !== undefined) process.stderr.write('clonefile cp: interrupted; nothing was left at the destination\n')
        else process.stderr.write(`clonefile cp: ${errorLine(e)}\n`)
        failed = true
      } finally {
        inTree = false
      }
      // A tree that finished while the signal was on its way: done, but cp stops there.
      const sig = interrupt.caught()
      if (sig !== undefined) {
        interrupt.die()
        return exitStatus(sig)
      }
    }
  } finally {
    interrupt.done()
  }
  if (v.json) writeJson(reports.length === 1 ? reports[0] : reports)
  return failed ? 1 : 0
}
