// clonefile snapshot: create, list, diff, restore, delete and prune snapshots of a directory
// (issue 14). Each subcommand is a thin layer over the API of snapshot.ts; the API's objects
// are what --json prints.
import {
  deleteSnapshot, diffSnapshots, listSnapshots, pruneSnapshots, restoreSnapshot, snapshot,
} from '../snapshot.js'
import type { Change, PrunePolicy, Snapshot, StoreOptions } from '../types.js'
import { parseCommand } from './argv.js'
import { interruptible } from './interrupt.js'
import { UsageError, errorLine, humanBytes, writeJson } from './output.js'
import { ProgressBar } from './progress.js'

const HELP = `Usage: clonefile snapshot create DIR [--name NAME] [--store DIR] [--allow-copy] [--progress] [--json]
       clonefile snapshot list DIR [--store DIR] [--json]
       clonefile snapshot diff DIR FROM [TO] [--store DIR] [--json]
       clonefile snapshot restore DIR NAME [--no-keep] [--store DIR] [--json]
       clonefile snapshot delete DIR NAME... [--store DIR]
       clonefile snapshot prune DIR [--keep-last N] [--keep-hourly N] [--keep-daily N]
                                    [--keep-weekly N] [--keep-monthly N] [-n] [--store DIR] [--json]

Keep a directory as it is now, see later what changed, put it back. A snapshot costs no data
where the filesystem clones: a read-only btrfs snapshot when DIR is a btrfs subvolume, else a
clone of the tree (each file consistent, not the whole tree at one instant).

  create    take a snapshot of DIR, named by the UTC time unless --name says otherwise
  list      the snapshots of DIR, oldest first: name, created, method, files, and the
            bytes deleting each would free (its exclusive bytes)
  diff      what changed from snapshot FROM to snapshot TO (default: DIR as it is now),
            one line per path, like 'git status --short':
              A added, D removed, M modified, m metadata only, T type changed
            a path holding a control character is printed as a JSON string
  restore   put snapshot NAME back in DIR in one atomic exchange; what DIR held is kept as
            a snapshot before-restore-TIME unless --no-keep
  delete    remove the snapshots NAME...; the others and DIR are untouched
  prune     keep the newest snapshot of each of the last N periods (UTC), remove the rest

      --name=NAME      the new snapshot's name (a plain file name, not starting with '.')
      --store=DIR      where the snapshots are (default: .DIRNAME.snapshots beside DIR;
                       it must be on DIR's filesystem)
      --allow-copy     where the filesystem cannot clone, copy (the snapshot takes space)
      --progress       show a progress bar (the default on a terminal)
      --no-progress    never show one
      --no-keep        restore: do not keep what DIR held
      --keep-last=N, --keep-hourly=N, --keep-daily=N, --keep-weekly=N, --keep-monthly=N
                       prune: what to keep (at least one is needed)
  -n, --dry-run        prune: list what would be removed, remove nothing
      --json           print the API's result as JSON (dates as ISO strings)
  -h, --help           show this help

Exit status: 0 success, 1 the operation failed, 2 bad usage.
`

const STORE = { store: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } } as const
const JSON_FLAG = { json: { type: 'boolean', default: false } } as const
const KEEPS = ['keep-last', 'keep-hourly', 'keep-daily', 'keep-weekly', 'keep-monthly'] as const

const options = {
  create: {
    ...STORE, ...JSON_FLAG,
    name: { type: 'string' },
    'allow-copy': { type: 'boolean', default: false },
    progress: { type: 'boolean' },
    'no-progress': { type: 'boolean', default: false },
  },
  list: { ...STORE, ...JSON_FLAG },
  diff: { ...STORE, ...JSON_FLAG },
  restore: { ...STORE, ...JSON_FLAG, 'no-keep': { type: 'boolean', default: false } },
  delete: { ...STORE },
  prune: {
    ...STORE, ...JSON_FLAG,
    'dry-run': { type: 'boolean', short: 'n', default: false },
    ...Object.fromEntries(KEEPS.map((k) => [k, { type: 'string' }])) as Record<(typeof KEEPS)[number], { type: 'string' }>,
  },
} as const

type Sub = keyof typeof options
const isSub = (s: string | undefined): s is Sub => s !== undefined && Object.hasOwn(options, s)

/** Positional arguments: between `min` and `max` of them, names as text. */
function operands(sub: Sub, positionals: Array<string | Buffer>, min: number, max: number): Array<string | Buffer> {
  if (positionals.length < min) throw new UsageError(`${sub}: missing operand\nRun 'clonefile snapshot --help' for usage.`)
  if (positionals.length > max) throw new UsageError(`${sub}: too many operands\nRun 'clonefile snapshot --help' for usage.`)
  return positionals
}

