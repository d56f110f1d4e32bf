// The naive floor of the service suite (bench/service/): a bare
// node:http server, no framework, in its own process.
//
//   node bare-server.js pipe|sha256|sha256-large|durable|discard <dir>
//
// - pipe:    stream.pipeline(req, fs.createWriteStream(<dir>/<name>)), default
//            buffer sizes, then 201. No fsync: the 201 means "in the page cache".
// - sha256:  the same with a SHA-256 Transform in the pipeline (the digest is
//            in the answer), for reference.
// - sha256-large: sha256 with every stream buffer enlarged to 4 MiB (the
//            server's `highWaterMark`, the Transform's, the file stream's):
//            "a Node server that only enlarged its stream buffers".
// - durable: sha256, into <dir>/<name>.tmp, then fdatasync, rename to
//            <dir>/<name> and fsync of <dir>: what the service's 201 promises
//            (bytes verified and durable under their name) done the plain
//            way, with nothing else (no auth, no checks, no metadata).
// - discard: reads and drops the body, then 201: what loopback HTTP alone costs.
//
// Every request method is treated as an upload; `<name>` is the last segment
// of the URL path. The answer is JSON: { size, sha256? }. It prints
// `listening <port>` on stdout once ready.
import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { open, rename } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'

type Mode = 'pipe' | 'sha256' | 'sha256-large' | 'durable' | 'discard'
const mode = process.argv[2] as Mode
const dir = process.argv[3]
if (!['pipe', 'sha256', 'sha256-large', 'durable', 'discard'].includes(mode) || dir === undefined) throw new Error('usage: bare-server.js pipe|sha256|sha256-large|durable|discard <dir>')
/** Stream buffers: Node's defaults, or 4 MiB everywhere for sha256-large. */
const highWaterMark = mode === 'sha256-large' ? 4 * 1024 * 1024 : undefined

const server = createServer({ highWaterMark }, (req, res) => {
  const name = (req.url ?? '/upload').replace(/\?.*$/s, '').split('/').filter((s) => s !== '' && s !== '..').at(-1) ?? 'upload'
  const answer = (body: Record<string, unknown>): void => {
    const json = JSON.stringify(body)
    res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) })
    res.end(json)
  }
  const fail = (error: unknown): void => {
    process.stderr.write(`bare-server ${mode}: ${String(error)}\n`)
    if (!res.headersSent) res.writeHead(500, { connection: 'close' })
    res.end()
  }
  if (mode === 'discard') {
    let size = 0
    req.on('data', (chunk: Buffer) => { size += chunk.length })
    req.on('end', () => { answer({ size }) })
    req.on('error', fail)
    return
  }
  const path = join(dir, name)
  const file = createWriteStream(mode === 'durable' ? `${path}.tmp` : path, { highWaterMark })
  if (mode === 'pipe') {
    pipeline(req, file).then(() => { answer({ size: file.bytesWritten }) }, fail)
    return
  }
  const hash = createHash('sha256')
  const hashing = new Transform({
    highWaterMark,
    transform (chunk: Buffer, _encoding, callback) {
      hash.update(chunk)
      callback(null, chunk)
    }
  })
  pipeline(req, hashing, file).then(async () => {
    if (mode === 'durable') await makeDurable(`${path}.tmp`, path)
    answer({ size: file.bytesWritten, sha256: hash.digest('hex') })
  }).catch(fail)
})
/** Flushes `temporary` to disk, renames it to `path`, and flushes the directory. */
async function makeDurable (temporary: string, path: string): Promise<void> {
  const file = await open(temporary, 'r+')
  await file.datasync()
  await file.close()
  await rename(temporary, path)
  const directory = await open(dir as string, 'r')
  await directory.sync()
  await directory.close()
}

// As the service: no timeout that would cut a long upload.
server.requestTimeout = 0
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`)
})
process.on('SIGTERM', () => { server.close(); server.closeAllConnections() })
