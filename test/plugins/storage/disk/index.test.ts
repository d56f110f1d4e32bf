// The disk backend (plugins/storage/disk/index.ts): files placed durably
// under hashed names, read, ranged, listed and deleted per owner, commits
// checked against their preconditions atomically, a crash's leftovers
// cleared at open, a full disk reported as 507. (One upload's own life:
// upload.test.ts.)
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, readdir, rm, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { DiskStorage } from '../../../../plugins/storage/disk/index.js'
import type { Upload } from '../../../../plugins/storage/types.js'
import { assertClean, bytes, collect, filesUnder, KiB, openStorage, sha256, smallBatches, store, streamOf } from '../../../helpers/storage.js'

const run = promisify(execFile)

t.test('round trip: size, digests, etag and content', async (t) => {
  const { storage, dir } = await openStorage(t)
  const body = bytes(300 * KiB + 7)
  const upload = await storage.begin('alice', 'photos/cat.jpg', { contentType: 'image/jpeg', md5: true })
  const written = await upload.write(streamOf(body))
  t.equal(written.size, body.length)
  t.equal(written.sha256.toString('hex'), sha256(body))
  t.equal(written.md5?.toString('hex'), createHash('md5').update(body).digest('hex'))

  const before = Date.now()
  const meta = await upload.commit()
  t.match(meta, {
    name: 'photos/cat.jpg',
    owner: 'alice',
    size: body.length,
    sha256: sha256(body),
    contentType: 'image/jpeg',
    etag: `"${sha256(body)}"`
  })
  t.ok(Date.parse(meta.createdAt) >= before - 1000 && meta.createdAt === new Date(meta.createdAt).toISOString(), 'createdAt is an ISO time')
  t.same(await storage.head('alice', 'photos/cat.jpg'), meta)

  const file = await storage.get('alice', 'photos/cat.jpg')
  t.same(file?.file, meta)
  t.ok(file !== null && (await collect(file.stream)).equals(body), 'the content is what was sent')
  await assertClean(t, dir, 1)
})

t.test('an empty file', async (t) => {
  const { storage, dir } = await openStorage(t)
  await store(storage, 'alice', 'empty', Buffer.alloc(0))
  t.match(await storage.head('alice', 'empty'), { size: 0, sha256: sha256(Buffer.alloc(0)) })
  const file = await storage.get('alice', 'empty')
  t.equal(file === null ? -1 : (await collect(file.stream)).length, 0)
  await assertClean(t, dir, 1)
})

t.test('overwrite replaces the content and drops the old data file', async (t) => {
  const { storage, dir } = await openStorage(t)
  await store(storage, 'alice', 'notes.txt', Buffer.from('first version'))
  const first = await storage.head('alice', 'notes.txt')
  await store(storage, 'alice', 'notes.txt', Buffer.from('second, longer version'))
  const second = await storage.head('alice', 'notes.txt')
  t.not(second?.etag, first?.etag)
  const file = await storage.get('alice', 'notes.txt')
  t.equal(file === null ? null : (await collect(file.stream)).toString(), 'second, longer version')
  await assertClean(t, dir, 1)
})

t.test('If-None-Match: * refuses an existing name and leaves nothing behind', async (t) => {
  const { storage, dir } = await openStorage(t)
  await store(storage, 'alice', 'report.pdf', Buffer.from('original'), { ifNoneMatch: ['*'] })
  const original = await storage.head('alice', 'report.pdf')

  const upload = await storage.begin('alice', 'report.pdf', { contentType: 'application/pdf' })
  await upload.write(streamOf(Buffer.from('intruder')))
  await t.rejects(upload.commit({ ifNoneMatch: ['*'] }), { code: 'UPFRONT_PRECONDITION_FAILED', statusCode: 412, message: /exists/ })
  t.same(await storage.head('alice', 'report.pdf'), original, 'the stored file is untouched')
  await upload.abort()
  await t.rejects(upload.commit(), /commit\(\) is called once/, 'the refused upload cannot be committed again')
  await assertClean(t, dir, 1)
})

