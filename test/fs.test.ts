// clonefile/fs against node:fs: random trees copied by both under random options must give the
// same tree (or the same error code), and each option and error code behaves as Node documents.
import assert from 'node:assert/strict'
import * as nodeFs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import fc from 'fast-check'
import * as cfs from '../src/fs.js'
import { freshDir, needMount, type FsKind } from './helpers/mounts.js'
import { compareSnapshots, mkfifo, setDistinctTimes, snapshot, type Entry } from './helpers/trees.js'

const { COPYFILE_EXCL, COPYFILE_FICLONE, COPYFILE_FICLONE_FORCE } = nodeFs.constants

type Node =
  | { kind: 'file'; name: string; size: number; mode: number }
  | { kind: 'dir'; name: string; mode: number; children: Node[] }
  | { kind: 'symlink'; name: string; target: string }
  | { kind: 'fifo'; name: string }

const name = fc.constantFrom('a', 'b', 'file', '-dash', ' space ', 'new\nline', 'ünïcødé', '名前', '.dot', 'x'.repeat(255))
// Targets that stay inside the test's directory when followed (dereference), or dangle.
const target = fc.constantFrom('a', 'b', 'a/b', '../a', '/nonexistent', 'file')
const { tree } = fc.letrec<{ tree: Node[]; node: Node }>((tie) => ({
  tree: fc.array(tie('node'), { maxLength: 5 }),
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('file' as const), name, size: fc.constantFrom(0, 1, 4096, 70_000), mode: fc.constantFrom(0o644, 0o600, 0o755, 0o444) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('symlink' as const), name, target }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('fifo' as const), name }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('dir' as const), name, mode: fc.constantFrom(0o755, 0o700, 0o775), children: tie('tree') }) },
  ),
}))

function build(dir: string, nodes: Node[], seed: number): void {
  for (const node of nodes) {
    const p = path.join(dir, node.name)
    if (nodeFs.lstatSync(p, { throwIfNoEntry: false }) !== undefined) continue
    if (node.kind === 'file') {
      nodeFs.writeFileSync(p, Buffer.alloc(node.size, seed))
      nodeFs.chmodSync(p, node.mode)
    } else if (node.kind === 'dir') {
      nodeFs.mkdirSync(p)
      build(p, node.children, seed + 1)
      nodeFs.chmodSync(p, node.mode)
    } else if (node.kind === 'symlink') nodeFs.symlinkSync(node.target, p)
    else mkfifo(p)
  }
}

function withoutLinks(nodes: Node[]): Node[] {
  return nodes.filter((n) => n.kind !== 'symlink').map((n) => (n.kind === 'dir' ? { ...n, children: withoutLinks(n.children) } : n))
}

type Api = 'cpSync' | 'promises.cp' | 'cp'
interface Impl {
  cpSync: typeof nodeFs.cpSync
  cp: typeof nodeFs.cp
  promises: { cp: typeof nodeFs.promises.cp }
}

/** Runs one API of an implementation; the error's code, or undefined. */
async function copy(impl: Impl, api: Api, src: string, dest: string, options: nodeFs.CopyOptions): Promise<string | undefined> {
  try {
    if (api === 'cpSync') impl.cpSync(src, dest, options as nodeFs.CopySyncOptions)
    else if (api === 'promises.cp') await impl.promises.cp(src, dest, options)
    else await new Promise<void>((res, rej) => impl.cp(src, dest, options, (e) => (e ? rej(e) : res())))
    return undefined
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e)
  }
}

const options = fc.record({
  dereference: fc.boolean(),
  errorOnExist: fc.boolean(),
  force: fc.boolean(),
  preserveTimestamps: fc.boolean(),
  recursive: fc.constantFrom(true, true, true, false),
  verbatimSymlinks: fc.boolean(),
  mode: fc.constantFrom(0, COPYFILE_FICLONE, COPYFILE_EXCL, COPYFILE_FICLONE_FORCE),
  filter: fc.constantFrom('none', 'sync', 'async'),
})

/**
 * Entries compared: mtime only of files where times are kept, to the millisecond (node:fs rounds
 * them to one, clonefile/fs keeps the nanoseconds); never atimes, xattrs, hard links.
 */
