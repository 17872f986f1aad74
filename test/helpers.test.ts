// Tests of the test helpers themselves: the mounts are what they claim, and the FIEMAP oracle
// tells shared blocks from copied ones.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { allShared, extentsOf, parseFiemap, sharedBytes } from './helpers/fiemap.js'
import { bindMount, freshDir, mount, needMount, RO_DATA, RO_DATA_SIZE } from './helpers/mounts.js'
import type { FsKind } from './helpers/mounts.js'

const MAGIC: Record<FsKind, number> = {
  xfs: 0x58465342,
  'xfs-tiny': 0x58465342,
  'xfs-ro': 0x58465342,
  btrfs: 0x9123683e,
  ext4: 0xef53,
  tmpfs: 0x01021994,
}
const MOUNTS_JS = fileURLToPath(new URL('./helpers/mounts.js', import.meta.url))

function writeRandom(file: string, bytes: number): void {
  fs.writeFileSync(file, randomBytes(bytes))
}

function cp(...args: string[]): { ok: boolean; stderr: string } {
  const r = spawnSync('cp', args, { encoding: 'utf8' })
  return { ok: r.status === 0, stderr: r.stderr }
}

function mountPointsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(dir + '/'))
}

describe('parseFiemap', () => {
  test('reads extents in 512-byte units, drops holes, names flags', () => {
    const out = [
      '/m/sparse:',
      ' EXT: FILE-OFFSET      BLOCK-RANGE      TOTAL FLAGS',
      '   0: [0..127]:        784..911           128 0x2000',
      '   1: [128..2047]:     hole              1920',
      '   2: [2048..2175]:    912..1039          128   0x1',
      '   3: [2176..6143]:    hole              3968',
    ].join('\n')
    assert.deepEqual(parseFiemap(out), [
      { logical: 0, physical: 784 * 512, length: 65536, shared: true, flags: ['shared'] },
      { logical: 1024 * 1024, physical: 912 * 512, length: 65536, shared: false, flags: ['last'] },
    ])
  })

  test('btrfs inline extents are not shared; unknown bits are kept', () => {
    const [e] = parseFiemap('   0: [0..7]:          0..7                 8 0x40301\n')
    assert.deepEqual(e?.flags, ['last', 'not_aligned', 'data_inline', '0x40000'])
    assert.equal(e?.shared, false)
  })

  test('rejects lines it does not understand', () => {
    assert.throws(() => parseFiemap('   0: [0..7]:   delalloc   8 0x4\n'), /unexpected xfs_io fiemap line/)
  })
})

describe('mounts', () => {
  for (const kind of ['xfs', 'btrfs', 'ext4', 'tmpfs', 'xfs-tiny', 'xfs-ro'] as const) {
    test(`${kind} is mounted with the right filesystem`, async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      assert.equal(m.kind, kind)
      assert.equal(fs.statfsSync(m.dir).type, MAGIC[kind])
      assert.equal(await mount(kind), m, 'mount() returns the same mount for the same kind')
      if (kind === 'tmpfs') assert.equal(m.device, undefined)
      else assert.match(m.device ?? '', /^\/dev\/loop\d+$/)
    })
  }

  test('xfs-tiny is small', async (t) => {
    const m = await needMount(t, 'xfs-tiny')
    if (!m) return
    const s = fs.statfsSync(m.dir)
    assert.ok(s.blocks * s.bsize <= 300 * 1024 * 1024, `${s.blocks * s.bsize} bytes`)
  })

  test('freshDir makes new empty directories inside the mount', async (t) => {
    const m = await needMount(t, 'tmpfs')
    if (!m) return
    const a = freshDir(m, 'x')
    const b = freshDir(m.dir)
    assert.notEqual(a, b)
    assert.ok(a.startsWith(m.dir + path.sep) && b.startsWith(m.dir + path.sep))
    assert.deepEqual(fs.readdirSync(a), [])
    assert.match(path.basename(a), /^x-/)
  })

  test('xfs-ro holds ro/data.bin and refuses writes with EROFS', async (t) => {
    const m = await needMount(t, 'xfs-ro')
    if (!m) return
    assert.equal(fs.statSync(path.join(m.dir, RO_DATA)).size, RO_DATA_SIZE)
    assert.throws(() => fs.writeFileSync(path.join(m.dir, 'new'), 'x'), { code: 'EROFS' })
    assert.throws(() => fs.appendFileSync(path.join(m.dir, RO_DATA), 'x'), { code: 'EROFS' })
    assert.equal(
      extentsOf(path.join(m.dir, RO_DATA)).reduce((n, e) => n + e.length, 0),
      RO_DATA_SIZE,
      'the oracle works on a read-only filesystem',
    )
  })
})

