// server.ts as a user runs it: configuration from the environment, the
// one-time development token, a clean shutdown.
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { requestHead } from './helpers/http.js'
import { listenServer } from './helpers/net.js'
import { listening, startServer as start } from './helpers/process.js'
import { scratch } from './helpers/service.js'
import { exchange, json } from './helpers/wire.js'

// Processes that start and stop: longer than tap's 30 s per file.
t.setTimeout(120_000)

/** Sends `head`, then `total` body bytes in `pieces` pieces 100 ms apart; resolves with what came back. */
async function slowUpload (port: number, head: string, total: number, pieces: number): Promise<string> {
  const socket = connect({ port, host: '127.0.0.1' })
  let received = ''
  socket.on('data', (data: Buffer) => { received += data.toString('latin1') })
  socket.on('error', (error) => { received += `[${String(error)}]` })
  const closed = new Promise((resolve) => socket.once('close', resolve))
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write(`${head}\r\n\r\n`)
  for (let i = 0; i < pieces && !socket.destroyed; i++) {
    socket.write(Buffer.alloc(total / pieces, 7))
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await closed
  return received
}

t.test('with no auth configured, a development token is printed once and works', async (t) => {
  const dataDir = scratch(t, {})
  const started = start({ NODE_ENV: 'development', DATA_DIR: dataDir })
  t.teardown(() => { started.child.kill('SIGKILL') })
  const port = await listening(started)
  const tokenLine = started.lines.find((line) => String(line.msg).startsWith('No authentication is configured'))
  t.match(tokenLine, { level: 40, msg: /principal "dev" has the token/ })
  const token = /Bearer ([^"]+)"/.exec(String(tokenLine?.msg))?.[1] as string
  t.equal(started.lines.filter((line) => JSON.stringify(line).includes(token)).length, 1, 'printed once')

  const created = await exchange(port, {
    head: requestHead('PUT', '/files/first.txt', [`Authorization: Bearer ${token}`, 'Content-Length: 5', 'Expect: 100-continue']),
    body: Buffer.from('hello')
  })
  t.equal(created.status, 201)
  t.match(json(created), { name: 'first.txt', size: 5 })

  started.child.kill('SIGTERM')
  t.equal(await started.exited, 0, 'a clean shutdown on SIGTERM')
})

t.test('in production, missing auth settings stop the start with a clear message', async (t) => {
  const started = start({ NODE_ENV: 'production', DATA_DIR: scratch(t, {}), AUTH_TOKENS: '', AUTH_JWT_SECRET: '', AUTH_JWT_PUBLIC_KEY: '', PRESIGN_SECRET: '' })
  t.equal(await started.exited, 1)
  t.match(started.stderr(), /Invalid configuration:/)
  t.match(started.stderr(), /AUTH_TOKENS/)
})

t.test('a bad value is named', async (t) => {
  const started = start({ NODE_ENV: 'development', DATA_DIR: scratch(t, {}), MAX_UPLOAD_BYTES: '1GB' })
  t.equal(await started.exited, 1)
  t.match(started.stderr(), /MAX_UPLOAD_BYTES/)
})

t.test('a setting the start cannot use is named, with what to do', async (t) => {
  const dir = scratch(t, { 'a-file': 'not a directory' })
  const notDir = start({ NODE_ENV: 'development', DATA_DIR: join(dir, 'a-file') })
  t.equal(await notDir.exited, 1)
  t.match(notDir.stderr(), /^DATA_DIR: cannot use ".*a-file" as the storage directory \(ENOTDIR\); point it at a directory this user can create and write\n$/)

  const port = String(await listenServer(t, createServer()))
  const inUse = start({ NODE_ENV: 'development', DATA_DIR: dir, PORT: port })
  t.equal(await inUse.exited, 1)
  t.match(inUse.stderr(), `PORT: 127.0.0.1:${port} is already in use; stop what listens there or choose another PORT`)

  const badHost = start({ NODE_ENV: 'development', DATA_DIR: dir, HOST: '192.0.2.1' })
  t.equal(await badHost.exited, 1)
  t.match(badHost.stderr(), /^HOST, PORT: cannot listen on 192\.0\.2\.1:0 \(EADDRNOTAVAIL\); set HOST to 127\.0\.0\.1, 0\.0\.0\.0 or an address of this machine/)
})

t.test('with a log level that hides warnings, the development token still reaches the operator', async (t) => {
  const started = start({ NODE_ENV: 'development', DATA_DIR: scratch(t, {}), LOG_LEVEL: 'silent' })
  t.teardown(() => { started.child.kill('SIGKILL') })
  // Both warnings, which may arrive in separate reads.
  for (let i = 0; i < 100 && !started.stderr().includes('PRESIGN_SECRET is not set'); i++) await new Promise((resolve) => setTimeout(resolve, 100))
  t.match(started.stderr(), /No authentication is configured .*principal "dev" has the token \S+ \(send "Authorization: Bearer /)
  t.match(started.stderr(), /PRESIGN_SECRET is not set/)
  t.equal(started.lines.length, 0, 'nothing logged')
  started.child.kill('SIGTERM')
  t.equal(await started.exited, 0)
})

t.test('SIGTERM: not ready at once, the upload in flight finishes, the process says what it did and exits 0', async (t) => {
  const dataDir = scratch(t, {})
  const token = 'alice-token-0123456789'
  const started = start({ NODE_ENV: 'development', DATA_DIR: dataDir, AUTH_TOKENS: `alice:${token}`, SHUTDOWN_GRACE_MS: '5000' })
  t.teardown(() => { started.child.kill('SIGKILL') })
  const port = await listening(started)
  // An upload whose body comes in over about two seconds, started before the signal.
  const upload = slowUpload(port, requestHead('PUT', '/files/in-flight.bin', [`Authorization: Bearer ${token}`, 'Content-Length: 400000']), 400_000, 20)
  const ready = exchange(port, { head: requestHead('GET', '/readyz', ['Connection: keep-alive']) })
  t.equal((await ready).status, 200)
  await new Promise((resolve) => setTimeout(resolve, 50))
  started.child.kill('SIGTERM')
  t.match(await upload, /^HTTP\/1\.1 201 Created\r\n/, 'the upload in flight got its 201')
  t.equal(await started.exited, 0)
  const messages = started.lines.map((line) => String(line.msg))
  t.ok(messages.some((message) => message === 'shutting down: not ready; taking no new connections in 0 ms'))
  t.match(started.lines.find((line) => line.shutdown !== undefined), { shutdown: { inFlight: 1, finished: 1, cut: 0 } })
})
