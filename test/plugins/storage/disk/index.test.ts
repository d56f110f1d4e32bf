// The disk backend (plugins/storage/disk/index.ts): the storage contract
// (conformance.ts), and what is the disk's own: names never paths, a
// name's lock (held by another process: waited for; left by a dead one:
// broken; released on every failure), a reader's version readable to its
// end across commits, a crash's leftovers swept (not what a live process is
// writing), the layout before versions migrated, a full disk reported as
// 507 and still emptied. (One upload's own life: upload.test.ts.)
import { execFile } from 'node:child_process'
import { existsSync, linkSync, unlinkSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, unlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import type { Readable } from 'node:stream'
import { promisify } from 'node:util'
import t from 'tap'
import { DiskStorage } from '../../../../plugins/storage/disk/index.js'
import { assertClean, bytes, collect, diskLeftovers, filesUnder, KiB, openStorage, sha256, smallBatches, store, streamOf, versionContent } from '../../../helpers/storage.js'
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

/** Where `name`'s version lives (alice's): files/<sha256(owner)>/<sha256(name)>. */
function versionPath (dir: string, name: string, owner = 'alice'): string {
  return join(dir, 'files', sha256(Buffer.from(owner)), sha256(Buffer.from(name)))
}

/** Waits until a lock linked now is older than `ms`. */
async function age (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms + 20))
}

t.test('what a crash left behind is swept; what a live process writes is not', async (t) => {
  const dir = t.testdir()
  const options = { ...smallBatches, lockStaleMs: 50 }
  const first = await DiskStorage.open(dir, options)
  await store(first, 'alice', 'kept', Buffer.from('kept'))
  await store(first, 'alice', 'locked', Buffer.from('locked'))
  // An upload in progress in another process (past its first batch, so
  // that its file exists), and one a crash stopped an hour ago.
  const live = await first.begin('alice', 'live', { contentType: 'text/plain' })
  const liveBody = bytes(100 * KiB)
  await live.write(streamOf(liveBody))
  await writeFile(join(dir, 'tmp', 'crashed'), 'half')
  const hourAgo = new Date(Date.now() - 2 * 3600_000)
  await utimes(join(dir, 'tmp', 'crashed'), hourAgo, hourAgo)
  // A process that died holding the lock of "locked" (the lock of a delete: the version itself).
  linkSync(versionPath(dir, 'locked'), `${versionPath(dir, 'locked')}.lock`)
  await age(50)
  // And one that holds the lock of "busy" right now.
  await store(first, 'alice', 'busy', Buffer.from('busy'))
  linkSync(versionPath(dir, 'busy'), `${versionPath(dir, 'busy')}.lock`)

  const second = await DiskStorage.open(dir, options)
  t.teardown(async () => { await second.close() })
  const left = await diskLeftovers(dir)
  t.notOk(left.includes('tmp/crashed'), 'a temporary file not written to for an hour is gone')
  t.equal(left.filter((file) => file.startsWith('tmp/')).length, 1, 'the live upload\'s file stays')
  t.notOk(left.some((file) => file.startsWith(versionPath(dir, 'locked').slice(dir.length + 1))), 'a stale lock is gone')
  t.ok(left.includes(`${versionPath(dir, 'busy').slice(dir.length + 1)}.lock`), 'a lock held now stays')
  t.equal((await collect((await second.get('alice', 'kept'))?.stream as Readable)).toString(), 'kept')
  t.match(await second.delete('alice', 'locked'), { name: 'locked' }, 'a name whose lock was stale can be changed')
  await live.commit()
  t.same(await collect((await second.get('alice', 'live'))?.stream as Readable), liveBody, 'the other process\'s upload commits')
  await first.close()
  await unlink(`${versionPath(dir, 'busy')}.lock`)
  await assertClean(t, dir, 3)
})

