import type { TreeProgress } from '../types.js'
import { humanBytes } from './output.js'

/** A one-line progress bar on stderr: files, bytes, rate and, once the total is known, ETA. */
export class ProgressBar {
  private readonly start = Date.now()

  constructor(private readonly totalFiles: number | undefined) {}

  update(p: TreeProgress): void {
    const seconds = Math.max((Date.now() - this.start) / 1000, 0.001)
    const rate = p.files / seconds
    const total = this.totalFiles
    const fraction = total ? Math.min(p.files / total, 1) : undefined
    const width = 24
    const bar = fraction === undefined ? '' : `[${'#'.repeat(Math.round(fraction * width)).padEnd(width, '.')}] `
    const eta = total && rate > 0 ? ` ETA ${Math.max(0, Math.ceil((total - p.files) / rate))}s` : ''
    process.stderr.write(`\r${bar}${p.files} files, ${humanBytes(p.bytes)}, ${Math.round(rate)} files/s${eta}\x1b[K`)
  }

  done(): void {
    process.stderr.write('\r\x1b[K')
  }
}