const storeOf = (store: string | undefined): StoreOptions => (store === undefined ? {} : { store })
const text = (p: string | Buffer | undefined): string => (p === undefined ? '' : p.toString())

const LETTER: Record<Change['kind'], string> = { added: 'A', removed: 'D', modified: 'M', metadata: 'm', type: 'T' }

/** A path on one line: as it is, or as a JSON string where it holds a control character. */
function onOneLine(p: string): string {
  return /[\x00-\x1f\x7f]/.test(p) ? JSON.stringify(p) : p
}

export function changeLine(c: Change): string {
  return `${LETTER[c.kind]} ${onOneLine(c.path)}\n`
}

function count(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new UsageError(`invalid --${flag} '${text}': use a whole number`)
  return n
}

async function create(dir: string | Buffer, v: { name?: string; store?: string; 'allow-copy': boolean; progress?: boolean; 'no-progress': boolean; json: boolean }): Promise<number> {
  const showBar = v.progress ?? (!v['no-progress'] && process.stderr.isTTY === true && !v.json)
  const bar = showBar ? new ProgressBar(undefined) : undefined
  // A clone snapshot is built aside and renamed into the store: an abort removes what was
  // built, so the process waits for that before dying by the signal.
  const interrupt = interruptible(() => 'wait')
  let s: Snapshot
  try {
    s = await snapshot(dir, {
      ...storeOf(v.store),
      ...(v.name === undefined ? {} : { name: v.name }),
      allowCopy: v['allow-copy'],
      signal: interrupt.signal,
      ...(bar === undefined ? {} : { onProgress: (p: { files: number; bytes: number }) => bar.update(p) }),
    })
  } catch (e) {
    bar?.done()
    if (interrupt.caught() !== undefined) {
      process.stderr.write('clonefile snapshot: interrupted; no snapshot was made\n')
      interrupt.die()
      return 1
    }
    throw e
  } finally {
    interrupt.done()
  }
  bar?.done()
  // Made while the signal was on its way: the snapshot stands, and the process dies by it.
  if (interrupt.caught() !== undefined) interrupt.die()
  if (v.json) writeJson(s)
  else process.stdout.write(`${s.name}  ${s.method}${s.readOnly ? ', read-only' : ''}  ${s.path}\n`)
  return 0
}

/** Files and exclusive bytes per snapshot (usage() of each as a set of its own); '-' where unknown. */
async function spaceOf(snaps: Snapshot[]): Promise<Array<{ files: string; frees: string }>> {
  const unknown = snaps.map(() => ({ files: '-', frees: '-' }))
  if (snaps.length === 0) return unknown
  try {
    const { usage } = await import('../usage.js')
    const r = await usage(snaps.map((s) => s.path))
    return r.paths.map((p) => ({
      files: p.files.toLocaleString('en-US'),
      frees: Number.isNaN(p.exclusive) ? '-' : humanBytes(p.exclusive),
    }))
  } catch (e) {
    process.stderr.write(`clonefile snapshot list: cannot measure the snapshots: ${errorLine(e)}\n`)
    return unknown
  }
}

async function list(dir: string | Buffer, v: { store?: string; json: boolean }): Promise<number> {
  const snaps = await listSnapshots(dir, storeOf(v.store))
  if (v.json) {
    writeJson(snaps)
    return 0
  }
  const space = await spaceOf(snaps)
  const rows = [['NAME', 'CREATED', 'METHOD', 'FILES', 'FREES'],
    ...snaps.map((s, i) => [s.name, s.created.toISOString(), s.readOnly ? `${s.method} (ro)` : s.method, space[i]?.files ?? '-', space[i]?.frees ?? '-'])]
  const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => (r[c] as string).length)))
  for (const r of rows) {
    const cells = r.map((cell, c) => (c >= 3 ? cell.padStart(widths[c] ?? 0) : c === 4 ? cell : cell.padEnd(widths[c] ?? 0)))
    process.stdout.write(`${cells.join('  ').trimEnd()}\n`)
  }
  return 0
}

async function diff(dir: string | Buffer, from: string, to: string | undefined, v: { store?: string; json: boolean }): Promise<number> {
  const changes = await diffSnapshots(dir, from, to, storeOf(v.store))
  if (v.json) writeJson(changes)
  else process.stdout.write(changes.map(changeLine).join(''))
  return 0
}