t.test('a name\'s lock', async (t) => {
  t.test('held by another process: waited for, then a 503', async (t) => {
    const { storage, dir } = await openStorage(t, undefined, { ...smallBatches, lockWaitMs: 100 })
    await store(storage, 'alice', 'held', Buffer.from('held'))
    const lock = `${versionPath(dir, 'held')}.lock`
    linkSync(versionPath(dir, 'held'), lock)
    const upload = await storage.begin('alice', 'held', { contentType: 'text/plain' })
    await upload.write(streamOf(Buffer.from('waits')))
    const started = Date.now()
    await t.rejects(upload.commit(), { code: 'UPFRONT_STORAGE_BUSY', statusCode: 503 })
    t.ok(Date.now() - started >= 100, 'after waiting for it')
    await t.rejects(storage.delete('alice', 'held'), { code: 'UPFRONT_STORAGE_BUSY', statusCode: 503 })
    t.equal((await collect((await storage.get('alice', 'held'))?.stream as Readable)).toString(), 'held', 'reads go on')
    // Released while a writer waits: the writer goes on.
    const waiting = storage.begin('alice', 'held', { contentType: 'text/plain' }).then(async (upload) => {
      await upload.write(streamOf(Buffer.from('went on')))
      await upload.commit()
    })
    setTimeout(() => { unlinkSync(lock) }, 20)
    await waiting
    t.equal((await collect((await storage.get('alice', 'held'))?.stream as Readable)).toString(), 'went on')
    await assertClean(t, dir, 1)
  })

  t.test('left by a dead process: broken by the next writer', async (t) => {
    const { storage, dir } = await openStorage(t, undefined, { ...smallBatches, lockStaleMs: 50 })
    await store(storage, 'alice', 'stale', Buffer.from('stale'))
    linkSync(versionPath(dir, 'stale'), `${versionPath(dir, 'stale')}.lock`)
    await age(50)
    await store(storage, 'alice', 'stale', Buffer.from('replaced'))
    t.equal((await collect((await storage.get('alice', 'stale'))?.stream as Readable)).toString(), 'replaced')
    await assertClean(t, dir, 1)
  })

  t.test('released when the preconditions fail', async (t) => {
    const { storage, dir } = await openStorage(t)
    await store(storage, 'alice', 'kept', Buffer.from('kept'))
    await t.rejects(store(storage, 'alice', 'kept', Buffer.from('not stored'), { ifNoneMatch: ['*'] }), { code: 'UPFRONT_PRECONDITION_FAILED', statusCode: 412 })
    await t.rejects(storage.delete('alice', 'kept', { ifMatch: ['"another"'] }), { code: 'UPFRONT_PRECONDITION_FAILED', statusCode: 412 })
    await t.rejects(storage.delete('alice', 'never', { ifMatch: ['"another"'] }), { code: 'UPFRONT_PRECONDITION_FAILED', statusCode: 412 })
    await assertClean(t, dir, 1)
  })

  t.test('the preconditions are checked holding it, against what it holds', async (t) => {
    const { storage, dir } = await openStorage(t)
    await store(storage, 'alice', 'raced', Buffer.from('one'))
    const etag = (await storage.head('alice', 'raced'))?.etag as string
    const upload = await storage.begin('alice', 'raced', { contentType: 'text/plain' })
    await upload.write(streamOf(Buffer.from('mine')))
    // Read by the check: the lock is held then.
    const preconditions = {
      get ifMatch (): string[] {
        t.ok(existsSync(`${versionPath(dir, 'raced')}.lock`), 'the lock is held during the check')
        return [etag]
      }
    }
    await upload.commit(preconditions)
    t.equal((await collect((await storage.get('alice', 'raced'))?.stream as Readable)).toString(), 'mine')
    await assertClean(t, dir, 1)
  })
})

t.test('a store in the layout before versions is moved into it at open', async (t) => {
  const dir = t.testdir()
  const storage = await DiskStorage.open(dir, smallBatches)
  const names = ['docs/old.txt', 'docs/appended.txt', 'docs/linked.txt', 'docs/half.txt', 'docs/zeroed.txt']
  for (const name of names) await store(storage, 'alice', name, Buffer.from(`${name}, from before`))
  const files = await Promise.all(names.map(async (name) => await storage.head('alice', name)))
  await storage.close()
  // Rewrite them as the old layout had them: files/<owner>/<name>.json beside <name>.<id>.data;
  // the second as a crashed migration left it after appending the record,
  // the third after linking the version, the fourth in the middle of
  // appending the record, the fifth after a power loss that kept the
  // appended length but not its bytes.
  const ownerDirectory = join(dir, 'files', sha256(Buffer.from('alice')))
  for (const [i, name] of names.entries()) {
    const path = versionPath(dir, name)
    const nameHash = sha256(Buffer.from(name))
    const version = await readFile(path)
    const content = versionContent(version)
    const data = [content, version, version, version.subarray(0, content.length + 10), Buffer.concat([content, Buffer.alloc(version.length - content.length)])][i] as Buffer
    await writeFile(join(ownerDirectory, `${nameHash}.0123.data`), data)
    await writeFile(join(ownerDirectory, `${nameHash}.json`), JSON.stringify({ data: `${nameHash}.0123.data`, meta: files[i] }))
    if (i !== 2) await unlink(path)
  }
  const unnamed = join(ownerDirectory, `${sha256(Buffer.from('docs/old.txt'))}.ffff.data`)
  await writeFile(unnamed, 'unnamed, from before')
  await utimes(unnamed, new Date(0), new Date(0))
  // A record whose data is gone names nothing: it goes.
  await writeFile(join(ownerDirectory, `${'e'.repeat(64)}.json`), JSON.stringify({ data: `${'e'.repeat(64)}.0123.data`, meta: { ...files[0], name: 'lost' } }))

  const reopened = await DiskStorage.open(dir, smallBatches)
  t.teardown(async () => { await reopened.close() })
  for (const [i, name] of names.entries()) {
    t.same(await reopened.head('alice', name), files[i], `${name}: the same file, with its metadata`)
    t.equal((await collect((await reopened.get('alice', name))?.stream as Readable)).toString(), `${name}, from before`)
  }
  t.same((await reopened.list('alice', { limit: 10 })).files, [...files].sort((a, b) => (a?.name ?? '') < (b?.name ?? '') ? -1 : 1))
  await assertClean(t, dir, names.length)
})