t.test('If-Match', async (t) => {
  const { storage, dir } = await openStorage(t)
  const upload = async (content: string): Promise<Upload> => {
    const pending = await storage.begin('alice', 'doc', { contentType: 'text/plain' })
    await pending.write(streamOf(Buffer.from(content)))
    return pending
  }

  await t.rejects((await upload('x')).commit({ ifMatch: ['*'] }), { statusCode: 412, message: /no file with this name/ }, 'If-Match: * needs an existing file')
  await store(storage, 'alice', 'doc', Buffer.from('v1'))
  const v1 = await storage.head('alice', 'doc')

  await t.rejects((await upload('v2')).commit({ ifMatch: ['"0000"'] }), { statusCode: 412, message: /changed/ }, 'a stale etag is refused')
  t.same(await storage.head('alice', 'doc'), v1)

  const v2 = await (await upload('v2')).commit({ ifMatch: ['"0000"', v1?.etag ?? ''] })
  t.equal(v2.etag, `"${sha256(Buffer.from('v2'))}"`, 'one matching etag is enough')
  const v3 = await (await upload('v3')).commit({ ifMatch: ['*'] })
  t.equal(v3.size, 2, 'If-Match: * takes any existing file')
  await assertClean(t, dir, 1)
})

t.test('open removes what a crash left behind', async (t) => {
  const dir = t.testdir()
  const first = await DiskStorage.open(dir, smallBatches)
  await store(first, 'alice', 'kept', Buffer.from('kept'))
  await store(first, 'alice', 'replaced', Buffer.from('old'))
  await store(first, 'alice', 'replaced', Buffer.from('new'))
  // A crash in the middle of an upload, and one between placing a data file and swapping its record.
  const pending = await first.begin('alice', 'interrupted', { contentType: 'text/plain' })
  await pending.write(streamOf(Buffer.from('half')))
  await writeFile(join(dir, 'tmp', 'record-being-written.json'), '{"da')
  const [ownerDirectory] = await readdir(join(dir, 'files'))
  const owned = join(dir, 'files', ownerDirectory ?? '')
  const [dataFile] = (await readdir(owned)).filter((entry) => entry.endsWith('.data'))
  await writeFile(join(owned, (dataFile ?? '').replace(/\.[0-9a-f]+\.data$/, '.0123456789abcdef.data')), 'orphan')
  const before = await filesUnder(dir)
  t.equal(before.filter((file) => file.startsWith('tmp')).length, 2, 'the crash left two temporary files')

  const reopened = await DiskStorage.open(dir, smallBatches)
  t.teardown(async () => { await reopened.close() })
  await assertClean(t, dir, 2)
  const replaced = await reopened.get('alice', 'replaced')
  t.equal(replaced === null ? null : (await collect(replaced.stream)).toString(), 'new')
  const kept = await reopened.get('alice', 'kept')
  t.equal(kept === null ? null : (await collect(kept.stream)).toString(), 'kept')
  await pending.abort()
  await first.close()
})

t.test('ranges are inclusive', async (t) => {
  const { storage } = await openStorage(t)
  const body = bytes(100 * KiB)
  await store(storage, 'alice', 'ranged', body)
  for (const [start, end] of [[0, 0], [0, 99], [1000, 1999], [body.length - 1, body.length - 1], [0, body.length - 1]] as const) {
    const file = await storage.get('alice', 'ranged', { start, end })
    t.ok(file !== null && (await collect(file.stream)).equals(body.subarray(start, end + 1)), `bytes ${start}-${end}`)
    t.equal(file?.file.size, body.length, 'the metadata is the whole file\'s')
  }
})

t.test('list pages through an owner\'s files in name order', async (t) => {
  const { storage } = await openStorage(t)
  const names = ['b', 'a/2', 'a/10', 'é', 'z', 'a', 'B', 'a/1']
  for (const name of names) await store(storage, 'alice', name, Buffer.from(name))
  await store(storage, 'bob', 'a/0', Buffer.from('not alice\'s'))

  const seen: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const page = await storage.list('alice', { limit: 3, cursor })
    t.ok(page.files.length <= 3)
    seen.push(...page.files.map((file) => file.name))
    cursor = page.nextCursor ?? undefined
    pages++
  } while (cursor !== undefined)
  t.same(seen, [...names].sort())
  t.equal(pages, 3)

  const whole = await storage.list('alice', { limit: names.length })
  t.equal(whole.nextCursor, null, 'no cursor when the page holds the rest')
  t.match(whole.files[0], { name: 'B', owner: 'alice', size: 1 })
  t.same(await storage.list('nobody', { limit: 10 }), { files: [], nextCursor: null })
})

