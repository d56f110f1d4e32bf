// The orchestrator's side of the two servers (plugin/server.ts): start one
// on the server core, ask it over IPC for its counters, its connections
// and the bytes a connection read.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import type { CpuSplit } from '../lib/proc.js'
import { repoRoot, track } from '../lib/proc.js'
import type { ParentMessage, ServerMessage, Variant } from './protocol.js'

const here = dirname(fileURLToPath(import.meta.url))

export interface Server {
  variant: Variant
  port: number
  child: ChildProcess
  fastify: string
  node: string
  /** Sends a message with an id and resolves with the server's answer to it. */
  ask: <T extends ServerMessage['type']>(message: ParentMessage & { id: number }, type: T) => Promise<Extract<ServerMessage, { type: T }>>
  tell: (message: ParentMessage) => void
}

export type Probe = Extract<ServerMessage, { type: 'probe' }>

let nextId = 1

/** With BENCH_CPU_PROF=1, each server writes dist/bench-profiles/<variant>.cpuprofile when it exits. */
export async function startServer (variant: Variant, split: CpuSplit): Promise<Server> {
  const nodeArgs = process.env.BENCH_CPU_PROF === '1'
    ? ['--cpu-prof', `--cpu-prof-dir=${join(repoRoot, 'dist', 'bench-profiles')}`, `--cpu-prof-name=${variant}.cpuprofile`]
    : []
  const [command, commandArgs] = split.on('server', process.execPath, [...nodeArgs, join(here, 'server.js'), variant])
  const child = track(spawn(command, commandArgs, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
  const pending = new Map<number, (message: ServerMessage) => void>()
  const ready = await new Promise<Extract<ServerMessage, { type: 'ready' }>>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${variant} server did not start`)) }, 15_000)
    child.on('message', (message: ServerMessage) => {
      if (message.type === 'ready') { clearTimeout(timer); resolve(message); return }
      if ('id' in message) {
        pending.get(message.id)?.(message)
        pending.delete(message.id)
      }
    })
    child.once('exit', (code) => { reject(new Error(`${variant} server exited with ${String(code)}`)) })
  })
  return {
    variant,
    port: ready.port,
    child,
    fastify: ready.fastify,
    node: ready.node,
    tell: (message) => { child.send(message) },
    ask: async <T extends ServerMessage['type']>(message: ParentMessage & { id: number }, type: T) =>
      await new Promise<Extract<ServerMessage, { type: T }>>((resolve, reject) => {
        pending.set(message.id, (answer) => {
          if (answer.type === type) resolve(answer as Extract<ServerMessage, { type: T }>)
          else reject(new Error(`expected a ${type} answer, got ${answer.type}`))
        })
        child.send(message)
      })
  }
}

/** Ends a server: it closes and exits once its IPC channel is gone. */
export function stopServer (server: Server): void {
  if (server.child.connected) server.child.disconnect()
}

export async function probe (server: Server): Promise<Probe> {
  return await server.ask({ type: 'probe', id: nextId++ }, 'probe')
}

export interface Drained {
  /** Connections still open. */
  left: number
  ms: number
}

/** Waits until the server holds no connection (at most `maxMs`): what is left then has leaked. */
export async function drained (server: Server, maxMs: number): Promise<Drained> {
  const start = Date.now()
  for (;;) {
    const { connections } = await probe(server)
    const ms = Date.now() - start
    if (connections === 0 || ms >= maxMs) return { left: connections, ms }
    await sleep(50)
  }
}

/** Bytes the server read on the connection from the client's `port`, beyond the request head; -1 if unknown. */
export async function serverRead (server: Server, port: number, headBytes: number): Promise<number> {
  const answer = await server.ask({ type: 'conn', id: nextId++, port, timeoutMs: 3000 }, 'conn')
  return answer.bytesRead < 0 ? -1 : answer.bytesRead - headBytes
}
