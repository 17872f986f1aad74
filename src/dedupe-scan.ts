// dedupe's walk: every path given, through THE walker (walk.ts) with each file's stat and, where
// the OS has FIEMAP, its extent map (Scan.Extents, read by extents.ts); regular files become rows
// of a FileTable (dedupe-files.ts), a hard link once.
import * as fs from 'node:fs'
import { CWD, RAW, Scan, type Binding } from './binding.js'
import { devAt, inoAt, isDir, isFile, modeAt, sizeAt, statAt, typeOf, type EntryStat } from './entries.js'
import { fromNative, fsError } from './errors.js'
import { extentsOf } from './extents.js'
import { FileTable, type FileId } from './dedupe-files.js'
import { CANNOT, type Report } from './dedupe-report.js'
import { bytes, joinRaw, named, shown } from './raw.js'
import { DirFds } from './dedupe-dirs.js'
import { Walker, listAsync, newDir, type Listing, type WalkDir } from './walk.js'

interface Root {
  /** the open directory files are named from: the root directory, or a file's parent */
  fd: number
  /** the path given (a byte string) */
  given: string
  /** it is a file: its path is `given` */
  file: boolean
}

export class Found {
  readonly table = new FileTable()
  readonly roots: Root[] = []
  private readonly dirFds: DirFds
  /** inodes seen ("dev:ino" -> the first path), where one may be met twice */
  private readonly seen = new Map<string, string>()

  constructor(
    readonly binding: Binding,
    readonly report: Report,
    /** several paths were given: one file may be named twice */
    private readonly multi: boolean,
    /** the OS maps extents (FIEMAP): Linux */
    readonly extents: boolean,
  ) {
    this.dirFds = new DirFds(binding)
  }

  /** Where a file is, as given (a byte string). */
  pathOf(f: FileId): string {
    const root = this.roots[this.table.root(f)] as Root
    return root.file ? root.given : joinRaw(root.given, this.table.rel(f))
  }

  pathAt(root: number, rel: string): string {
    const r = this.roots[root] as Root
    return r.file ? r.given : joinRaw(r.given, rel)
  }

  /**
   * Runs `job` with the files addressed for the addon: each by its directory's descriptor and
   * its name (one openat a file rather than one per component of its path). Directories are
   * opened again from their root as the walk named them (O_NOFOLLOW, component by component),
   * held while a job uses them, and closed beyond MAX_OPEN idle ones.
   */
  async use<T>(files: FileId[], job: (dirs: Int32Array, names: string) => Promise<T>): Promise<T> {
    const t = this.table
    const held: number[] = []
    const dirs = Int32Array.from(files, (f) => {
      const root = this.roots[t.root(f)] as Root
      if (root.file || t.dirRel(t.dirIndex(f)) === '') return root.fd
      const fd = this.dirFds.hold(t.dirIndex(f), () => this.binding.openDir(root.fd, t.dirRel(t.dirIndex(f)), RAW).fd)
      if (fd >= 0) held.push(t.dirIndex(f))
      return fd >= 0 ? fd : root.fd
    })
    const names = files.map((f, k) => (dirs[k] === (this.roots[t.root(f)] as Root).fd ? t.rel(f) : t.name(f))).join('\0')
    try {
      return await job(dirs, names)
    } finally {
      for (const d of held) this.dirFds.release(d)
    }
  }

  /** A file found: counted (a hard link once), then kept where it can have a duplicate. */
  add(root: number, dir: number, rel: string, name: string, st: EntryStat, extents: Float64Array | undefined, errno: number): void {
    const { report } = this
    const small = st.size < report.o.minSize || st.size === 0
    // Several paths may name one file twice (a file and its directory, or the same path).
    if (st.nlink > 1 || this.multi) {
      const id = `${st.dev}:${st.ino}`
      const first = this.seen.get(id)
      const path = this.pathAt(root, rel)
      if (first !== undefined) {
        if (!small && first !== path) report.skip(path, 'HARDLINK', `a hard link to '${shown(first)}', examined once`)
        return
      }
      this.seen.set(id, path)
    }
    report.result.files++
    report.tick('scan', 1, st.size)
    if (small) return
    if (errno !== 0) {
      if (CANNOT.has(errno)) report.refuse(st.dev, this.pathAt(root, rel), errno)
      else report.failed(this.pathAt(root, rel), errno, 'ioctl_fiemap')
      return
    }
    if (report.cannot.has(st.dev)) return
    this.table.add(root, dir, name, st, extents)
  }

