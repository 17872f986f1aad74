import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { clone, cloneSync } from '../src/clone.js'
import type { CloneOptions, CloneResult } from '../src/types.js'
import { allShared, sharedBytes } from './helpers/fiemap.js'
import { entries, metadata, sha, writeRandom, xattrs } from './helpers/files.js'
import { RO_DATA, bindMount, freshDir, needMount } from './helpers/mounts.js'
import type { FsKind } from './helpers/mounts.js'

const MiB = 1 << 20

type Cloner = (src: string, dst: string, o?: CloneOptions) => Promise<CloneResult>
const twins: Array<[string, Cloner]> = [
  ['clone', clone],
  ['cloneSync', async (s, d, o) => cloneSync(s, d, o)],
]

function setuidSource(dir: string, size = 3 * MiB + 123): string {
  const src = join(dir, 'src.bin')
  writeRandom(src, size)
  fs.chmodSync(src, 0o4751)
  execFileSync('setfattr', ['-n', 'user.colour', '-v', 'blue', src])
  // Times with nanoseconds that no default would produce.
  fs.utimesSync(src, new Date('2001-02-03T04:05:06.789Z'), new Date('2002-03-04T05:06:07.891Z'))
  execFileSync('touch', ['-m', '-d', '2002-03-04 05:06:07.123456789Z', src])
  return src
}

/**
 * What clone() keeps: mode without setuid/setgid, ns times, xattrs, content. `a` is the source's
 * metadata before the clone: reading it to copy moves its atime on.
 */
function assertKept(src: string, dst: string, a = metadata(src)): void {
  const b = metadata(dst)
  assert.equal(b.mode, a.mode & ~0o6000n, 'mode kept, setuid/setgid cleared')
  assert.equal(b.mtimeNs, a.mtimeNs, 'mtime to the nanosecond')
  assert.equal(b.atimeNs, a.atimeNs, 'atime to the nanosecond')
  assert.equal(b.size, a.size)
  assert.deepEqual(xattrs(dst), xattrs(src))
  assert.equal(sha(dst), sha(src))
}

