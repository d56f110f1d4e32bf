// curl as a real client: it adds `Expect: 100-continue` by itself to uploads
// over 1 MiB, and reports in %{size_upload} how many body bytes it sent.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import multipart from '@fastify/multipart'
import t from 'tap'
import { countBody, countFormFiles, startApp } from '../../helpers/app.js'
import { curl } from '../../helpers/curl.js'

const token = 'curl-test-token'

t.test('curl uploads: accepted, or refused with no body byte sent', async (t) => {
  const dir = t.testdir({})
  const small = join(dir, 'three-mb.bin')
  const large = join(dir, 'five-mb.bin')
  writeFileSync(small, Buffer.alloc(3 * 1024 * 1024, 's'))
  writeFileSync(large, Buffer.alloc(5 * 1024 * 1024, 'l'))

  const { port } = await startApp(t, { maxBytes: 4 * 1024 * 1024 }, async (app) => {
    await app.register(multipart, { limits: { fileSize: 4 * 1024 * 1024 } })
    app.register(async (secured) => {
      secured.addHook('onRequest', async (request, reply) => {
        if (request.headers.authorization !== `Bearer ${token}`) {
          return await reply.code(401).header('www-authenticate', 'Bearer').send({ statusCode: 401, code: 'NO_TOKEN', error: 'Unauthorized', message: 'send a bearer token' })
        }
      })
      secured.put('/upload/:name', async (request) => ({ received: await countBody(request.raw) }))
      secured.post('/form', async (request) => ({ received: await countFormFiles(request) }))
    })
  })
  const base = `http://127.0.0.1:${port}`
  const auth = ['-H', `Authorization: Bearer ${token}`]

  const accepted = await curl(dir, [...auth, '-T', small, `${base}/upload/three-mb.bin`])
  t.equal(accepted.status, 200)
  t.match(accepted.trace, /> Expect: 100-continue/, 'curl asked for a 100 by itself')
  t.match(accepted.trace, /< HTTP\/1\.1 100 Continue/)
  t.equal(accepted.sizeUpload, 3 * 1024 * 1024)
  t.same(JSON.parse(accepted.body), { received: 3 * 1024 * 1024 })

  const noToken = await curl(dir, ['-T', small, `${base}/upload/three-mb.bin`])
  t.equal(noToken.status, 401)
  t.equal(noToken.sizeUpload, 0, 'no token: no body byte sent')
  t.notMatch(noToken.trace, /100 Continue/)
  t.match(JSON.parse(noToken.body), { code: 'NO_TOKEN' })

  const tooLarge = await curl(dir, [...auth, '-T', large, `${base}/upload/five-mb.bin`])
  t.equal(tooLarge.status, 413)
  t.equal(tooLarge.sizeUpload, 0, 'too large: no body byte sent')
  t.match(JSON.parse(tooLarge.body), { code: 'UPFRONT_BODY_TOO_LARGE' })

  const form = await curl(dir, [...auth, '-F', `file=@${large}`, `${base}/form`])
  t.equal(form.status, 413)
  t.match(form.trace, /> Expect: 100-continue/)
  t.equal(form.sizeUpload, 0, 'multipart too large: no body byte sent')

  const formAccepted = await curl(dir, [...auth, '-F', `file=@${small}`, `${base}/form`])
  t.equal(formAccepted.status, 200)
  t.same(JSON.parse(formAccepted.body), { received: 3 * 1024 * 1024 })
})
