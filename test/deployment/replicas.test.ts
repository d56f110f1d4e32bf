// Two replicas of the service on one bucket (Ceph RGW), behind a real
// HAProxy: any replica serves any request, races between replicas are
// settled by the engine's conditional writes, a replica killed mid-upload
// loses nothing acknowledged and shows nothing partial, and what it left is
// swept; refusals through the proxy still cost no body byte.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { get as httpGet } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createSigner } from 'fast-jwt'
import t from 'tap'
import { requestHead } from '../helpers/http.js'
import { freePort } from '../helpers/net.js'
import { listening, startServer } from '../helpers/process.js'
import type { Started } from '../helpers/process.js'
import { emptyPrefix, keysUnder, s3Env, testPrefix } from '../helpers/s3.js'
import { bearer, JWT_SECRET, PRESIGN_SECRET, scratch, TOKENS } from '../helpers/service.js'
import { exchange, json } from '../helpers/wire.js'
import type { Exchange } from '../helpers/wire.js'

t.setTimeout(240_000)

const MiB = 1024 * 1024

function sha256 (data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

async function put (port: number, name: string, body: Buffer, lines: string[] = []): Promise<Exchange> {
  return await exchange(port, { head: requestHead('PUT', `/files/${name}`, [bearer('alice'), `Content-Length: ${body.length}`, ...lines]), body, send: 'now' })
}

async function get (port: number, path: string): Promise<Exchange> {
  return await exchange(port, { head: requestHead('GET', path, [bearer('alice')]) })
}

/** The bytes of a file, as a client downloads them. */
async function download (port: number, path: string): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path, headers: { authorization: `Bearer ${TOKENS.alice}` } }, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => { resolve(Buffer.concat(chunks)) })
    }).on('error', reject)
  })
}

/** Sends a PUT whose body comes at `bytesPerSecond`; resolves with what came back (or what the connection's end was). */
async function slowPut (port: number, name: string, body: Buffer, bytesPerSecond: number): Promise<string> {
  const socket = connect({ port, host: '127.0.0.1' })
  let received = ''
  socket.on('data', (data: Buffer) => { received += data.toString('latin1') })
  socket.on('error', (error: NodeJS.ErrnoException) => { received += `[${error.code ?? error.message}]` })
  const closed = new Promise((resolve) => socket.once('close', resolve))
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write(`${requestHead('PUT', `/files/${name}`, [bearer('alice'), `Content-Length: ${body.length}`])}\r\n\r\n`)
  const piece = Math.round(bytesPerSecond / 10)
  for (let at = 0; at < body.length && !socket.destroyed; at += piece) {
    socket.write(body.subarray(at, at + piece))
    await sleep(100)
  }
  await closed
  return received
}

