// Real filesystems for tests: loop-mounted images (xfs, btrfs, ext4) and tmpfs, created on first
// use, one set per process, torn down when the process exits.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { TestContext } from 'node:test'

export type FsKind = 'xfs' | 'btrfs' | 'ext4' | 'tmpfs' | 'xfs-tiny' | 'xfs-ro'

export interface TestMount {
  kind: FsKind
  /** The mount point; writable unless the kind is xfs-ro. */
  dir: string
  /** The block device (a loop device) behind the mount; absent for tmpfs. */
  device?: string
}

/** The file xfs-ro holds (64 KiB of random bytes), relative to its mount point. */
export const RO_DATA = 'ro/data.bin'
export const RO_DATA_SIZE = 64 * 1024

const MiB = 1024 * 1024
const PREFIX = 'clonefile-test-'
// The pid of the owning process is part of the root's name so a later run can tell leftovers
// of a killed run (dead pid) from a run still going on in parallel.
const LEFTOVER = /^clonefile-test-(\d+)-/
// mkfs.xfs refuses images under 300 MB unless it believes it runs under fstests, whose scratch
// devices are small; it checks these three variables. Values are irrelevant.
const FSTESTS_ENV = { TEST_DIR: '/nonexistent', TEST_DEV: '/nonexistent', QA_CHECK_FS: '1' }

const made = new Map<FsKind, Promise<TestMount>>()
let root: string | undefined
let bindCount = 0
let cleaned = false
let bigImages: number | undefined

/**
 * Makes the xfs, btrfs and ext4 images created from now on `bytes` large instead of 512 MiB
 * (ext4: 256 MiB), with the geometry mkfs chooses for that size (the benchmark: growing a small XFS would leave it
 * with many small allocation groups, which favours parallel writers).
 */
export function useImageSize(bytes: number): void {
  bigImages = bytes
}

/** Raised when the platform cannot have these filesystems at all (not Linux). */
class NotOnThisPlatform extends Error {}

export function mount(kind: FsKind): Promise<TestMount> {
  let m = made.get(kind)
  if (!m) {
    m = create(kind)
    made.set(kind, m)
  }
  return m
}

export async function bindMount(of: TestMount): Promise<string> {
  const dir = path.join(rootDir(), `bind-${of.kind}-${++bindCount}`)
  fs.mkdirSync(dir)
  run('mount', ['--bind', of.dir, dir])
  return dir
}

/**
 * The mount, or undefined after skipping the test when it cannot be set up. With CI=true a
 * missing filesystem fails the test instead: CI must never pass by skipping these tests.
 */
export async function needMount(t: TestContext, kind: FsKind): Promise<TestMount | undefined> {
  try {
    return await mount(kind)
  } catch (err) {
    const why = `cannot set up the ${kind} test filesystem: ${messageOf(err)}`
    // macOS and Windows CI runners set CI=true too, and can never have these filesystems.
    if (process.env.CI === 'true' && !(err instanceof NotOnThisPlatform)) {
      throw new Error(why, { cause: err })
    }
    t.skip(why)
    return undefined
  }
}

export function freshDir(m: TestMount | string, name = 'd'): string {
  const base = typeof m === 'string' ? m : m.dir
  return fs.mkdtempSync(path.join(base, `${name}-`))
}

async function create(kind: FsKind): Promise<TestMount> {
  checkPrerequisites(kind)
  const dir = path.join(rootDir(), kind)
  fs.mkdirSync(dir)
  switch (kind) {
    case 'tmpfs':
      run('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', dir])
      return { kind, dir }
    case 'xfs':
      return loopMount(kind, dir, () => mkfs(kind, bigImages ?? 512 * MiB, 'mkfs.xfs', ['-q', '-f', '-m', 'reflink=1']))
    case 'btrfs':
      return loopMount(kind, dir, () => mkfs(kind, bigImages ?? 512 * MiB, 'mkfs.btrfs', ['-q', '-f']))
    case 'ext4':
      return loopMount(kind, dir, () => mkfs(kind, bigImages ?? 256 * MiB, 'mkfs.ext4', ['-q', '-F']))
    case 'xfs-tiny':
      return loopMount(kind, dir, () => tinyXfs(kind))
    case 'xfs-ro':
      return readOnlyXfs(dir)
  }
}

function checkPrerequisites(kind: FsKind): void {
  if (process.platform !== 'linux') {
    throw new NotOnThisPlatform(`${kind} test mounts need Linux (this is ${process.platform})`)
  }
  if (process.getuid?.() !== 0) throw new Error('mounting needs root (run the tests as root, e.g. with sudo)')
  if (kind !== 'tmpfs' && !fs.existsSync('/dev/loop-control') && !fs.existsSync('/dev/loop0')) {
    throw new Error('no loop devices (/dev/loop-control is missing; try `modprobe loop`)')
  }
}

function loopMount(kind: FsKind, dir: string, makeImage: () => string): TestMount {
  const image = makeImage()
  run('mount', ['-o', 'loop', image, dir])
  const device = sourceOf(dir)
  return device === undefined ? { kind, dir } : { kind, dir, device }
}

