// What lingering closes cost the server: many refused clients at once that
// go on sending after their 413 (as clients that write their whole body
// before reading do), then stop. Memory, descriptors and CPU of the server
// while they linger, and that everything is released once they are gone.
//
//   node dist/bench/plugin/linger.js [--clients=200] [--rate=262144] [--seconds=20]
//
// The server (this file with `serve`) runs the plugin with a 1 MiB limit
// and its default linger settings (5 s idle, 30 s in all); each client
// declares 100 MiB, is refused before the body, and sends at `rate` bytes
// per second for `seconds`, reading nothing, then falls silent for 10 s.
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { connect } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import upfront from 'upfront'
import { cpuOf, machine, memoryOf } from '../lib/cpu.js'
import { cpuSplit, log, track } from '../lib/proc.js'

const MiB = 1024 * 1024

async function serve (): Promise<void> {
  const app = Fastify()
  await app.register(upfront, { maxBytes: MiB })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })
  app.put('/', async () => ({ ok: true }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  process.stdout.write(`listening ${(app.server.address() as AddressInfo).port}\n`)
  setInterval(() => {
    app.server.getConnections((_error, count) => { process.stdout.write(`connections ${count}\n`) })
  }, 1000)
}

/** Open descriptors of a process. */
function descriptors (pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return -1
  }
}

interface Sample { at: number, rssMb: number, fds: number, connections: number, cpuPct: number }

async function main (): Promise<void> {
  const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, '').split('=')))
  const clients = Number(args.clients ?? 200)
  const rate = Number(args.rate ?? 256 * 1024)
  const seconds = Number(args.seconds ?? 20)
  const split = cpuSplit(true)
  const [command, commandArgs] = split.on('server', process.execPath, [fileURLToPath(import.meta.url), 'serve'])
  const server = track(spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'inherit'] }))
  let port = 0
  let connections = 0
  server.stdout?.on('data', (data: Buffer) => {
    for (const line of data.toString().split('\n')) {
      if (line.startsWith('listening ')) port = Number(line.slice(10))
      if (line.startsWith('connections ')) connections = Number(line.slice(12))
    }
  })
  // eslint-disable-next-line no-unmodified-loop-condition -- set by the server's stdout handler
  while (port === 0) await sleep(50)
  const pid = server.pid as number
  await sleep(500)
  const baseline = { rssMb: memoryOf(pid, 'VmRSS') / MiB, fds: descriptors(pid) }
  log(`server ${pid} on ${port}: ${baseline.rssMb.toFixed(1)} MB, ${baseline.fds} descriptors at rest`)

  // The clients: refused at once, then sending without reading.
  const piece = Buffer.alloc(Math.round(rate / 10), 1)
  const sockets: Socket[] = []
  let refusedSeen = 0
  let resets = 0
  const started = performance.now()
  for (let i = 0; i < clients; i++) {
    const socket = connect({ port, host: '127.0.0.1' })
    socket.on('error', () => { resets++ })
    socket.once('connect', () => { socket.write(`PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: ${100 * MiB}\r\n\r\n`) })
    sockets.push(socket)
  }
  const sending = setInterval(() => {
    if (performance.now() - started > seconds * 1000) return
    for (const socket of sockets) if (!socket.destroyed) socket.write(piece)
  }, 100)
  const samples: Sample[] = []
  let cpuBefore = cpuOf(pid).total
  const total = seconds + 12
  for (let second = 1; second <= total; second++) {
    await sleep(1000)
    const cpu = cpuOf(pid).total
    samples.push({ at: second, rssMb: memoryOf(pid, 'VmRSS') / MiB, fds: descriptors(pid), connections, cpuPct: (cpu - cpuBefore) * 100 })
    cpuBefore = cpu
    if (second === seconds) log(`the clients stop sending at ${second} s`)
  }
  clearInterval(sending)
  // Only now do the clients read: each finds its 413.
  for (const socket of sockets) {
    socket.on('data', (data: Buffer) => { if (data.toString('latin1').startsWith('HTTP/1.1 413')) refusedSeen++ })
    socket.resume()
  }
  await sleep(500)
  for (const socket of sockets) socket.destroy()
  await sleep(1000)
  const after = { rssMb: memoryOf(pid, 'VmRSS') / MiB, fds: descriptors(pid), peakMb: memoryOf(pid, 'VmHWM') / MiB }
  server.kill()

  const during = samples.filter((sample) => sample.at <= seconds)
  const max = (key: keyof Sample): number => Math.max(...during.map((sample) => sample[key]))
  const report = {
    machine: machine(),
    clients,
    bytesPerSecondEach: rate,
    seconds,
    baseline,
    whileLingering: { maxRssMb: max('rssMb'), maxDescriptors: max('fds'), maxConnections: max('connections'), maxCpuPct: max('cpuPct') },
    peakRssMb: after.peakMb,
    closedWithin: samples.find((sample) => sample.at > seconds && sample.connections === 0)?.at ?? null,
    after: { rssMb: after.rssMb, fds: after.fds },
    answersRead: refusedSeen,
    resets,
    samples
  }
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
  log(`${clients} lingering clients at ${(rate / 1024).toFixed(0)} KiB/s each: peak RSS ${after.peakMb.toFixed(1)} MB (at rest ${baseline.rssMb.toFixed(1)} MB), ` +
    `at most ${report.whileLingering.maxDescriptors} descriptors (at rest ${baseline.fds}), CPU at most ${report.whileLingering.maxCpuPct.toFixed(0)} %; ` +
    `all closed ${report.closedWithin === null ? 'never' : `${report.closedWithin - seconds} s after they stopped`}; ${after.fds} descriptors after; ` +
    `${refusedSeen}/${clients} read their 413, ${resets} resets`)
}

if (process.argv[2] === 'serve') await serve()
else await main()
