// Trees for the cloneTree tests: a tree with every awkward thing cp -a has to handle, a
// snapshot of a tree as a list of comparable entries (read with node and getfattr, never with
// the addon), a comparison of two snapshots, and a hash of a tree.
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { extentsOfMany } from './fiemap.js'

export type Kind = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'block-device' | 'character-device'

export interface Entry {
  /** relative to the tree's root, '' for the root itself */
  path: string
  type: Kind
  /** permission bits with setuid, setgid and sticky (st_mode & 0o7777) */
  mode: number
  uid: number
  gid: number
  atimeNs: bigint
  mtimeNs: bigint
  /** bytes of a file, length of a symlink's target; 0 for the rest (directory sizes are fs-specific) */
  size: number
  sha256?: string
  linkTarget?: string
  /** name -> value in hex, every namespace (POSIX ACLs are system.posix_acl_*) */
  xattrs: Record<string, string>
  /** for entries sharing an inode with others in the tree: the smallest path of the group */
  inodeGroup?: string
}

/** Where the atimes of a tree are put: in the future, relatime never updates them on a read. */
export const FUTURE_ATIME = 4_000_000_000

function kindOf(st: fs.BigIntStats): Kind {
  if (st.isDirectory()) return 'directory'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isFIFO()) return 'fifo'
  if (st.isSocket()) return 'socket'
  if (st.isBlockDevice()) return 'block-device'
  if (st.isCharacterDevice()) return 'character-device'
  return 'file'
}

/** Every path of a tree with its lstat, each taken before its directory is read. */
function statTree(root: string): Array<[string, fs.BigIntStats]> {
  const out: Array<[string, fs.BigIntStats]> = []
  const visit = (rel: string): void => {
    const st = fs.lstatSync(path.join(root, rel), { bigint: true })
    out.push([rel, st])
    if (!st.isDirectory()) return
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) visit(rel === '' ? name : `${rel}/${name}`)
  }
  visit('')
  return out
}

/** getfattr quotes '\', '\n' and '\r' in names as octal escapes. */
function unquote(s: string): string {
  const bytes: number[] = []
  for (let i = 0; i < s.length; ) {
    const m = /^\\([0-7]{3})/.exec(s.slice(i, i + 4))
    if (m) {
      bytes.push(parseInt(m[1] ?? '0', 8))
      i += 4
    } else {
      const cp = s.codePointAt(i) ?? 0
      const ch = String.fromCodePoint(cp)
      bytes.push(...Buffer.from(ch, 'utf8'))
      i += ch.length
    }
  }
  return Buffer.from(bytes).toString('utf8')
}

/** The extended attributes of many paths (not following symlinks), in hex. */
export function xattrsOf(paths: string[]): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>()
  for (let i = 0; i < paths.length; i += 200) {
    const chunk = paths.slice(i, i + 200)
    const r = spawnSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', ...chunk], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    })
    if (r.error) throw new Error(`cannot run getfattr (Debian package attr): ${r.error.message}`)
    if (r.status !== 0) throw new Error(`getfattr failed: ${r.stderr}`)
    let current: Record<string, string> | undefined
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('# file: ')) {
        current = {}
        out.set(unquote(line.slice('# file: '.length)), current)
      } else if (line !== '' && current !== undefined) {
        const eq = line.indexOf('=')
        const name = eq < 0 ? line : line.slice(0, eq)
        const value = eq < 0 ? '' : line.slice(eq + 1)
        current[name] = value === '""' ? '' : value.replace(/^0x/, '')
      }
    }
  }
  return out
}

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex')

/**
 * The tree as a sorted list of entries. Times come from an lstat taken before anything of the
 * entry is read, so that the snapshot records the state it found.
 */
