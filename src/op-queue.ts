// Operations waiting for the addon, and the directories and link groups they belong to: what
// tree-run.ts queues and tree.ts sends to runOps() in batches. Names are byte strings.
import type { At, WalkDir } from './walk.js'
import { tempNameRaw } from './temp.js'

export interface TreeDir extends WalkDir {
  /** the stream (lane) its entries go to */
  stream: number
  /** its destination directory was made (or, merging, is there) */
  made: boolean
  /** hard links are made in it at the end: its metadata waits for them */
  deferred: boolean
  /** the mode it is made with: its source's permission bits, and owner rwx until its metadata is set */
  mode: number
}

/** A hard-link group: its first member, made from its source; the others are linked to it. */
export interface LinkGroup {
  /** the first member, relative to the destination root */
  first: string
  /** that member was made by this run (not skipped, not failed) */
  made: boolean
  /** a later member became the first, at the end, where the first was not made */
  moved?: boolean
}

/** Operations for one runOps() call. */
export interface Batch {
  kinds: Uint8Array
  srcDirs: Int32Array
  srcNames: string
  dstDirs: Int32Array
  dstNames: string
  temps: string | undefined
  flags: number
  /** per operation: the directory its entry is in, released when it is done */
  owners: Array<TreeDir | undefined>
  /** per operation: the source entry errors name, relative to the source root */
  labels: string[]
  /** per operation: the destination entry, relative to the destination root */
  dsts: string[]
  devs: number[]
  /** per operation: the link group whose first member it makes */
  groups: Array<LinkGroup | undefined>
  /** per operation: a directory whose metadata it sets, to close once it is done */
  closes: Array<TreeDir | undefined>
  /** per operation: an ancestor whose descriptor its addresses start from, held until it is
   * done (where the directory itself was closed) */
  holds: Array<TreeDir | undefined>
  /** copies made because these files' clones failed (their fallbacks are counted already) */
  retry: boolean
}

/** Operations waiting to run, in order. */
export class OpQueue {
  private kinds: number[] = []
  private src: At[] = []
  private dst: At[] = []
  private owners: Array<TreeDir | undefined> = []
  private labels: string[] = []
  private dsts: string[] = []
  private devs: number[] = []
  private groups: Array<LinkGroup | undefined> = []
  private closes: Array<TreeDir | undefined> = []
  private holds: Array<TreeDir | undefined> = []

  /** `temps`: each operation gets a temporary name (replacing, or not made in place) */
  constructor(readonly flags: number, private readonly temps: boolean) {}

  add(kind: number, src: At, dst: At, owner: TreeDir | undefined, label: string, dstRel: string, dev = 0, group?: LinkGroup, closes?: TreeDir, holds?: TreeDir): void {
    if (holds !== undefined) holds.busy++
    this.holds.push(holds)
    if (owner !== undefined) {
      owner.busy++
      owner.pending++
    }
    if (closes !== undefined) closes.busy++
    this.closes.push(closes)
    this.kinds.push(kind)
    this.src.push(src)
    this.dst.push(dst)
    this.owners.push(owner)
    this.labels.push(label)
    this.dsts.push(dstRel)
    this.devs.push(dev)
    this.groups.push(group)
  }

  get length(): number {
    return this.kinds.length
  }

  /**
   * The first `max` operations (all by default), which leave the queue; fewer where that keeps a
   * directory's entries together (two jobs creating files in one directory at once wait for
   * each other).
   */
  take(max = Infinity, retry = false): Batch {
    const owners = this.owners
    let n = Math.min(max, this.kinds.length)
    if (n < this.kinds.length && owners[n] !== undefined && owners[n] === owners[n - 1]) {
      let start = n - 1
      while (start > 0 && owners[start - 1] === owners[n]) start--
      if (start > 0) n = start
    }
    const cut = <T>(key: 'kinds' | 'src' | 'dst' | 'owners' | 'labels' | 'dsts' | 'devs' | 'groups' | 'closes' | 'holds'): T[] => {
      const all = this[key] as unknown as T[]
      if (n === all.length) {
        ;(this[key] as unknown as T[]) = []
        return all
      }
      ;(this[key] as unknown as T[]) = all.slice(n)
      return all.slice(0, n)
    }
    const kinds = cut<number>('kinds')
    const src = cut<At>('src')
    const dst = cut<At>('dst')
    const dstNames = dst.map((a) => a.name)
    return {
      kinds: Uint8Array.from(kinds),
      srcDirs: Int32Array.from(src, (a) => a.dir),
      srcNames: src.map((a) => a.name).join('\0'),
      dstDirs: Int32Array.from(dst, (a) => a.dir),
      dstNames: dstNames.join('\0'),
      temps: this.temps ? dstNames.map(tempBeside).join('\0') : undefined,
      flags: this.flags,
      owners: cut('owners'),
      labels: cut('labels'),
      dsts: cut('dsts'),
      devs: cut('devs'),
      groups: cut('groups'),
      closes: cut('closes'),
      holds: cut('holds'),
      retry,
    }
  }
}

/** A temporary name in the same directory as `name` (which may hold several components). */
function tempBeside(name: string): string {
  const slash = name.lastIndexOf('/')
  return slash < 0 ? tempNameRaw(name) : `${name.slice(0, slash + 1)}${tempNameRaw(name.slice(slash + 1))}`
}

