// dedupe's opt-in cache (`cache: FILE`, CLI `--cache FILE`, like duperemove's --hashfile): what
// a run proved about files' contents, so that a later run need not read them again. A record is
// a file's identity (device, inode, size, mtime, ctime: any write moves mtime or ctime) and its
// class: the run that proved it and a number within that run. Files of one run with one class
// were found equal (sharing every block, or by the kernel's compare); every file of a (device,
// size) group ends the run in exactly one class, so files of one run with different classes
// were found different (by their samples or the kernel's compare). A later run takes a group's
// extent classes as different without reading anything only when each has a record that still
// matches, all of one run, each of another class; anything else is read as without a cache.
// So a wrong record can only leave duplicates unshared: whatever is shared, the kernel compares
// first, as ever.
import * as fs from 'node:fs'
import { dirname } from 'node:path'
import { fsError } from './errors.js'
import type { FileId, FileTable } from './dedupe-files.js'
import { bytes, shown } from './raw.js'
import { tempSiblingRaw } from './temp.js'

/** The file's first bytes: what it is and the layout's version. */
const MAGIC = Buffer.from('clonefile dedupe cache 1\n\0\0\0\0\0\0\0', 'latin1')
const enum R { Dev, Ino, Size, MtimeSec, MtimeNsec, CtimeSec, CtimeNsec, Run, Class, Stride }
const RECORD_BYTES = R.Stride * 8

export class DedupeCache {
  /** records read, "dev:ino" -> their index in `old` */
  private readonly index = new Map<string, number>()
  /** this run's classes, by file */
  private readonly classOf = new Map<FileId, number>()
  private classes = 0
  /** this run's number: random, so that runs' classes are never taken for one another's */
  private readonly run = Math.floor(Math.random() * 2 ** 52) + 1

  private constructor(private readonly path: string, private readonly old: Float64Array) {
    for (let i = 0; i < old.length; i += R.Stride) this.index.set(`${old[i + R.Dev]}:${old[i + R.Ino]}`, i)
  }

  /** The cache at `path` (a byte string): empty where there is none yet. Anything there that is
   * not one (another file, a directory, a link) is an error, and left as it is. */
  static async open(path: string): Promise<DedupeCache> {
    let data: Buffer
    try {
      // Not following a link, and not waiting on a FIFO put there: opened, then checked.
      const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants
      const fh = await fs.promises.open(bytes(path), O_RDONLY | O_NOFOLLOW | O_NONBLOCK).catch((e: NodeJS.ErrnoException) => {
        throw e.code === 'ELOOP' ? notCache(path, 'it is a symbolic link') : e
      })
      try {
        if (!(await fh.stat()).isFile()) throw notCache(path, 'it is not a regular file')
        data = await fh.readFile()
      } finally {
        await fh.close()
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
      // A new cache: its directory must be there now, not be found missing after the run.
      const dir = await fs.promises.stat(bytes(dirname(path)))
      if (!dir.isDirectory()) throw fsError('ENOTDIR', 'open', { path: shown(path) })
      return new DedupeCache(path, new Float64Array(0))
    }
    if (data.length < MAGIC.length || !data.subarray(0, MAGIC.length).equals(MAGIC) || (data.length - MAGIC.length) % RECORD_BYTES !== 0) {
      throw notCache(path, 'it is not a clonefile dedupe cache')
    }
    const records = new Float64Array((data.length - MAGIC.length) / 8)
    Buffer.from(records.buffer).set(data.subarray(MAGIC.length))
    return new DedupeCache(path, records)
  }

  /** Whether the classes (files of one device and size, by extent map) are known different:
   * each first file's record matches it, all of one run, no two of one class. */
  knownApart(t: FileTable, classes: FileId[][]): boolean {
    let run = NaN
    const seen = new Set<number>()
    for (const c of classes) {
      const i = this.recordOf(t, c[0] as FileId)
      if (i === undefined) return false
      const r = this.old[i + R.Run] as number
      const k = this.old[i + R.Class] as number
      if ((!Number.isNaN(run) && r !== run) || seen.has(k)) return false
      run = r
      seen.add(k)
    }
    return true
  }

  /** Files proven to hold one content in this run: a class of their own. */
  proven(files: FileId[]): void {
    const k = ++this.classes
    for (const f of files) this.classOf.set(f, k)
  }

  /** Writes the cache: this run's classes, and the records read that it did not replace where
   * they still match their file (or name a file this run did not see: other trees may share
   * the cache). A new file beside it, created exclusively, then renamed over it: never half. */
  async save(t: FileTable): Promise<void> {
    const seen = new Map<string, FileId>()
    for (let f = 0; f < t.n; f++) seen.set(`${t.dev(f)}:${t.ino(f)}`, f)
    const out: number[] = []
    for (const [key, i] of this.index) {
      const f = seen.get(key)
      if (f !== undefined && (this.classOf.has(f) || this.recordOf(t, f) === undefined)) continue
      for (let k = 0; k < R.Stride; k++) out.push(this.old[i + k] as number)
    }
    for (const [f, k] of this.classOf) out.push(t.dev(f), t.ino(f), ...t.stamp(f), this.run, k)
    const tmp = tempSiblingRaw(this.path)
    const fh = await fs.promises.open(bytes(tmp), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644)
    try {
      try {
        await fh.writeFile(Buffer.concat([MAGIC, Buffer.from(Float64Array.from(out).buffer)]))
        await fh.sync()
      } finally {
        await fh.close()
      }
      await fs.promises.rename(bytes(tmp), bytes(this.path))
    } catch (e) {
      await fs.promises.unlink(bytes(tmp)).catch(() => undefined)
      throw e
    }
  }

  /** The index of f's record, where it matches f as the walk found it. */
  private recordOf(t: FileTable, f: FileId): number | undefined {
    const i = this.index.get(`${t.dev(f)}:${t.ino(f)}`)
    if (i === undefined) return undefined
    const stamp = t.stamp(f)
    for (let k = 0; k < stamp.length; k++) if (this.old[i + R.Size + k] !== stamp[k]) return undefined
    return i
  }
}

function notCache(path: string, why: string): Error {
  return fsError('EINVAL', 'open', { path: shown(path), detail: `${why}; a dedupe cache was expected there, and it is left as it is` })
}