  /** One path given: walked (a directory) or taken as it is (a file). */
  async path(given: string): Promise<void> {
    const real = (await fs.promises.realpath(bytes(given), 'buffer')).toString('latin1')
    const st = await fs.promises.lstat(bytes(real), { bigint: true })
    if (st.isDirectory()) return this.walk(given, real)
    if (!st.isFile()) return
    const slash = real.lastIndexOf('/')
    const name = real.slice(slash + 1)
    const { fd } = this.binding.openDir(CWD, slash <= 0 ? '/' : real.slice(0, slash), RAW)
    this.roots.push({ fd, given, file: true })
    const es: EntryStat = {
      mode: Number(st.mode), dev: Number(st.dev), ino: Number(st.ino), size: Number(st.size), nlink: Number(st.nlink),
      mtimeSec: sec(st.mtimeNs), mtimeNsec: nsec(st.mtimeNs), ctimeSec: sec(st.ctimeNs), ctimeNsec: nsec(st.ctimeNs), allocated: Number(st.blocks) * 512,
    }
    const dir = this.table.dir(this.roots.length - 1, '')
    if (!this.extents) return this.add(this.roots.length - 1, dir, name, name, es, undefined, 0)
    const { counts, errnos, extents } = await this.binding.extentsMany(Int32Array.of(fd), name, RAW, true)
    this.add(this.roots.length - 1, dir, name, name, es, extentsOf(extents, 0, counts[0] as number), errnos[0] as number)
  }

  private async walk(given: string, real: string): Promise<void> {
    const { fd, stat } = this.binding.openDir(CWD, real, RAW)
    const root = this.roots.length
    this.roots.push({ fd, given, file: false })
    const how = RAW | Scan.Names | (this.extents ? Scan.Extents : 0)
    const walker = new Walker<DedupeDir>(this.binding, { how }, (parent, name, rel) => newDir(parent, name, rel, {}))
    walker.start({ dir: CWD, name: real })
    await listAsync(walker, async ({ dir, errno, syscall, listing }) => {
      const dirPath = joinRaw(given, dir.rel)
      if (errno !== 0) {
        if (dir.parent === undefined) throw fromNative({ errno, syscall }, named(dirPath).path)
        return this.report.failed(dirPath, errno, syscall)
      }
      if (dir.parent === undefined && (dir.dev !== devAt(stat, 0) || dir.ino !== inoAt(stat, 0))) {
        throw fsError('ESTALE', 'walk', { path: named(given).path, detail: 'the directory was replaced while it was opened' })
      }
      await this.listing(walker, root, dir, listing)
    }, { signal: this.report.o.signal })
    this.report.checkAbort()
  }

  /** The entries of one directory: subdirectories to walk, regular files to keep. */
  private async listing(walker: Walker<DedupeDir>, root: number, dir: DedupeDir, listing: Listing): Promise<void> {
    const { out, first, count, firstExtent } = listing
    const filter = this.report.o.filter
    const d = this.table.dir(root, dir.rel)
    let extent = firstExtent
    for (let i = first; i < first + count; i++) {
      const n = out.counts?.[i] ?? 0
      extent += n
      const mode = modeAt(out.stats, i)
      if (!isDir(mode) && !isFile(mode)) continue
      const name = out.names[i] as string
      const rel = dir.rel === '' ? name : `${dir.rel}/${name}`
      if (filter !== undefined) {
        const { path, rawPath } = named(this.pathAt(root, rel))
        const keep = await filter(path, { name: named(name).path, type: typeOf(mode), mode, size: sizeAt(out.stats, i), ...(rawPath ? { rawPath } : {}) })
        if (!keep) continue
      }
      if (isDir(mode)) walker.child(dir, name)
      else this.add(root, d, rel, name, statAt(out.stats, i), out.extents === undefined ? undefined : extentsOf(out.extents, extent - n, n), out.errnos?.[i] ?? 0)
    }
  }

  end(): void {
    this.dirFds.end()
    const fds = this.roots.map((r) => r.fd).filter((fd) => fd >= 0)
    if (fds.length > 0) this.binding.closeDirs(Int32Array.from(fds))
    this.roots.length = 0
  }
}

type DedupeDir = WalkDir

const sec = (ns: bigint): number => Number(ns / 1_000_000_000n)
const nsec = (ns: bigint): number => Number(ns % 1_000_000_000n)
