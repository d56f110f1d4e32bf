import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp } from '../../app.js'
import { loadConfig } from '../../config.js'
import { bearer, JWT_SECRET, PRESIGN_SECRET, TOKENS } from './credentials.js'
import { requestHead } from './http.js'
import { listen } from './net.js'
import { emptyPrefix, s3Env, testPrefix } from './s3.js'
import { exchange } from './wire.js'
import type { Exchange } from './wire.js'

export { bearer, JWT_SECRET, PRESIGN_SECRET, TOKENS } from './credentials.js'

export interface Service {
  app: FastifyInstance
  port: number
  base: string
  dataDir: string
  /** Files under the data directory, relative paths, temporary ones included. */
  files: () => string[]
  /** On S3: the key prefix of the service's objects (emptied after the test); null on disk. */
  prefix: string | null
}

/** The storage backends the service's end-to-end tests run on. */
export const BACKENDS = ['disk', 's3'] as const
export type Backend = typeof BACKENDS[number]

/**
 * The service on a fresh store: a test directory on disk, or a key prefix
 * of its own in the test engine's bucket (emptied after the test).
 */
export async function startService (t: Test, env: Record<string, string> = {}, backend: Backend = 'disk'): Promise<Service> {
  const dataDir = t.testdir({})
  let storageEnv: Record<string, string> = {}
  let prefix: string | null = null
  if (backend === 's3') {
    prefix = testPrefix()
    storageEnv = s3Env(prefix)
    const emptied = prefix
    t.teardown(async () => { await emptyPrefix(emptied) })
  }
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    AUTH_TOKENS: `alice:${TOKENS.alice},bob:${TOKENS.bob}`,
    AUTH_JWT_SECRET: JWT_SECRET,
    PRESIGN_SECRET,
    LOG_LEVEL: 'silent',
    ...storageEnv,
    ...env
  })
  const app = await buildApp({ config, logger: process.env.UPFRONT_TEST_LOG === undefined ? false : { level: process.env.UPFRONT_TEST_LOG } })
  const port = await listen(t, app)
  const files = (): string[] => (readdirSync(dataDir, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dataDir.length + 1))
  return { app, port, base: `http://127.0.0.1:${port}`, dataDir, files, prefix }
}

/** A PUT of `body` to `path`, its body sent after the 100 Continue; with alice's token unless `lines` say otherwise. */
export async function putFile (port: number, path: string, body: Buffer, lines: string[] = [bearer('alice')]): Promise<Exchange> {
  return await exchange(port, { head: requestHead('PUT', path, [`Content-Length: ${body.length}`, 'Expect: 100-continue', ...lines]), body })
}

/** A GET of `path`; with alice's token unless `lines` say otherwise. */
export async function getFile (port: number, path: string, lines: string[] = [bearer('alice')]): Promise<Exchange> {
  return await exchange(port, { head: requestHead('GET', path, lines) })
}

/** A temporary directory with these files, removed after the test (t.testdir is taken by the service's data). */
export function scratch (t: Test, files: Record<string, Buffer | string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'upfront-test-'))
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data)
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}
