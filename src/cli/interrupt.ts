// SIGINT and SIGTERM: stop what runs, clean up briefly, then die by the same signal, so that
// the shell sees death by a signal (status 130/143), as GNU tools do.
import { rmSync } from 'node:fs'
import { tempsInFlight } from '../clone-node.js'

const SIGNALS = ['SIGINT', 'SIGTERM'] as const

/** How long an interrupted operation may take to clean up before the process dies anyway. */
const GRACE_MS = 2000

export interface Interrupt {
  /** aborted on the first signal */
  signal: AbortSignal
  /** the signal that came, if one did */
  caught: () => NodeJS.Signals | undefined
  /** dies by the signal that came: the handlers removed, the signal sent again */
  die: () => void
  /** removes the handlers (nothing came, or it is over) */
  done: () => void
}

/** Removes the files that single-file clones are building under a temporary name. */
function removeTemps(): void {
  for (const temp of tempsInFlight) rmSync(temp, { force: true })
}

/**
 * Handles SIGINT/SIGTERM until done(): the first signal aborts `signal` and calls `onSignal`,
 * which says whether the process dies at once ('now': e.g. a single file, whose copy has no
 * name or whose temporary is removed here) or waits for the operation to clean up and call
 * die() itself (at most GRACE_MS). A second signal always dies at once.
 */
export function interruptible(onSignal: (sig: NodeJS.Signals) => 'now' | 'wait'): Interrupt {
  const controller = new AbortController()
  let caught: NodeJS.Signals | undefined
  const done = () => {
    for (const s of SIGNALS) process.off(s, handler)
  }
  const die = () => {
    done()
    if (caught !== undefined) process.kill(process.pid, caught)
  }
  function handler(sig: NodeJS.Signals): void {
    const again = caught !== undefined
    caught ??= sig
    controller.abort()
    if (again || onSignal(sig) === 'now') {
      removeTemps()
      die()
      return
    }
    setTimeout(die, GRACE_MS)
  }
  for (const s of SIGNALS) process.on(s, handler)
  return { signal: controller.signal, caught: () => caught, die, done }
}
