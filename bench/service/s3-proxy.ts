// A counting HTTP proxy in front of the S3 engine: a service started with
// S3_ENDPOINT pointing here sends every engine request through it, and the
// proxy counts them by S3 operation (told apart by method, path and query,
// as S3's REST API defines them) and status. It forwards each request as it
// came, Host header included (SigV4 signs it), and streams both bodies.
import { createServer, request as httpRequest } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { count } from '../lib/stats.js'

export interface Counts {
  /** Requests by operation (`ListObjectsV2`, `GetObject`, ...). */
  operations: Record<string, number>
  /** Requests by operation and status (`GetObject 404`). */
  statuses: Record<string, number>
  total: number
}

export interface CountingProxy {
  endpoint: string
  /** What was counted since the last `take` (or the start), and starts counting afresh. */
  take: () => Counts
  /** Requests not answered yet. */
  readonly open: number
  /** When the last request arrived (Date.now()), 0 before any. */
  readonly lastAt: number
  close: () => Promise<void>
}

/** The S3 operation a request is, for path-style URLs (`/<bucket>` or `/<bucket>/<key>`). */
export function operationOf (method: string, url: string, bucket: string): string {
  const at = url.indexOf('?')
  const path = at === -1 ? url : url.slice(0, at)
  const query = new URLSearchParams(at === -1 ? '' : url.slice(at + 1))
  const onBucket = path === `/${bucket}` || path === `/${bucket}/`
  switch (method) {
    case 'GET':
      if (onBucket) return query.get('list-type') === '2' ? 'ListObjectsV2' : query.has('uploads') ? 'ListMultipartUploads' : 'ListObjects'
      return query.has('uploadId') ? 'ListParts' : 'GetObject'
    case 'HEAD':
      return onBucket ? 'HeadBucket' : 'HeadObject'
    case 'PUT':
      return query.has('partNumber') ? 'UploadPart' : 'PutObject'
    case 'POST':
      if (onBucket && query.has('delete')) return 'DeleteObjects'
      return query.has('uploads') ? 'CreateMultipartUpload' : query.has('uploadId') ? 'CompleteMultipartUpload' : 'POST'
    case 'DELETE':
      return query.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject'
    default:
      return method
  }
}

/** Starts the proxy on a free loopback port, forwarding to `target` (`http://127.0.0.1:7480`). */
export async function startCountingProxy (target: string, bucket: string): Promise<CountingProxy> {
  const upstream = new URL(target)
  let counts: Counts = { operations: {}, statuses: {}, total: 0 }
  let open = 0
  let lastAt = 0
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const operation = operationOf(req.method ?? 'GET', req.url ?? '/', bucket)
    const counted = counts
    count(counted.operations, operation)
    counted.total++
    open++
    lastAt = Date.now()
    let settled = false
    const settle = (status: string): void => {
      if (settled) return
      settled = true
      open--
      count(counted.statuses, `${operation} ${status}`)
    }
    const forward = httpRequest({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: req.headers
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.rawHeaders)
      answer.pipe(res)
      answer.once('end', () => { settle(String(answer.statusCode)) })
      answer.once('error', () => { settle('error'); res.destroy() })
    })
    forward.once('error', () => {
      settle('error')
      if (!res.headersSent) res.writeHead(502).end()
      else res.destroy()
    })
    req.pipe(forward)
    res.once('close', () => { if (!settled) { settle('aborted'); forward.destroy() } })
  })
  server.keepAliveTimeout = 70_000
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}`,
    take: () => {
      const taken = counts
      counts = { operations: {}, statuses: {}, total: 0 }
      return taken
    },
    get open () { return open },
    get lastAt () { return lastAt },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
}