export function snapshot(root: string): Entry[] {
  const stats = statTree(root)
  const abs = stats.map(([rel]) => path.join(root, rel))
  const xattrs = xattrsOf(abs)
  const byInode = new Map<string, string[]>()
  for (const [rel, st] of stats) {
    if (st.isDirectory()) continue
    const key = `${st.dev}:${st.ino}`
    byInode.set(key, [...(byInode.get(key) ?? []), rel])
  }
  const entries = stats.map(([rel, st], i): Entry => {
    const type = kindOf(st)
    const file = abs[i] as string
    const e: Entry = {
      path: rel,
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      atimeNs: st.atimeNs,
      mtimeNs: st.mtimeNs,
      size: type === 'file' || type === 'symlink' ? Number(st.size) : 0,
      xattrs: xattrs.get(file) ?? {},
    }
    if (type === 'file') e.sha256 = sha256(file)
    if (type === 'symlink') e.linkTarget = fs.readlinkSync(file)
    const group = byInode.get(`${st.dev}:${st.ino}`)
    if (type !== 'directory' && group !== undefined && group.length > 1) e.inodeGroup = [...group].sort()[0]
    return e
  })
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

export interface CompareOptions {
  /** fields not compared */
  ignore?: ReadonlyArray<keyof Entry>
  /** entries left out on both sides */
  exclude?: (e: Entry) => boolean
}

const show = (v: unknown) => JSON.stringify(v, (_, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x))

/** What differs between two snapshots, one line per field; [] when they are the same. */
export function compareSnapshots(expected: Entry[], actual: Entry[], options: CompareOptions = {}): string[] {
  const keep = (e: Entry) => !(options.exclude?.(e) ?? false)
  const want = new Map(expected.filter(keep).map((e) => [e.path, e]))
  const have = new Map(actual.filter(keep).map((e) => [e.path, e]))
  const diffs: string[] = []
  const fields: Array<keyof Entry> = ['type', 'mode', 'uid', 'gid', 'atimeNs', 'mtimeNs', 'size', 'sha256', 'linkTarget', 'xattrs', 'inodeGroup']
  for (const [p, w] of want) {
    const h = have.get(p)
    if (h === undefined) {
      diffs.push(`${show(p)}: missing (${w.type})`)
      continue
    }
    for (const f of fields) {
      if (options.ignore?.includes(f)) continue
      if (show(w[f]) !== show(h[f])) diffs.push(`${show(p)} ${f}: expected ${show(w[f])}, got ${show(h[f])}`)
    }
  }
  for (const [p, h] of have) if (!want.has(p)) diffs.push(`${show(p)}: unexpected (${h.type})`)
  return diffs
}

/**
 * A hash of what a tree holds: names, types, modes, owners, mtimes, contents, link targets,
 * xattrs and hard-link groups. Atimes are left out: reading a tree may change them.
 */
export function hashTree(root: string): string {
  const entries = snapshot(root).map(({ atimeNs: _atime, ...rest }) => rest)
  return createHash('sha256').update(show(entries)).digest('hex')
}

/**
 * Problems with block sharing: every file of `copy` that has data must be cloned from `src`
 * (all its extents SHARED, checked with xfs_io's FIEMAP) and a file with no data extents in
 * `src` has none in `copy` either.
 */
export function sharingProblems(src: string, copy: string, entries: Entry[]): string[] {
  const problems: string[] = []
  const seen = new Set<string>()
  const files: string[] = []
  for (const e of entries) {
    if (e.type !== 'file' || e.size === 0) continue
    if (e.inodeGroup !== undefined && seen.has(e.inodeGroup)) continue
    if (e.inodeGroup !== undefined) seen.add(e.inodeGroup)
    files.push(e.path)
  }
  const froms = extentsOfMany(files.map((f) => path.join(src, f)))
  const tos = extentsOfMany(files.map((f) => path.join(copy, f)))
  for (const [i, f] of files.entries()) {
    const from = froms[i] ?? []
    const to = tos[i] ?? []
    if (from.length === 0 && to.length !== 0) problems.push(`${show(f)}: has data extents, the source has none`)
    if (from.length > 0 && (to.length === 0 || !to.every((x) => x.shared))) {
      problems.push(`${show(f)}: not all shared (${to.map((x) => x.flags.join('+') || 'private').join(', ')})`)
    }
    const physical = (xs: typeof from) => xs.map((x) => `${x.logical}:${x.physical}:${x.length}`).join(' ')
    if (from.length > 0 && physical(from) !== physical(to)) problems.push(`${show(f)}: extents differ from the source's`)
  }
  return problems
}

/** Paths of the regular files of a snapshot with data in them, one per hard-link group. */
export function dataFiles(entries: Entry[]): string[] {
  return entries.filter((e) => e.type === 'file' && e.size > 0 && (e.inodeGroup ?? e.path) === e.path).map((e) => e.path)
}

/** Runs a tool and returns its stdout, or throws with its stderr. */
export function run(tool: string, args: string[]): string {
  try {
    return execFileSync(tool, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 })
  } catch (err) {
    const e = err as Error & { stderr?: string }
    throw new Error(`${tool} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, { cause: err })
  }
}

/** `cp -a --reflink=always src dst`: the reference every clone is held against. */
export function cpA(src: string, dst: string, ...extra: string[]): void {
  run('cp', ['-a', '--reflink=always', ...extra, '--', src, dst])
}

export function mkfifo(file: string, mode = 0o644): void {
  run('mkfifo', ['-m', mode.toString(8), '--', file])
}

export function setXattr(file: string, name: string, value: Buffer | string): void {
  const hex = `0x${Buffer.from(value).toString('hex')}`
  run('setfattr', ['-h', '-n', name, '-v', hex, '--', file])
}

/** A unix socket file that outlives its server: bound under a temporary name, then linked. */
export async function makeSocket(file: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.sock-${process.pid}-${randomBytes(4).toString('hex')}`)
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(tmp, resolve)
  })
  fs.linkSync(tmp, file)
  // Closing the server unlinks the name it was bound to (libuv), not the hard link.
  await new Promise<void>((resolve) => server.close(() => resolve()))
  fs.rmSync(tmp, { force: true })
}

