import { statSync } from 'node:fs'
import { basename, join } from 'node:path'
import { parseArgs } from 'node:util'
import { clone } from '../clone.js'
import type { CloneMode, CloneResult } from '../clone.js'
import { UsageError, writeJson } from './output.js'

const HELP = `Usage: clonefile cp [OPTION]... SRC DST
       clonefile cp [OPTION]... SRC DIRECTORY

Clone SRC to DST: the two share their data blocks until one is written.

  --reflink=WHEN    auto (default): clone, or copy where the filesystem cannot;
                    always: clone or fail; never: a full copy that shares nothing
  -f, --force       replace an existing DST (atomically)
  -n, --no-clobber  leave an existing DST alone and succeed
  -v, --verbose     say for each file whether it was cloned or copied, and why
      --json        print the result as JSON
  -h, --help        show this help

Unlike GNU cp, an existing DST is an error (EEXIST) unless -f or -n says otherwise.
`

const options = {
  reflink: { type: 'string', default: 'auto' },
  force: { type: 'boolean', short: 'f', default: false },
  'no-clobber': { type: 'boolean', short: 'n', default: false },
  verbose: { type: 'boolean', short: 'v', default: false },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const

function reportLine(src: string, dst: string, r: CloneResult): string {
  const verb = r.method === 'clone' ? 'cloned' : 'copied'
  return `${verb} ${src} -> ${dst}${r.fallback ? ` (${r.fallback.code})` : ''}`
}

function destination(src: string, dst: string): string {
  try {
    return statSync(dst).isDirectory() ? join(dst, basename(src)) : dst
  } catch {
    return dst
  }
}

export async function cp(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options, allowPositionals: true })
  if (values.help) {
    process.stdout.write(HELP)
    return 0
  }
  if (!['auto', 'always', 'never'].includes(values.reflink)) {
    throw new UsageError(`invalid --reflink '${values.reflink}': use auto, always or never`)
  }
  if (values.force && values['no-clobber']) throw new UsageError('-f and -n cannot be used together')
  const [src, target, ...rest] = positionals
  if (src === undefined || target === undefined || rest.length > 0) throw new UsageError(`expected SRC and DST\n${HELP}`)
  const dst = destination(src, target)
  let result: CloneResult
  try {
    result = await clone(src, dst, { mode: values.reflink as CloneMode, overwrite: values.force })
  } catch (e) {
    if (values['no-clobber'] && (e as { code?: string }).code === 'EEXIST') {
      if (values.verbose) process.stdout.write(`skipped ${dst} (exists)\n`)
      if (values.json) writeJson({ src, dst, skipped: 'EEXIST' })
      return 0
    }
    throw e
  }
  if (values.json) writeJson({ src, dst, ...result })
  else if (values.verbose) process.stdout.write(`${reportLine(src, dst, result)}\n`)
  return 0
}