for (const kind of ['xfs', 'btrfs'] as FsKind[]) {
  describe(`clone on ${kind}`, () => {
    for (const [name, cloneFn] of twins) {
      it(`${name} shares every block, keeps metadata, and copies on write`, async (t) => {
        const m = await needMount(t, kind)
        if (!m) return
        const dir = freshDir(m)
        const src = setuidSource(dir)
        const before = sha(src)
        const dst = join(dir, 'dst.bin')
        const r = await cloneFn(src, dst)
        assert.deepEqual(r, { method: 'clone', size: fs.statSync(src).size })
        assert.ok(allShared(src) && allShared(dst), 'FIEMAP marks both sides shared')
        assertKept(src, dst)
        // Copy on write: a write to the clone leaves the original alone, and the other way round.
        const fd = fs.openSync(dst, 'r+')
        fs.writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 8192)
        fs.closeSync(fd)
        assert.equal(sha(src), before)
        assert.notEqual(sha(dst), before)
        fs.appendFileSync(src, 'more')
        assert.equal(fs.readFileSync(dst).subarray(8192, 8196).toString('hex'), '01010101')
        assert.deepEqual(entries(dir), ['dst.bin', 'src.bin'])
      })
    }

    it("mode 'never' makes a copy that shares nothing, with the same metadata", async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      const src = setuidSource(dir)
      const dst = join(dir, 'copy.bin')
      const before = metadata(src)
      const r = await clone(src, dst, { mode: 'never' })
      assert.equal(r.method, 'copy')
      assert.equal(r.fallback, undefined)
      assert.equal(sharedBytes(dst), 0, 'a copy shares no block')
      assert.equal(sharedBytes(src), 0)
      assertKept(src, dst, before)
    })

    it('keeps holes of a sparse file when copying: at the start, in the middle, at the end, all hole', async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      // [offset of 4 KiB of data...], size
      const layouts: Array<[string, number[], number]> = [
        ['hole-data', [64 * MiB], 64 * MiB + 4096],
        ['data-hole-data', [0, 32 * MiB], 32 * MiB + 4096],
        ['data-hole', [0], 64 * MiB],
        ['hole', [], 64 * MiB],
      ]
      for (const [name, data, size] of layouts) {
        const src = join(dir, name)
        const fd = fs.openSync(src, 'w')
        for (const at of data) fs.writeSync(fd, Buffer.alloc(4096, 7), 0, 4096, at)
        fs.ftruncateSync(fd, size)
        fs.closeSync(fd)
        const dst = join(dir, `${name}-copy`)
        await clone(src, dst, { mode: 'never' })
        assert.equal(fs.statSync(dst).size, size, name)
        assert.ok(fs.statSync(dst).blocks * 512 < MiB, `${name}: the holes stayed holes`)
        assert.equal(sha(dst), sha(src), name)
      }
    })

    it('overwrite replaces an existing file atomically; without it EEXIST leaves it alone', async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      const src = join(dir, 'src')
      writeRandom(src, 100_000)
      const dst = join(dir, 'dst')
      fs.writeFileSync(dst, 'old')
      await assert.rejects(clone(src, dst), (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, 'EEXIST')
        assert.equal(e.errno, -17)
        assert.equal(e.path, src)
        assert.equal((e as { dest?: string }).dest, dst)
        assert.match(e.message, /^EEXIST: file already exists, \w+ '.*src' -> '.*dst'$/)
        return true
      })
      assert.throws(() => cloneSync(src, dst), { code: 'EEXIST' })
      assert.equal(fs.readFileSync(dst, 'utf8'), 'old')
      const r = await clone(src, dst, { overwrite: true })
      assert.equal(r.method, 'clone')
      assert.equal(sha(dst), sha(src))
      assert.deepEqual(entries(dir), ['dst', 'src'])
    })

    it('clones from an open FileHandle and from a file descriptor', async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      const src = join(dir, 'src')
      writeRandom(src, 200_000)
      const fh = await open(src, 'r')
      try {
        assert.equal((await clone(fh, join(dir, 'from-handle'))).method, 'clone')
        assert.equal(cloneSync(fh.fd, join(dir, 'from-fd')).method, 'clone')
      } finally {
        await fh.close()
      }
      assert.ok(allShared(join(dir, 'from-handle')) && allShared(join(dir, 'from-fd')))
      assert.equal(sha(join(dir, 'from-fd')), sha(src))
    })

    it('followSymlinks: false clones a symlink as a symlink', async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      writeRandom(join(dir, 'target'), 10_000)
      fs.symlinkSync('target', join(dir, 'link'))
      const r = cloneSync(join(dir, 'link'), join(dir, 'link2'), { followSymlinks: false })
      assert.equal(r.method, 'clone')
      assert.equal(fs.readlinkSync(join(dir, 'link2')), 'target')
      fs.symlinkSync('nowhere', join(dir, 'dangling'))
      cloneSync(join(dir, 'dangling'), join(dir, 'dangling2'), { followSymlinks: false })
      assert.equal(fs.readlinkSync(join(dir, 'dangling2')), 'nowhere')
      // Followed (the default), the link's target is cloned as a file.
      cloneSync(join(dir, 'link'), join(dir, 'followed'))
      assert.ok(fs.lstatSync(join(dir, 'followed')).isFile())
    })
  })
}

