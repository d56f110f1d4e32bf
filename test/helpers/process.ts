// server.ts run as a user runs it: a child process with an environment,
// its JSON log lines collected.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const SERVER = fileURLToPath(new URL('../../server.ts', import.meta.url))

export interface Started {
  child: ChildProcess
  /** Every JSON line it logged so far. */
  lines: Array<Record<string, unknown>>
  stderr: () => string
  exited: Promise<number | null>
}

/** Starts server.ts with the test run's own loaders, on a free port of 127.0.0.1 unless `env` says otherwise. */
export function startServer (env: Record<string, string>): Started {
  const child = spawn(process.execPath, [...process.execArgv, SERVER], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: Array<Record<string, unknown>> = []
  let partial = ''
  let errors = ''
  child.stdout?.on('data', (data: Buffer) => {
    partial += data.toString()
    const complete = partial.split('\n')
    partial = complete.pop() ?? ''
    for (const line of complete) if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>)
  })
  child.stderr?.on('data', (data: Buffer) => { errors += data.toString() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { resolve(code) }))
  return { child, lines, stderr: () => errors, exited }
}

/** The port it listens on, once it does; throws with its stderr if it does not within 20 s. */
export async function listening (started: Started): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const line = started.lines.find((entry) => typeof entry.msg === 'string' && entry.msg.startsWith('Server listening at'))
    if (line !== undefined) return Number(/:(\d+)$/.exec(line.msg as string)?.[1])
    if (started.child.exitCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`the server did not start: ${started.stderr()}`)
}