t.test('a listing follows commits and deletes, and skips records gone from under it', async (t) => {
  const { storage, dir } = await openStorage(t)
  const names = Array.from({ length: 70 }, (_, i) => `f-${String(i).padStart(3, '0')}`)
  for (const name of names) await store(storage, 'alice', name, Buffer.from(name))
  const first = await storage.list('alice', { limit: 40 })
  t.same(first.files.map((file) => file.name), names.slice(0, 40), 'a page of more records than are read at once')

  await store(storage, 'alice', 'f-045a', Buffer.from('new'))
  await store(storage, 'alice', 'f-050', Buffer.from('replaced'))
  t.equal(await storage.delete('alice', 'f-041'), true)
  // Removed behind the storage's back (as by hand): its name is still indexed.
  const owner = (await readdir(join(dir, 'files')))[0] ?? ''
  await unlink(join(dir, 'files', owner, `${createHash('sha256').update('f-042').digest('hex')}.json`))
  const rest = await storage.list('alice', { limit: 100, cursor: first.nextCursor ?? undefined })
  const expected = [...names.slice(40, 46), 'f-045a', ...names.slice(46)].filter((name) => name !== 'f-041' && name !== 'f-042')
  t.same(rest.files.map((file) => file.name), expected)
  t.match(rest.files.find((file) => file.name === 'f-050'), { size: 'replaced'.length })
  t.equal(rest.nextCursor, null)

  const short = await storage.list('alice', { limit: 2, cursor: Buffer.from('f-039').toString('base64url') })
  t.same(short.files.map((file) => file.name), ['f-040', 'f-043'], 'a page is filled past missing records')
})

t.test('an owner sees only its own files', async (t) => {
  const { storage } = await openStorage(t)
  await store(storage, 'alice', 'secret', Buffer.from('alice\'s'))
  t.equal(await storage.head('bob', 'secret'), null)
  t.equal(await storage.get('bob', 'secret'), null)
  t.equal(await storage.delete('bob', 'secret'), false)
  t.same(await storage.list('bob', { limit: 10 }), { files: [], nextCursor: null })

  await store(storage, 'bob', 'secret', Buffer.from('bob\'s own'))
  const alice = await storage.get('alice', 'secret')
  const bob = await storage.get('bob', 'secret')
  t.equal(alice === null ? null : (await collect(alice.stream)).toString(), 'alice\'s')
  t.equal(bob === null ? null : (await collect(bob.stream)).toString(), 'bob\'s own')
})

t.test('delete', async (t) => {
  const { storage, dir } = await openStorage(t)
  await store(storage, 'alice', 'gone', Buffer.from('soon gone'))
  await store(storage, 'alice', 'stays', Buffer.from('stays'))
  t.equal(await storage.delete('alice', 'gone'), true)
  t.equal(await storage.delete('alice', 'gone'), false)
  t.equal(await storage.head('alice', 'gone'), null)
  t.equal(await storage.get('alice', 'gone'), null)
  t.same((await storage.list('alice', { limit: 10 })).files.map((file) => file.name), ['stays'])
  await assertClean(t, dir, 1)
})

t.test('concurrent commits to one name end with one consistent file', async (t) => {
  const { storage, dir } = await openStorage(t)
  const bodies = Array.from({ length: 8 }, (_, i) => bytes(50 * KiB + i, i + 1))
  const uploads = await Promise.all(bodies.map(async (body) => {
    const upload = await storage.begin('alice', 'contended', { contentType: 'application/octet-stream' })
    await upload.write(streamOf(body))
    return upload
  }))
  // Readers during the swaps must always see a record and the data it names.
  let reading = true
  const reads = (async () => {
    let count = 0
    // eslint-disable-next-line no-unmodified-loop-condition -- `reading` is cleared once the writers are done
    while (reading) {
      const file = await storage.get('alice', 'contended')
      if (file !== null) {
        t.equal(sha256(await collect(file.stream)), file.file.sha256)
        count++
      }
    }
    return count
  })()
  await Promise.all(uploads.map(async (upload) => await upload.commit()))
  reading = false
  t.ok(await reads > 0)

  const meta = await storage.head('alice', 'contended')
  t.ok(bodies.some((body) => sha256(body) === meta?.sha256), 'the file is one of the uploads')
  const file = await storage.get('alice', 'contended')
  t.equal(file === null ? null : sha256(await collect(file.stream)), meta?.sha256)
  await assertClean(t, dir, 1)
})

