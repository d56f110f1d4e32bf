// Upload throughput over a loopback HTTP connection, SHA-256 on:
//
//   naive        stream.pipeline(req, fs.createWriteStream(path)), default buffers
//   naive+fsync  the same, then an fsync: what a durable naive answer costs
//   disk         DiskStorage write() + commit(), fsync and renames included
//
// The client is a separate process, so the server's CPU time is its own.
// Modes take turns, round after round, so that a noisy machine hurts each
// of them alike; compare the medians.
//
//   node --import @tapjs/typescript/import bench/disk-write.ts [MiB=1024] [rounds=5] [dir]
//
// `dir` (default: under the OS temp directory) must be on the filesystem to
// measure, with room for two uploads.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { DiskStorage } from '../plugins/storage/disk.js'

const mib = Number(process.argv[2] ?? 1024)
const rounds = Number(process.argv[3] ?? 5)
const dir = process.argv[4] ?? await mkdtemp(join(tmpdir(), 'upfront-bench-'))
const bytes = mib * 1024 * 1024

/** One PUT of `bytes` bytes, sent from a 1 MiB buffer as fast as the socket takes it. */
const client = `
const [port, bytes, path] = process.argv.slice(1).map((arg, i) => i < 2 ? Number(arg) : arg)
const chunk = Buffer.alloc(1024 * 1024, 'x')
const socket = require('node:net').connect(port, '127.0.0.1', () => {
  socket.write('PUT ' + path + ' HTTP/1.1\\r\\nHost: bench\\r\\nConnection: close\\r\\nContent-Length: ' + bytes + '\\r\\n\\r\\n')
  let left = bytes
  const send = () => {
    while (left > 0) {
      const piece = chunk.subarray(0, Math.min(left, chunk.length))
      left -= piece.length
      if (!socket.write(piece)) return socket.once('drain', send)
    }
  }
  send()
})
let answer = ''
socket.on('data', (data) => { answer += data })
socket.on('end', () => { process.exitCode = answer.startsWith('HTTP/1.1 200') ? 0 : 1 })
`

const storage = await DiskStorage.open(join(dir, 'storage'))

async function naive (req: IncomingMessage, sync: boolean): Promise<void> {
  const path = join(dir, 'naive')
  const sha256 = createHash('sha256')
  req.on('data', (chunk: Buffer) => sha256.update(chunk))
  await pipeline(req, createWriteStream(path))
  sha256.digest()
  if (sync) {
    const handle = await open(path, 'r')
    await handle.sync()
    await handle.close()
  }
}

const receivers = {
  naive: async (req: IncomingMessage) => { await naive(req, false) },
  'naive+fsync': async (req: IncomingMessage) => { await naive(req, true) },
  disk: async (req: IncomingMessage) => {
    const upload = await storage.begin('bench', 'upload', { contentType: 'application/octet-stream', maxBytes: bytes })
    await upload.write(req)
    await upload.commit()
  }
}
type Mode = keyof typeof receivers

interface Run {
  seconds: number
  cpuSeconds: number
}

let finished: Run | null = null
const server = createServer((req, res) => {
  const started = process.hrtime.bigint()
  const cpu = process.cpuUsage()
  receivers[req.url?.slice(1) as Mode](req).then(() => {
    const used = process.cpuUsage(cpu)
    finished = { seconds: Number(process.hrtime.bigint() - started) / 1e9, cpuSeconds: (used.user + used.system) / 1e6 }
    res.end()
  }, (error: unknown) => {
    console.error(error)
    res.statusCode = 500
    res.end()
  })
})
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const { port } = server.address() as AddressInfo

async function upload (mode: Mode): Promise<Run> {
  finished = null
  const sender = spawn(process.execPath, ['-e', client, String(port), String(bytes), `/${mode}`], { stdio: 'inherit' })
  const [code] = await once(sender, 'exit') as [number]
  if (code !== 0 || finished === null) throw new Error(`${mode}: the upload failed`)
  await rm(join(dir, 'naive'), { force: true })
  await storage.delete('bench', 'upload')
  return finished
}

const runs = new Map<Mode, Run[]>()
for (let round = 0; round < rounds; round++) {
  for (const mode of Object.keys(receivers) as Mode[]) {
    runs.set(mode, [...runs.get(mode) ?? [], await upload(mode)])
  }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN
console.log(`${mib} MiB PUT over loopback HTTP, ${rounds} rounds; MB/s is 10^6 bytes/s, CPU is the server's`)
for (const [mode, results] of runs) {
  const rates = results.map((run) => bytes / run.seconds / 1e6)
  console.log(
    `${mode.padEnd(12)} median ${median(rates).toFixed(0).padStart(5)} MB/s` +
    `  (${rates.map((rate) => rate.toFixed(0)).join(' ')})` +
    `  CPU ${median(results.map((run) => run.cpuSeconds)).toFixed(2)} s`
  )
}
server.close()
await storage.close()
if (process.argv[4] === undefined) await rm(dir, { recursive: true })
