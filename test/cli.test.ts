import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { allShared } from './helpers/fiemap.js'
import { spawn } from 'node:child_process'
import { cli, runCli, writeRandom } from './helpers/files.js'
import { freshDir, needMount } from './helpers/mounts.js'

describe('clonefile cp', () => {
  it('-v says cloned or copied and why; exit codes 0, 1, 2', async (t) => {
    const xfs = await needMount(t, 'xfs')
    const ext4 = await needMount(t, 'ext4')
    if (!xfs || !ext4) return
    const dir = freshDir(xfs)
    const src = join(dir, 'a')
    writeRandom(src, 48 * 1024)
    let r = runCli(['cp', '-v', src, join(dir, 'b')])
    assert.equal(r.status, 0, r.stderr)
    const [line, saving] = r.stdout.split('\n')
    assert.equal(line, `cloned ${src} -> ${join(dir, 'b')}`)
    // -v also says what the clone saves, measured as clonefile du measures it.
    assert.equal(saving, '  2 files · 96.0 KiB referenced · 48.0 KiB on disk · sharing saves 48.0 KiB (50%)')
    assert.ok(allShared(join(dir, 'b')))
    r = runCli(['cp', '-v', src, join(freshDir(ext4), 'c')])
    assert.match(r.stdout, /^copied .* \(EXDEV\)\n {2}2 files · 96\.0 KiB referenced · 96\.0 KiB on disk · sharing saves 0 B \(0%\)\n$/)
    r = runCli(['cp', src, join(dir, 'b')])
    assert.equal(r.status, 1)
    assert.match(r.stderr, /^clonefile cp: EEXIST: file already exists, .*\n$/)
    assert.equal(runCli(['cp', '-n', src, join(dir, 'b')]).status, 0)
    assert.equal(runCli(['cp', '-f', src, join(dir, 'b')]).status, 0)
    assert.equal(runCli(['cp', '--reflink=sometimes', src, join(dir, 'x')]).status, 2)
    assert.equal(runCli(['cp', src]).status, 2)
    assert.equal(runCli(['cp', '--bogus', src, join(dir, 'x')]).status, 2)
    assert.equal(runCli(['frobnicate']).status, 2)
    assert.equal(fs.existsSync(join(dir, 'x')), false)
  })

  it('--version and -V print the package version', () => {
    const { version } = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    for (const flag of ['--version', '-V']) assert.deepEqual(runCli([flag]), { status: 0, stdout: `clonefile ${version}\n`, stderr: '' })
  })

  it('--json reports the result; --reflink=always fails on ext4 with the code', async (t) => {
    const ext4 = await needMount(t, 'ext4')
    if (!ext4) return
    const dir = freshDir(ext4)
    writeRandom(join(dir, 'a'), 1000)
    const r = runCli(['cp', '--json', join(dir, 'a'), join(dir, 'b')])
    const out = JSON.parse(r.stdout)
    assert.equal(out.method, 'copy')
    assert.equal(out.fallback.code, 'EOPNOTSUPP')
    const always = runCli(['cp', '--reflink=always', join(dir, 'a'), join(dir, 'c')])
    assert.equal(always.status, 1)
    assert.match(always.stderr, /EOPNOTSUPP/)
  })

  it('-a clones a tree; several sources go into a directory', async (t) => {
    const xfs = await needMount(t, 'xfs')
    if (!xfs) return
    const dir = freshDir(xfs)
    fs.mkdirSync(join(dir, 'tree/sub'), { recursive: true })
    writeRandom(join(dir, 'tree/sub/f'), 20_000)
    writeRandom(join(dir, 'one'), 20_000)
    fs.mkdirSync(join(dir, 'into'))
    assert.equal(runCli(['cp', join(dir, 'tree'), join(dir, 'nope')]).status, 1, 'a directory needs -r')
    const r = runCli(['cp', '-a', '--json', join(dir, 'tree'), join(dir, 'one'), join(dir, 'into')])
    assert.equal(r.status, 0, r.stderr)
    const [tree, one] = JSON.parse(r.stdout)
    assert.equal(tree.cloned.files, 1)
    assert.equal(one.method, 'clone')
    assert.ok(allShared(join(dir, 'into/tree/sub/f')) && allShared(join(dir, 'into/one')))
  })
})

