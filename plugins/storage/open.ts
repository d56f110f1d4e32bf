// Opens the backend the configuration names, or says which setting keeps
// it from opening.
import { StorageStartError } from '../../errors.js'
import { DiskStorage } from './disk/index.js'
import { S3Storage } from './s3/index.js'
import type { S3StorageOptions } from './s3/index.js'
import type { Storage } from './types.js'

export type StorageSettings =
  | { kind: 'disk', dataDir: string }
  | { kind: 's3', options: S3StorageOptions }

/** The backend, opened and checked; `StorageStartError` naming the setting to change when it cannot be. */
export async function openStorage (settings: StorageSettings): Promise<Storage> {
  if (settings.kind === 's3') return await S3Storage.open(settings.options)
  try {
    return await DiskStorage.open(settings.dataDir)
  } catch (error) {
    // A system error: it has a code.
    const { code } = error as NodeJS.ErrnoException
    throw new StorageStartError(`DATA_DIR: cannot use ${JSON.stringify(settings.dataDir)} as the storage directory (${String(code)}); ` +
      'point it at a directory this user can create and write')
  }
}
