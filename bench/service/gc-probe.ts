// Preloaded into a server under test by the service suite (service/servers.ts)
// (`node --import <file URL of gc-probe.js> ...`): counts the process's
// garbage collections by kind, with their main-thread pauses, and keeps the
// running totals in the JSON file named by BENCH_GC_FILE, rewritten after
// each batch of GC entries. It changes nothing else in the process.
import { writeFileSync } from 'node:fs'
import { constants, PerformanceObserver } from 'node:perf_hooks'

export interface GcTotals {
  /** Mark-compact (full) collections. */
  major: { count: number, ms: number }
  /** Scavenges. */
  minor: { count: number, ms: number }
  /** Incremental marking steps and weak-callback processing. */
  other: { count: number, ms: number }
}

const file = process.env.BENCH_GC_FILE
if (file !== undefined && file !== '') {
  const totals: GcTotals = { major: { count: 0, ms: 0 }, minor: { count: 0, ms: 0 }, other: { count: 0, ms: 0 } }
  writeFileSync(file, JSON.stringify(totals))
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind
      const slot = kind === constants.NODE_PERFORMANCE_GC_MAJOR
        ? totals.major
        : kind === constants.NODE_PERFORMANCE_GC_MINOR ? totals.minor : totals.other
      slot.count++
      slot.ms += entry.duration
    }
    writeFileSync(file, JSON.stringify(totals))
  })
  observer.observe({ entryTypes: ['gc'] })
}