describe('clonefile cp on a tree: progress and Ctrl-C', () => {
  function tree(root: string, dirs: number, files: number): void {
    for (let d = 0; d < dirs; d++) {
      fs.mkdirSync(join(root, `d${d}`), { recursive: true })
      for (let f = 0; f < files; f++) fs.writeFileSync(join(root, `d${d}`, `f${f}`), `${d}/${f}`.repeat(200))
    }
  }

  it('--progress draws a bar on stderr; a pipe gets none by default', async (t) => {
    const xfs = await needMount(t, 'xfs')
    if (!xfs) return
    const dir = freshDir(xfs)
    tree(join(dir, 'src'), 20, 50)
    const quiet = runCli(['cp', '-a', join(dir, 'src'), join(dir, 'quiet')])
    assert.equal(quiet.status, 0, quiet.stderr)
    assert.equal(quiet.stderr, '')
    const shown = runCli(['cp', '-a', '--progress', join(dir, 'src'), join(dir, 'shown')])
    assert.equal(shown.status, 0, shown.stderr)
    assert.match(shown.stderr, /\[[#.]{24}\] \d+ files, .* files\/s/)
    // It counted the files beforehand: the last update shows all of them, the bar full.
    assert.match(shown.stderr, /\[#{24}\] 1000 files, .* files\/s ETA 0s/)
  })

  it('SIGINT stops the clone, exit status 130, nothing left at DST', async (t) => {
    const xfs = await needMount(t, 'xfs')
    if (!xfs) return
    const dir = freshDir(xfs)
    tree(join(dir, 'src'), 200, 100)
    const child = spawn(process.execPath, [cli, 'cp', '-a', join(dir, 'src'), join(dir, 'dst')], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    // Interrupt once the tree is being built under its temporary name.
    const building = () => fs.readdirSync(dir).some((n) => n.startsWith('.clonefile-tmp-'))
    for (let i = 0; i < 2000 && !building(); i++) await new Promise((r) => setTimeout(r, 2))
    assert.ok(building(), 'the clone started')
    child.kill('SIGINT')
    assert.equal(await exited, 130, stderr)
    assert.match(stderr, /interrupted; nothing was left at the destination/)
    assert.deepEqual(fs.readdirSync(dir), ['src'])
  })
})

describe('clonefile cp killed with SIGKILL', () => {
  it('leaves only its temporary tree, which the next run removes', async (t) => {
    const xfs = await needMount(t, 'xfs')
    if (!xfs) return
    const dir = freshDir(xfs)
    for (let d = 0; d < 200; d++) {
      fs.mkdirSync(join(dir, 'src', `d${d}`), { recursive: true })
      for (let f = 0; f < 100; f++) fs.writeFileSync(join(dir, 'src', `d${d}`, `f${f}`), `${d}/${f}`)
    }
    const child = spawn(process.execPath, [cli, 'cp', '-a', join(dir, 'src'), join(dir, 'dst')], { stdio: 'ignore' })
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
    const temps = () => fs.readdirSync(dir).filter((n) => n.startsWith('.clonefile-tmp-'))
    for (let i = 0; i < 2000 && temps().length === 0; i++) await new Promise((r) => setTimeout(r, 2))
    child.kill('SIGKILL')
    assert.equal(await exited, 'SIGKILL')
    assert.equal(temps().length, 1, 'killed while building: its temporary tree is left')
    assert.ok(!fs.existsSync(join(dir, 'dst')), 'nothing at DST')
    const again = runCli(['cp', '-a', join(dir, 'src'), join(dir, 'dst')])
    assert.equal(again.status, 0, again.stderr)
    assert.deepEqual(fs.readdirSync(dir).sort(), ['dst', 'src'], 'the next run removed the leftover')
  })
})

describe('clonefile probe', () => {
  it('prints what the filesystem can do, and --json', async (t) => {
    const xfs = await needMount(t, 'xfs')
    if (!xfs) return
    const r = runCli(['probe', xfs.dir])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /: xfs, block size 4096\n {2}clone: yes {2}range: yes {2}dedupe: yes\n/)
    assert.equal(JSON.parse(runCli(['probe', '--json', xfs.dir]).stdout).clone, true)
    assert.equal(runCli(['probe']).status, 2)
  })
})

describe('clonefile demo', () => {
  it('shows that the clone took no space, and cleans up', async (t) => {
    const btrfs = await needMount(t, 'btrfs')
    const ext4 = await needMount(t, 'ext4')
    if (!btrfs || !ext4) return
    const dir = freshDir(btrfs)
    const r = runCli(['demo', '--size', '128', dir])
    assert.equal(r.status, 0, r.stderr)
    const rows = Object.fromEntries(r.stdout.split('\n').filter((l) => /^(copy|clone) /.test(l)).map((l) => [l.split(/\s+/)[0], l]))
    assert.ok(rows.copy && rows.clone, r.stdout)
    assert.match(rows.copy ?? '', /12\d(\.\d)? MiB$/, 'the copy used 128 MiB')
    assert.match(rows.clone ?? '', /\s\d+(\.\d)? (B|KiB|MiB)$/, 'the clone used next to nothing')
    assert.match(r.stdout, /Original and clone together.*\n {2}2 files · 256 MiB referenced · 128 MiB on disk · sharing saves 128 MiB \(50%\)\n/)
    assert.deepEqual(fs.readdirSync(dir), [])
    const no = runCli(['demo', '--size', '16', freshDir(ext4)])
    assert.equal(no.status, 1)
    assert.match(no.stdout, /cannot clone here \(EOPNOTSUPP.*\n.*mkfs\.xfs -m reflink=1/s)
  })
})