t.test('replicas behind HAProxy on one bucket', async (t) => {
  const prefix = testPrefix()
  t.teardown(async () => { await emptyPrefix(prefix) })
  const proxyPort = await freePort()
  const env = {
    ...s3Env(prefix),
    NODE_ENV: 'production',
    AUTH_TOKENS: `alice:${TOKENS.alice},bob:${TOKENS.bob}`,
    AUTH_JWT_SECRET: JWT_SECRET,
    PRESIGN_SECRET,
    S3_PART_SIZE: String(5 * MiB),
    S3_SWEEP_AFTER_MS: '3000',
    PUBLIC_URL: `http://127.0.0.1:${proxyPort}`,
    TRUST_PROXY: '127.0.0.1'
  }
  const replicas: Started[] = [startServer(env), startServer(env)]
  t.teardown(() => { for (const replica of replicas) replica.child.kill('SIGKILL') })
  const [portA, portB] = await Promise.all(replicas.map(listening)) as [number, number]

  const dir = scratch(t, {})
  const config = join(dir, 'haproxy.cfg')
  writeFileSync(config, [
    'defaults',
    '  mode http',
    '  timeout connect 5s',
    '  timeout client 2m',
    '  timeout server 2m',
    '  timeout http-request 10s',
    'frontend uploads',
    `  bind 127.0.0.1:${proxyPort}`,
    '  option forwardfor',
    '  default_backend replicas',
    'backend replicas',
    '  balance roundrobin',
    '  option httpchk GET /readyz',
    '  http-check expect status 200',
    `  server a 127.0.0.1:${portA} check inter 500ms`,
    `  server b 127.0.0.1:${portB} check inter 500ms`,
    ''
  ].join('\n'))
  const proxy = spawn('haproxy', ['-f', config, '-db'], { stdio: 'ignore' })
  t.teardown(() => { proxy.kill('SIGKILL') })
  for (let i = 0; i < 100; i++) {
    if ((await exchange(proxyPort, { head: requestHead('GET', '/healthz') }).catch(() => null))?.status === 200) break
    await sleep(100)
  }

  await t.test('an upload through the proxy reads back byte for byte from each replica; listings agree', async (t) => {
    const body = Buffer.alloc(7 * MiB + 123)
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) % 251
    const stored = await put(proxyPort, 'shared/one.bin', body)
    t.equal(stored.status, 201)
    t.equal(stored.headers.location, `http://127.0.0.1:${proxyPort}/files/shared/one.bin`, 'Location as clients outside see it')
    for (const port of [portA, portB]) {
      t.ok((await download(port, '/files/shared/one.bin')).equals(body), `identical bytes from the replica on ${port}`)
    }
    for (let i = 0; i < 5; i++) await put(i % 2 === 0 ? portA : portB, `list/${i}.txt`, Buffer.from(String(i)))
    const [listA, listB] = [json(await get(portA, '/files?limit=100')), json(await get(portB, '/files?limit=100'))]
    t.same(listA, listB, 'the same listing from either')
    t.equal((listA as { files: unknown[] }).files.length, 6)
  })

  await t.test('credentials made by one replica work on the other', async (t) => {
    const jwt = createSigner({ key: JWT_SECRET, expiresIn: 60_000 })({ sub: 'carol' })
    for (const port of [portA, portB]) {
      t.equal((await exchange(port, { head: requestHead('GET', '/files', [`Authorization: Bearer ${jwt}`]) })).status, 200, 'the same JWT')
    }
    const body = Buffer.from(JSON.stringify({ name: 'presigned.txt' }))
    const grant = json(await exchange(portA, {
      head: requestHead('POST', '/presign', [bearer('alice'), 'Content-Type: application/json', `Content-Length: ${body.length}`]),
      body,
      send: 'now'
    })) as { url: string, path: string }
    t.match(grant.url, `http://127.0.0.1:${proxyPort}/files/presigned.txt?`)
    const used = await exchange(portB, { head: requestHead('PUT', grant.path, ['Content-Length: 2']), body: Buffer.from('ok'), send: 'now' })
    t.equal(used.status, 201, 'a URL presigned by A is accepted by B')
  })

  await t.test('two replicas racing on one name: exactly one 201, the other 412, the winner\'s bytes stored', async (t) => {
    for (let round = 0; round < 5; round++) {
      const name = `race/${round}.bin`
      const bodies = [Buffer.alloc(300_000, 1 + round), Buffer.alloc(300_001, 100 + round)]
      const answers = await Promise.all([put(portA, name, bodies[0] as Buffer, ['If-None-Match: *']), put(portB, name, bodies[1] as Buffer, ['If-None-Match: *'])])
      const statuses = answers.map((answer) => answer.status).sort()
      t.same(statuses, [201, 412], `round ${round}: one 201, one 412`)
      const winner = answers.findIndex((answer) => answer.status === 201)
      const stored = await get(winner === 0 ? portB : portA, `/files/${name}`)
      t.equal(stored.headers.etag, `"${sha256(bodies[winner] as Buffer)}"`, 'the winner\'s bytes')
    }
    const base = await put(portA, 'race/replace.bin', Buffer.from('base'))
    const replacements = await Promise.all([portA, portB, portA, portB].map(async (port, i) => await put(port, 'race/replace.bin', Buffer.from(`next-${i}`), [`If-Match: ${base.headers.etag as string}`])))
    t.same(replacements.map((answer) => answer.status).sort(), [201, 412, 412, 412], 'If-Match replacements: one wins')
  })

  await t.test('a refusal through the proxy costs no body byte', async (t) => {
    const refused = await exchange(proxyPort, { head: requestHead('PUT', '/files/x.bin', ['Content-Length: 5000000', 'Expect: 100-continue']), body: Buffer.alloc(5_000_000) })
    t.equal(refused.status, 401)
    t.same(refused.informational, [])
    t.equal(refused.bodyBytesWritten, 0)
    const tooLarge = await exchange(proxyPort, { head: requestHead('PUT', '/files/x.bin', [bearer('alice'), `Content-Length: ${2 ** 40}`, 'Expect: 100-continue']) })
    t.equal(tooLarge.status, 413)
    t.equal(tooLarge.bodyBytesWritten, 0)
  })

  await t.test('kill -9 of a replica mid-upload: nothing acknowledged lost, nothing partial visible, leftovers swept', async (t) => {
    const acknowledged = Buffer.alloc(6 * MiB, 9)
    t.equal((await put(portA, 'crash/acknowledged.bin', acknowledged)).status, 201)
    // Two uploads of 12 MiB at 2 MiB/s to A: multipart uploads under way when it dies.
    const inFlight = [slowPut(portA, 'crash/partial-1.bin', Buffer.alloc(12 * MiB, 1), 2 * MiB), slowPut(portA, 'crash/partial-2.bin', Buffer.alloc(12 * MiB, 2), 2 * MiB)]
    await sleep(3500)
    replicas[0]?.child.kill('SIGKILL')
    const ends = await Promise.all(inFlight)
    for (const end of ends) t.notMatch(end, /^HTTP\/1\.1 201/, 'no upload under way was acknowledged')
    t.ok((await keysUnder(prefix)).some((key) => key.startsWith('multipart:')), 'the dead replica left unfinished multipart uploads')

    for (const name of ['partial-1.bin', 'partial-2.bin']) t.equal((await get(portB, `/files/crash/${name}`)).status, 404, `${name} is not visible`)
    const survived = await exchange(portB, { head: requestHead('GET', '/files/crash/acknowledged.bin', [bearer('alice')]) })
    t.equal(survived.headers.etag, `"${sha256(acknowledged)}"`, 'the acknowledged upload is whole')
    t.notOk(((json(await get(portB, '/files?limit=1000')) as { files: Array<{ name: string }> }).files).some((file) => file.name.startsWith('crash/partial')), 'nor listed')

    // B sweeps what is older than 3 s, every 3 s.
    let left: string[] = []
    for (let i = 0; i < 40; i++) {
      left = (await keysUnder(prefix)).filter((key) => key.startsWith('multipart:'))
      if (left.length === 0) break
      await sleep(500)
    }
    t.same(left, [], 'swept by the surviving replica')
    t.equal((await get(proxyPort, '/files/crash/acknowledged.bin')).status, 200, 'the proxy routes around the dead replica')
  })
})