function mkfs(kind: FsKind, bytes: number, tool: string, args: string[], env: Record<string, string> = {}): string {
  const image = path.join(rootDir(), `${kind}.img`)
  fs.writeFileSync(image, '')
  fs.truncateSync(image, bytes)
  run(tool, [...args, image], env)
  return image
}

// Small so that an ENOSPC test can fill it quickly; falls back to the 300 MB minimum of
// current xfsprogs if the fstests escape hatch stops working.
function tinyXfs(kind: FsKind): string {
  const args = ['-q', '-f', '-m', 'reflink=1']
  try {
    return mkfs(kind, 32 * MiB, 'mkfs.xfs', args, FSTESTS_ENV)
  } catch {
    return mkfs(kind, 300 * MiB, 'mkfs.xfs', args)
  }
}

function readOnlyXfs(dir: string): TestMount {
  const m = loopMount('xfs-ro', dir, () => mkfs('xfs-ro', 512 * MiB, 'mkfs.xfs', ['-q', '-f', '-m', 'reflink=1']))
  const data = path.join(dir, RO_DATA)
  fs.mkdirSync(path.dirname(data))
  const fd = fs.openSync(data, 'wx')
  try {
    fs.writeSync(fd, randomBytes(RO_DATA_SIZE))
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  run('mount', ['-o', 'remount,ro', dir])
  return m
}

function rootDir(): string {
  if (root === undefined) {
    removeLeftovers()
    root = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}${process.pid}-`))
    installCleanup()
  }
  return root
}

function installCleanup(): void {
  process.on('exit', cleanup)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      cleanup()
      // Re-raise so the process still dies of the signal (or the next handler sees it).
      process.removeListener(signal, onSignal)
      process.kill(process.pid, signal)
    }
    process.on(signal, onSignal)
  }
}

function cleanup(): void {
  if (cleaned || root === undefined) return
  cleaned = true
  tearDown(root)
}

function removeLeftovers(): void {
  const tmp = os.tmpdir()
  for (const name of fs.readdirSync(tmp)) {
    const pid = Number(LEFTOVER.exec(name)?.[1])
    if (Number.isInteger(pid) && !isAlive(pid)) tearDown(path.join(tmp, name))
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Unmounts everything under dir, frees the loop devices of its images, deletes it. */
function tearDown(dir: string): void {
  for (const mountPoint of mountsUnder(dir)) unmount(mountPoint)
  detachLoops(dir)
  // Never recurse into a filesystem that is still mounted: that would empty it, not remove it.
  if (mountsUnder(dir).length === 0) fs.rmSync(dir, { recursive: true, force: true })
}

/** Mount points under dir, bind mounts first, then the newest first. */
function mountsUnder(dir: string): string[] {
  const under = mountTable()
    .map((e) => e.mountPoint)
    .filter((p) => p.startsWith(dir + path.sep))
    .reverse()
  const isBind = (p: string): boolean => path.basename(p).startsWith('bind-')
  return [...under.filter(isBind), ...under.filter((p) => !isBind(p))]
}

function unmount(mountPoint: string): void {
  try {
    run('umount', [mountPoint])
  } catch {
    try {
      run('umount', ['-l', mountPoint])
    } catch {
      // Reported by the leftover check of the next run; exit handlers must not throw.
    }
  }
}

// `mount -o loop` sets autoclear, so this only matters after a lazy unmount or a crash
// between losetup and mount.
function detachLoops(dir: string): void {
  let names: string[]
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.img'))
  } catch {
    return
  }
  for (const name of names) {
    try {
      const listing = run('losetup', ['-j', path.join(dir, name)])
      for (const line of listing.split('\n')) {
        const device = line.split(':')[0]
        if (device) run('losetup', ['-d', device])
      }
    } catch {
      // losetup missing or device already gone.
    }
  }
}

interface MountEntry {
  mountPoint: string
  source: string
}

function mountTable(): MountEntry[] {
  let text: string
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8')
  } catch {
    return []
  }
  const entries: MountEntry[] = []
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ')
    const mountPoint = left?.split(' ')[4]
    const source = right?.split(' ')[1]
    if (mountPoint !== undefined && source !== undefined) {
      entries.push({ mountPoint: unescapeOctal(mountPoint), source: unescapeOctal(source) })
    }
  }
  return entries
}

function sourceOf(dir: string): string | undefined {
  return mountTable()
    .reverse()
    .find((e) => e.mountPoint === dir)?.source
}

// mountinfo writes space, tab, newline and backslash as \040 etc.
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
}

function run(tool: string, args: string[], env: Record<string, string> = {}): string {
  try {
    return execFileSync(tool, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      // sudo and some CI shells leave the sbin directories, where mkfs.* live, out of PATH.
      env: { ...process.env, ...env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` },
    })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    if (e.code === 'ENOENT') throw new Error(`${tool} is not installed (${packageOf(tool)})`, { cause: err })
    const detail = e.stderr?.trim() || e.message
    throw new Error(`${tool} ${args.join(' ')} failed: ${detail}`, { cause: err })
  }
}

function packageOf(tool: string): string {
  if (tool === 'mkfs.xfs') return 'Debian package xfsprogs'
  if (tool === 'mkfs.btrfs') return 'Debian package btrfs-progs'
  if (tool === 'mkfs.ext4') return 'Debian package e2fsprogs'
  return 'Debian package util-linux'
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