describe('errors are thrown, never hidden behind a copy, and leave nothing behind', () => {
  it('ENOENT, EISDIR, a missing parent', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m)
    await assert.rejects(clone(join(dir, 'missing'), join(dir, 'x')), { code: 'ENOENT', syscall: 'open', errno: -2 })
    fs.mkdirSync(join(dir, 'sub'))
    await assert.rejects(clone(join(dir, 'sub'), join(dir, 'x')), { code: 'EISDIR' })
    writeRandom(join(dir, 'f'), 1000)
    assert.throws(() => cloneSync(join(dir, 'f'), join(dir, 'no', 'such', 'x')), { code: 'ENOENT' })
    execFileSync('mkfifo', [join(dir, 'fifo')])
    assert.throws(() => cloneSync(join(dir, 'fifo'), join(dir, 'x')), { code: 'EINVAL' })
    assert.deepEqual(entries(dir), ['f', 'fifo', 'sub'])
  })

  for (const kind of ['ext4', 'tmpfs'] as FsKind[]) {
    it(`${kind}: 'always' throws EOPNOTSUPP; 'auto' copies and says why`, async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      const src = setuidSource(dir, 300_000)
      assert.throws(() => cloneSync(src, join(dir, 'a'), { mode: 'always' }), (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, 'EOPNOTSUPP')
        assert.equal(e.syscall, 'ioctl_ficlone')
        assert.match(e.message, /^EOPNOTSUPP: operation not supported, ioctl_ficlone '.*src.bin' -> '.*a'$/)
        return true
      })
      assert.deepEqual(entries(dir), ['src.bin'])
      const before = metadata(src)
      const r = await clone(src, join(dir, 'b'))
      assert.equal(r.method, 'copy')
      assert.equal(r.fallback?.code, 'EOPNOTSUPP')
      assertKept(src, join(dir, 'b'), before)
    })
  }

  it('EXDEV between filesystems: auto copies, always throws', async (t) => {
    const xfs = await needMount(t, 'xfs')
    const btrfs = await needMount(t, 'btrfs')
    if (!xfs || !btrfs) return
    const src = join(freshDir(xfs), 'src')
    writeRandom(src, 500_000)
    const to = freshDir(btrfs)
    await assert.rejects(clone(src, join(to, 'a'), { mode: 'always' }), { code: 'EXDEV', syscall: 'ioctl_ficlone' })
    assert.deepEqual(entries(to), [])
    const r = cloneSync(src, join(to, 'b'))
    assert.equal(r.method, 'copy')
    assert.equal(r.fallback?.code, 'EXDEV')
    assert.equal(sharedBytes(join(to, 'b')), 0)
  })

  it('a bind mount of the same filesystem clones (Linux >= 5.18 allows cross-mount FICLONE)', async (t) => {
    const xfs = await needMount(t, 'xfs')
    if (!xfs) return
    const dir = freshDir(xfs)
    const src = join(dir, 'src')
    writeRandom(src, 500_000)
    const bound = await bindMount(xfs)
    const dst = join(bound, dir.slice(xfs.dir.length), 'via-bind')
    const r = await clone(src, dst, { mode: 'always' })
    assert.equal(r.method, 'clone')
    assert.ok(allShared(dst))
  })

  it('EROFS on a read-only filesystem', async (t) => {
    const m = await needMount(t, 'xfs-ro')
    if (!m) return
    const src = join(m.dir, RO_DATA)
    await assert.rejects(clone(src, join(m.dir, 'ro', 'clone')), { code: 'EROFS' })
    assert.throws(() => cloneSync(src, join(m.dir, 'ro', 'copy'), { mode: 'never' }), { code: 'EROFS' })
    assert.deepEqual(entries(join(m.dir, 'ro')), ['data.bin'])
  })

  it('ENOSPC when a copy does not fit: no partial file, the space comes back', async (t) => {
    const m = await needMount(t, 'xfs-tiny')
    if (!m) return
    const dir = freshDir(m)
    const src = join(dir, 'big')
    const free = () => { const s = fs.statfsSync(m.dir); return s.bavail * s.bsize }
    writeRandom(src, Math.floor(free() * 0.6))
    const before = free()
    assert.throws(() => cloneSync(src, join(dir, 'copy'), { mode: 'never' }), { code: 'ENOSPC' })
    assert.deepEqual(entries(dir), ['big'])
    execFileSync('sync')
    assert.ok(free() >= before - 1024 * 1024, 'the partial copy was freed')
    // A clone needs no data blocks: it fits where the copy did not.
    assert.equal(cloneSync(src, join(dir, 'clone')).method, 'clone')
  })

  it('EACCES for an unprivileged user, source unchanged, nothing created', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m)
    fs.chmodSync(dir, 0o777)
    const secret = join(dir, 'secret')
    writeRandom(secret, 10_000)
    fs.chmodSync(secret, 0o600)
    const { runNode } = await import('./helpers/files.js')
    const code = `import { cloneSync } from '${new URL('../src/clone.js', import.meta.url).href}'
      try { cloneSync(${JSON.stringify(secret)}, ${JSON.stringify(join(dir, 'stolen'))}); console.log('no error') }
      catch (e) { console.log(e.code, e.syscall) }`
    const r = runNode(code, { asUser: 65534 })
    assert.equal(r.stdout.trim(), 'EACCES open', r.stderr)
    assert.deepEqual(entries(dir), ['secret'])
  })

  it('rejects bad arguments with Node codes', async () => {
    await assert.rejects(clone(42n as never, 'x'), { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' })
    await assert.rejects(clone('a', 7 as never), { code: 'ERR_INVALID_ARG_TYPE' })
    await assert.rejects(clone('a', ''), { code: 'ERR_INVALID_ARG_VALUE' })
    await assert.rejects(clone('a\0b', 'x'), { code: 'ERR_INVALID_ARG_VALUE' })
    await assert.rejects(clone('a', 'b', { mode: 'sometimes' as never }), { code: 'ERR_INVALID_ARG_VALUE' })
    await assert.rejects(clone('a', 'b', { overwrite: 'yes' as never }), { code: 'ERR_INVALID_ARG_TYPE' })
    await assert.rejects(clone('a', 'b', 'auto' as never), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => cloneSync(-1, 'b'), { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' })
  })
})

describe('issue 11 #16: the same file', () => {
  it('issue 11 #16: replacing a file with itself or with a hard link of itself is EINVAL "same file", nothing touched', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m)
    const f = join(dir, 'f')
    writeRandom(f, 100_000)
    const link = join(dir, 'link')
    fs.linkSync(f, link)
    const before = fs.statSync(f, { bigint: true })
    const data = sha(f)
    const same = (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && /same file/.test(e.message)
    for (const [a, b] of [[f, f], [f, link], [link, f]] as const) {
      await assert.rejects(clone(a, b, { overwrite: true }), same)
      assert.throws(() => cloneSync(a, b, { overwrite: true }), same)
      assert.throws(() => cloneSync(a, b, { overwrite: true, mode: 'never' }), same)
    }
    const fd = fs.openSync(f, 'r')
    try {
      assert.throws(() => cloneSync(fd, link, { overwrite: true }), same)
    } finally {
      fs.closeSync(fd)
    }
    const after = fs.statSync(f, { bigint: true })
    assert.equal(after.ino, before.ino, 'the same inode')
    assert.equal(after.nlink, 2n, 'the hard links are not split')
    assert.equal(after.mtimeNs, before.mtimeNs)
    assert.equal(sha(f), data)
    assert.deepEqual(entries(dir), ['f', 'link'])
    // Without overwrite the same pair is EEXIST, as any existing dst.
    assert.throws(() => cloneSync(f, f), { code: 'EEXIST' })
  })
})

describe('issue 11 #8: files whose size lies', () => {
  it('issue 11 #8: a /proc file whose stat says 0 is copied with its content, as GNU cp does', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m)
    const content = fs.readFileSync('/proc/version')
    assert.equal(fs.statSync('/proc/version').size, 0)
    for (const [name, r] of [['a', cloneSync('/proc/version', join(dir, 'a'))], ['b', await clone('/proc/version', join(dir, 'b'), { mode: 'never' })]] as const) {
      assert.equal(r.method, 'copy')
      assert.equal(r.size, content.length, name)
      assert.deepEqual(fs.readFileSync(join(dir, name)), content, name)
    }
  })
})