function differences(a: Entry[], b: Entry[], times: boolean): string[] {
  const ms = (ns: bigint) => (ns + 500_000n) / 1_000_000n
  const strip = (es: Entry[]) => es.map((e) => ({ ...e, mtimeNs: times && e.type === 'file' ? ms(e.mtimeNs) : 0n }))
  return compareSnapshots(strip(a), strip(b), { ignore: ['atimeNs', 'xattrs', 'inodeGroup'] })
}

/** Entries of a tree that could each fail a copy: FIFOs, broken links followed, and with an existing destination any entry. */
function faults(root: string, existing: boolean, dereference: boolean): number {
  if (!nodeFs.lstatSync(root, { throwIfNoEntry: false })?.isDirectory()) return 0
  let n = 0
  for (const name of nodeFs.readdirSync(root, { recursive: true }) as string[]) {
    const p = path.join(root, name)
    const st = nodeFs.lstatSync(p)
    if (existing || st.isFIFO() || (dereference && st.isSymbolicLink() && nodeFs.statSync(p, { throwIfNoEntry: false }) === undefined)) n++
  }
  return n
}

async function differential(t: import('node:test').TestContext, kind: FsKind, numRuns: number): Promise<void> {
  const m = await needMount(t, kind)
  if (!m) return
  const base = freshDir(m, 'fs-diff')
  let run = 0
  await fc.assert(
    fc.asyncProperty(tree, fc.option(tree, { nil: undefined }), options, fc.constantFrom<Api>('cpSync', 'promises.cp', 'cp'), fc.boolean(),
      async (nodes, existing, o, api, fileRoot) => {
        const dir = path.join(base, `run-${++run}`)
        const src = path.join(dir, 'src')
        nodeFs.mkdirSync(src, { recursive: true })
        try {
          build(src, nodes, run)
          setDistinctTimes(src, run)
          const from = fileRoot ? path.join(src, nodes[0]?.name ?? 'none') : src
          const [n, c] = [path.join(dir, 'node', 'out'), path.join(dir, 'ours', 'out')]
          for (const d of [n, c]) {
            nodeFs.mkdirSync(path.dirname(d))
            if (existing !== undefined) {
              nodeFs.mkdirSync(d)
              // Following links, node:fs writes through a dangling symlink at the destination
              // (copyFile opens it); clonefile/fs never does: such destinations are not compared.
              build(d, o.dereference ? withoutLinks(existing) : existing, run + 7)
              setDistinctTimes(d, run + 7)
            }
          }
          // Node cannot clone on ext4: the same refusal has another name there (ENOTSUP / EOPNOTSUPP, 95).
          const mode = kind === 'ext4' && o.mode === COPYFILE_FICLONE_FORCE ? COPYFILE_FICLONE : o.mode
          const keep = (p: string) => !path.basename(p).startsWith('b')
          const filter = o.filter === 'sync' ? keep : o.filter === 'async' ? async (p: string) => keep(p) : undefined
          const opts: nodeFs.CopyOptions = { ...o, mode, filter }
          const syncAsync = api === 'cpSync' && o.filter === 'async'
          const ours = await copy(cfs as unknown as Impl, api, from, c, opts)
          const theirs = await copy(nodeFs, api, from, n, opts)
          const what = `${api} ${JSON.stringify({ ...o, mode })} from ${from}`
          // Node stops at the first failing entry in its depth-first readdir order, cloneTree
          // lists directories in another order: where several entries could fail, either may.
          if (ours !== theirs && ours !== undefined && theirs !== undefined && faults(from, existing !== undefined, o.dereference) > 1) return
          assert.equal(ours, theirs, `${what}: the same error`)
          if (theirs !== undefined || syncAsync) return
          const [ns, cs] = [nodeFs.existsSync(n) ? snapshot(n) : [], nodeFs.existsSync(c) ? snapshot(c) : []]
          assert.deepEqual(differences(ns, cs, o.preserveTimestamps), [], `${what}: the same tree`)
        } finally {
          nodeFs.rmSync(dir, { recursive: true, force: true })
        }
      }),
    { numRuns, includeErrorInReport: true },
  )
}

test('differential, XFS: random trees and options give what node:fs gives', (t) => differential(t, "xfs", Number(process.env.FS_RUNS ?? 60)))
test('differential, ext4 (the copy path): random trees and options give what node:fs gives', (t) => differential(t, 'ext4', 40))
test('differential, btrfs: random trees and options give what node:fs gives', (t) => differential(t, 'btrfs', 25))
