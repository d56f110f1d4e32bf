// The storage contract, written once, that every backend runs: every
// operation, every error, ownership, names, paging order, preconditions
// (atomic across two handles on one store, as two processes have), aborts
// and digests. A backend's test file calls `conformance` with a way to open
// it; what is particular to one backend stays in its own file.
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import t from 'tap'
import type { Test } from 'tap'
import type { Storage, StoredFile, Upload } from '../../../plugins/storage/index.js'
import { bytes, collect, failingStream, streamOf } from '../../helpers/storage.js'

export interface Backend {
  storage: Storage
  /**
   * What the store holds besides the committed files' current versions:
   * temporary data, unfinished uploads, data or records no current version
   * names. Empty when nothing was left behind.
   */
  leftovers: () => Promise<string[]>
  /** Another handle on the same store, as a second process would open it. */
  reopen: () => Promise<Storage>
}

/** Bytes of a file large enough to take a backend's large-file path (several S3 parts). */
const LARGE = 12 * 1024 * 1024 + 12345

function sha256 (body: Buffer): string {
  return createHash('sha256').update(body).digest('hex')
}

async function store (storage: Storage, owner: string, name: string, body: Buffer | string, preconditions = {}): Promise<StoredFile> {
  const upload = await storage.begin(owner, name, { contentType: 'text/plain' })
  await upload.write(streamOf(Buffer.from(body)))
  return await upload.commit(preconditions)
}