describe('metadata is the same whether cloned or copied', () => {
  it('xfs clone, xfs copy, ext4 fallback copy, tmpfs copy', async (t) => {
    const xfs = await needMount(t, 'xfs')
    const ext4 = await needMount(t, 'ext4')
    const tmpfs = await needMount(t, 'tmpfs')
    if (!xfs || !ext4 || !tmpfs) return
    for (const [dir, mode] of [[freshDir(xfs), 'always'], [freshDir(xfs), 'never'], [freshDir(ext4), 'auto'], [freshDir(tmpfs), 'auto']] as const) {
      const src = setuidSource(dir, 70_000)
      const before = metadata(src)
      cloneSync(src, join(dir, 'out'), { mode })
      assertKept(src, join(dir, 'out'), before)
    }
  })

  it('ACLs only with preserveAcl', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m)
    const src = join(dir, 'src')
    writeRandom(src, 5000)
    execFileSync('setfacl', ['-m', 'u:65534:r', src])
    cloneSync(src, join(dir, 'without'))
    cloneSync(src, join(dir, 'with'), { preserveAcl: true })
    assert.ok(!('system.posix_acl_access' in xattrs(join(dir, 'without'))))
    assert.equal(xattrs(join(dir, 'with'))['system.posix_acl_access'], xattrs(src)['system.posix_acl_access'])
  })

  it('owner kept as root unless preserveOwner is false', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m || process.getuid?.() !== 0) return
    const dir = freshDir(m)
    const src = join(dir, 'src')
    writeRandom(src, 5000)
    fs.chownSync(src, 1234, 5678)
    cloneSync(src, join(dir, 'kept'))
    cloneSync(src, join(dir, 'mine'), { preserveOwner: false })
    assert.deepEqual([fs.statSync(join(dir, 'kept')).uid, fs.statSync(join(dir, 'kept')).gid], [1234, 5678])
    assert.deepEqual([fs.statSync(join(dir, 'mine')).uid, fs.statSync(join(dir, 'mine')).gid], [0, 0])
  })
})

