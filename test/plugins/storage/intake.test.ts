// What every backend does with an upload's bytes (plugins/storage/intake.ts),
// on a backend of the test's own whose sink it controls: the moments the
// conformance suite cannot time on a real store.
import { Readable } from 'node:stream'
import t from 'tap'
import { StagedUpload } from '../../../plugins/storage/intake.js'
import type { Sink } from '../../../plugins/storage/intake.js'
import type { StoredFile, Written } from '../../../plugins/storage/index.js'

/** An upload whose sink takes every chunk, and finishes only when the test says so. */
class HeldUpload extends StagedUpload {
  readonly chunks: Buffer[] = []
  discards = 0
  settles = 0
  /** Resolves once the sink was asked to finish. */
  readonly ending: Promise<void>
  #ended = (): void => {}
  #finish: (() => void) | null = null

  constructor () {
    super(false)
    this.ending = new Promise((resolve) => { this.#ended = resolve })
  }

  /** Lets the sink's end() resolve. */
  finish (): void {
    this.#finish?.()
  }

  protected async open (): Promise<Sink> {
    return {
      write: (chunk) => {
        this.chunks.push(chunk)
        return true
      },
      end: async () => {
        this.#ended()
        await new Promise<void>((resolve) => { this.#finish = resolve })
      }
    }
  }

  protected async place (written: Written): Promise<StoredFile> {
    return { name: 'a', owner: 'alice', size: written.size, sha256: written.sha256.toString('hex'), etag: '"x"', contentType: 'text/plain', createdAt: new Date().toISOString() }
  }

  protected async discard (): Promise<void> {
    this.discards++
  }

  protected storageError (error: unknown): unknown {
    return error
  }

  protected settled (): void {
    this.settles++
  }
}

t.test('an abort while the sink is finishing: the write fails, and the sink\'s late success changes nothing', async (t) => {
  const upload = new HeldUpload()
  const writing = upload.write(Readable.from([Buffer.from('hello')]))
  await upload.ending
  await upload.abort()
  await t.rejects(writing, { name: 'AbortError' }, 'the write ends with the abort')
  upload.finish()
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(upload.settles, 1, 'dropped once')
  t.equal(upload.discards, 1, 'what was written is discarded')
  await t.rejects(upload.commit(), { message: 'commit() is called once, after write(); this upload is aborted' }, 'nothing to commit')
})
