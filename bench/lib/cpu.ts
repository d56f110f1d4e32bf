// The machine and its load, from /proc (Linux): each core's busy share,
// a process's CPU time and memory, and a description of the machine for
// the reports.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, release } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'

export type CoreTimes = number[][]

/** Per-core [busy, total] jiffies from /proc/stat; empty elsewhere. */
export function coreTimes (): CoreTimes {
  try {
    return readFileSync('/proc/stat', 'utf8').split('\n')
      .filter((line) => /^cpu\d+ /.test(line))
      .map((line) => {
        const fields = line.trim().split(/\s+/).slice(1).map(Number)
        const total = fields.reduce((a, b) => a + b, 0)
        const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
        return [total - idle, total]
      })
  } catch {
    return []
  }
}

/** Busy share of each core between two samples. */
export function coreBusy (before: CoreTimes, after: CoreTimes): number[] {
  return after.map((core, i) => {
    const b = before[i] ?? [0, 0]
    const total = core[1]! - b[1]!
    return total > 0 ? (core[0]! - b[0]!) / total : 0
  })
}

/** How busy each core is while the benchmark does nothing: other processes on the machine. */
export async function background (ms: number): Promise<number[]> {
  const before = coreTimes()
  await sleep(ms)
  return coreBusy(before, coreTimes())
}

let clockTicks = 100
try { clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100 } catch { /* Linux's usual value */ }

/** CPU seconds (user + system) of a process or thread so far, from its stat file. */
function cpuSeconds (statPath: string): number {
  try {
    const text = readFileSync(statPath, 'utf8')
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // After "pid (comm) ": state is fields[0]; utime and stime are fields 14 and 15 of the whole line.
    return (Number(fields[11]) + Number(fields[12])) / clockTicks
  } catch {
    return Number.NaN
  }
}

/** CPU seconds of a process: all its threads, and its main thread alone. */
export interface CpuSample { total: number, main: number }
export const cpuOf = (pid: number): CpuSample => ({ total: cpuSeconds(`/proc/${pid}/stat`), main: cpuSeconds(`/proc/${pid}/task/${pid}/stat`) })

/** VmHWM (peak resident set) or VmRSS of a process, in bytes. */
export function memoryOf (pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? Number.NaN : Number(match[1]) * 1024
  } catch {
    return Number.NaN
  }
}

/** Where figures come from: printed with every table. */
export interface Machine {
  node: string
  cpus: number
  cpuModel: string
  os: string
  loadAverage: string
  /** ISO date and time of the run's start. */
  date: string
}

export function machine (): Machine {
  let loadAverage = ''
  try { loadAverage = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') } catch { /* not Linux */ }
  return {
    node: process.version,
    // All of the machine's, whatever this process is pinned to.
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown CPU',
    os: `${process.platform === 'linux' ? 'Linux' : process.platform} ${release()}`,
    loadAverage,
    date: new Date().toISOString()
  }
}
