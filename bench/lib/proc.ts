// Child processes: where the repository is, which commands exist, the CPU
// split (servers on core 0, clients on core 1, by taskset), running a
// command to its end with a bound, and ending every child a run started.
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fromJson } from './json.js'

/** The repository's root (this file runs as dist/bench/lib/proc.js). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

/** Progress goes to stderr; stdout carries only the report. */
export const log = (line: string): void => { process.stderr.write(`${line}\n`) }

/** Whether a command is on the PATH. */
export function hasCommand (name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export type Role = 'server' | 'client'

export interface CpuSplit {
  /** False without taskset, or when not wanted (`--unpinned`). */
  pinned: boolean
  cores: Record<Role, string>
  /** The command line that runs `command` on the role's core (unchanged when not pinned). */
  on: (role: Role, command: string, args: string[]) => [string, string[]]
}

/**
 * The servers under test on core 0, the clients on core 1. When pinned, this
 * process (the orchestrator, idle while a load runs) moves to the client core.
 */
export function cpuSplit (wanted: boolean): CpuSplit {
  const pinned = wanted && hasCommand('taskset')
  const cores: Record<Role, string> = { server: '0', client: '1' }
  if (pinned) {
    try { execFileSync('taskset', ['-pc', cores.client, String(process.pid)], { stdio: 'ignore' }) } catch { /* stays unpinned */ }
  }
  return {
    pinned,
    cores,
    on: (role, command, args) => pinned ? ['taskset', ['-c', cores[role], command, ...args]] : [command, args]
  }
}

/** Every child started through `track`, so that a cleanup can end them (each by its own pid). */
const children = new Set<ChildProcess>()

export function track (child: ChildProcess): ChildProcess {
  children.add(child)
  child.once('exit', () => { children.delete(child) })
  return child
}

export function killChildren (): void {
  for (const child of children) child.kill('SIGKILL')
}

export interface Finished {
  code: number | null
  stdout: string
  stderr: string
  ms: number
  timedOut: boolean
}

export interface RunOptions {
  /** Killed after this long. */
  timeoutMs: number
  env?: NodeJS.ProcessEnv
}

/** Runs a command to its end, collecting its output. */
export async function run (command: string, args: string[], options: RunOptions): Promise<Finished> {
  const started = process.hrtime.bigint()
  const child = track(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env }))
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (data: Buffer) => { stdout += data.toString() })
  child.stderr?.on('data', (data: Buffer) => { stderr += data.toString() })
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, options.timeoutMs)
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', (error) => { stderr += String(error); resolve(null) })
    child.once('close', resolve)
  })
  clearTimeout(timer)
  return { code, stdout, stderr, ms: Number(process.hrtime.bigint() - started) / 1e6, timedOut }
}

/** Runs a command that must succeed; resolves with its stdout, or throws with what it said. */
export async function runChecked (command: string, args: string[], options: RunOptions): Promise<string> {
  const done = await run(command, args, options)
  if (done.code !== 0) {
    throw new Error(`${command} ${args.join(' ').slice(0, 200)} exited with ${String(done.code)}${done.timedOut ? ' (timed out)' : ''}:\n${done.stderr.trim()}`)
  }
  if (done.stderr.trim() !== '') log(done.stderr.trimEnd())
  return done.stdout
}

/** Runs a Node script that prints one JSON document (lib/json.ts) on stdout. */
export async function runNodeJson<T> (split: CpuSplit, role: Role, script: string, args: string[], timeoutMs: number): Promise<T> {
  return fromJson<T>(await runChecked(...split.on(role, process.execPath, [script, ...args]), { timeoutMs }))
}
