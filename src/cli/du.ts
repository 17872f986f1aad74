import { usage } from '../usage.js'
import type { UsageEntry } from '../types.js'
import { parseCommand } from './argv.js'
import { UsageError, humanBytes, summaryLine, writeJson } from './output.js'

const HELP = `Usage: clonefile du [OPTION]... PATH...

Show the space files take once clones share their blocks: the columns of
'btrfs filesystem du', on any filesystem that clones.

  -s, --summarize       one line for each PATH (the same as -d 0)
  -h, --human-readable  sizes like 1.5 MiB instead of bytes
  -d, --max-depth=N     list files and directories at most N levels below each PATH
      --json            print the result as JSON
      --help            show this help

Total       bytes of data (holes, inline and preallocated extents excluded)
Exclusive   bytes no other file or clone shares
Set shared  shared bytes, each byte on disk counted once within that PATH
A last line sums up all the PATHs together.
`

const options = {
  summarize: { type: 'boolean', short: 's', default: false },
  'human-readable': { type: 'boolean', short: 'h', default: false },
  'max-depth': { type: 'string', short: 'd' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const

function maxDepthOf(summarize: boolean, text: string | undefined): number {
  if (text === undefined) return summarize ? 0 : Infinity
  const n = Number(text)
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new UsageError(`invalid --max-depth '${text}': use a whole number`)
  if (summarize && n !== 0) throw new UsageError('-s and -d N cannot be used together unless N is 0')
  return n
}

function row(entry: UsageEntry, size: (n: number) => string): string {
  const shared = entry.setShared === undefined ? '-' : size(entry.setShared)
  return `${size(entry.total).padStart(10)}  ${size(entry.exclusive).padStart(10)}  ${shared.padStart(10)}  ${entry.path}\n`
}

export async function du(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(args, options)
  if (values.help) {
    process.stdout.write(HELP)
    return 0
  }
  if (positionals.length === 0) throw new UsageError(`expected PATH\n${HELP}`)
  const maxDepth = maxDepthOf(values.summarize, values['max-depth'])
  const size = (n: number) => (Number.isNaN(n) ? '-' : values['human-readable'] ? humanBytes(n) : String(n))
  const entries: UsageEntry[] = []
  const onEntry = values.json
    ? (e: UsageEntry) => void (e.depth > 0 && entries.push(e))
    : (e: UsageEntry) => void process.stdout.write(row(e, size))
  if (!values.json) process.stdout.write(`${'Total'.padStart(10)}  ${'Exclusive'.padStart(10)}  ${'Set shared'.padStart(10)}  Filename\n`)
  // usage() takes paths as strings: a name that is not UTF-8 cannot be measured from here yet.
  const result = await usage(positionals.map((p) => p.toString()), { maxDepth, onEntry })
  if (values.json) writeJson(maxDepth === 0 ? result : { ...result, entries })
  else process.stdout.write(`${result.reason === undefined ? '' : `${result.reason}\n`}${summaryLine(result.set, result.skipped)}`)
  return 0
}
