// The directories of the files dedupe works on after the walk, held open by index (FileTable's
// dirIndex): a descriptor is never closed while a job that was given it runs, so that a number
// it had cannot name another directory in that job.
import type { Binding } from './binding.js'

/** Idle descriptors kept open beyond this are closed, the longest idle first. */
const MAX_OPEN = 256

export class DirFds {
  private readonly open = new Map<number, { fd: number; users: number }>()
  /** idle ones, in the order they became idle (a Map keeps insertion order) */
  private readonly idle = new Map<number, true>()

  constructor(private readonly binding: Binding) {}

  /** The directory's descriptor (opened by `open` if it is not), held until release(); -1 where
   * it cannot be opened (the job then names the file from its root and meets the error). */
  hold(dir: number, open: () => number): number {
    let e = this.open.get(dir)
    if (e === undefined) {
      let fd: number
      try {
        fd = open()
      } catch {
        return -1
      }
      e = { fd, users: 0 }
      this.open.set(dir, e)
    }
    e.users++
    this.idle.delete(dir)
    return e.fd
  }

  release(dir: number): void {
    const e = this.open.get(dir)
    if (e === undefined || --e.users > 0) return
    this.idle.set(dir, true)
    if (this.idle.size <= MAX_OPEN) return
    const [oldest] = this.idle.keys()
    this.close(oldest as number)
  }

  private close(dir: number): void {
    const e = this.open.get(dir)
    this.idle.delete(dir)
    this.open.delete(dir)
    if (e !== undefined) this.binding.closeDirs(Int32Array.of(e.fd))
  }

  /** Closes every one (the run is over: no job runs). */
  end(): void {
    const fds = [...this.open.values()].map((e) => e.fd)
    this.open.clear()
    this.idle.clear()
    if (fds.length > 0) this.binding.closeDirs(Int32Array.from(fds))
  }
}