describe('many clones asked for at once (they share trips to the thread pool)', () => {
  it('each gets its own result or error, fallbacks included, and every clone is real', async (t) => {
    const xfs = await needMount(t, 'xfs')
    const ext4 = await needMount(t, 'ext4')
    if (!xfs || !ext4) return
    const dir = freshDir(xfs)
    const other = freshDir(ext4)
    const src = setuidSource(dir, 256 * 1024)
    const before = sha(src)
    fs.writeFileSync(join(dir, 'taken'), 'keep me')
    const far = join(other, 'far.bin')
    writeRandom(far, 64 * 1024)
    const goods = Array.from({ length: 20 }, (_, i) => join(dir, `ok-${i}`))
    // All in one turn of the event loop, with two sets of options: 20 clones that work, one
    // onto an existing file, one from a missing file, one that needs a copy (EXDEV), one
    // 'always' that cannot clone.
    const settled = await Promise.allSettled([
      ...goods.map((d, i) => clone(src, d, i % 2 === 0 ? {} : { preserveOwner: false })),
      clone(src, join(dir, 'taken')),
      clone(join(dir, 'missing'), join(dir, 'never-made')),
      clone(far, join(dir, 'from-ext4')),
      clone(far, join(dir, 'from-ext4-always'), { mode: 'always' }),
    ])
    const size = fs.statSync(src).size
    for (const [i, s] of settled.slice(0, goods.length).entries()) {
      assert.deepEqual(s, { status: 'fulfilled', value: { method: 'clone', size } }, `clone ${i}`)
      assert.ok(allShared(goods[i] as string), `ok-${i} shares its blocks`)
      assertKept(src, goods[i] as string)
    }
    const [taken, missing, copied, always] = settled.slice(goods.length)
    assert.equal(taken?.status === 'rejected' && (taken.reason as NodeJS.ErrnoException).code, 'EEXIST')
    assert.equal(fs.readFileSync(join(dir, 'taken'), 'utf8'), 'keep me', 'the existing file is untouched')
    assert.equal(missing?.status === 'rejected' && (missing.reason as NodeJS.ErrnoException).code, 'ENOENT')
    assert.equal(missing?.status === 'rejected' && (missing.reason as NodeJS.ErrnoException).path, join(dir, 'missing'))
    assert.equal(fs.existsSync(join(dir, 'never-made')), false)
    assert.equal(copied?.status === 'fulfilled' && copied.value.method, 'copy')
    assert.equal(copied?.status === 'fulfilled' && copied.value.fallback?.code, 'EXDEV')
    assert.equal(sha(join(dir, 'from-ext4')), sha(far))
    assert.equal(always?.status === 'rejected' && (always.reason as NodeJS.ErrnoException).code, 'EXDEV')
    assert.equal(fs.existsSync(join(dir, 'from-ext4-always')), false)
    assert.equal(sha(src), before, 'source unchanged')
  })
})
