// Lanes (src/native/binding.c): jobs of one lane run one after another, and a job waiting for its
// lane must not hold a thread of libuv's pool, which the whole process shares (fs, zlib, dns).
// Each case runs in a child with a pool of 2 threads, so that one held thread would be half of it.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { freshDir, needMount } from './helpers/mounts.js'

const BINDING_JS = fileURLToPath(new URL('../src/binding.js', import.meta.url))

// Lane 1: a long job (4000 clones), then a small one queued behind it (one copy). Then a read
// through the pool that has nothing to do with lanes. The order things finish in:
const CHILD = `
import { readFile } from 'node:fs/promises'
const { CWD, Op, Flag, RAW, lane, requireNative } = await import(process.env.BINDING_JS)
const binding = requireNative('test')
const [dir] = process.argv.slice(1)
const order = []
const N = 4000
const cwd = (n) => new Int32Array(n).fill(CWD)
const long = binding.runOps(new Uint8Array(N).fill(Op.Clone), cwd(N), Array(N).fill(dir + '/small').join('\\0'), cwd(N), Array.from({ length: N }, (_, i) => dir + '/c' + i).join('\\0'), undefined, Flag.Direct | RAW | lane(1), true)
  .then((out) => order.push('clones:' + out.results.filter((n) => n === 5).length))
const small = binding.runOps(Uint8Array.of(Op.Copy), cwd(1), dir + '/small', cwd(1), dir + '/copy', undefined, Flag.Direct | RAW | lane(1), true)
  .then((out) => order.push('copy:' + out.results[0]))
// Time for both lane jobs to reach the pool's two threads before the read is queued.
await new Promise((resolve) => setTimeout(resolve, 10))
const read = readFile(dir + '/small').then(() => order.push('read'))
await Promise.all([long, small, read])
console.log(JSON.stringify(order))
`

describe('lanes', () => {
  test('a job waiting for its lane leaves its pool thread to other work; the lane keeps its order', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const dir = freshDir(m)
    fs.writeFileSync(path.join(dir, 'small'), 'small')
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, dir], {
      encoding: 'utf8',
      env: { ...process.env, UV_THREADPOOL_SIZE: '2', BINDING_JS },
    })
    assert.equal(r.status, 0, r.stderr)
    const order = JSON.parse(r.stdout) as string[]
    // The read needs the pool's second thread, which the copy took while it waited for the
    // lane: the read finishes first only if that thread went back to the pool.
    assert.deepEqual(order, ['read', 'clones:4000', 'copy:5'])
  })
})

describe('jobs on threads of their own (async "thread", for the sync drivers)', () => {
  test('started jobs run side by side while this thread goes on; finish() gives each result or error once', async (t) => {
    const m = await needMount(t, 'xfs')
    if (!m) return
    const { CWD, Op, Flag, RAW, requireNative } = await import('../src/binding.js')
    const binding = requireNative('test')
    const dir = freshDir(m)
    fs.writeFileSync(path.join(dir, 'small'), 'small')
    const N = 2000
    const cwd = (n: number) => new Int32Array(n).fill(CWD)
    const names = (prefix: string) => Array.from({ length: N }, (_, i) => `${dir}/${prefix}${i}`).join('\0')
    const start = (prefix: string) =>
      binding.runOps(new Uint8Array(N).fill(Op.Clone), cwd(N), Array(N).fill(`${dir}/small`).join('\0'), cwd(N), names(prefix), undefined, Flag.Direct | RAW, 'thread')
    const a = start('a')
    const b = start('b')
    // Neither is finished by this thread: whatever is made meanwhile is the threads' work.
    const failing = binding.runOps(Uint8Array.of(Op.Copy), cwd(1), `${dir}/missing`, cwd(1), `${dir}/never`, undefined, Flag.Direct | RAW, 'thread')
    const first = binding.waitAny([a, b])
    assert.ok(first === 0 || first === 1)
    const [ra, rb] = [binding.finish(a), binding.finish(b)]
    assert.equal(ra.results.filter((n) => n === 5).length, N)
    assert.equal(rb.results.filter((n) => n === 5).length, N)
    assert.equal(binding.finish(failing).results[0], -2, 'a failed operation is its -errno, as in a sync call')
    assert.throws(() => binding.finish(a), { code: 'ERR_INVALID_ARG_TYPE' }, 'finished once only')
    assert.throws(() => binding.waitAny([a]), { code: 'ERR_INVALID_ARG_TYPE' }, 'a finished job is not waited for')
    const scan = binding.scanDirs(Int32Array.of(CWD), `${dir}/nonexistent`, RAW, 'thread')
    const listed = binding.finish(scan)
    assert.equal(listed.dirErrnos[0], 2, 'scanDirs through a thread reports as the sync call does')
    assert.equal(fs.readdirSync(dir).length, 1 + 2 * N)
  })
})
