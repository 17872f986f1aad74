// The command line as the user typed it. Node decodes argv as UTF-8, so a name that is not
// (`clonefile cp $'caf\xe9.txt' dst`) arrives as 'caf\ufffd.txt', a file that does not exist.
// On Linux the exact bytes are in /proc/self/cmdline: where an argument holds U+FFFD, it is
// taken from there as a Buffer, which every path argument of the library accepts.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import type { ParseArgsConfig } from 'node:util'
import { UsageError } from './output.js'

/** `args` (the tail of this process's argv) with each argument that was not UTF-8 as its bytes. */
function rawArguments(args: string[]): Array<string | Buffer> {
  if (process.platform !== 'linux' || !args.some((a) => a.includes('\ufffd'))) return args
  let cmdline: Buffer
  try {
    cmdline = readFileSync('/proc/self/cmdline')
  } catch {
    return args
  }
  const all: Buffer[] = []
  for (let start = 0, end; start < cmdline.length; start = end + 1) {
    end = cmdline.indexOf(0, start)
    if (end < 0) end = cmdline.length
    all.push(cmdline.subarray(start, end))
  }
  const tail = all.slice(all.length - args.length)
  // Only where the kernel's copy is this very argument list (main() may be called with others).
  if (tail.length !== args.length || tail.some((b, i) => b.toString('utf8') !== args[i])) return args
  return args.map((a, i) => (a.includes('\ufffd') ? (tail[i] as Buffer) : a))
}

type Options = NonNullable<ParseArgsConfig['options']>
type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; tokens: true; strict: true }>>

/**
 * parseArgs, with positionals as the user typed them (rawArguments) and an empty one refused:
 * `clonefile cp a ''` is bad usage (exit 2), not a file named ''. `rewrite` may change
 * arguments in place (not their number) before they are parsed.
 */
export function parseCommand<O extends Options>(args: string[], options: O, rewrite = (a: string[]) => a):
  { values: Parsed<O>['values']; positionals: Array<string | Buffer> } {
  const raw = rawArguments(args)
  const { values, tokens } = parseArgs({ args: rewrite(args), options, allowPositionals: true, tokens: true, strict: true })
  const positionals: Array<string | Buffer> = []
  for (const t of tokens) {
    if (t.kind !== 'positional') continue
    if (t.value === '') throw new UsageError('an empty argument is not a path')
    positionals.push(raw[t.index] ?? t.value)
  }
  return { values, positionals }
}
