// The S3 engine the tests use: Ceph RGW started by test/services/rgw.sh,
// found from the environment (.ci/run exports it) or from the env file of
// `npm run services:start` (.tap/rgw/env).
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { createServer, request as httpRequest } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { DeleteObjectsCommand, ListMultipartUploadsCommand, ListObjectsV2Command, AbortMultipartUploadCommand, S3Client } from '@aws-sdk/client-s3'
import type { Test } from 'tap'
import { S3Storage } from '../../plugins/storage/s3/index.js'
import type { S3StorageOptions } from '../../plugins/storage/s3/index.js'
import { listenServer } from './net.js'

const ENV_FILE = new URL('../../.tap/rgw/env', import.meta.url)

export interface S3Settings {
  endpoint: string
  region: string
  bucket: string
  accessKeyId: string
  secretAccessKey: string
}

/** Where the engine is; throws saying how to start it when it is not configured. */
export function s3Settings (): S3Settings {
  const env: Record<string, string | undefined> = { ...process.env }
  if (env.S3_ENDPOINT === undefined && existsSync(ENV_FILE)) {
    for (const line of readFileSync(ENV_FILE, 'utf8').split('\n')) {
      const match = /^export ([A-Z0-9_]+)=(.*)$/.exec(line)
      if (match !== null) env[match[1] as string] = match[2]
    }
  }
  const { S3_ENDPOINT, S3_REGION = 'us-east-1', S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY } = env
  if (S3_ENDPOINT === undefined || S3_BUCKET === undefined || AWS_ACCESS_KEY_ID === undefined || AWS_SECRET_ACCESS_KEY === undefined) {
    throw new Error('No S3 engine for the tests: run `npm run services:start` (Ceph RGW on loopback, about 10 s) or set S3_ENDPOINT, S3_BUCKET, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY')
  }
  return { endpoint: S3_ENDPOINT, region: S3_REGION, bucket: S3_BUCKET, accessKeyId: AWS_ACCESS_KEY_ID, secretAccessKey: AWS_SECRET_ACCESS_KEY }
}

/** The service's environment for this engine, under a key prefix of the test's own. */
export function s3Env (prefix = testPrefix()): Record<string, string> {
  const settings = s3Settings()
  return {
    STORAGE: 's3',
    S3_ENDPOINT: settings.endpoint,
    S3_REGION: settings.region,
    S3_BUCKET: settings.bucket,
    S3_FORCE_PATH_STYLE: 'true',
    S3_PREFIX: prefix,
    AWS_ACCESS_KEY_ID: settings.accessKeyId,
    AWS_SECRET_ACCESS_KEY: settings.secretAccessKey
  }
}

/** A key prefix no other test uses. */
export function testPrefix (): string {
  return `test-${randomBytes(6).toString('hex')}/`
}

/** A client for looking at the bucket directly. */
export function s3Client (): S3Client {
  const settings = s3Settings()
  return new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: true,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED'
  })
}

export function s3Options (prefix: string, options: Partial<S3StorageOptions> = {}): S3StorageOptions {
  const settings = s3Settings()
  return {
    bucket: settings.bucket,
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: true,
    prefix,
    partSize: 5 * 1024 * 1024,
    client: { credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } },
    ...options
  }
}

/** Opens the backend under a fresh prefix; everything under it is removed after the test. */
export async function openS3 (t: Test, options: Partial<S3StorageOptions> = {}): Promise<{ storage: S3Storage, prefix: string }> {
  const prefix = testPrefix()
  const storage = await S3Storage.open(s3Options(prefix, options))
  t.teardown(async () => {
    await storage.close()
    await emptyPrefix(prefix)
  })
  return { storage, prefix }
}

/** Keys under `prefix`, and unfinished multipart uploads as `multipart:<key>`. */
export async function keysUnder (prefix: string): Promise<string[]> {
  const client = s3Client()
  const { bucket } = s3Settings()
  const keys: string[] = []
  let token: string | undefined
  do {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }))
    for (const object of listed.Contents ?? []) keys.push(`${object.Key as string}${object.Size === 0 ? ' (empty)' : ''}`)
    token = listed.IsTruncated === true ? listed.NextContinuationToken : undefined
  } while (token !== undefined)
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))
  for (const upload of uploads.Uploads ?? []) keys.push(`multipart:${upload.Key as string}`)
  client.destroy()
  return keys.sort()
}

/** Removes every object and unfinished upload under `prefix`. */
export async function emptyPrefix (prefix: string): Promise<void> {
  const client = s3Client()
  const { bucket } = s3Settings()
  for (;;) {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))
    const objects = (listed.Contents ?? []).map((object) => ({ Key: object.Key as string }))
    if (objects.length === 0) break
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects } }))
  }
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))
  for (const upload of uploads.Uploads ?? []) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }))
  client.destroy()
}

/** A request to the engine as the proxy saw it; `ended` is null while it is in flight. */
export interface EngineRequest {
  method: string
  /** The object key (the path without the bucket), decoded; '' for the bucket. */
  key: string
  query: URLSearchParams
  headers: IncomingHttpHeaders
  started: number
  ended: number | null
}

/** An answer the proxy gives instead of the engine's: an S3 error (`code`) or an XML document. */
export interface EngineAnswer {
  status: number
  headers?: Record<string, string>
  /** An S3 error code, sent as `<Error><Code>…`. */
  code?: string
  xml?: string
}

/** An S3 error response body. */
function errorXml (code: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code} (from the test's proxy)</Message></Error>`
}

/**
 * An HTTP proxy in front of the test engine (path-style requests), on a
 * port of its own: it records every request and forwards it unchanged
 * (signatures hold), unless `answer` returns an answer of its own for it.
 * Point `endpoint` at it.
 */
export async function engineProxy (t: Test, answer: (request: EngineRequest) => EngineAnswer | undefined): Promise<{ endpoint: string, requests: EngineRequest[] }> {
  const target = new URL(s3Settings().endpoint)
  const { bucket } = s3Settings()
  const requests: EngineRequest[] = []
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy')
    const path = decodeURIComponent(url.pathname)
    const key = path.startsWith(`/${bucket}/`) ? path.slice(bucket.length + 2) : ''
    const seen: EngineRequest = { method: req.method ?? '', key, query: url.searchParams, headers: req.headers, started: performance.now(), ended: null }
    requests.push(seen)
    // Its answer is written (or it failed): the client cannot have read it before.
    const end = (): void => { seen.ended ??= performance.now() }
    res.on('finish', end).on('close', end)
    const own = answer(seen)
    if (own !== undefined) {
      req.resume()
      const body = own.xml ?? (own.code === undefined ? '' : errorXml(own.code))
      res.writeHead(own.status, { ...(body === '' ? {} : { 'content-type': 'application/xml' }), ...own.headers }).end(body)
      return
    }
    // Expect is not signed: the proxy has read the body's head already.
    const { expect: _expect, ...headers } = req.headers
    // A connection of its own (no keep-alive pool), closed with the exchange: none outlives the test.
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: false }, (response) => {
      res.writeHead(response.statusCode ?? 502, response.headers)
      response.pipe(res)
    })
    upstream.on('error', () => { res.destroy() })
    req.pipe(upstream)
  })
  const port = await listenServer(t, server)
  t.teardown(() => { server.closeAllConnections() })
  return { endpoint: `http://127.0.0.1:${port}`, requests }
}
