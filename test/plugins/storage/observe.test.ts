// A backend as the metrics see it (plugins/storage/observe.ts): what the
// observer hears of, and what passes through untouched.
import t from 'tap'
import { observed } from '../../../plugins/storage/observe.js'
import type { StorageObserver } from '../../../plugins/storage/observe.js'
import { openStorage } from '../../helpers/storage.js'

t.test('close closes the backend, and is no operation the observer hears of', async (t) => {
  const { storage } = await openStorage(t)
  const heard: string[] = []
  const observer: StorageObserver = {
    uploadBegun: () => { heard.push('begun') },
    uploadSettled: () => { heard.push('settled') },
    committed: () => { heard.push('committed') },
    failed: (operation) => { heard.push(`failed ${operation}`) }
  }
  await observed(storage, observer).close()
  await t.rejects(storage.begin('alice', 'a.txt', { contentType: 'text/plain' }), { message: 'This DiskStorage is closed' })
  t.same(heard, [])
})