/**
 * Gives the entries of the tree atimes in the future (so relatime leaves them alone whatever
 * reads the tree later: snapshots, cp, the clone itself) and mtimes in the past, to the
 * nanosecond, in 16 groups of entries with times of their own. Deepest first, so that no later
 * change touches them.
 */
export function setDistinctTimes(root: string, seed = 0): void {
  const all = statTree(root).map(([rel]) => path.join(root, rel)).reverse()
  const GROUPS = 16
  for (let g = 0; g < GROUPS; g++) {
    const members = all.filter((_, i) => i % GROUPS === g)
    if (members.length === 0) continue
    const n = seed * GROUPS + g
    const ns = String(123456789 + n * 1111).padStart(9, '0').slice(-9)
    run('touch', ['-h', '-a', '-d', `@${FUTURE_ATIME + n * 3}.${ns}`, '--', ...members])
    run('touch', ['-h', '-m', '-d', `@${1_500_000_000 + n * 7}.${ns.split('').reverse().join('')}`, '--', ...members])
  }
}

export interface NastyTree {
  /** relative paths of the sockets, which cloneTree skips and cp copies */
  sockets: string[]
  /** relative paths of the files with data, one per hard-link group */
  dataFiles: string[]
}

export interface NastyOptions {
  /** hard-linked symlinks and FIFOs, which cp -a keeps as hard links @default true */
  linkedSpecials?: boolean
  /** depth of the deep chain of directories @default 100 */
  depth?: number
}

/** 255 bytes, the most NAME_MAX allows. */
export const LONG_ASCII = 'L'.repeat(255)
export const LONG_UNICODE = 'é'.repeat(127) + 'x'
export const ODD_NAMES = ['with\nnewline', ' spaces  around ', '-leading-dash', '--', 'ünïcødé-名前-🙂', '.hidden', 'back\\slash', 'tab\there', 'carriage\rreturn']

/**
 * A tree with everything awkward: 100 levels deep, 255-byte names, odd names, empty, sparse and
 * hole-only files, setuid/setgid files, read-only files and directories, a sticky directory,
 * foreign owners, every kind of symlink, hard links across directories, FIFOs, a socket,
 * xattrs (binary, empty, large, many) and POSIX ACLs. Needs root and a filesystem with xattrs.
 */
