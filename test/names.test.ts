// Names that are not UTF-8: Linux names are bytes, and a tree from an old camera, a Latin-1
// archive or a Windows-1252 share has names no UTF-8 decoder can round-trip. cloneTree must
// clone them under their own names (cp -a does), and usage() must measure them. Everything here
// handles paths as Buffers, the only form in which node:fs keeps such a name exact.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, test } from 'node:test'
import { cloneTree, cloneTreeSync, usage } from '../src/index.js'
import { parseFiemap } from './helpers/fiemap.js'
import { freshDir, needMount } from './helpers/mounts.js'
import { FUTURE_ATIME, cpA, mkfifo } from './helpers/trees.js'

/** A path of bytes: parts joined by '/', each a string (UTF-8) or a Buffer (bytes as they are). */
const B = (...parts: Array<string | Buffer>): Buffer =>
  Buffer.concat(parts.flatMap((p, i) => [...(i > 0 ? [Buffer.from('/')] : []), Buffer.isBuffer(p) ? p : Buffer.from(p)]))

const latin1 = (s: string) => Buffer.from(s, 'latin1')
const CAFE = latin1('caf\xe9.jpg') // "café.jpg" in Latin-1: 0xE9 alone is not UTF-8
const DIR = latin1('Fotos \xc4lter') // "Fotos Älter"
const BAD = Buffer.from([0x66, 0xff, 0xfe, 0x80, 0x0a, 0x2d]) // "f", bytes never in UTF-8, a newline, a dash
const UTF8 = 'naïve ☃.txt' // proper UTF-8 beside them

/** The tree: non-UTF-8 names for files, directories, a symlink and its target, hard links and a FIFO. */
function buildTree(root: string): void {
  fs.mkdirSync(root)
  fs.mkdirSync(B(root, DIR))
  fs.mkdirSync(B(root, DIR, BAD))
  fs.writeFileSync(B(root, CAFE), Buffer.alloc(64 * 1024, 1))
  fs.writeFileSync(B(root, DIR, CAFE), Buffer.alloc(8192, 2))
  fs.writeFileSync(B(root, DIR, BAD, BAD), Buffer.alloc(12288, 3))
  fs.writeFileSync(B(root, UTF8), 'snow')
  fs.writeFileSync(B(root, 'empty'), '')
  fs.symlinkSync(B(DIR, CAFE), B(root, latin1('link-\xe0')))
  fs.linkSync(B(root, CAFE), B(root, DIR, BAD, latin1('hard-\xe9')))
  mkfifo(path.join(root, 'fifo'))
  fs.renameSync(B(root, 'fifo'), B(root, DIR, latin1('fifo-\xff')))
  fs.chmodSync(B(root, DIR, CAFE), 0o640)
  fs.chmodSync(B(root, DIR, BAD), 0o750)
  // Times to the nanosecond (touch -h sets symlinks' own), atimes in the future so that reading
  // a file does not move them.
  execFileSync('find', [root, '-exec', 'touch', '-h', '-a', '-d', `@${FUTURE_ATIME}.123456789`, '{}', '+'])
  execFileSync('find', [root, '-exec', 'touch', '-h', '-m', '-d', '@1500000000.987654321', '{}', '+'])
}

interface Record {
  type: string
  mode: number
  uid: number
  gid: number
  atimeNs: bigint
  mtimeNs: bigint
  size: number
  sha256?: string
  target?: string
  /** the other names of a hard-link group, sorted */
  links?: string[]
}

/** Every entry under root, keyed by its relative path as a byte string (latin1: exact). */
function byteSnapshot(root: string): Map<string, Record> {
  const out = new Map<string, Record>()
  const inodes = new Map<string, string[]>()
  const walk = (rel: Buffer | undefined) => {
    const dir = rel === undefined ? Buffer.from(root) : B(root, rel)
    for (const name of fs.readdirSync(dir, { encoding: 'buffer' })) {
      const r = rel === undefined ? name : B(rel, name)
      const abs = B(root, r)
      const st = fs.lstatSync(abs, { bigint: true })
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isFile() ? 'file' : 'other'
      const key = r.toString('latin1')
      const rec: Record = {
        type, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid),
        atimeNs: st.atimeNs, mtimeNs: st.mtimeNs, size: type === 'dir' ? 0 : Number(st.size),
      }
      if (type === 'file') rec.sha256 = createHash('sha256').update(fs.readFileSync(abs)).digest('hex')
      if (type === 'symlink') rec.target = fs.readlinkSync(abs, { encoding: 'buffer' }).toString('latin1')
      out.set(key, rec)
      if (type !== 'dir' && st.nlink > 1n) inodes.set(`${st.ino}`, [...(inodes.get(`${st.ino}`) ?? []), key])
      if (type === 'dir') walk(r)
    }
  }
  walk(undefined)
  for (const group of inodes.values()) for (const key of group) (out.get(key) as Record).links = group.filter((k) => k !== key).sort()
  return out
}

