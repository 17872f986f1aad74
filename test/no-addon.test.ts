// Without the addon (CLONEFILE_NATIVE=0 hides it, as on a machine with no C compiler), clone()
// still clones through Node's fs.copyFile, and everything else says what is missing.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { allShared, sharedBytes } from './helpers/fiemap.js'
import { entries, libUrl, metadata, repo, runNode, sha, writeRandom } from './helpers/files.js'
import { freshDir, needMount } from './helpers/mounts.js'

// clone() alone: the rest of the package is not needed to test it.
const cloneUrl = new URL('../src/clone.js', import.meta.url).href

function withoutAddon(body: string, url = libUrl): unknown {
  const r = runNode(`import * as lib from '${url}'
    const out = await (async () => { ${body} })()
    console.log(JSON.stringify(out))`, { env: { CLONEFILE_NATIVE: '0' } })
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)
}

const attempt = (call: string) => `try { return await ${call} } catch (e) { return { code: e.code, message: e.message } }`

describe('without the native addon', () => {
  it('clone() clones on XFS with fs.copyFile, keeping mode and times', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m)
    const src = join(dir, 'src')
    writeRandom(src, 300_000)
    const dst = join(dir, 'dst')
    const r = withoutAddon(`return lib.cloneSync(${JSON.stringify(src)}, ${JSON.stringify(dst)})`, cloneUrl)
    assert.deepEqual(r, { method: 'clone', size: 300_000 })
    assert.ok(allShared(dst))
    assert.equal(metadata(dst).mode, metadata(src).mode)
    // Node's utimes takes seconds as a double: the microseconds survive, not every nanosecond.
    assert.ok(Math.abs(Number(metadata(dst).mtimeNs - metadata(src).mtimeNs)) < 2000)
    const again = withoutAddon(attempt(`lib.clone(${JSON.stringify(src)}, ${JSON.stringify(dst)})`), cloneUrl) as { code: string }
    assert.equal(again.code, 'EEXIST')
    assert.deepEqual(entries(dir), ['dst', 'src'])
  })

  it("copies on ext4 in 'auto' and says why; 'never' shares nothing on XFS", async (t) => {
    const ext4 = await needMount(t, 'ext4')
    const xfs = await needMount(t, 'xfs')
    if (!ext4 || !xfs) return
    const dir = freshDir(ext4)
    const src = join(dir, 'src')
    writeRandom(src, 100_000)
    const r = withoutAddon(`return lib.clone(${JSON.stringify(src)}, ${JSON.stringify(join(dir, 'dst'))})`, cloneUrl) as { method: string; fallback: { code: string } }
    assert.equal(r.method, 'copy')
    assert.equal(r.fallback.code, 'EOPNOTSUPP')
    assert.equal(sha(join(dir, 'dst')), sha(src))
    const always = withoutAddon(attempt(`lib.clone(${JSON.stringify(src)}, ${JSON.stringify(join(dir, 'x'))}, { mode: 'always' })`), cloneUrl) as { code: string }
    assert.equal(always.code, 'EOPNOTSUPP')
    assert.deepEqual(entries(dir), ['dst', 'src'])
    const xdir = freshDir(xfs)
    writeRandom(join(xdir, 'src'), 100_000)
    withoutAddon(`return lib.clone(${JSON.stringify(join(xdir, 'src'))}, ${JSON.stringify(join(xdir, 'copy'))}, { mode: 'never' })`, cloneUrl)
    assert.equal(sharedBytes(join(xdir, 'copy')), 0)
  })

  it('features that need the addon throw ERR_CLONEFILE_NATIVE_MISSING, saying how to build it', () => {
    const r = withoutAddon(`
      const out = []
      for (const f of [() => lib.probeSync('/'), () => lib.cloneRangeSync('/etc/hostname', '/tmp/x', {}),
                       () => lib.cloneSync(0, '/tmp/x'), () => lib.cloneTreeSync('/etc', '/tmp/etc-clone')]) {
        try { f(); out.push('no error') } catch (e) { out.push([e.code, e.message]) }
      }
      return out`) as Array<[string, string]>
    assert.equal(r.length, 4)
    for (const [code, message] of r) {
      assert.equal(code, 'ERR_CLONEFILE_NATIVE_MISSING')
      assert.match(message, /CLONEFILE_NATIVE=0/)
      assert.match(message, /npm rebuild clonefile/)
    }
  })

  it('issue 11 #13: clone() of a FIFO fails at once with EINVAL, never waits for a writer', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m)
    spawnSync('mkfifo', [join(dir, 'fifo')])
    const code = `import { clone, cloneSync } from '${cloneUrl}'
      for (const f of [() => cloneSync(${JSON.stringify(join(dir, 'fifo'))}, ${JSON.stringify(join(dir, 'a'))}),
                       () => clone(${JSON.stringify(join(dir, 'fifo'))}, ${JSON.stringify(join(dir, 'b'))}, { mode: 'never' })]) {
        try { await f(); console.log('no error') } catch (e) { console.log(e.code) }
      }`
    // A time limit: a blocking open of the FIFO would hang the child for good.
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 30_000, cwd: repo, env: { ...process.env, CLONEFILE_NATIVE: '0' } })
    assert.equal(r.signal, null, 'it did not hang')
    assert.equal(r.stdout, 'EINVAL\nEINVAL\n', r.stderr)
    assert.deepEqual(entries(dir), ['fifo'])
  })

  it('issue 11 #13: a Buffer path that is not UTF-8 addresses that exact file', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m)
    const latin1 = Buffer.from(`${dir}/caf\xe9`, 'latin1')
    fs.writeFileSync(latin1, 'the Latin-1 name')
    // What the bytes would become decoded as UTF-8: another file, which must not be the one copied.
    fs.writeFileSync(join(dir, 'caf\ufffd'), 'the name with U+FFFD')
    const dst = Buffer.from(`${dir}/copy-\xe9`, 'latin1')
    const hex = (b: Buffer) => `Buffer.from('${b.toString('hex')}', 'hex')`
    for (const [fn, mode] of [['cloneSync', 'auto'], ['clone', 'never']]) {
      withoutAddon(`return await lib.${fn}(${hex(latin1)}, ${hex(dst)}, { mode: '${mode}' })`, cloneUrl)
      assert.equal(fs.readFileSync(dst, 'utf8'), 'the Latin-1 name', `${fn} ${mode}`)
      fs.rmSync(dst)
    }
    assert.equal(fs.readdirSync(dir).length, 2, 'no temporary left')
  })

  it('issue 11 #8 (without the addon): a /proc file whose size says 0 is copied with its content', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m)
    const r = withoutAddon(`return lib.cloneSync('/proc/version', ${JSON.stringify(join(dir, 'version'))})`, cloneUrl) as { method: string; size: number }
    const content = fs.readFileSync('/proc/version')
    assert.equal(fs.statSync('/proc/version').size, 0, 'stat says 0')
    assert.equal(r.method, 'copy')
    assert.equal(r.size, content.length)
    assert.deepEqual(fs.readFileSync(join(dir, 'version')), content)
  })
})