export function conformance (backendName: string, open: (t: Test) => Promise<Backend>): void {
  t.test(`${backendName}: the storage contract`, async (t) => {
    t.test('a file is stored whole, described, read whole and by range', async (t) => {
      const { storage, leftovers } = await open(t)
      for (const body of [Buffer.alloc(0), bytes(100_000), bytes(LARGE, 7)]) {
        const upload = await storage.begin('alice', 'docs/a file.bin', { contentType: 'application/x-test', md5: true })
        const written = await upload.write(streamOf(body, 64 * 1024))
        t.equal(written.size, body.length)
        t.equal(written.sha256.toString('hex'), sha256(body))
        t.equal(written.md5?.toString('hex'), createHash('md5').update(body).digest('hex'), 'MD5 when asked')
        const before = Date.now()
        const file = await upload.commit()
        t.match(file, { name: 'docs/a file.bin', owner: 'alice', size: body.length, sha256: sha256(body), etag: `"${sha256(body)}"`, contentType: 'application/x-test' })
        t.ok(Math.abs(Date.parse(file.createdAt) - before) < 5000 && file.createdAt === new Date(file.createdAt).toISOString(), 'createdAt is an ISO time of the commit')
        t.same(await storage.head('alice', 'docs/a file.bin'), file)
        const content = await storage.get('alice', 'docs/a file.bin')
        t.same(content?.file, file)
        t.ok((await collect(content?.stream as Readable)).equals(body), `${body.length} bytes read back`)
        if (body.length > 10) {
          const range = await storage.get('alice', 'docs/a file.bin', { start: 3, end: body.length - 2 })
          t.ok((await collect(range?.stream as Readable)).equals(body.subarray(3, body.length - 1)), 'a range')
        }
      }
      const plain = await storage.begin('alice', 'plain', { contentType: 'text/plain' })
      t.equal((await plain.write(streamOf(Buffer.from('x')))).md5, null, 'no MD5 unless asked')
      await plain.abort()
      t.same(await leftovers(), [], 'replaced versions and aborted uploads leave nothing')
    })

    t.test('files belong to their owner: others see nothing', async (t) => {
      const { storage } = await open(t)
      await t.resolves(storage.ping(), 'the store answers')
      await store(storage, 'alice', 'secret.txt', 'alice only')
      t.equal(await storage.head('bob', 'secret.txt'), null)
      t.equal(await storage.get('bob', 'secret.txt'), null)
      t.same(await storage.list('bob', { limit: 10 }), { files: [], nextCursor: null })
      t.equal(await storage.delete('bob', 'secret.txt'), null)
      t.not(await storage.head('alice', 'secret.txt'), null)
      t.equal(await storage.head('alice', 'missing'), null)
      t.equal(await storage.get('alice', 'missing'), null)
    })

    t.test('preconditions hold at the commit and the delete (RFC 9110 §13.2.2)', async (t) => {
      const { storage, leftovers } = await open(t)
      const v1 = await store(storage, 'alice', 'doc', 'v1')
      const refused = [
        ['If-None-Match: * on an existing name', { ifNoneMatch: ['*'] }],
        ['If-Match with another version', { ifMatch: ['"0000"'] }],
        ['If-Match on a missing name', { ifMatch: ['*'] }, 'missing'],
        ['If-Unmodified-Since before the last change', { ifUnmodifiedSince: Math.floor(Date.parse(v1.createdAt) / 1000) - 10 }]
      ] as const
      for (const [what, preconditions, name = 'doc'] of refused) {
        await t.rejects(store(storage, 'alice', name, 'v2', preconditions), { statusCode: 412, code: 'UPFRONT_PRECONDITION_FAILED' }, what)
      }
      t.same(await storage.head('alice', 'doc'), v1, 'nothing changed')
      const v2 = await store(storage, 'alice', 'doc', 'v2', { ifMatch: ['"0000"', v1.etag] })
      t.equal(v2.etag, `"${sha256(Buffer.from('v2'))}"`, 'one matching entity tag is enough')
      t.match(await store(storage, 'alice', 'doc', 'v3', { ifMatch: ['*'] }), { size: 2 }, 'If-Match: * takes any existing file')
      t.match(await store(storage, 'alice', 'new', 'n', { ifNoneMatch: ['*'] }), { size: 1 }, 'If-None-Match: * creates')

      await t.rejects(storage.delete('alice', 'doc', { ifMatch: ['"0000"'] }), { statusCode: 412, code: 'UPFRONT_PRECONDITION_FAILED' })
      t.not(await storage.head('alice', 'doc'), null, 'a refused delete keeps the file')
      await t.rejects(storage.delete('alice', 'missing', { ifMatch: ['*'] }), { statusCode: 412, code: 'UPFRONT_PRECONDITION_FAILED' }, 'If-Match on a missing name')
      const current = await storage.head('alice', 'doc') as StoredFile
      t.same(await storage.delete('alice', 'doc', { ifMatch: [current.etag] }), current, 'what was deleted')
      t.equal(await storage.head('alice', 'doc'), null)
      t.equal(await storage.delete('alice', 'doc'), null, 'nothing left to delete')
      t.match(await store(storage, 'alice', 'doc', 'again', { ifNoneMatch: ['*'] }), { size: 5 }, 'a deleted name can be created again')
      t.same(await leftovers(), [])
    })

    t.test('two handles on one store racing to create one name: exactly one wins, its bytes stay', async (t) => {
      const { storage, reopen, leftovers } = await open(t)
      const other = await reopen()
      t.teardown(async () => { await other.close() })
      for (let round = 0; round < 3; round++) {
        const name = `race-${round}`
        const bodies = Array.from({ length: 6 }, (_, i) => bytes(20_000 + i, round * 10 + i))
        const uploads: Upload[] = []
        for (const [i, body] of bodies.entries()) {
          const upload = await (i % 2 === 0 ? storage : other).begin('alice', name, { contentType: 'text/plain' })
          await upload.write(streamOf(body))
          uploads.push(upload)
        }
        const outcomes = await Promise.allSettled(uploads.map(async (upload) => await upload.commit({ ifNoneMatch: ['*'] })))
        const winners = outcomes.filter((outcome) => outcome.status === 'fulfilled')
        t.equal(winners.length, 1, `round ${round}: one 201`)
        t.ok(outcomes.every((outcome) => outcome.status === 'fulfilled' || (outcome.reason as { statusCode?: number }).statusCode === 412), 'the others 412')
        const stored = await other.get('alice', name)
        t.equal(sha256(await collect(stored?.stream as Readable)), (winners[0] as PromiseFulfilledResult<StoredFile>).value.sha256, 'the bytes are the winner\'s')
      }
      // If-Match replacements race the same way.
      const base = await store(storage, 'alice', 'shared', 'base')
      const replacements = await Promise.allSettled([storage, other, storage, other].map(async (handle, i) => await store(handle, 'alice', 'shared', `next-${i}`, { ifMatch: [base.etag] })))
      t.equal(replacements.filter((outcome) => outcome.status === 'fulfilled').length, 1, 'one If-Match replacement wins')
      t.same(await leftovers(), [])
    })

    t.test('listing: name order by code point, pages, an opaque cursor the backend checks', async (t) => {
      const { storage } = await open(t)
      const names = ['b', 'a/b', 'a', 'a b', 'ab', 'z', 'é', 'Z', '\u{E000}', '\u{1F600}', 'x/y/z', '0', 'a!']
      for (const name of names) await store(storage, 'alice', name, name)
      await store(storage, 'bob', 'a', 'not alice\'s')
      const expected = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      t.same(expected.slice(-2), ['\u{E000}', '\u{1F600}'], 'code point order puts U+E000 before U+1F600 (UTF-16 order would not)')
      const seen: string[] = []
      let cursor: string | undefined
      for (let page = 0; page < 10; page++) {
        const listed = await storage.list('alice', cursor === undefined ? { limit: 4 } : { limit: 4, cursor })
        t.ok(listed.files.length <= 4)
        seen.push(...listed.files.map((file) => file.name))
        for (const file of listed.files) t.match(file, { owner: 'alice', size: Buffer.byteLength(file.name) })
        if (listed.nextCursor === null) break
        cursor = listed.nextCursor
      }
      t.same(seen, expected)
      t.equal((await storage.list('alice', { limit: 1000 })).nextCursor, null)

      // Deleted between pages: skipped; added: listed in its place.
      const first = await storage.list('alice', { limit: 3 })
      await storage.delete('alice', expected[3] as string)
      await store(storage, 'alice', 'aa', 'aa')
      const rest = await storage.list('alice', { limit: 100, cursor: first.nextCursor as string })
      t.notOk(rest.files.some((file) => file.name === expected[3]), 'a deleted name is not listed')
      t.ok(rest.files.some((file) => file.name === 'aa'), 'a name added after the cursor is listed')

      for (const cursor of ['', 'not a cursor!', Buffer.from('a//b').toString('base64url'), 'YQ']) {
        if (cursor === 'YQ') {
          t.ok((await storage.list('alice', { limit: 1, cursor })).files.length === 1, 'a cursor the backend made is taken')
          continue
        }
        await t.rejects(storage.list('alice', { limit: 1, cursor }), { statusCode: 400, code: 'UPFRONT_INVALID_QUERY' }, `cursor ${JSON.stringify(cursor)}`)
      }
    })

    t.test('an upload that fails or is aborted at any point leaves nothing, and the source is not destroyed', async (t) => {
      const { storage, leftovers } = await open(t)
      await store(storage, 'alice', 'kept', 'kept')
      for (const failAt of [0, 1, 64 * 1024, LARGE - 1]) {
        const upload = await storage.begin('alice', 'broken', { contentType: 'text/plain' })
        const source = failingStream(failAt, new Error(`source failed at ${failAt}`))
        await t.rejects(upload.write(source), { message: `source failed at ${failAt}` }, `the source's own error (at ${failAt} bytes)`)
        await t.rejects(upload.commit(), /commit\(\) is called once, after write\(\)/)
        await upload.abort()
      }
      const aborted = await storage.begin('alice', 'aborted', { contentType: 'text/plain' })
      const endless = new Readable({ read () { this.push(bytes(64 * 1024)) } })
      const writing = aborted.write(endless)
      await new Promise((resolve) => setTimeout(resolve, 50))
      await aborted.abort()
      await t.rejects(writing, 'an abort stops a write in progress')
      t.equal(endless.destroyed, false, 'the caller decides what to do with the source')
      endless.destroy()

      const written = await storage.begin('alice', 'unused', { contentType: 'text/plain' })
      await written.write(streamOf(bytes(LARGE)))
      await written.abort()
      await written.abort()
      await t.rejects(written.commit(), /commit\(\) is called once/)
      await t.rejects(written.write(streamOf(Buffer.from('x'))), /write\(\) is called once/)

      const committed = await storage.begin('alice', 'done', { contentType: 'text/plain' })
      await committed.write(streamOf(Buffer.from('done')))
      await committed.commit()
      await committed.abort()
      t.not(await storage.head('alice', 'done'), null, 'abort after commit changes nothing')

      for (const name of ['broken', 'aborted', 'unused']) t.equal(await storage.head('alice', name), null)
      t.same(await leftovers(), [], 'nothing left behind')
      t.not(await storage.head('alice', 'kept'), null)
    })

    t.test('a file replaced while it is read: the reader gets one version whole', async (t) => {
      const { storage } = await open(t)
      const v1 = bytes(LARGE, 1)
      await store(storage, 'alice', 'moving', v1)
      const reading = await storage.get('alice', 'moving')
      await store(storage, 'alice', 'moving', bytes(1000, 2))
      const read = await collect(reading?.stream as Readable)
      t.ok(read.equals(v1), 'the version it started with')
      t.equal((await storage.head('alice', 'moving'))?.size, 1000)
    })
  })
}
