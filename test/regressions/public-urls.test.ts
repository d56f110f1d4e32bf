// Behind a TLS proxy, POST /presign handed out http:// URLs with whatever
// Host arrived. PUBLIC_URL sets the URL clients reach the service at;
// TRUST_PROXY makes the forwarded headers count, from the listed proxies only.
import t from 'tap'
import { bearer, startService } from '../helpers/service.js'
import { exchange, json } from '../helpers/wire.js'

async function presign (port: number, lines: string[]): Promise<{ url: string, path: string }> {
  const body = Buffer.from(JSON.stringify({ name: 'in/scan.pdf' }))
  const answer = await exchange(port, {
    head: ['POST /presign HTTP/1.1', 'Host: internal:3000', bearer('alice'), 'Content-Type: application/json', `Content-Length: ${body.length}`, ...lines].join('\r\n'),
    body,
    send: 'now'
  })
  return json(answer) as { url: string, path: string }
}

const FORWARDED = ['X-Forwarded-Proto: https', 'X-Forwarded-Host: files.example.com']

t.test('PUBLIC_URL: presigned URLs and Location are what a client outside can use', async (t) => {
  const { port } = await startService(t, { PUBLIC_URL: 'https://example.com/uploads/' })
  const grant = await presign(port, FORWARDED)
  t.equal(grant.url, `https://example.com/uploads${grant.path}`, 'the public URL with its path prefix, whatever arrived')
  t.match(grant.path, /^\/files\/in\/scan\.pdf\?/)
  const stored = await exchange(port, {
    head: ['PUT /files/a.txt HTTP/1.1', 'Host: internal:3000', bearer('alice'), 'Content-Length: 2'].join('\r\n'),
    body: Buffer.from('hi'),
    send: 'now'
  })
  t.equal(stored.headers.location, 'https://example.com/uploads/files/a.txt')
})

t.test('TRUST_PROXY: the forwarded scheme and host count only from the listed proxies', async (t) => {
  const trusting = await startService(t, { TRUST_PROXY: '127.0.0.1' })
  t.match((await presign(trusting.port, FORWARDED)).url, /^https:\/\/files\.example\.com\/files\/in\/scan\.pdf\?/)
  const other = await startService(t, { TRUST_PROXY: '10.0.0.0/8' })
  t.match((await presign(other.port, FORWARDED)).url, /^http:\/\/internal:3000\/files\//, 'a client that is not a listed proxy cannot set them')
  const none = await startService(t)
  t.match((await presign(none.port, FORWARDED)).url, /^http:\/\/internal:3000\/files\//, 'not trusted by default')
  const stored = await exchange(none.port, {
    head: ['PUT /files/a.txt HTTP/1.1', 'Host: internal:3000', bearer('alice'), 'Content-Length: 2'].join('\r\n'),
    body: Buffer.from('hi'),
    send: 'now'
  })
  t.equal(stored.headers.location, '/files/a.txt', 'without PUBLIC_URL, Location is a path, resolved against the URL the client used')
})
