// The plugin that decorates `storage` (plugins/storage/index.ts): the
// backend as it is, or reporting to an observer; closed with the app.
import Fastify from 'fastify'
import t from 'tap'
import storagePlugin from '../../../plugins/storage/index.js'
import type { StorageObserver } from '../../../plugins/storage/index.js'
import { openStorage, streamOf } from '../../helpers/storage.js'

t.test('without an observer, fastify.storage is the backend itself; the app closes it', async (t) => {
  const { storage } = await openStorage(t)
  const app = Fastify()
  await app.register(storagePlugin, { storage })
  await app.ready()
  t.equal(app.storage, storage)
  await app.close()
  await t.rejects(storage.begin('alice', 'a.txt', { contentType: 'text/plain' }), { message: 'This DiskStorage is closed' })
})

t.test('with an observer, fastify.storage reports to it; the app closes the backend', async (t) => {
  const { storage } = await openStorage(t)
  const events: string[] = []
  const observer: StorageObserver = {
    uploadBegun: () => { events.push('begun') },
    uploadSettled: () => { events.push('settled') },
    committed: (bytes) => { events.push(`committed ${bytes}`) },
    failed: (operation) => { events.push(`failed ${operation}`) }
  }
  const app = Fastify()
  await app.register(storagePlugin, { storage, observer })
  await app.ready()
  t.not(app.storage, storage, 'the backend, observed')
  const upload = await app.storage.begin('alice', 'a.txt', { contentType: 'text/plain' })
  await upload.write(streamOf(Buffer.from('hello')))
  await upload.commit()
  t.same(events, ['begun', 'committed 5', 'settled'])
  await app.close()
  await t.rejects(storage.begin('alice', 'b.txt', { contentType: 'text/plain' }), { message: 'This DiskStorage is closed' })
})
