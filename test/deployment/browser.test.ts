// A real browser: pages on another origin call the service with fetch()
// (headless Chromium from Debian, driven by playwright-core).
import { createServer } from 'node:http'
import t from 'tap'
import type { Test } from 'tap'
import { chromium } from 'playwright-core'
import type { Page } from 'playwright-core'
import { listenServer } from '../helpers/net.js'
import { startService, TOKENS } from '../helpers/service.js'

const CHROMIUM = process.env.UPFRONT_TEST_CHROMIUM ?? '/usr/bin/chromium'

/** A server for an empty page, on an origin of its own. */
async function pageOrigin (t: Test): Promise<string> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    response.end('<!doctype html><title>a page</title>')
  })
  return `http://127.0.0.1:${await listenServer(t, server)}`
}

interface Answer {
  status?: number
  body?: unknown
  headers?: Record<string, string | null>
  error?: string
}

/** fetch() from the page; what its script can see of the answer. */
async function fetchFrom (page: Page, url: string, init: { method?: string, headers?: Record<string, string>, bytes?: number, json?: unknown }): Promise<Answer> {
  return await page.evaluate(async ({ url, init }) => {
    const body = init.bytes !== undefined ? new Uint8Array(init.bytes) : init.json !== undefined ? JSON.stringify(init.json) : undefined
    try {
      const response = await fetch(url, { method: init.method ?? 'GET', headers: init.headers, body })
      const headers: Record<string, string | null> = {}
      for (const name of ['etag', 'location', 'repr-digest', 'www-authenticate', 'content-range']) headers[name] = response.headers.get(name)
      const text = await response.text()
      let parsed: unknown = text
      try { parsed = JSON.parse(text) } catch {}
      return { status: response.status, body: parsed, headers }
    } catch (error) {
      return { error: String(error) }
    }
  }, { url, init })
}

t.test('a page on a listed origin uses the API, refusals included; a page on another origin cannot', async (t) => {
  const allowed = await pageOrigin(t)
  const other = await pageOrigin(t)
  const { base } = await startService(t, { CORS_ORIGINS: allowed, MAX_UPLOAD_BYTES: String(1024 * 1024) })
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(async () => { await browser.close() })
  t.comment(`Chromium ${browser.version()}`)
  const page = await browser.newPage()
  await page.goto(allowed)
  const auth = { authorization: `Bearer ${TOKENS.alice}` }

  const created = await fetchFrom(page, `${base}/files/from-page.bin`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream' }, bytes: 10_000 })
  t.equal(created.status, 201, 'a PUT with a token, after its preflight')
  t.match(created.body, { name: 'from-page.bin', size: 10_000 })
  t.match(created.headers, { etag: /^"[0-9a-f]{64}"$/, location: '/files/from-page.bin', 'repr-digest': /^sha-256=:/ }, 'the headers the page may read')

  const ranged = await fetchFrom(page, `${base}/files/from-page.bin`, { headers: { ...auth, range: 'bytes=0-9' } })
  t.equal(ranged.status, 206)
  t.equal(ranged.headers?.['content-range'], 'bytes 0-9/10000')

  const unauthorized = await fetchFrom(page, `${base}/files/x.bin`, { method: 'PUT', bytes: 10_000 })
  t.equal(unauthorized.status, 401, 'a refusal is an answer the page can read, not a network error')
  t.match(unauthorized.body, { code: 'UPFRONT_UNAUTHORIZED' })
  t.equal(unauthorized.headers?.['www-authenticate'], 'Bearer')

  const tooLarge = await fetchFrom(page, `${base}/files/big.bin`, { method: 'PUT', headers: auth, bytes: 20_000_000 })
  t.equal(tooLarge.status, 413, 'a 20 MB body over the 1 MiB limit: refused from its headers, and the page reads why')
  t.match(tooLarge.body, { code: 'UPFRONT_BODY_TOO_LARGE' })

  const grant = await fetchFrom(page, `${base}/presign`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    json: { name: 'presigned.bin', maxBytes: 600_000, contentType: 'application/octet-stream' }
  })
  t.equal(grant.status, 201)
  const path = (grant.body as { path: string }).path
  const presigned = await fetchFrom(page, `${base}${path}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, bytes: 500_000 })
  t.equal(presigned.status, 201, 'a presigned PUT needs no token')
  const overGrant = await fetchFrom(page, `${base}${path}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, bytes: 700_000 })
  t.equal(overGrant.status, 413)
  t.match(overGrant.body, { code: 'UPFRONT_BODY_TOO_LARGE', message: /600000-byte limit that this presigned URL allows/ })

  await page.goto(other)
  const foreign = await fetchFrom(page, `${base}/files`, { headers: auth })
  t.match(foreign, { error: /TypeError/ }, 'the browser keeps a page on an origin not listed out')
  t.notOk('status' in foreign)
})