t.test('concurrent creates with If-None-Match: exactly one wins', async (t) => {
  const { storage, dir } = await openStorage(t)
  const results = await Promise.allSettled(Array.from({ length: 6 }, async (_, i) => {
    await store(storage, 'alice', 'first-come', Buffer.from(`writer ${i}`), { ifNoneMatch: ['*'] })
  }))
  t.equal(results.filter((result) => result.status === 'fulfilled').length, 1)
  t.equal(results.filter((result) => result.status === 'rejected' && (result.reason as { statusCode?: number }).statusCode === 412).length, 5)
  await assertClean(t, dir, 1)
})

t.test('a name is never a path', async (t) => {
  const parent = t.testdir()
  const dir = join(parent, 'storage')
  const { storage } = await openStorage(t, dir)
  const names = [
    '../../escape.txt',
    '..',
    '.',
    '/etc/passwd',
    'a/../../b',
    'dir/sub/file.txt',
    'back\\slash\\..\\..\\x',
    '日本語/ファイル.txt',
    'e\u0301motion 🎉.png',
    'nul\u0000byte',
    'x'.repeat(1000)
  ]
  for (const [i, name] of names.entries()) await store(storage, 'eve/../../mallory', name, Buffer.from(`content ${i}`))
  for (const [i, name] of names.entries()) {
    const file = await storage.get('eve/../../mallory', name)
    t.equal(file === null ? null : (await collect(file.stream)).toString(), `content ${i}`, JSON.stringify(name.slice(0, 40)))
  }
  t.same((await storage.list('eve/../../mallory', { limit: 100 })).files.map((file) => file.name), [...names].sort())

  t.same(await readdir(parent), ['storage'], 'nothing was written beside the storage directory')
  for (const file of await filesUnder(dir)) {
    t.match(file, /^files\/[0-9a-f]{64}\/[0-9a-f]{64}(\.json|\.[0-9a-f]{32}\.data)$/)
  }
})

t.test('a damaged record is an error, not a missing file', async (t) => {
  const { storage, dir } = await openStorage(t)
  await store(storage, 'alice', 'damaged', Buffer.from('x'))
  const [owner] = await readdir(join(dir, 'files'))
  const ownerDirectory = join(dir, 'files', owner ?? '')
  const [record] = (await readdir(ownerDirectory)).filter((entry) => entry.endsWith('.json'))
  await writeFile(join(ownerDirectory, record ?? ''), '{"data":')
  await t.rejects(storage.head('alice', 'damaged'), SyntaxError)

  const upload = await storage.begin('alice', 'damaged', { contentType: 'text/plain' })
  await upload.write(streamOf(Buffer.from('y')))
  await t.rejects(upload.commit({ ifNoneMatch: ['*'] }), SyntaxError, 'no overwrite on a record that cannot be read')
})

t.test('a data file missing under its record is an error after one retry', async (t) => {
  const { storage, dir } = await openStorage(t)
  await store(storage, 'alice', 'lost', Buffer.from('x'))
  const [owner] = await readdir(join(dir, 'files'))
  const ownerDirectory = join(dir, 'files', owner ?? '')
  const [data] = (await readdir(ownerDirectory)).filter((entry) => entry.endsWith('.data'))
  await unlink(join(ownerDirectory, data ?? ''))
  await t.rejects(storage.get('alice', 'lost'), /The data file of "lost" is missing/)
})