export async function buildNastyTree(root: string, options: NastyOptions = {}): Promise<NastyTree> {
  const { linkedSpecials = true, depth = 100 } = options
  const at = (...p: string[]) => path.join(root, ...p)
  const write = (rel: string, data: string | Buffer, mode = 0o644) => {
    fs.writeFileSync(at(rel), data, { mode })
    fs.chmodSync(at(rel), mode)
  }
  fs.mkdirSync(root, { recursive: true })
  write('plain.txt', 'plain text\n')
  write('empty', '')
  write('big.bin', randomBytes(2 * 1024 * 1024 + 123))
  write('small.bin', randomBytes(100))
  // Sparse: data at 0 and at 5 MiB of a 10 MiB file; hole-only: no data at all.
  const fd = fs.openSync(at('sparse'), 'w')
  fs.writeSync(fd, randomBytes(64 * 1024), 0, 64 * 1024, 0)
  fs.writeSync(fd, randomBytes(64 * 1024), 0, 64 * 1024, 5 * 1024 * 1024)
  fs.ftruncateSync(fd, 10 * 1024 * 1024)
  fs.closeSync(fd)
  fs.writeFileSync(at('hole-only'), '')
  fs.truncateSync(at('hole-only'), 1024 * 1024)

  write('setuid', randomBytes(5000), 0o755)
  fs.chownSync(at('setuid'), 1000, 1000)
  fs.chmodSync(at('setuid'), 0o4755)
  write('setgid', randomBytes(5000), 0o755)
  fs.chownSync(at('setgid'), 0, 1000)
  fs.chmodSync(at('setgid'), 0o2750)
  write('readonly.txt', 'read only\n', 0o444)
  write('no-perms', 'nobody may\n', 0o000)

  fs.mkdirSync(at('owned'))
  write('owned/theirs', randomBytes(9000), 0o640)
  fs.chownSync(at('owned/theirs'), 4321, 8765)
  fs.chownSync(at('owned'), 1234, 5678)
  fs.mkdirSync(at('sticky'))
  write('sticky/inside', 'x')
  fs.chmodSync(at('sticky'), 0o1777)
  fs.mkdirSync(at('setgid-dir'))
  write('setgid-dir/inside', 'y')
  fs.chmodSync(at('setgid-dir'), 0o2775)
  fs.mkdirSync(at('ro-dir'))
  write('ro-dir/inside', randomBytes(3000), 0o400)
  fs.mkdirSync(at('ro-dir/sub'))
  write('ro-dir/sub/deeper', 'deeper')
  fs.chmodSync(at('ro-dir/sub'), 0o555)
  fs.chmodSync(at('ro-dir'), 0o555)
  fs.mkdirSync(at('no-perm-dir'))
  write('no-perm-dir/hidden', 'hidden')
  fs.chmodSync(at('no-perm-dir'), 0o000)
  fs.mkdirSync(at('empty-dir'))

  fs.mkdirSync(at('names'))
  for (const name of ODD_NAMES) write(`names/${name}`, `content of ${JSON.stringify(name)}`)
  write(`names/${LONG_ASCII}`, randomBytes(4096))
  fs.mkdirSync(at('names', LONG_UNICODE))
  write(`names/${LONG_UNICODE}/${LONG_UNICODE}`, 'long in long')
  fs.symlinkSync(LONG_ASCII, at('names', `link-${'k'.repeat(250)}`))

  let deep = at('deep')
  fs.mkdirSync(deep)
  for (let i = 0; i < depth; i++) {
    deep = path.join(deep, `d${i % 10}`)
    fs.mkdirSync(deep)
  }
  fs.writeFileSync(path.join(deep, 'bottom.bin'), randomBytes(70000))
  fs.symlinkSync('../../..', path.join(deep, 'up'))

  fs.mkdirSync(at('links'))
  fs.symlinkSync('../plain.txt', at('links/relative'))
  fs.symlinkSync(at('plain.txt'), at('links/absolute'))
  fs.symlinkSync('does/not/exist', at('links/dangling'))
  fs.symlinkSync('loop-b', at('links/loop-a'))
  fs.symlinkSync('loop-a', at('links/loop-b'))
  fs.symlinkSync('self', at('links/self'))
  fs.symlinkSync('../ro-dir', at('links/to-dir'))
  fs.symlinkSync('/usr', at('links/to-dir-absolute'))
  fs.symlinkSync('..', at('links/parent'))
  fs.symlinkSync(`${'x/'.repeat(490)}end`, at('links/long-target'))
  fs.symlinkSync('with\nnewline', at('links/odd target '))

  fs.mkdirSync(at('hard'))
  fs.mkdirSync(at('hard/a'))
  fs.mkdirSync(at('hard/b'))
  write('hard/a/x', randomBytes(20000))
  fs.linkSync(at('hard/a/x'), at('hard/b/y'))
  fs.linkSync(at('hard/a/x'), at('hard/z'))
  write('hard/a/pair', 'pair')
  fs.linkSync(at('hard/a/pair'), at('names/pair-in-names'))
  write('hard/b/empty', '')
  fs.linkSync(at('hard/b/empty'), at('hard/a/empty-too'))

  mkfifo(at('fifo'))
  mkfifo(at('hard/fifo-600'), 0o600)
  if (linkedSpecials) {
    fs.symlinkSync('plain.txt', at('hard/sym-1'))
    fs.linkSync(at('hard/sym-1'), at('hard/sym-2'))
    mkfifo(at('hard/fifo-1'))
    fs.linkSync(at('hard/fifo-1'), at('hard/fifo-2'))
  }
  await makeSocket(at('names/socket'))

  setXattr(at('plain.txt'), 'user.comment', 'a comment')
  setXattr(at('plain.txt'), 'user.empty', '')
  setXattr(at('big.bin'), 'user.binary', Buffer.from([0, 1, 2, 255, 254, 0, 10]))
  setXattr(at('big.bin'), 'user.large', randomBytes(3000))
  for (let i = 0; i < 60; i++) setXattr(at('small.bin'), `user.${'n'.repeat(60)}-${i}`, `v${i}`)
  setXattr(at('owned'), 'user.on-a-dir', 'dir value')
  setXattr(at('hard/a/x'), 'user.shared-inode', 'x')
  setXattr(at('setuid'), 'trusted.root-only', 'secret')
  setXattr(at('links/relative'), 'trusted.on-symlink', 'link value')
  setXattr(at('fifo'), 'trusted.on-fifo', 'fifo value')
  run('setfacl', ['-m', 'u:1000:rw-,g:2000:r--', at('plain.txt')])
  run('setfacl', ['-m', 'u:1000:rwx', '-d', '-m', 'u:1000:r-x', at('names')])

  setDistinctTimes(root)
  const entries = snapshot(root)
  return { sockets: entries.filter((e) => e.type === 'socket').map((e) => e.path), dataFiles: dataFiles(entries) }
}