describe('reflink and the FIEMAP oracle', () => {
  for (const kind of ['xfs', 'btrfs', 'xfs-tiny'] as const) {
    test(`${kind}: cp --reflink=always shares every block of both files`, async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      const [a, b] = [path.join(dir, 'a'), path.join(dir, 'b')]
      writeRandom(a, 1024 * 1024 + 123)
      assert.equal(sharedBytes(a), 0)
      assert.ok(cp('--reflink=always', a, b).ok)
      assert.ok(allShared(a) && allShared(b))
      assert.ok(sharedBytes(b) >= 1024 * 1024 + 123)
      assert.deepEqual(
        extentsOf(a).map((e) => e.physical),
        extentsOf(b).map((e) => e.physical),
      )
    })

    test(`${kind}: cp --reflink=never makes an unshared copy`, async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      const [a, c] = [path.join(dir, 'a'), path.join(dir, 'c')]
      writeRandom(a, 256 * 1024)
      assert.ok(cp('--reflink=never', a, c).ok)
      assert.equal(sharedBytes(c), 0)
      assert.equal(allShared(c), false)
      assert.ok(extentsOf(c).length > 0)
    })

    test(`${kind}: a sparse file's holes are left out, and its clone is all shared`, async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      const [a, b] = [path.join(dir, 'sparse'), path.join(dir, 'clone')]
      const fd = fs.openSync(a, 'w')
      fs.writeSync(fd, randomBytes(65536), 0, 65536, 0)
      fs.writeSync(fd, randomBytes(65536), 0, 65536, 1024 * 1024)
      fs.ftruncateSync(fd, 3 * 1024 * 1024)
      fs.closeSync(fd)
      const extents = extentsOf(a)
      assert.deepEqual(
        extents.map((e) => [e.logical, e.length]),
        [
          [0, 65536],
          [1024 * 1024, 65536],
        ],
      )
      assert.equal(sharedBytes(a), 0)
      assert.ok(cp('--reflink=always', a, b).ok)
      assert.ok(allShared(a) && allShared(b))
      assert.equal(sharedBytes(b), 2 * 65536)
    })
  }

  test('btrfs: tiny files live inline in metadata, so even a reflink does not share them', async (t) => {
    const m = await needMount(t, 'btrfs')
    if (!m) return
    const dir = freshDir(m)
    fs.writeFileSync(path.join(dir, 'small'), 'hi\n')
    assert.ok(cp('--reflink=always', path.join(dir, 'small'), path.join(dir, 'small2')).ok)
    const [e] = extentsOf(path.join(dir, 'small2'))
    assert.ok(e?.flags.includes('data_inline'))
    assert.equal(allShared(path.join(dir, 'small2')), false)
  })

  test('an empty file is never allShared', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const f = path.join(freshDir(m), 'empty')
    fs.writeFileSync(f, '')
    assert.deepEqual(extentsOf(f), [])
    assert.equal(allShared(f), false)
  })

  for (const kind of ['ext4', 'tmpfs'] as const) {
    test(`${kind}: cp --reflink=always fails and nothing is shared`, async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const dir = freshDir(m)
      const [a, b] = [path.join(dir, 'a'), path.join(dir, 'b')]
      writeRandom(a, 256 * 1024)
      assert.equal(cp('--reflink=always', a, b).ok, false)
      assert.equal(sharedBytes(a), 0)
      assert.equal(allShared(a), false)
    })
  }

  test('ext4 reports its extents, unshared', async (t) => {
    const m = await needMount(t, 'ext4')
    if (!m) return
    const a = path.join(freshDir(m), 'a')
    writeRandom(a, 256 * 1024)
    assert.equal(extentsOf(a).reduce((n, e) => n + e.length, 0), 256 * 1024)
  })
})

// Linux 5.18 ("fs: allow cross-vfsmount reflink/dedupe") lets FICLONE cross mounts of one
// filesystem; before it, two bind mounts counted as different mounts and gave EXDEV.
function kernelAtLeast(major: number, minor: number): boolean {
  const [maj = 0, min = 0] = os.release().split(/[.-]/).map(Number)
  return maj > major || (maj === major && min >= minor)
}

