// GET /healthz (routes/health.ts): no token needed; storage answers.
import t from 'tap'
import { getFile, startService } from '../helpers/service.js'
import { json } from '../helpers/wire.js'

t.test('health', async (t) => {
  const { port } = await startService(t)
  const health = await getFile(port, '/healthz', [])
  t.equal(health.status, 200)
  t.match(json(health), { status: 'ok', freeBytes: Number })
})