function differences(want: Map<string, Record>, got: Map<string, Record>): string[] {
  const problems: string[] = []
  const show = (k: string) => JSON.stringify(k)
  for (const [k, w] of want) {
    const g = got.get(k)
    if (g === undefined) problems.push(`${show(k)}: missing`)
    else if (JSON.stringify(w, big) !== JSON.stringify(g, big)) problems.push(`${show(k)}: ${JSON.stringify(g, big)} != ${JSON.stringify(w, big)}`)
  }
  for (const k of got.keys()) if (!want.has(k)) problems.push(`${show(k)}: not in the source`)
  return problems
}
const big = (_: string, v: unknown) => (typeof v === 'bigint' ? `${v}` : v)

/** FIEMAP of every non-empty regular file, by xfs_io run from find (which passes names as bytes). */
function extentMaps(root: string): Array<ReturnType<typeof parseFiemap>> {
  const out = execFileSync('find', [root, '-type', 'f', '-size', '+0', '-exec', 'sh', '-c',
    'for f; do echo @@; xfs_io -r -c fsync -c "fiemap -v" "$f"; done', 'sh', '{}', '+'], { encoding: 'latin1' })
  return out.split('@@\n').slice(1).map(parseFiemap)
}

describe('names that are not UTF-8', () => {
  for (const variant of ['cloneTree', 'cloneTreeSync'] as const) {
    test(`${variant} clones them under their own bytes, as cp -a does, sharing every block`, async (t) => {
      const m = await needMount(t, 'xfs')
      if (!m) return
      const base = freshDir(m)
      const src = path.join(base, 'src')
      buildTree(src)
      const before = byteSnapshot(src)
      assert.equal(before.size, 10)
      const dst = path.join(base, 'dst')
      const result = variant === 'cloneTree' ? await cloneTree(src, dst) : cloneTreeSync(src, dst)
      assert.deepEqual(result.errors, [])
      assert.deepEqual(result.skipped, [])
      assert.equal(result.files, 5)
      assert.equal(result.hardLinks, 1)
      assert.equal(result.symlinks, 1)
      assert.equal(result.specials, 1)
      assert.equal(result.directories, 3)
      assert.deepEqual(differences(before, byteSnapshot(dst)), [])
      assert.deepEqual(differences(before, byteSnapshot(src)), [], 'source unchanged')
      // The same as cp -a makes of it.
      const ref = path.join(base, 'cp')
      cpA(src, ref)
      assert.deepEqual(differences(byteSnapshot(ref), byteSnapshot(dst)), [])
      const maps = extentMaps(dst)
      assert.equal(maps.length, 5, 'every name of a file with data (a hard link too)')
      for (const extents of maps) {
        assert.ok(extents.length > 0)
        assert.ok(extents.every((e) => e.shared), JSON.stringify(extents))
      }
    })
  }

  test('errors and skipped entries name them as UTF-8 shows them (U+FFFD for a stray byte)', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const base = freshDir(m)
    const src = path.join(base, 'src')
    buildTree(src)
    const dst = path.join(base, 'dst')
    await cloneTree(src, dst)
    const shownPath = (...parts: Buffer[]) => path.join(src, ...parts.map((p) => p.toString('utf8')))
    const kept = await cloneTree(src, dst, { overwrite: 'skip' })
    assert.ok(kept.skipped.some((s) => s.path === shownPath(DIR, BAD, BAD)), JSON.stringify(kept.skipped))
    // A directory, with something in it, where the source has a file: it cannot be replaced.
    fs.rmSync(B(dst, DIR, CAFE))
    fs.mkdirSync(B(dst, DIR, CAFE))
    fs.writeFileSync(B(dst, DIR, CAFE, 'inside'), 'x')
    const replaced = await cloneTree(src, dst, { overwrite: 'replace', continueOnError: true })
    assert.equal(replaced.errors.length, 1, JSON.stringify(replaced.errors))
    assert.equal(replaced.errors[0]?.path, shownPath(DIR, CAFE))
    assert.match(replaced.errors[0]?.message ?? '', /\ufffd/)
    assert.equal(fs.readFileSync(B(dst, DIR, BAD, BAD)).length, 12288, 'the rest was replaced')
  })

  test('usage() measures them (nothing skipped), a clone of them too', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const base = freshDir(m)
    const src = path.join(base, 'src')
    buildTree(src)
    const alone = await usage(src)
    assert.equal(alone.skipped, 0)
    assert.equal(alone.set.files, 5, 'five inodes: the hard link counted once')
    assert.equal(alone.set.apparent, 64 * 1024 + 8192 + 12288 + 4)
    assert.equal(alone.set.total, 64 * 1024 + 8192 + 12288 + 4096)
    assert.equal(alone.paths[0]?.path, src)
    const dst = path.join(base, 'dst')
    await cloneTree(src, dst)
    const both = await usage([src, dst])
    assert.equal(both.skipped, 0)
    assert.equal(both.set.files, 10)
    assert.equal(both.set.exclusive, 0)
    assert.equal(both.set.onDisk, alone.set.total)
    const entries: string[] = []
    await usage(src, { maxDepth: 3, onEntry: (e) => entries.push(e.path) })
    assert.ok(entries.includes(path.join(src, DIR.toString('utf8'), BAD.toString('utf8'), BAD.toString('utf8'))), entries.join('\n'))
  })
})
