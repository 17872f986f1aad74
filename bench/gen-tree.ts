// A node_modules-like tree, the same for the same seed and size: packages (some scoped, a few
// with their own nested node_modules) of lognormally many files, nested directories of about
// ten entries, file sizes lognormal around 1–2 KiB with 0.5% of 0.5–2 MiB, 1% relative symlinks.
import * as fs from 'node:fs'
import { join } from 'node:path'

export interface GenOptions {
  /** regular files plus symlinks @default 20000 */
  files?: number
  /** @default 1 */
  seed?: number
}

export interface GenStats {
  files: number
  symlinks: number
  directories: number
  packages: number
  /** files of 0.5 MiB or more */
  bigFiles: number
  bytes: number
}

/** mulberry32: small, fast, good enough for shaping test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const MiB = 1024 * 1024
const SYLLABLES = ['ba', 'co', 'de', 'fi', 'gu', 'ka', 'lo', 'mi', 'no', 'pa', 're', 'si', 'to', 'vu', 'xe', 'zo', 'an', 'el', 'or', 'ut']
const SUBDIRS = ['lib', 'dist', 'src', 'esm', 'cjs', 'types', 'test', 'utils', 'helpers', 'internal', 'build', 'es', 'umd', 'locale', 'docs', 'core', 'modules', 'plugins']
const EXTS = ['.js', '.js', '.js', '.js', '.d.ts', '.d.ts', '.mjs', '.cjs', '.json', '.map', '.md', '.ts']
const ROOT_FILES = ['package.json', 'README.md', 'LICENSE', 'index.js', 'CHANGELOG.md', 'index.d.ts', '.npmignore', 'tsconfig.json']

export function genTree(root: string, options: GenOptions = {}): GenStats {
  const total = options.files ?? 20_000
  const rand = prng(options.seed ?? 1)
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1))
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)] as T
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())
  const word = (n = int(2, 4)) => Array.from({ length: n }, () => pick(SYLLABLES)).join('')

  // Content comes from one pseudo-random pool: deterministic and cheap to produce.
  const pool = Buffer.alloc(4 * MiB)
  for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE(Math.floor(rand() * 4294967296), i)

  const stats: GenStats = { files: 0, symlinks: 0, directories: 0, packages: 0, bigFiles: 0, bytes: 0 }
  let left = total

  const size = (): number => {
    if (rand() < 0.005) return int(MiB / 2, 2 * MiB)
    return Math.min(512 * 1024, Math.round(Math.exp(Math.log(1400) + 1.0 * gauss())))
  }
  const mkdir = (dir: string) => {
    fs.mkdirSync(dir)
    stats.directories++
  }
  const writeFile = (path: string) => {
    const n = size()
    const at = int(0, pool.length - n)
    fs.writeFileSync(path, pool.subarray(at, at + n), { flag: 'wx', mode: rand() < 0.02 ? 0o755 : 0o644 })
    stats.files++
    stats.bytes += n
    if (n >= MiB / 2) stats.bigFiles++
  }

  /** n entries in dir and below it */
  const fill = (dir: string, n: number, names: readonly string[]) => {
    const here = Math.min(n, names.length > 0 ? int(4, 8) : int(6, 14))
    const made: string[] = []
    const used = new Set<string>()
    for (let i = 0; i < here; i++) {
      let name = names[i] ?? `${word()}${pick(EXTS)}`
      while (used.has(name)) name = `${word()}${pick(EXTS)}`
      used.add(name)
      if (made.length > 0 && rand() < 0.01) {
        fs.symlinkSync(pick(made), join(dir, name))
        stats.symlinks++
      } else {
        writeFile(join(dir, name))
        made.push(name)
      }
    }
    let rest = n - here
    if (rest === 0) return
    const count = Math.max(1, Math.min(6, Math.ceil(rest / 30)))
    const subs = new Set<string>()
    while (subs.size < count) subs.add(subs.size < SUBDIRS.length && rand() < 0.8 ? pick(SUBDIRS) : word())
    const weights = [...subs].map(() => 0.5 + rand())
    let sum = weights.reduce((a, b) => a + b, 0)
    ;[...subs].forEach((name, i) => {
      const w = weights[i] as number
      const share = i === subs.size - 1 ? rest : Math.max(1, Math.min(rest - (subs.size - 1 - i), Math.round((rest * w) / sum)))
      sum -= w
      rest -= share
      if (share <= 0) return
      const sub = join(dir, name)
      mkdir(sub)
      fill(sub, share, [])
    })
  }

  const pkg = (parent: string, budget: number, nested: boolean): number => {
    let n = Math.max(3, Math.min(2000, Math.round(Math.exp(Math.log(25) + 1.1 * gauss()))))
    n = Math.min(n, budget)
    let dir: string
    do {
      if (rand() < 0.1) {
        const scope = join(parent, `@${word(2)}`)
        if (!fs.existsSync(scope)) mkdir(scope)
        dir = join(scope, word())
      } else {
        dir = join(parent, word())
      }
    } while (fs.existsSync(dir))
    mkdir(dir)
    stats.packages++
    let own = n
    if (!nested && n > 20 && rand() < 0.05) {
      const nm = join(dir, 'node_modules')
      mkdir(nm)
      let inner = Math.floor(n * 0.4)
      own -= inner
      while (inner > 0) inner -= pkg(nm, inner, true)
    }
    fill(dir, own, ROOT_FILES.slice(0, int(3, ROOT_FILES.length)))
    return n
  }

  fs.mkdirSync(root, { recursive: true })
  while (left > 0) left -= pkg(root, left, false)
  return stats
}
