// The macOS whole-hierarchy clonefile(2) cannot run here; what decides whether it is used, and
// the counts it reports, is plain TypeScript over the addon's directory scan, tested on Linux.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { native } from '../src/binding.js'
import { cloneTreeSync } from '../src/index.js'
import { wholeTreeCounts } from '../src/tree-whole.js'
import { writeRandom } from './helpers/files.js'
import { freshDir, needMount } from './helpers/mounts.js'

describe('whole-tree clone eligibility (macOS clonefile of a directory)', () => {
  it('counts what a walk would report, and refuses hard links, setuid and specials', async (t) => {
    const m = await needMount(t, 'xfs')
    const binding = native()
    if (!m || binding === undefined) return
    const dir = freshDir(m)
    const src = join(dir, 'src')
    fs.mkdirSync(join(src, 'a/b'), { recursive: true })
    writeRandom(join(src, 'a/f'), 5000)
    writeRandom(join(src, 'a/b/g'), 7000)
    fs.symlinkSync('f', join(src, 'a/link'))
    const counts = wholeTreeCounts(binding, src, true, true)
    const walked = cloneTreeSync(src, join(dir, 'walked'))
    assert.deepEqual(counts, walked)

    fs.linkSync(join(src, 'a/f'), join(src, 'a/hard'))
    assert.equal(wholeTreeCounts(binding, src, true, true), undefined, 'hard links would come apart')
    assert.notEqual(wholeTreeCounts(binding, src, true, false), undefined, 'unless links are not kept')
    fs.unlinkSync(join(src, 'a/hard'))
    fs.chmodSync(join(src, 'a/f'), 0o4755)
    assert.equal(wholeTreeCounts(binding, src, true, true), undefined, 'setuid would be cleared')
    assert.notEqual(wholeTreeCounts(binding, src, false, true), undefined)
    fs.chmodSync(join(src, 'a/f'), 0o755)
    fs.mkdirSync(join(src, 'fifo-dir'))
    const { execFileSync } = await import('node:child_process')
    execFileSync('mkfifo', [join(src, 'fifo-dir/p')])
    assert.equal(wholeTreeCounts(binding, src, false, false), undefined, 'special files')
  })
})
