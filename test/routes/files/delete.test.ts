// DELETE /files/<name> (routes/files/delete.ts).
import t from 'tap'
import { requestHead } from '../../helpers/http.js'
import { bearer, getFile, putFile, startService } from '../../helpers/service.js'
import { exchange, json } from '../../helpers/wire.js'

t.test('delete', async (t) => {
  const { port } = await startService(t)
  await putFile(port, '/files/gone.txt', Buffer.from('bye'))
  const deleted = await exchange(port, { head: requestHead('DELETE', '/files/gone.txt', [bearer('alice')]), closeWaitMs: 50 })
  t.equal(deleted.status, 204)
  t.equal((await getFile(port, '/files/gone.txt')).status, 404)
  const again = await exchange(port, { head: requestHead('DELETE', '/files/gone.txt', [bearer('alice')]), closeWaitMs: 50 })
  t.equal(again.status, 404)
  t.match(json(again), { code: 'UPFRONT_FILE_NOT_FOUND' })
})
