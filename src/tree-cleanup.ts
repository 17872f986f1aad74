// Paths here are byte strings (raw.ts): a tree may hold names that are not UTF-8.
import * as fs from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { bytes } from './raw.js'
import { TEMP_PREFIX, tempTagRaw } from './temp.js'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Removes a failed run's tree; a failure to do so must not hide the error that made it fail. */
export function discardTree(path: string): void {
  try {
    removeTree(path)
  } catch {
    // Left for the next run, which removes a dead process's leftovers.
  }
}

/**
 * Removes a tree, making its directories writable first where needed: a clone of read-only
 * directories cannot otherwise be emptied by an unprivileged process. (fs.rm given a Buffer
 * lists directories as Buffers too, so every name is removed as it is.)
 */
export function removeTree(path: string): void {
  try {
    fs.rmSync(bytes(path), { recursive: true, force: true })
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EACCES' && (e as NodeJS.ErrnoException).code !== 'EPERM') throw e
    makeWritable(path)
    fs.rmSync(bytes(path), { recursive: true, force: true })
  }
}

function makeWritable(path: string): void {
  const st = fs.lstatSync(bytes(path), { throwIfNoEntry: false })
  if (st === undefined || !st.isDirectory()) return
  fs.chmodSync(bytes(path), (st.mode & 0o7777) | 0o700)
  for (const name of fs.readdirSync(bytes(path), { encoding: 'buffer' })) makeWritable(join(path, name.toString('latin1')))
}

/**
 * A killed run leaves its temporary tree beside `dst` (`.clonefile-tmp-<pid>-…-<name>`): remove
 * those whose process is gone, so that the next run starts clean.
 */
export function removeLeftovers(dst: string): void {
  const dir = dirname(dst)
  const suffix = `-${tempTagRaw(basename(dst))}`
  let names: Buffer[]
  try {
    names = fs.readdirSync(bytes(dir), { encoding: 'buffer' })
  } catch {
    return
  }
  for (const buf of names) {
    const name = buf.toString('latin1')
    if (!name.startsWith(TEMP_PREFIX) || !name.endsWith(suffix)) continue
    const pid = Number.parseInt(name.slice(TEMP_PREFIX.length), 10)
    if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) removeTree(join(dir, name))
  }
}
