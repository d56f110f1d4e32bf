// A backend as the metrics see it: uploads begun and settled, bytes
// committed, operations that failed for a reason of the storage's own.
import type { Readable } from 'node:stream'
import type { Storage, Upload } from './types.js'

/** Told what storage does; metrics implement it. */
export interface StorageObserver {
  uploadBegun: () => void
  /** Committed, dropped, or failed: once per upload. */
  uploadSettled: () => void
  committed: (bytes: number) => void
  /** An operation failed for a reason of the storage (not the request's: a precondition, a name, a client gone). */
  failed: (operation: string) => void
}

/** A failure of the storage itself: a 5xx, or an error without a status that the request's body did not cause. */
function isStorageFault (error: unknown, source?: Readable): boolean {
  if (source !== undefined && (error === source.errored || source.errored != null)) return false
  const status = (error as { statusCode?: number } | null)?.statusCode
  return status === undefined || status >= 500
}

/** `storage`, reporting to `observer`. */
export function observed (storage: Storage, observer: StorageObserver): Storage {
  const watch = async <T>(operation: string, work: Promise<T>, source?: Readable): Promise<T> => {
    try {
      return await work
    } catch (error) {
      if (isStorageFault(error, source)) observer.failed(operation)
      throw error
    }
  }
  return {
    async begin (owner, name, options) {
      const upload = await watch('begin', storage.begin(owner, name, options))
      observer.uploadBegun()
      let settled = false
      const settle = (): void => {
        if (settled) return
        settled = true
        observer.uploadSettled()
      }
      const observedUpload: Upload = {
        async write (source) {
          try {
            return await watch('write', upload.write(source), source)
          } catch (error) {
            // A failed write drops the upload.
            settle()
            throw error
          }
        },
        async commit (preconditions) {
          try {
            const file = await watch('commit', upload.commit(preconditions))
            observer.committed(file.size)
            return file
          } finally {
            settle()
          }
        },
        async abort () {
          await upload.abort()
          settle()
        }
      }
      return observedUpload
    },
    head: async (owner, name) => await watch('head', storage.head(owner, name)),
    get: async (owner, name, range) => await watch('get', storage.get(owner, name, range)),
    delete: async (owner, name, preconditions) => await watch('delete', storage.delete(owner, name, preconditions)),
    list: async (owner, options) => await watch('list', storage.list(owner, options)),
    freeBytes: async () => await watch('freeBytes', storage.freeBytes()),
    ping: async () => await watch('ping', storage.ping()),
    close: async () => { await storage.close() }
  }
}
