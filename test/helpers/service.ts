import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp } from '../../app.js'
import { loadConfig } from '../../config.js'

export const TOKENS = {
  alice: 'alice-token-0123456789',
  bob: 'bob-token-0123456789abc'
}
export const PRESIGN_SECRET = 'presign-secret-0123456789-0123456789'
export const JWT_SECRET = 'jwt-secret-0123456789-0123456789-abcdef'

export interface Service {
  app: FastifyInstance
  port: number
  base: string
  dataDir: string
  /** Files under the data directory, relative paths, temporary ones included. */
  files: () => string[]
}

export async function startService (t: Test, env: Record<string, string> = {}): Promise<Service> {
  const dataDir = t.testdir({})
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    AUTH_TOKENS: `alice:${TOKENS.alice},bob:${TOKENS.bob}`,
    AUTH_JWT_SECRET: JWT_SECRET,
    PRESIGN_SECRET,
    LOG_LEVEL: 'silent',
    ...env
  })
  const app = await buildApp({ config, logger: process.env.UPFRONT_TEST_LOG === undefined ? false : { level: process.env.UPFRONT_TEST_LOG } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const port = (app.server.address() as { port: number }).port
  const files = (): string[] => (readdirSync(dataDir, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dataDir.length + 1))
  return { app, port, base: `http://127.0.0.1:${port}`, dataDir, files }
}

export function bearer (principal: keyof typeof TOKENS): string {
  return `Authorization: Bearer ${TOKENS[principal]}`
}

/** A temporary directory with these files, removed after the test (t.testdir is taken by the service's data). */
export function scratch (t: Test, files: Record<string, Buffer | string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'upfront-test-'))
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data)
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}
