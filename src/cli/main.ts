import { readFileSync } from 'node:fs'
import { UsageError, errorLine } from './output.js'

const HELP = `Usage: clonefile COMMAND [OPTION]... ARG...

Space-saving copy-on-write clones of files, with an honest fallback to copying.

Commands:
  cp [-r|-a] [--reflink[=auto|always|never]] [-f|-n] [-v] [--json] SRC... DST
                      clone files and trees (copy where the filesystem cannot clone)
  probe [--json] PATH [OTHER]
                      can files be cloned within PATH's filesystem, or from PATH to OTHER?
  du [-s] [-h] [-d N] [--json] PATH...
                      how much space PATHs take once clones share their blocks
  dedupe [-n] [--min-size SIZE] [-v] [--json] PATH...
                      make files with identical content share their blocks (FIDEDUPERANGE)
  snapshot create|list|diff|restore|delete|prune DIR [ARG]...
                      keep a directory as it is now, show what changed, put it back
  demo [--size MiB] [DIR]
                      time a copy and a clone of a 1 GiB file in DIR and show the space each takes

Run 'clonefile COMMAND --help' for a command's options, 'clonefile --version' for the version.
Exit status: 0 success, 1 the operation failed, 2 bad usage; interrupted by SIGINT or
SIGTERM, clonefile cleans up and dies by that signal (130, 143 in a shell).
`

type Command = (args: string[]) => Promise<number>
// Each command is loaded when it runs: a CLI call pays only for the code it uses.
const commands: Record<string, () => Promise<Command>> = {
  cp: async () => (await import('./cp.js')).cp,
  probe: async () => (await import('./probe.js')).probeCommand,
  du: async () => (await import('./du.js')).du,
  demo: async () => (await import('./demo.js')).demo,
  dedupe: async () => (await import('./dedupe.js')).dedupeCommand,
  snapshot: async () => (await import('./snapshot.js')).snapshotCommand,
}

/** Runs the CLI and returns the exit code; only bin/clonefile.js calls process.exit. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP)
    return name === undefined ? 2 : 0
  }
  if (name === '--version' || name === '-V') {
    // dist/src/cli/main.js -> the package root
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
    process.stdout.write(`clonefile ${pkg.version}\n`)
    return 0
  }
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined
  if (load === undefined) {
    process.stderr.write(`clonefile: unknown command '${name}'\n${HELP}`)
    return 2
  }
  try {
    return await (await load())(args)
  } catch (e) {
    process.stderr.write(`clonefile ${name}: ${errorLine(e)}\n`)
    const usage = e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    return usage ? 2 : 1
  }
}