t.test('a store in the layout before versions opened by several processes at once: each moves it or finds it moved', async (t) => {
  const dir = t.testdir()
  const storage = await DiskStorage.open(dir, smallBatches)
  const names = Array.from({ length: 30 }, (_, i) => `old-${i}`)
  for (const name of names) await store(storage, 'alice', name, Buffer.from(`${name}, from before`))
  const files = await Promise.all(names.map(async (name) => await storage.head('alice', name)))
  await storage.close()
  const ownerDirectory = join(dir, 'files', sha256(Buffer.from('alice')))
  for (const [i, name] of names.entries()) {
    const nameHash = sha256(Buffer.from(name))
    await writeFile(join(ownerDirectory, `${nameHash}.0123.data`), versionContent(await readFile(versionPath(dir, name))))
    await writeFile(join(ownerDirectory, `${nameHash}.json`), JSON.stringify({ data: `${nameHash}.0123.data`, meta: files[i] }))
    await unlink(versionPath(dir, name))
  }
  // Their sweeps at open interleave, as those of processes started together do.
  const opened = await Promise.allSettled(Array.from({ length: 4 }, async () => await DiskStorage.open(dir, smallBatches)))
  for (const outcome of opened) if (outcome.status === 'fulfilled') await outcome.value.close()
  t.same(opened.filter((outcome) => outcome.status === 'rejected').map((outcome) => String((outcome as PromiseRejectedResult).reason)), [], 'every process opened it')
  const reopened = await DiskStorage.open(dir, smallBatches)
  t.teardown(async () => { await reopened.close() })
  for (const [i, name] of names.entries()) t.same(await reopened.head('alice', name), files[i], name)
  await assertClean(t, dir, names.length)
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
  for (const file of await filesUnder(dir)) t.match(file, /^files\/[0-9a-f]{64}\/[0-9a-f]{64}$/)
})

t.test('a damaged version is an error, not a missing file', async (t) => {
  const { storage, dir } = await openStorage(t)
  await store(storage, 'alice', 'damaged', Buffer.from('x'))
  const path = versionPath(dir, 'damaged')
  const footer = (length: number): Buffer => Buffer.concat([Buffer.from([0, 0, 0, length]), Buffer.from('upfront1')])
  const damages: Array<[string, Buffer, RegExp | ErrorConstructor]> = [
    ['empty', Buffer.alloc(0), /is not a valid version: it does not end with a record/],
    ['no footer', Buffer.from('x'), /is not a valid version: it does not end with a record/],
    ['a record longer than the file', Buffer.concat([Buffer.from('{}'), footer(200)]), /its record is said to be 200 bytes long/],
    ['a record that is not JSON', Buffer.concat([Buffer.from('{"file":'), footer(8)]), SyntaxError],
    ['a record that is null', Buffer.concat([Buffer.from('null'), footer(4)]), /its record does not say 0 bytes of content/],
    ['a record without a file', Buffer.concat([Buffer.from('abc{}'), footer(2)]), /its record does not say 3 bytes of content/],
    ['a size that does not match', Buffer.concat([Buffer.from('abc{"file":{"size":2}}'), footer(19)]), /its record does not say 3 bytes of content/]
  ]
  for (const [damage, content, error] of damages) {
    await writeFile(path, content)
    await t.rejects(storage.head('alice', 'damaged'), error, damage)
    await t.rejects(storage.get('alice', 'damaged'), error, damage)
  }
  // A long record: read past the first 4 KiB from the end.
  const upload = await storage.begin('alice', 'long', { contentType: `text/plain; note=${'n'.repeat(5000)}` })
  await upload.write(streamOf(Buffer.from('long record')))
  await upload.commit()
  t.equal((await storage.head('alice', 'long'))?.contentType.length, 'text/plain; note='.length + 5000)

  const overwrite = await storage.begin('alice', 'damaged', { contentType: 'text/plain' })
  await overwrite.write(streamOf(Buffer.from('y')))
  await t.rejects(overwrite.commit({ ifNoneMatch: ['*'] }), /is not a valid version/, 'no overwrite on a version that cannot be read')
  t.same(await diskLeftovers(dir), [], 'its lock is released')
})

