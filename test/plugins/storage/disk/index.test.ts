// The disk backend (plugins/storage/disk/index.ts): the storage contract
// (conformance.ts), and what is the disk's own: names never paths, versions
// linked as the commit point, a crash's leftovers swept by age (not what a
// live process is writing), the layout before versions migrated, a full
// disk reported as 507. (One upload's own life: upload.test.ts.)
import { execFile } from 'node:child_process'
import { mkdir, readdir, readFile, rm, unlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { DiskStorage } from '../../../../plugins/storage/disk/index.js'
import { assertClean, bytes, collect, diskLeftovers, filesUnder, KiB, openStorage, smallBatches, store, streamOf } from '../../../helpers/storage.js'
import { conformance } from '../conformance.js'

const run = promisify(execFile)

conformance('disk', async (t) => {
  const dir = t.testdir()
  const { storage } = await openStorage(t, dir)
  return {
    storage,
    leftovers: async () => await diskLeftovers(dir),
    reopen: async () => await DiskStorage.open(dir, smallBatches)
  }
})

/** The directory of a name's versions, the only one in the store. */
async function onlyNameDirectory (dir: string): Promise<string> {
  const [owner] = await readdir(join(dir, 'files'))
  const ownerDirectory = join(dir, 'files', owner ?? '')
  const [name] = await readdir(ownerDirectory)
  return join(ownerDirectory, name ?? '')
}

/** The directory of `name`'s versions (alice's). */
async function nameDirectory (dir: string, name: string): Promise<string> {
  const [owner] = await readdir(join(dir, 'files'))
  const ownerDirectory = join(dir, 'files', owner ?? '')
  for (const entry of await readdir(ownerDirectory)) {
    const records = (await readdir(join(ownerDirectory, entry))).filter((file) => file.endsWith('.json')).sort()
    const record = JSON.parse(await readFile(join(ownerDirectory, entry, records.at(-1) as string), 'utf8')) as { name?: string, meta?: { name: string } }
    if ((record.meta?.name ?? record.name) === name) return join(ownerDirectory, entry)
  }
  throw new Error(`no directory for ${name}`)
}

t.test('what a crash left behind is swept by age; what a live process writes is not', async (t) => {
  const dir = t.testdir()
  const first = await DiskStorage.open(dir, smallBatches)
  await store(first, 'alice', 'kept', Buffer.from('kept'))
  await store(first, 'alice', 'gone', Buffer.from('gone'))
  await first.delete('alice', 'gone')
  // An upload in progress in another process, and one a crash stopped an hour ago.
  const live = await first.begin('alice', 'live', { contentType: 'text/plain' })
  await live.write(streamOf(Buffer.from('still being written')))
  await writeFile(join(dir, 'tmp', 'crashed.data'), 'half')
  const hourAgo = new Date(Date.now() - 2 * 3600_000)
  await utimes(join(dir, 'tmp', 'crashed.data'), hourAgo, hourAgo)
  // A crash between placing a version and removing the one it replaced.
  const keptDirectory = await nameDirectory(dir, 'kept')
  await writeFile(join(keptDirectory, '0000000000000000.json'), '{"data":"old.data","meta":{}}')
  await writeFile(join(keptDirectory, 'old.data'), 'old')
  await utimes(join(keptDirectory, 'old.data'), hourAgo, hourAgo)
  // The tombstone of "gone", old enough to go.
  const goneDirectory = await nameDirectory(dir, 'gone')
  const tombstones = (await readdir(goneDirectory)).map((entry) => join(goneDirectory, entry).slice(dir.length + 1))
  for (const tombstone of tombstones) await utimes(join(dir, tombstone), hourAgo, hourAgo)

  const second = await DiskStorage.open(dir, smallBatches)
  t.teardown(async () => { await second.close() })
  const left = await filesUnder(dir)
  t.notOk(left.includes('tmp/crashed.data'), 'a temporary file not written to for an hour is gone')
  t.equal(left.filter((file) => file.startsWith('tmp/')).length, 1, 'the live upload\'s file stays')
  t.same(tombstones.filter((file) => left.includes(file)), [], 'an old tombstone is gone')
  t.notOk(left.some((file) => file.endsWith('old.data') || file.endsWith('0000000000000000.json')), 'the replaced version is gone')
  t.equal((await collect((await second.get('alice', 'kept'))?.stream as NodeJS.ReadableStream & import('node:stream').Readable)).toString(), 'kept')
  await live.commit()
  t.equal((await collect((await second.get('alice', 'live'))?.stream as import('node:stream').Readable)).toString(), 'still being written', 'the other process\'s upload commits')
  await first.close()
  await assertClean(t, dir, 2)
})

t.test('a store in the layout before versions is moved into it at open', async (t) => {
  const dir = t.testdir()
  const storage = await DiskStorage.open(dir, smallBatches)
  await store(storage, 'alice', 'docs/old.txt', Buffer.from('from before'))
  const file = await storage.head('alice', 'docs/old.txt')
  await storage.close()
  // Rewrite it as the old layout had it: files/<owner>/<name>.json beside <name>.<id>.data.
  const directory = await onlyNameDirectory(dir)
  const ownerDirectory = directory.slice(0, directory.lastIndexOf('/'))
  const nameHash = directory.slice(directory.lastIndexOf('/') + 1)
  const [data] = (await readdir(directory)).filter((entry) => entry.endsWith('.data'))
  await writeFile(join(ownerDirectory, `${nameHash}.${data ?? ''}`), 'from before')
  await writeFile(join(ownerDirectory, `${nameHash}.json`), JSON.stringify({ data: `${nameHash}.${data ?? ''}`, meta: file }))
  await rm(directory, { recursive: true })
  await writeFile(join(ownerDirectory, `${nameHash}.ffff.data`), 'unnamed, from before')
  await utimes(join(ownerDirectory, `${nameHash}.ffff.data`), new Date(0), new Date(0))

  const reopened = await DiskStorage.open(dir, smallBatches)
  t.teardown(async () => { await reopened.close() })
  t.same(await reopened.head('alice', 'docs/old.txt'), file, 'the same file, with its metadata')
  t.equal((await collect((await reopened.get('alice', 'docs/old.txt'))?.stream as import('node:stream').Readable)).toString(), 'from before')
  t.same((await reopened.list('alice', { limit: 10 })).files, [file])
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
  t.same((await storage.list('eve/../../mallory', { limit: 100 })).files.map((file) => file.name), [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))))

  t.same(await readdir(parent), ['storage'], 'nothing was written beside the storage directory')
  for (const file of await filesUnder(dir)) {
    t.match(file, /^files\/[0-9a-f]{64}\/[0-9a-f]{64}\/(\d{16}\.json|[0-9a-f]{32}\.data)$/)
  }
})

t.test('a damaged record is an error, not a missing file', async (t) => {
  const { storage, dir } = await openStorage(t)
  await store(storage, 'alice', 'damaged', Buffer.from('x'))
  const directory = await onlyNameDirectory(dir)
  const [record] = (await readdir(directory)).filter((entry) => entry.endsWith('.json'))
  await writeFile(join(directory, record ?? ''), '{"data":')
  await t.rejects(storage.head('alice', 'damaged'), SyntaxError)

  const upload = await storage.begin('alice', 'damaged', { contentType: 'text/plain' })
  await upload.write(streamOf(Buffer.from('y')))
  await t.rejects(upload.commit({ ifNoneMatch: ['*'] }), SyntaxError, 'no overwrite on a record that cannot be read')
})

t.test('a data file missing under its record is an error after one retry', async (t) => {
  const { storage, dir } = await openStorage(t)
  await store(storage, 'alice', 'lost', Buffer.from('x'))
  const directory = await onlyNameDirectory(dir)
  const [data] = (await readdir(directory)).filter((entry) => entry.endsWith('.data'))
  await unlink(join(directory, data ?? ''))
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