t.test('a directory that is not one is reported', async (t) => {
  const { storage, dir } = await openStorage(t)
  await store(storage, 'alice', 'x', Buffer.from('x'))
  const [owner] = await readdir(join(dir, 'files'))
  await rm(join(dir, 'files', owner ?? ''), { recursive: true })
  await writeFile(join(dir, 'files', owner ?? ''), 'not a directory')
  await t.rejects(storage.list('alice', { limit: 1 }), { code: 'ENOTDIR' })
})

t.test('close aborts pending uploads and refuses new ones', async (t) => {
  const dir = t.testdir()
  const storage = await DiskStorage.open(dir, smallBatches)
  const written = await storage.begin('alice', 'a', { contentType: 'text/plain' })
  await written.write(streamOf(Buffer.from('pending')))
  const committed = await storage.begin('alice', 'b', { contentType: 'text/plain' })
  await committed.write(streamOf(Buffer.from('committing')))
  const committing = committed.commit()
  await storage.close()
  t.match(await committing, { size: 10 }, 'a commit in progress completes')
  await t.rejects(written.commit(), /this upload is aborted/)
  await t.rejects(storage.begin('alice', 'c', { contentType: 'text/plain' }), /closed/)
  await assertClean(t, dir, 1)
})

t.test('default options', async (t) => {
  const storage = await DiskStorage.open(t.testdir())
  t.teardown(async () => { await storage.close() })
  const body = bytes(3 * 1024 * KiB)
  await store(storage, 'alice', 'default', body)
  const file = await storage.get('alice', 'default')
  t.ok(file !== null && (await collect(file.stream)).equals(body))
  const free = await storage.freeBytes()
  t.ok(Number.isSafeInteger(free) && free > 0, 'freeBytes reports the space left')
})

t.test('sizes in options are positive integers', async (t) => {
  const dir = t.testdir()
  await t.rejects(DiskStorage.open(dir, { writeBatchBytes: 0 }), new RangeError('DiskStorage option writeBatchBytes must be a positive integer, not 0'))
  await t.rejects(DiskStorage.open(dir, { syncEveryBytes: Number.NaN }), new RangeError('DiskStorage option syncEveryBytes must be a positive integer, not NaN'))
})

t.test('a full disk: 507 and nothing left behind', async (t) => {
  const mountpoint = join(t.testdir(), 'tmpfs')
  await mkdir(mountpoint)
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountpoint])
  } catch (error) {
    t.fail(`a 2 MiB tmpfs could not be mounted (this test needs root): ${(error as Error).message}`)
    return
  }
  // Unmounted before the test ends, so that its test directory can go.
  try {
    const storage = await DiskStorage.open(mountpoint, smallBatches)
    const capacity = await storage.freeBytes()
    t.equal(capacity, 2 * 1024 * KiB)

    await t.test('while the body is written', async (t) => {
      const upload = await storage.begin('alice', 'too-big', { contentType: 'application/octet-stream' })
      // Chunks that do not divide a page: the disk fills up in the middle of one.
      await t.rejects(upload.write(streamOf(bytes(3 * 1024 * KiB), 10_000)), {
        code: 'UPFRONT_INSUFFICIENT_STORAGE',
        statusCode: 507,
        cause: { code: 'ENOSPC' }
      })
      await assertClean(t, mountpoint, 0)
      t.equal(await storage.freeBytes(), capacity, 'all the space is back')
    })

    await t.test('while the record is written', async (t) => {
      // The data takes every page left: the record finds none.
      const upload = await storage.begin('alice', 'exactly-full', { contentType: 'application/octet-stream' })
      await upload.write(streamOf(bytes(capacity)))
      await t.rejects(upload.commit(), { code: 'UPFRONT_INSUFFICIENT_STORAGE', statusCode: 507 })
      t.equal(await storage.head('alice', 'exactly-full'), null)
      await assertClean(t, mountpoint, 0)
      t.equal(await storage.freeBytes(), capacity, 'all the space is back')
    })

    await t.test('a file that fits is stored afterwards', async (t) => {
      await store(storage, 'alice', 'fits', bytes(capacity / 2))
      t.match(await storage.head('alice', 'fits'), { size: capacity / 2 })
    })
    await storage.close()
  } finally {
    await run('umount', [mountpoint])
  }
})