t.test('a version being read stays readable to its end while others replace it', async (t) => {
  const { storage, dir } = await openStorage(t)
  const first = bytes(512 * KiB, 1)
  await store(storage, 'alice', 'read', first)
  const reading = await storage.get('alice', 'read')
  const range = await storage.get('alice', 'read', { start: 1000, end: 1999 })
  await store(storage, 'alice', 'read', bytes(10, 2))
  await storage.delete('alice', 'read')
  await store(storage, 'alice', 'read', bytes(20, 3))
  t.same(await collect(reading?.stream as Readable), first, 'the whole first version')
  t.same(await collect(range?.stream as Readable), first.subarray(1000, 2000), 'a range of it')
  t.same(await collect((await storage.get('alice', 'read'))?.stream as Readable), bytes(20, 3))
  await assertClean(t, dir, 1)
})

t.test('an empty file', async (t) => {
  const { storage, dir } = await openStorage(t)
  await store(storage, 'alice', 'empty', Buffer.alloc(0))
  t.match(await storage.head('alice', 'empty'), { size: 0 })
  t.same(await collect((await storage.get('alice', 'empty'))?.stream as Readable), Buffer.alloc(0))
  await assertClean(t, dir, 1)
})

t.test('a temporary file gone before the commit: nothing is linked', async (t) => {
  const { storage, dir } = await openStorage(t)
  const upload = await storage.begin('alice', 'orphan', { contentType: 'application/octet-stream' })
  // Past one batch: the file exists, and is removed (as a sweep of a silent upload would).
  await upload.write(streamOf(bytes(100 * KiB)))
  for (const entry of await readdir(join(dir, 'tmp'))) await rm(join(dir, 'tmp', entry))
  await t.rejects(upload.commit(), { code: 'ENOENT', syscall: 'link' })
  t.equal(await storage.head('alice', 'orphan'), null)
  await assertClean(t, dir, 0)
})

t.test('a temporary file that cannot be created fails the write', async (t) => {
  const { storage, dir } = await openStorage(t)
  await rm(join(dir, 'tmp'), { recursive: true })
  const upload = await storage.begin('alice', 'nowhere', { contentType: 'application/octet-stream' })
  await t.rejects(upload.write(streamOf(bytes(100 * KiB))), { code: 'ENOENT', syscall: 'open' })
  await mkdir(join(dir, 'tmp'))
  await assertClean(t, dir, 0)
})

t.test('a directory that is not one is reported', async (t) => {
  const { storage, dir } = await openStorage(t)
  await store(storage, 'alice', 'x', Buffer.from('x'))
  const [owner] = await readdir(join(dir, 'files'))
  await rm(join(dir, 'files', owner ?? ''), { recursive: true })
  await writeFile(join(dir, 'files', owner ?? ''), 'not a directory')
  await t.rejects(storage.list('alice', { limit: 1 }), { code: 'ENOTDIR' })
  await t.rejects(storage.head('alice', 'x'), { code: 'ENOTDIR' })
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

t.test('a sweep runs every sweepAfterMs, and one that fails is tried again', async (t) => {
  const { storage, dir } = await openStorage(t, undefined, { ...smallBatches, sweepAfterMs: 30 })
  // Without its temporary directory, a sweep fails.
  await rm(join(dir, 'tmp'), { recursive: true })
  await new Promise((resolve) => setTimeout(resolve, 100))
  await mkdir(join(dir, 'tmp'))
  await writeFile(join(dir, 'tmp', 'crashed'), 'half')
  await utimes(join(dir, 'tmp', 'crashed'), new Date(0), new Date(0))
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(await readdir(join(dir, 'tmp')), [], 'the next sweep removed it')
  await store(storage, 'alice', 'after', Buffer.from('after'))
  await assertClean(t, dir, 1)
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

    await t.test('as the body ends', async (t) => {
      const upload = await storage.begin('alice', 'too-big', { contentType: 'application/octet-stream' })
      // The whole body at hand at once: the source has ended when the
      // batch that does not fit is written.
      const source = new PassThrough({ highWaterMark: capacity + 64 * KiB })
      source.end(bytes(capacity + 64 * KiB))
      await t.rejects(upload.write(source), { code: 'UPFRONT_INSUFFICIENT_STORAGE', cause: { code: 'ENOSPC' } })
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

    await t.test('a full disk can be emptied: a delete takes no block', async (t) => {
      await store(storage, 'alice', 'filler', bytes(capacity - 4 * KiB))
      t.equal(await storage.freeBytes(), 0)
      t.match(await storage.delete('alice', 'filler'), { name: 'filler' })
      t.equal(await storage.head('alice', 'filler'), null)
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
