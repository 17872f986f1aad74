import { probe } from '../probe.js'
import { parseCommand } from './argv.js'
import { UsageError, writeJson } from './output.js'

const HELP = `Usage: clonefile probe [--json] PATH [OTHER]

Say whether files can be cloned within PATH's filesystem (or from PATH to OTHER), proven by
cloning a temporary file where the directory is writable.
`

const yes = (b: boolean) => (b ? 'yes' : 'no')

export async function probeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  })
  if (values.help) {
    process.stdout.write(HELP)
    return 0
  }
  const [path, other, ...rest] = positionals
  if (path === undefined || rest.length > 0) throw new UsageError(`expected PATH [OTHER]\n${HELP}`)
  const p = await probe(path, other)
  if (values.json) {
    writeJson({ path: path.toString(), ...(other === undefined ? {} : { other: other.toString() }), ...p })
    return 0
  }
  const where = other === undefined ? path.toString() : `${path.toString()} -> ${other.toString()}`
  process.stdout.write(
    `${where}: ${p.filesystem}, block size ${p.blockSize}\n` +
      `  clone: ${yes(p.clone)}  range: ${yes(p.range)}  dedupe: ${yes(p.dedupe)}\n` +
      (p.reason ? `  reason: ${p.reason}\n` : ''),
  )
  return 0
}
