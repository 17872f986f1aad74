import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { allShared } from './helpers/fiemap.js'
import { spawn, spawnSync } from 'node:child_process'
import { cli, entries, runCli, writeRandom } from './helpers/files.js'
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
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
    // Interrupt once the tree is being built under its temporary name.
    const building = () => fs.readdirSync(dir).some((n) => n.startsWith('.clonefile-tmp-'))
    for (let i = 0; i < 2000 && !building(); i++) await new Promise((r) => setTimeout(r, 2))
    assert.ok(building(), 'the clone started')
    child.kill('SIGINT')
    assert.deepEqual(await exited, { code: null, signal: 'SIGINT' }, `died by SIGINT (status 130 in a shell): ${stderr}`)
    assert.match(stderr, /interrupted; nothing was left at the destination/)
    assert.deepEqual(fs.readdirSync(dir), ['src'])
  })

  it('issue 11 #7: SIGTERM during a large single-file copy: dies by it at once, nothing left', async (t) => {
    const xfs = await needMount(t, 'xfs')
    if (!xfs) return
    const dir = freshDir(xfs)
    const big = join(dir, 'big')
    writeRandom(big, 128 * 1024 * 1024)
    const child = spawn(process.execPath, [cli, 'cp', '--reflink=never', big, join(dir, 'copy')], { stdio: 'ignore' })
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
    // Interrupt once the copy has begun: the child holds the source open (the copy itself may
    // be one long syscall in a worker thread, so bytes written say nothing until it ends).
    const fds = `/proc/${child.pid}/fd`
    const copying = () => { try { return fs.readdirSync(fds).some((fd) => { try { return fs.readlinkSync(join(fds, fd)) === big } catch { return false } }) } catch { return false } }
    for (let i = 0; i < 5000 && !copying(); i++) await new Promise((r) => setTimeout(r, 1))
    assert.ok(copying(), 'the copy started')
    const sent = Date.now()
    child.kill('SIGTERM')
    assert.deepEqual(await exited, { code: null, signal: 'SIGTERM' }, 'died by SIGTERM (status 143 in a shell)')
    // The issue asks for 100 ms; a shared 2-CPU machine gets a margin.
    assert.ok(Date.now() - sent < 1000, `stopped ${Date.now() - sent} ms after the signal`)
    assert.deepEqual(entries(dir), ['big'], 'no copy, no temporary')
    fs.rmSync(big)
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
    // The temporary tree, not the lock file beside it (made first, and removed with it).
    const temps = () => fs.readdirSync(dir).filter((n) => n.startsWith('.clonefile-tmp-') && !n.endsWith('.lock'))
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

describe('clonefile cp: arguments (issue 11)', () => {
  it('issue 11 #14: a bare --reflink means always, as in GNU cp; an empty path is a usage error (exit 2)', async (t) => {
    const ext4 = await needMount(t, 'ext4')
    if (!ext4) return
    const dir = freshDir(ext4)
    writeRandom(join(dir, 'a'), 1000)
    const r = runCli(['cp', '--reflink', join(dir, 'a'), join(dir, 'b')])
    assert.equal(r.status, 1, 'ext4 cannot clone, and always does not copy')
    assert.match(r.stderr, /^clonefile cp: EOPNOTSUPP/)
    assert.equal(runCli(['cp', '--reflink', '-v', join(dir, 'a'), join(dir, 'b')]).status, 1)
    for (const args of [[join(dir, 'a'), ''], ['', join(dir, 'b')]]) {
      const empty = runCli(['cp', ...args])
      assert.equal(empty.status, 2, empty.stderr)
      assert.match(empty.stderr, /empty argument/)
    }
    assert.deepEqual(entries(dir), ['a'])
    // After --, '--reflink' is a name, not the option.
    assert.equal(runCli(['cp', '--', join(dir, 'a'), '--reflink'], dir).status, 0)
    assert.deepEqual(entries(dir), ['--reflink', 'a'])
  })

  it('issue 11 #18: a name that is not UTF-8 on the command line addresses that exact file', async (t) => {
    const xfs = await needMount(t, 'xfs')
    if (!xfs) return
    const dir = freshDir(xfs)
    const latin1 = (name: string) => Buffer.from(`${dir}/${name}`, 'latin1')
    fs.writeFileSync(latin1('caf\xe9.txt'), 'the Latin-1 name')
    // The name Node would make of it, a different file: copying it would be the bug.
    fs.writeFileSync(join(dir, 'caf\ufffd.txt'), 'the name with U+FFFD')
    const r = spawnSync('bash', ['-c', `exec "$0" "$1" cp $'${dir}/caf\\xe9.txt' $'${dir}/copy-\\xe9'`, process.execPath, cli], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(fs.readFileSync(latin1('copy-\xe9'), 'utf8'), 'the Latin-1 name')
    assert.equal(fs.readdirSync(dir, { encoding: 'buffer' }).length, 3, 'nothing else was made')
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

  it('issue 11 #7: interrupted, it dies by the signal and leaves nothing behind', async (t) => {
    const xfs = await needMount(t, 'xfs')
    if (!xfs) return
    const dir = freshDir(xfs)
    const child = spawn(process.execPath, [cli, 'demo', '--size', '96', dir], { stdio: 'ignore' })
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
    // Once the original is half written.
    const written = () => {
      const work = fs.readdirSync(dir).find((n) => n.startsWith('.clonefile-demo-'))
      try { return work === undefined ? 0 : fs.statSync(join(dir, work, 'original.bin')).size } catch { return 0 }
    }
    for (let i = 0; i < 5000 && written() < 32 << 20; i++) await new Promise((r) => setTimeout(r, 2))
    assert.ok(written() >= 32 << 20, 'the demo was writing its file')
    child.kill('SIGINT')
    assert.equal(await exited, 'SIGINT')
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing left')
  })
})
