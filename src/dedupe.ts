// dedupe(): files with identical content made to share their blocks, where the OS can compare and
// share in one step. Linux: FIDEDUPERANGE only. The kernel locks both files and compares every
// byte before it shares any, so a file written during the run is never replaced by stale data:
// "the bytes differ" (EBADE) from a file whose stat moved since the walk is reported as skipped,
// never acted on. macOS (APFS has no such call): verify-then-swap (mac.c cf_swap_files), for
// files at rest. Windows: ENOTSUP (ReFS has no compare-and-share call).
//
// The phases: the walk (dedupe-scan.ts) → size groups, extent classes, samples, compare-and-share
// (dedupe-apply.ts); what is said of it (dedupe-report.ts); what is held per file (dedupe-files.ts).
import * as fs from 'node:fs'
import { RAW, requireNative, type Binding } from './binding.js'
import { abortError, fsError } from './errors.js'
import { abortSignal, boolean, callback, number, optionalPath, resolveOptions, toRawPaths, type OptionTable } from './args.js'
import { Apply, type Share } from './dedupe-apply.js'
import { DedupeCache } from './dedupe-cache.js'
import { Report, type Resolved } from './dedupe-report.js'
import { Found } from './dedupe-scan.js'
import { bytes, shown, toRaw } from './raw.js'
import { tempNameRaw } from './temp.js'
import type { DedupeOptions, DedupeResult, PathLike } from './types.js'

const optionTable: OptionTable<Resolved> = {
  dryRun: boolean(false),
  minSize: number(1, 0),
  filter: callback(),
  signal: abortSignal(),
  onProgress: callback(),
  concurrency: number(4, 1),
  onGroup: callback(),
  cache: optionalPath(),
}

/** How this OS shares a keeper's blocks with its duplicates, comparing first. */
function sharer(binding: Binding, found: Found): Share {
  if (process.platform === 'linux') {
    return (files, size) => found.use(files, (dirs, names) => binding.dedupeFiles(dirs, names, RAW, size, true))
  }
  // macOS: each duplicate is replaced by a clone of the keeper made beside it under a temporary
  // name (temp.ts, the one rule), verified and swapped in by the addon.
  return (files) => {
    const temps = files.map((f, k) => (k === 0 ? '' : tempNameRaw(found.table.name(f))))
    return found.use(files, (dirs, names) => binding.swapFiles(dirs, names, RAW, temps.join('\0'), true))
  }
}

/**
 * Finds files with identical content under `paths` and makes them share their blocks: on Linux
 * with FIDEDUPERANGE, which compares the bytes under the files' locks before it shares them; on
 * macOS by verify-then-swap (files at rest: see README).
 */
export async function dedupe(paths: PathLike | PathLike[], options?: DedupeOptions): Promise<DedupeResult> {
  const list = toRawPaths(paths)
  const o = resolveOptions('options', options, optionTable)
  if (process.platform !== 'linux' && process.platform !== 'darwin') {
    throw fsError('ENOTSUP', 'dedupe', { path: shown(list[0] as string), detail: 'this OS has no compare-and-share call (ReFS has none)' })
  }
  const binding = requireNative('dedupe')
  if (o.signal?.aborted) throw abortError(o.signal)
  // Every path must exist before anything is done.
  for (const p of list) await fs.promises.lstat(bytes(p)).catch((e: unknown) => { throw Object.assign(e as Error, { path: shown(p) }) })
  const cache = o.cache === undefined ? undefined : await DedupeCache.open(toRaw(o.cache))
  const report = new Report(o)
  const found = new Found(binding, report, list.length > 1, process.platform === 'linux')
  try {
    for (const p of list) await found.path(p)
    await new Apply(found, sharer(binding, found), cache).run()
    if (cache !== undefined && !o.dryRun) await cache.save(found.table)
  } catch (e) {
    // The walk rejects with the signal's reason: one error for an abort, wherever it came.
    if (o.signal?.aborted) throw abortError(o.signal)
    throw e
  } finally {
    found.end()
  }
  return report.result
}
