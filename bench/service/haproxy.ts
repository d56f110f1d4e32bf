// HAProxy in front of the replicas, configured as deployed: the project's
// deploy/haproxy.cfg with only what ties it to docker-compose changed (the
// listening address, the replicas' addresses, no docker DNS resolver) and a
// stats socket added, through which the benchmark reads each replica's
// state as HAProxy sees it.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { CpuSplit } from '../lib/proc.js'
import { repoRoot, run, track } from '../lib/proc.js'

export const DEPLOY_CONFIG = 'deploy/haproxy.cfg'

/**
 * deploy/haproxy.cfg for replicas on loopback: `bind 127.0.0.1:<port>`,
 * `server <name> 127.0.0.1:<port>` in the order of `replicaPorts`, no
 * `resolvers` section nor the server options that use it, and a stats
 * socket at `socket`. Throws when the file no longer has what it changes.
 */
export function localConfig (port: number, replicaPorts: readonly number[], socket: string): string {
  const lines = readFileSync(join(repoRoot, DEPLOY_CONFIG), 'utf8').split('\n')
  const out: string[] = []
  let inResolvers = false
  let binds = 0
  let servers = 0
  for (const line of lines) {
    if (/^\S/.test(line)) inResolvers = /^resolvers\s/.test(line)
    if (inResolvers) continue
    if (/^\s*bind\s+:\d+\s*$/.test(line)) {
      out.push(line.replace(/:\d+/, `127.0.0.1:${port}`))
      binds++
      continue
    }
    const server = /^(\s*server\s+\S+\s+)\S+(.*)$/.exec(line)
    if (server !== null) {
      const replica = replicaPorts[servers++]
      if (replica !== undefined) out.push(`${server[1] as string}127.0.0.1:${replica}${server[2] as string}`)
      continue
    }
    if (/^\s*default-server\s/.test(line)) {
      out.push(line.replace(/\s+init-addr\s+\S+/, '').replace(/\s+resolvers\s+\S+/, '').replace(/\s+resolve-prefer\s+\S+/, ''))
      continue
    }
    out.push(line)
    if (/^global\s*$/.test(line)) out.push(`    stats socket ${socket} mode 600 level admin`)
  }
  if (binds !== 1 || servers < replicaPorts.length) {
    throw new Error(`${DEPLOY_CONFIG} no longer has one \`bind :<port>\` and ${replicaPorts.length} \`server\` lines (found ${binds} and ${servers}): update bench/service/haproxy.ts`)
  }
  return out.join('\n')
}

export interface Proxy {
  port: number
  child: ChildProcess
  socket: string
  config: string
  /** HAProxy's own log (stdout and stderr). */
  log: string
}

/** Starts HAProxy (on the client core when pinned) and waits until every replica is UP. */
export async function startHaproxy (split: CpuSplit, tmp: string, port: number, replicaPorts: readonly number[]): Promise<Proxy> {
  const socket = join(tmp, 'haproxy.sock')
  const config = localConfig(port, replicaPorts, socket)
  const path = join(tmp, 'haproxy.cfg')
  writeFileSync(path, config)
  const checked = await run('haproxy', ['-c', '-q', '-f', path], { timeoutMs: 10_000 })
  if (checked.code !== 0) throw new Error(`haproxy -c refuses the generated configuration:\n${checked.stderr}`)
  // Its log (one line per request, `option httplog`) goes to a file, for a look at what failed.
  const log = join(tmp, 'haproxy.log')
  const logFd = openSync(log, 'w')
  const child = track(spawn(...split.on('client', 'haproxy', ['-f', path, '-db']), { stdio: ['ignore', logFd, logFd] }))
  closeSync(logFd)
  const proxy: Proxy = { port, child, socket, config, log }
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}`)
    try {
      const states = await serverStates(proxy)
      if (states.size === replicaPorts.length && [...states.values()].every((state) => state === 'UP')) return proxy
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error('haproxy: the replicas were not all UP within 20 s')
    await sleep(200)
  }
}

/** Each server's status in the backend (`UP`, `UP 1/2`, `DOWN`, ...), from `show stat` on the stats socket. */
export async function serverStates (proxy: Proxy): Promise<Map<string, string>> {
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect(proxy.socket)
    let out = ''
    socket.on('data', (data: Buffer) => { out += data.toString() })
    socket.once('error', reject)
    socket.once('close', () => { resolve(out) })
    socket.setTimeout(2000, () => { socket.destroy(new Error('stats socket timeout')) })
    socket.write('show stat\n')
  })
  const [head = '', ...rows] = text.trim().split('\n')
  const columns = head.replace(/^#\s*/, '').split(',')
  const [svname, status] = [columns.indexOf('svname'), columns.indexOf('status')]
  const states = new Map<string, string>()
  for (const row of rows) {
    const cells = row.split(',')
    const name = cells[svname] ?? ''
    if (name !== 'FRONTEND' && name !== 'BACKEND' && name !== '') states.set(name, cells[status] ?? '')
  }
  return states
}

export async function stopHaproxy (proxy: Proxy): Promise<void> {
  if (proxy.child.exitCode !== null || proxy.child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { proxy.child.once('exit', () => { resolve() }) })
  proxy.child.kill('SIGTERM')
  await exited
}
