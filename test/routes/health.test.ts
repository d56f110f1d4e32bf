// GET /healthz and GET /readyz (routes/health.ts): no token needed; alive
// whatever happens, ready only while storage answers and no shutdown began.
import { rmSync } from 'node:fs'
import t from 'tap'
import { BACKENDS, getFile, startService } from '../helpers/service.js'
import { json } from '../helpers/wire.js'

for (const backend of BACKENDS) {
  t.test(`alive and ready, on ${backend}`, async (t) => {
    const { port } = await startService(t, {}, backend)
    const health = await getFile(port, '/healthz', [])
    t.equal(health.status, 200)
    t.same(json(health), { status: 'ok' })
    const ready = await getFile(port, '/readyz', [])
    t.equal(ready.status, 200)
    t.same(json(ready), { status: 'ok', freeBytes: backend === 'disk' ? Number(JSON.parse(ready.body).freeBytes) : null })
    if (backend === 'disk') t.ok(JSON.parse(ready.body).freeBytes > 0)
  })
}

t.test('not ready when the storage does not answer; still alive', async (t) => {
  const { port, dataDir } = await startService(t)
  rmSync(dataDir, { recursive: true, force: true })
  const ready = await getFile(port, '/readyz', [])
  t.equal(ready.status, 503)
  t.equal(ready.headers['retry-after'], '5')
  t.same(json(ready), { status: 'unavailable', reason: 'the storage does not answer' })
  t.equal((await getFile(port, '/healthz', [])).status, 200)
})
