// What the service does when storage fails or changes under a request.
import { rmSync } from 'node:fs'
import { Readable } from 'node:stream'
import t from 'tap'
import { buildApp } from '../../app.js'
import { loadConfig } from '../../config.js'
import { DiskStorage } from '../../plugins/storage/disk/index.js'
import type { ByteRange, FileContent, Storage } from '../../plugins/storage/types.js'
import { exchange, json } from '../helpers/wire.js'
import { bearer, PRESIGN_SECRET, scratch, startService, TOKENS } from '../helpers/service.js'

function request (method: string, path: string, lines: string[]): string {
  return [`${method} ${path} HTTP/1.1`, 'Host: x', ...lines].join('\r\n')
}

t.test('an unexpected storage failure is a 500 without internals, logged in full', async (t) => {
  const { port, dataDir } = await startService(t)
  rmSync(dataDir, { recursive: true, force: true })
  const result = await exchange(port, {
    head: request('PUT', '/files/x.bin', ['Content-Length: 10', 'Expect: 100-continue', bearer('alice')]),
    body: Buffer.alloc(10)
  })
  t.equal(result.status, 500)
  t.same(json(result), {
    statusCode: 500,
    code: 'UPFRONT_INTERNAL_ERROR',
    error: 'Internal Server Error',
    message: 'The server failed to handle the request; try again later'
  })
  t.notMatch(result.body, new RegExp(dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'no path leaks')
})

/** A disk backend whose file is replaced (for real) between the metadata read and the open, `times` times. */
function changing (disk: DiskStorage): Storage & { times: number, deletes: boolean } {
  let changes = 0
  const storage: Storage & { times: number, deletes: boolean } = {
    times: 0,
    deletes: false,
    begin: disk.begin.bind(disk),
    head: disk.head.bind(disk),
    get: disk.get.bind(disk),
    delete: disk.delete.bind(disk),
    list: disk.list.bind(disk),
    freeBytes: disk.freeBytes.bind(disk),
    close: disk.close.bind(disk)
  }
  storage.get = async (owner: string, name: string, range?: ByteRange): Promise<FileContent | null> => {
    if (storage.deletes) {
      await disk.delete(owner, name)
    } else if (changes < storage.times) {
      changes++
      const upload = await disk.begin(owner, name, { contentType: 'text/plain' })
      await upload.write(Readable.from([Buffer.from(`version ${changes + 1}`)]))
      await upload.commit()
    }
    return await disk.get(owner, name, range)
  }
  return storage
}

t.test('a file replaced while it is being read is read again, headers and bytes from one version', async (t) => {
  const dataDir = scratch(t, {})
  const storage = changing(await DiskStorage.open(dataDir))
  storage.times = 1
  const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, AUTH_TOKENS: `alice:${TOKENS.alice}`, PRESIGN_SECRET, LOG_LEVEL: 'silent' })
  const app = await buildApp({ config, storage, logger: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const port = (app.server.address() as { port: number }).port
  await exchange(port, { head: request('PUT', '/files/v.txt', ['Content-Length: 9', bearer('alice')]), body: Buffer.from('version 1'), send: 'now' })

  const once = await exchange(port, { head: request('GET', '/files/v.txt', [bearer('alice')]) })
  t.equal(once.status, 200)
  t.equal(once.body, 'version 2')
  t.equal(once.headers['content-length'], '9')

  storage.times = 6
  const busy = await exchange(port, { head: request('GET', '/files/v.txt', [bearer('alice')]) })
  t.equal(busy.status, 503)
  t.match(json(busy), { code: 'UPFRONT_FILE_BUSY' })

  storage.deletes = true
  const gone = await exchange(port, { head: request('GET', '/files/v.txt', [bearer('alice')]) })
  t.equal(gone.status, 404, 'deleted while being read: not found')
})