async function restore(dir: string | Buffer, name: string, v: { store?: string; 'no-keep': boolean; json: boolean }): Promise<number> {
  // One exchange puts the snapshot in place: a signal at any moment leaves DIR wholly old or
  // wholly restored, and what a killed run built aside is removed by the next one.
  const r = await restoreSnapshot(dir, name, { ...storeOf(v.store), keepCurrent: !v['no-keep'] })
  if (v.json) writeJson(r)
  else {
    process.stdout.write(`restored ${r.restored.name}\n`)
    if (r.kept !== undefined) process.stdout.write(`kept the replaced state as ${r.kept.name}  ${r.kept.path}\n`)
  }
  return 0
}

async function remove(dir: string | Buffer, names: string[], v: { store?: string }): Promise<number> {
  let failed = false
  for (const name of names) {
    try {
      await deleteSnapshot(dir, name, storeOf(v.store))
      process.stdout.write(`deleted ${name}\n`)
    } catch (e) {
      process.stderr.write(`clonefile snapshot delete: ${errorLine(e)}\n`)
      failed = true
    }
  }
  return failed ? 1 : 0
}

async function prune(dir: string | Buffer, v: Record<(typeof KEEPS)[number], string | undefined> & { store?: string; 'dry-run': boolean; json: boolean }): Promise<number> {
  const policy: PrunePolicy = { dryRun: v['dry-run'] }
  const set = (key: keyof PrunePolicy & `keep${string}`, flag: (typeof KEEPS)[number]) => {
    const n = count(v[flag], flag)
    if (n !== undefined) policy[key] = n
  }
  set('keepLast', 'keep-last')
  set('keepHourly', 'keep-hourly')
  set('keepDaily', 'keep-daily')
  set('keepWeekly', 'keep-weekly')
  set('keepMonthly', 'keep-monthly')
  if (KEEPS.every((k) => v[k] === undefined)) {
    throw new UsageError('prune: say what to keep (--keep-last, --keep-hourly, --keep-daily, --keep-weekly or --keep-monthly): without one, every snapshot would go')
  }
  const r = await pruneSnapshots(dir, policy, storeOf(v.store))
  if (v.json) writeJson(r)
  else {
    for (const s of r.kept) process.stdout.write(`keep    ${s.name}\n`)
    for (const s of r.removed) process.stdout.write(`${v['dry-run'] ? 'would remove' : 'removed'} ${s.name}\n`)
  }
  return 0
}

export async function snapshotCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(HELP)
    return sub === undefined ? 2 : 0
  }
  if (!isSub(sub)) throw new UsageError(`unknown subcommand '${sub}': use create, list, diff, restore, delete or prune`)
  const { values, positionals } = parseCommand(rest, options[sub])
  if (values.help) {
    process.stdout.write(HELP)
    return 0
  }
  const v = values as Record<string, string | boolean | undefined>
  const store = v.store as string | undefined
  const json = v.json === true
  switch (sub) {
    case 'create': {
      const [dir] = operands(sub, positionals, 1, 1)
      return create(dir as string | Buffer, {
        ...(v.name === undefined ? {} : { name: v.name as string }),
        ...(store === undefined ? {} : { store }),
        'allow-copy': v['allow-copy'] === true,
        ...(v.progress === undefined ? {} : { progress: v.progress as boolean }),
        'no-progress': v['no-progress'] === true,
        json,
      })
    }
    case 'list': {
      const [dir] = operands(sub, positionals, 1, 1)
      return list(dir as string | Buffer, { ...(store === undefined ? {} : { store }), json })
    }
    case 'diff': {
      const [dir, from, to] = operands(sub, positionals, 2, 3)
      return diff(dir as string | Buffer, text(from), to === undefined ? undefined : text(to), { ...(store === undefined ? {} : { store }), json })
    }
    case 'restore': {
      const [dir, name] = operands(sub, positionals, 2, 2)
      return restore(dir as string | Buffer, text(name), { ...(store === undefined ? {} : { store }), 'no-keep': v['no-keep'] === true, json })
    }
    case 'delete': {
      const [dir, ...names] = operands(sub, positionals, 2, Infinity)
      return remove(dir as string | Buffer, names.map(text), store === undefined ? {} : { store })
    }
    case 'prune': {
      const [dir] = operands(sub, positionals, 1, 1)
      const keeps = Object.fromEntries(KEEPS.map((k) => [k, v[k] as string | undefined])) as Record<(typeof KEEPS)[number], string | undefined>
      return prune(dir as string | Buffer, { ...keeps, ...(store === undefined ? {} : { store }), 'dry-run': v['dry-run'] === true, json })
    }
  }
}
