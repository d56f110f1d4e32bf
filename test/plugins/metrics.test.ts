// plugins/metrics.ts: GET /metrics, Prometheus text, with the metrics token.
import { Writable } from 'node:stream'
import t from 'tap'
import { buildApp, loggerOptions } from '../../app.js'
import { loadConfig } from '../../config.js'
import { requestHead } from '../helpers/http.js'
import { listen } from '../helpers/net.js'
import { bearer, getFile, PRESIGN_SECRET, putFile, startService, TOKENS } from '../helpers/service.js'
import { exchange, json } from '../helpers/wire.js'

const METRICS_TOKEN = 'metrics-token-0123456789'

/** The value of a sample line `name{labels} value`. */
function sample (text: string, line: string): number | null {
  const found = text.split('\n').find((entry) => entry.startsWith(`${line} `))
  return found === undefined ? null : Number(found.slice(line.length + 1))
}

t.test('the metrics: requests, refusals before the body, 100s, bytes stored, uploads in flight', async (t) => {
  const { port } = await startService(t, { METRICS_TOKEN, MAX_UPLOAD_BYTES: '1000000' })
  t.equal((await getFile(port, '/metrics', [])).status, 401, 'no token')
  const wrong = await getFile(port, '/metrics', ['Authorization: Bearer not-the-metrics-token'])
  t.equal(wrong.status, 401)
  t.match(json(wrong), { code: 'UPFRONT_UNAUTHORIZED', message: /metrics token/ })
  t.equal((await getFile(port, '/metrics', [bearer('alice')])).status, 401, 'a user\'s token is not the metrics token')

  t.equal((await putFile(port, '/files/a.bin', Buffer.alloc(1000))).status, 201)
  await putFile(port, '/files/b.bin', Buffer.alloc(2000))
  t.equal((await exchange(port, { head: requestHead('PUT', '/files/big.bin', [bearer('alice'), 'Content-Length: 5000000', 'Expect: 100-continue']) })).status, 413)
  t.equal((await exchange(port, { head: requestHead('PUT', '/files/x.bin', ['Content-Length: 10', 'Expect: 100-continue']) })).status, 401)

  const scraped = await getFile(port, '/metrics', [`Authorization: Bearer ${METRICS_TOKEN}`])
  t.equal(scraped.status, 200)
  t.match(scraped.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const text = scraped.body
  t.equal(sample(text, 'http_requests_total{method="PUT",route="/files/*",status="201"}'), 2)
  t.equal(sample(text, 'http_requests_total{method="PUT",route="/files/*",status="413"}'), 1)
  t.equal(sample(text, 'http_requests_total{method="GET",route="/metrics",status="401"}'), 3)
  t.ok((sample(text, 'http_request_duration_seconds_count{method="PUT",route="/files/*"}') ?? 0) >= 4)
  t.equal(sample(text, 'upfront_refused_before_body_total{reason="too-large"}'), 1)
  t.equal(sample(text, 'upfront_refused_before_body_total{reason="401"}'), 1)
  t.equal(sample(text, 'upfront_unsent_body_bytes_total'), 5000010)
  t.equal(sample(text, 'upfront_continue_sent_total'), 2)
  t.equal(sample(text, 'upfront_stored_bytes_total'), 3000)
  t.equal(sample(text, 'upfront_stored_files_total'), 2)
  t.equal(sample(text, 'upfront_uploads_in_flight'), 0)
  t.match(text, /\nprocess_resident_memory_bytes \d+/, 'and the process\'s own')
  t.notMatch(text, /a\.bin|alice/, 'no file name or principal in labels')
})

t.test('no metrics token: no metrics route', async (t) => {
  const { port } = await startService(t)
  t.equal((await getFile(port, '/metrics', [bearer('alice')])).status, 404)
})

t.test('storage errors are counted; an audit line for each file stored or deleted, without secrets', async (t) => {
  const lines: string[] = []
  const dataDir = t.testdir({})
  const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, AUTH_TOKENS: `alice:${TOKENS.alice}`, PRESIGN_SECRET, METRICS_TOKEN, LOG_LEVEL: 'info' })
  const app = await buildApp({ config, logger: { ...loggerOptions('info') as object, stream: new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } }) } })
  const port = await listen(t, app)
  await putFile(port, '/files/docs/a.txt', Buffer.from('hello'))
  await exchange(port, { head: requestHead('DELETE', '/files/docs/a.txt', [bearer('alice')]) })
  const audits = lines.map((line) => JSON.parse(line) as { audit?: object }).filter((line) => line.audit !== undefined).map((line) => line.audit)
  t.same(audits, [
    { action: 'stored', principal: 'alice', name: 'docs/a.txt', bytes: 5, sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', status: 201 },
    { action: 'deleted', principal: 'alice', name: 'docs/a.txt', bytes: 5, sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', status: 204 }
  ])
  t.notOk(lines.some((line) => line.includes(TOKENS.alice)), 'no token in the logs')

  // The storage fails under the service: a storage error, not a request's.
  const { rmSync } = await import('node:fs')
  rmSync(dataDir, { recursive: true, force: true })
  t.equal((await putFile(port, '/files/b.txt', Buffer.from('x'))).status, 500)
  const metrics = await getFile(port, '/metrics', [`Authorization: Bearer ${METRICS_TOKEN}`])
  t.ok((sample(metrics.body, 'upfront_storage_errors_total{operation="begin"}') ?? sample(metrics.body, 'upfront_storage_errors_total{operation="freeBytes"}') ?? 0) >= 1, 'counted')
})

t.test('under pressure, /metrics is still scraped while uploads get 503', async (t) => {
  // Over one byte of resident memory from the first sample, after a second.
  const { port } = await startService(t, { METRICS_TOKEN, MAX_RSS_BYTES: '1' })
  await new Promise((resolve) => setTimeout(resolve, 1200))
  t.equal((await putFile(port, '/files/a.bin', Buffer.from('x'))).status, 503, 'an upload is shed')
  const scraped = await getFile(port, '/metrics', [`Authorization: Bearer ${METRICS_TOKEN}`])
  t.equal(scraped.status, 200, 'the metrics are not')
  t.equal(sample(scraped.body, 'http_requests_total{method="PUT",route="/files/*",status="503"}'), 1, 'and count the refusal')
})
