// Go's net/http TestServerExpect table (serve_test.go), case by case, over a
// real socket: the first response line the client reads.
import t from 'tap'
import { startApp } from '../../helpers/app.js'
import { requestHead } from '../../helpers/http.js'
import { exchange } from '../../helpers/wire.js'

interface Row {
  expect: string | null
  readBody: boolean
  /** Body length, or 'chunked'. */
  length: number | 'chunked'
  firstLine: string
}

const table: Row[] = [
  { expect: '100-continue', readBody: true, length: 100, firstLine: '100 Continue' },
  { expect: '100-cOntInUE', readBody: true, length: 100, firstLine: '100 Continue' },
  { expect: null, readBody: true, length: 100, firstLine: '200 OK' },
  { expect: '100-continue', readBody: false, length: 100, firstLine: '401 Unauthorized' },
  { expect: null, readBody: false, length: 100, firstLine: '401 Unauthorized' },
  { expect: 'a-pony', readBody: false, length: 0, firstLine: '417 Expectation Failed' },
  { expect: '100-continue', readBody: true, length: 0, firstLine: '200 OK' },
  { expect: '100-continue', readBody: false, length: 0, firstLine: '401 Unauthorized' },
  { expect: '100-continue', readBody: true, length: 'chunked', firstLine: '100 Continue' }
]

t.test('Go TestServerExpect', async (t) => {
  const { port } = await startApp(t)
  for (const row of table) {
    const name = `Expect: ${row.expect ?? '(none)'}, ${row.readBody ? 'reads' : 'does not read'}, body ${row.length}`
    t.test(name, async (t) => {
      const chunked = row.length === 'chunked'
      const body = Buffer.alloc(chunked ? 100 : row.length as number, 'x')
      const head = requestHead('POST', `/?readbody=${row.readBody}`, [
        'Connection: close',
        chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`,
        ...(row.expect === null ? [] : [`Expect: ${row.expect}`])
      ], { host: 'foo' })
      // Like Go's test client: the body goes at once unless 100-continue was asked for.
      const waits = row.expect?.toLowerCase() === '100-continue'
      const result = await exchange(port, { head, body, chunked, send: waits ? 'wait' : 'now' })
      const firstLine = result.informational[0] ?? result.statusLine
      t.equal(firstLine, `HTTP/1.1 ${row.firstLine}`)
      if (row.readBody) {
        t.equal(result.status, 200)
        t.same(JSON.parse(result.body), { received: body.length })
      }
      if (waits && !row.readBody) {
        t.equal(result.bodyBytesBeforeAnswer, 0, 'no body byte was sent')
        t.equal(result.informational.length, 0, 'no 100 was sent')
      }
    })
  }
})
