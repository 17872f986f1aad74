// What a dedupe run tells: the result it builds, its issues (skipped or errors, each with a
// code), progress, and the groups for -v. Shared by the walk (dedupe-scan.ts) and the phases
// after it (dedupe-apply.ts).
import { constants } from 'node:os'
import { abortError, errnoName, errnoOf } from './errors.js'
import type { NativePath } from './binding.js'
import { named, shown } from './raw.js'
import type { DedupeGroup, DedupeIssue, DedupeOptions, DedupeProgress, DedupeResult, TreeEntry } from './types.js'

/** The options, defaults applied (dedupe.ts). */
export interface Resolved {
  dryRun: boolean
  minSize: number
  filter: ((path: string, entry: TreeEntry) => boolean | Promise<boolean>) | undefined
  signal: AbortSignal | undefined
  onProgress: ((p: DedupeProgress) => void) | undefined
  concurrency: number
  onGroup: DedupeOptions['onGroup']
  /** the cache file, where one is kept */
  cache: NativePath | undefined
}

const E = constants.errno
/** "The bytes differ" (FILE_DEDUPE_RANGE_DIFFERS on Linux; mac.c's swap says it too): Linux's
 * EBADE, 52 on every OS (platform.h), where Node's os.constants lacks it. */
export const EBADE = errnoOf('EBADE') ?? 52
/** What says a filesystem cannot share blocks (FIEMAP or FIDEDUPERANGE refused). */
export const CANNOT = new Set([E.EOPNOTSUPP, E.ENOTSUP, E.ENOTTY, E.ENOSYS, E.EXDEV])
/** Failures that leave a file alone rather than being errors: gone, moved, not for dedupe, a
 * hard link (EMLINK: the macOS swap would split it). */
const SKIPS = new Set([E.ENOENT, E.ENOTDIR, E.ELOOP, E.EINVAL, E.ETXTBSY, E.EMLINK, EBADE])

export class Report {
  readonly result: DedupeResult = {
    files: 0, groups: 0, deduped: { files: 0, bytes: 0 }, alreadyShared: { files: 0, bytes: 0 }, saved: 0, skipped: [], errors: [],
  }
  /** devices found unable to share blocks: said once each */
  readonly cannot = new Set<number>()
  private readonly progress: DedupeProgress = { phase: 'scan', files: 0, bytes: 0 }
  private reported = 0

  constructor(readonly o: Resolved) {}

  issue(list: DedupeIssue[], path: string, code: string, message: string): void {
    list.push({ ...named(path), code, message: `${code}: ${message}, '${shown(path)}'` })
  }

  skip(path: string, code: string, message: string): void {
    this.issue(this.result.skipped, path, code, message)
  }

  changed(path: string): void {
    this.skip(path, 'EBADE', 'changed during the run: left as it is')
  }

  failed(path: string, errno: number, syscall: string, skips = SKIPS): void {
    const code = errnoName(errno)
    this.issue(skips.has(errno) ? this.result.skipped : this.result.errors, path, code, `${syscall} failed`)
  }

  /** The device cannot share blocks: said once, for the first file found there. */
  refuse(dev: number, path: string, errno: number): void {
    if (this.cannot.has(dev)) return
    this.cannot.add(dev)
    this.skip(path, 'EOPNOTSUPP', `this filesystem cannot share blocks (${errnoName(errno)}): nothing on its device ${dev} is deduped`)
  }

  tick(phase: DedupeProgress['phase'], files: number, bytes: number, force = false): void {
    this.progress.phase = phase
    this.progress.files += files
    this.progress.bytes += bytes
    if (!force && this.progress.files - this.reported < 512) return
    this.reported = this.progress.files
    this.o.onProgress?.({ ...this.progress })
  }

  /** The walk is over: what is left to read is known. */
  totals(files: number, bytes: number): void {
    this.tick('scan', 0, 0, true)
    Object.assign(this.progress, { totalFiles: files, totalBytes: bytes, files: 0, bytes: 0 })
    this.reported = 0
  }

  group(keeper: string, size: number, deduped: string[], already: string[]): void {
    const onGroup = this.o.onGroup
    if (onGroup === undefined) return
    const shownPath = (p: string): string => named(p).path
    const g: DedupeGroup = { keeper: shownPath(keeper), size, deduped: deduped.map(shownPath), alreadyShared: already.map(shownPath) }
    onGroup(g)
  }

  checkAbort(): void {
    if (this.o.signal?.aborted) throw abortError(this.o.signal)
  }
}