/** Lists names in dir starting with the temporary prefix cloneTree builds under. */
export function tempSiblings(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.startsWith('.clonefile-tmp-'))
}

/** Expected TreeResult counts for a tree (cloneTree's rules: hard links among regular files). */
export function expectedCounts(entries: Entry[]): { files: number; directories: number; symlinks: number; hardLinks: number; specials: number } {
  const groups = new Set<string>()
  let files = 0
  let hardLinks = 0
  for (const e of entries.filter((x) => x.type === 'file')) {
    if (e.inodeGroup === undefined) files++
    else if (groups.has(e.inodeGroup)) hardLinks++
    else {
      groups.add(e.inodeGroup)
      files++
    }
  }
  const count = (t: Kind) => entries.filter((e) => e.type === t).length
  return { files, directories: count('directory'), symlinks: count('symlink'), hardLinks, specials: count('fifo') }
}

/**
 * A small ordinary tree: files of a few sizes, two directories deep, a symlink, a hard-link
 * pair, a FIFO and a user xattr.
 */
export function buildSimpleTree(root: string): void {
  const at = (...p: string[]) => path.join(root, ...p)
  fs.mkdirSync(at('sub', 'deeper'), { recursive: true })
  fs.writeFileSync(at('a.txt'), 'alpha\n')
  fs.writeFileSync(at('b.bin'), randomBytes(300 * 1024))
  fs.writeFileSync(at('empty'), '')
  fs.writeFileSync(at('sub', 'c.txt'), 'charlie\n')
  fs.writeFileSync(at('sub', 'deeper', 'd.bin'), randomBytes(70 * 1024))
  fs.writeFileSync(at('sub', 'h1'), randomBytes(8192))
  fs.linkSync(at('sub', 'h1'), at('sub', 'deeper', 'h2'))
  fs.symlinkSync('a.txt', at('link'))
  mkfifo(at('sub', 'fifo'))
  setXattr(at('a.txt'), 'user.note', 'simple')
  setDistinctTimes(root, 1)
}

/** A tree of `dirs` directories holding `perDir` files of `size` random bytes each. */
export function buildWideTree(root: string, dirs: number, perDir: number, size: number): void {
  for (let d = 0; d < dirs; d++) {
    fs.mkdirSync(path.join(root, `dir-${d}`), { recursive: true })
    for (let f = 0; f < perDir; f++) fs.writeFileSync(path.join(root, `dir-${d}`, `file-${f}`), randomBytes(size))
  }
}

/** Total bytes of the regular files of a snapshot, counting each hard-link group once. */
export function dataBytes(entries: Entry[]): number {
  const seen = new Set<string>()
  let sum = 0
  for (const e of entries) {
    if (e.type !== 'file') continue
    const key = e.inodeGroup ?? e.path
    if (seen.has(key)) continue
    seen.add(key)
    sum += e.size
  }
  return sum
}