describe('bind mounts', () => {
  for (const kind of ['xfs', 'btrfs'] as const) {
    test(`${kind}: a bind mount is a second mount of the same filesystem`, async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const bound = await bindMount(m)
      assert.notEqual(bound, m.dir)
      assert.ok(mountPointsUnder(path.dirname(bound)).includes(bound))
      const dir = freshDir(m)
      const a = path.join(dir, 'a')
      writeRandom(a, 128 * 1024)
      const throughBind = path.join(bound, path.relative(m.dir, a))
      assert.deepEqual(fs.readFileSync(throughBind), fs.readFileSync(a))
      assert.equal(fs.statSync(throughBind).ino, fs.statSync(a).ino)
    })

    test(`${kind}: reflinking across a bind mount shares on Linux >= 5.18, else EXDEV`, async (t) => {
      const m = await needMount(t, kind)
      if (!m) return
      const bound = await bindMount(m)
      const dir = freshDir(m)
      const a = path.join(dir, 'a')
      const b = path.join(bound, path.relative(m.dir, dir), 'b')
      writeRandom(a, 128 * 1024)
      const r = cp('--reflink=always', a, b)
      if (kernelAtLeast(5, 18)) {
        assert.ok(r.ok, r.stderr)
        assert.ok(allShared(b))
      } else {
        assert.equal(r.ok, false)
        assert.match(r.stderr, /cross-device/i)
      }
    })
  }

  test('reflinking between two XFS filesystems fails with EXDEV', async (t) => {
    const [x, tiny] = [await needMount(t, 'xfs'), await needMount(t, 'xfs-tiny')]
    if (!x || !tiny) return
    const a = path.join(freshDir(x), 'a')
    writeRandom(a, 64 * 1024)
    const r = cp('--reflink=always', a, path.join(freshDir(tiny), 'b'))
    assert.equal(r.ok, false)
    assert.match(r.stderr, /cross-device/i)
  })
})

describe('cleanup', () => {
  // Runs an ES module script in a child node process.
  function child(t: TestContext, script: string, env: NodeJS.ProcessEnv = {}): ReturnType<typeof spawnSync> {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 120_000,
    })
    t.diagnostic(`child status ${r.status} signal ${r.signal} stderr ${r.stderr}`)
    return r
  }
  const setup = `
    import { mount, bindMount } from ${JSON.stringify(MOUNTS_JS)}
    const x = await mount('xfs'); await bindMount(x); await mount('tmpfs')
    process.stdout.write(JSON.stringify({ root: x.dir.slice(0, x.dir.lastIndexOf('/')), device: x.device }))
  `

  async function needRoot(t: TestContext): Promise<boolean> {
    return (await needMount(t, 'xfs')) !== undefined && (await needMount(t, 'tmpfs')) !== undefined
  }

  function assertGone(root: string, device: string): void {
    assert.deepEqual(mountPointsUnder(root), [])
    assert.equal(fs.existsSync(root), false, `${root} removed`)
    const loops = execFileSync('losetup', ['-a'], { encoding: 'utf8' })
    assert.ok(!loops.includes(root), `no loop device left on an image under ${root}: ${loops}`)
    assert.ok(device.startsWith('/dev/loop'))
  }

  test('a normal exit unmounts everything and deletes the images', async (t) => {
    if (!(await needRoot(t))) return
    const r = child(t, setup)
    assert.equal(r.status, 0)
    const { root, device } = JSON.parse(String(r.stdout)) as { root: string; device: string }
    assertGone(root, device)
  })

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} unmounts everything and still kills the process`, async (t) => {
      if (!(await needRoot(t))) return
      const r = child(t, `${setup}; process.kill(process.pid, '${signal}'); setTimeout(() => {}, 60_000)`)
      assert.equal(r.signal, signal)
      const { root, device } = JSON.parse(String(r.stdout)) as { root: string; device: string }
      assertGone(root, device)
    })
  }

  test('leftovers of a killed run are removed by the next run', async (t) => {
    if (!(await needRoot(t))) return
    const killed = child(t, `${setup}; process.kill(process.pid, 'SIGKILL')`)
    assert.equal(killed.signal, 'SIGKILL')
    const { root, device } = JSON.parse(String(killed.stdout)) as { root: string; device: string }
    assert.ok(mountPointsUnder(root).length >= 3, 'the killed run left its mounts behind')
    const next = child(t, `import { mount } from ${JSON.stringify(MOUNTS_JS)}; await mount('tmpfs')`)
    assert.equal(next.status, 0)
    assertGone(root, device)
  })

  test('CI=true turns a filesystem that cannot be had into a failure, not a skip', async (t) => {
    if (!(await needRoot(t))) return
    // As an unprivileged user mounting is impossible: the child's test must skip, or fail on CI.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clonefile-needmount-'))
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
    fs.chmodSync(dir, 0o755)
    const file = path.join(dir, 'need.test.mjs')
    fs.writeFileSync(
      file,
      `import { test } from 'node:test'
       import { needMount } from ${JSON.stringify(MOUNTS_JS)}
       test('needs btrfs', async (t) => { await needMount(t, 'btrfs') })`,
    )
    const run = (ci: string) =>
      spawnSync(process.execPath, ['--test', '--test-reporter=tap', file], {
        encoding: 'utf8',
        uid: 65534,
        gid: 65534,
        env: { PATH: process.env.PATH, CI: ci },
      })
    const onCi = run('true')
    assert.notEqual(onCi.status, 0, onCi.stdout)
    assert.match(onCi.stdout, /cannot set up the btrfs test filesystem: mounting needs root/)
    const offCi = run('')
    assert.equal(offCi.status, 0, offCi.stdout)
    assert.match(offCi.stdout, /# skipped 1/)
  })
})
