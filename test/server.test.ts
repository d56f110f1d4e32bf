// server.ts as a user runs it: configuration from the environment, the
// one-time development token, a clean shutdown.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { exchange, json } from './helpers/wire.js'
import { scratch } from './helpers/service.js'

const server = fileURLToPath(new URL('../server.ts', import.meta.url))

interface Started {
  child: ChildProcess
  lines: Array<Record<string, unknown>>
  stderr: () => string
  exited: Promise<number | null>
}

function start (env: Record<string, string>): Started {
  const child = spawn(process.execPath, [...process.execArgv, server], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: Array<Record<string, unknown>> = []
  let partial = ''
  let errors = ''
  child.stdout?.on('data', (data: Buffer) => {
    partial += data.toString()
    const complete = partial.split('\n')
    partial = complete.pop() ?? ''
    for (const line of complete) if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>)
  })
  child.stderr?.on('data', (data: Buffer) => { errors += data.toString() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { resolve(code) }))
  return { child, lines, stderr: () => errors, exited }
}

async function listening (started: Started): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const line = started.lines.find((entry) => typeof entry.msg === 'string' && entry.msg.startsWith('Server listening at'))
    if (line !== undefined) return Number(/:(\d+)$/.exec(line.msg as string)?.[1])
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`the server did not start: ${started.stderr()}`)
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
    head: ['PUT /files/first.txt HTTP/1.1', 'Host: x', `Authorization: Bearer ${token}`, 'Content-Length: 5', 'Expect: 100-continue'].join('\r\n'),
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
