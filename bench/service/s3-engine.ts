// The S3 engine the S3 and replica benchmarks run against (Ceph RGW on
// loopback, as `npm run services:start` or test/services/rgw.sh starts it):
// its settings from the environment (`source <state dir>/env`) or from
// .tap/rgw/env, a key prefix of the run's own, emptying that prefix, and the
// engine's processes (for their CPU time).
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client
} from '@aws-sdk/client-s3'
import { cpuOf } from '../lib/cpu.js'
import { repoRoot } from '../lib/proc.js'

export interface Engine {
  endpoint: string
  region: string
  bucket: string
  forcePathStyle: boolean
  accessKeyId: string
  secretAccessKey: string
}

/** The service's defaults (S3_PART_SIZE, S3_QUEUE_SIZE), which the benchmarks leave unset. */
export { DEFAULT_PART_SIZE as SERVICE_PART_SIZE, DEFAULT_QUEUE_SIZE as SERVICE_QUEUE_SIZE } from '../../plugins/storage/s3/index.js'

/** The engine's settings; throws saying how to start one when none is configured. */
export function engineSettings (): Engine {
  const env: Record<string, string | undefined> = { ...process.env }
  const file = join(repoRoot, '.tap', 'rgw', 'env')
  if (env.S3_ENDPOINT === undefined && existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const match = /^export ([A-Z0-9_]+)=(.*)$/.exec(line)
      if (match !== null) env[match[1] as string] = match[2]
    }
  }
  const { S3_ENDPOINT, S3_REGION = 'us-east-1', S3_BUCKET, S3_FORCE_PATH_STYLE = 'true', AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY } = env
  if (S3_ENDPOINT === undefined || S3_BUCKET === undefined || AWS_ACCESS_KEY_ID === undefined || AWS_SECRET_ACCESS_KEY === undefined) {
    throw new Error('no S3 engine: `source <rgw state dir>/env` (S3_ENDPOINT, S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), ' +
      'or `npm run services:start` (Ceph RGW on loopback; its settings go to .tap/rgw/env)')
  }
  return {
    endpoint: S3_ENDPOINT,
    region: S3_REGION,
    bucket: S3_BUCKET,
    forcePathStyle: S3_FORCE_PATH_STYLE === 'true',
    accessKeyId: AWS_ACCESS_KEY_ID,
    secretAccessKey: AWS_SECRET_ACCESS_KEY
  }
}

/** A key prefix of this run's own. */
export function benchPrefix (): string {
  return `bench-${randomBytes(6).toString('hex')}/`
}

/** The service's environment for this engine and prefix (through `endpoint` when given: the counting proxy). */
export function serviceS3Env (engine: Engine, prefix: string, endpoint = engine.endpoint): Record<string, string> {
  return {
    STORAGE: 's3',
    S3_ENDPOINT: endpoint,
    S3_REGION: engine.region,
    S3_BUCKET: engine.bucket,
    S3_FORCE_PATH_STYLE: String(engine.forcePathStyle),
    S3_PREFIX: prefix,
    AWS_ACCESS_KEY_ID: engine.accessKeyId,
    AWS_SECRET_ACCESS_KEY: engine.secretAccessKey
  }
}

/** A client configured as the service's (checksums only where S3 requires them). */
export function engineClient (engine: Engine): S3Client {
  // Not the SDK's notice that its 2027 releases will need Node 22, in every client process's output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  return new S3Client({
    endpoint: engine.endpoint,
    region: engine.region,
    forcePathStyle: engine.forcePathStyle,
    credentials: { accessKeyId: engine.accessKeyId, secretAccessKey: engine.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED'
  })
}

export interface Emptied {
  objects: number
  multipart: number
}

/** Removes every object and unfinished multipart upload under `prefix`; says how many. */
export async function emptyPrefix (engine: Engine, prefix: string): Promise<Emptied> {
  if (!/^bench-[0-9a-f]+\/$/.test(prefix)) throw new Error(`refusing to empty ${JSON.stringify(prefix)}: not a benchmark prefix`)
  const client = engineClient(engine)
  const emptied: Emptied = { objects: 0, multipart: 0 }
  try {
    for (;;) {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: engine.bucket, Prefix: prefix }))
      const objects = (listed.Contents ?? []).map((object) => ({ Key: object.Key as string }))
      if (objects.length === 0) break
      const deleted = await client.send(new DeleteObjectsCommand({ Bucket: engine.bucket, Delete: { Objects: objects, Quiet: true } }))
      if ((deleted.Errors ?? []).length > 0) throw new Error(`DeleteObjects under ${prefix}: ${JSON.stringify(deleted.Errors?.slice(0, 3))}`)
      emptied.objects += objects.length
    }
    for (;;) {
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: engine.bucket, Prefix: prefix }))
      if ((uploads.Uploads ?? []).length === 0) break
      for (const upload of uploads.Uploads ?? []) {
        await client.send(new AbortMultipartUploadCommand({ Bucket: engine.bucket, Key: upload.Key, UploadId: upload.UploadId }))
        emptied.multipart++
      }
    }
  } finally {
    client.destroy()
  }
  return emptied
}

/** Objects and unfinished multipart uploads under `prefix` (a check that a cleanup left nothing). */
export async function countUnder (engine: Engine, prefix: string): Promise<Emptied> {
  const client = engineClient(engine)
  try {
    let objects = 0
    let token: string | undefined
    do {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: engine.bucket, Prefix: prefix, ContinuationToken: token }))
      objects += listed.KeyCount ?? (listed.Contents ?? []).length
      token = listed.IsTruncated === true ? listed.NextContinuationToken : undefined
    } while (token !== undefined)
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: engine.bucket, Prefix: prefix }))
    return { objects, multipart: (uploads.Uploads ?? []).length }
  } finally {
    client.destroy()
  }
}

/** The engine's processes on this machine (Ceph: radosgw, ceph-osd, ceph-mon), by their command name. */
export function enginePids (): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim()
      if (['radosgw', 'ceph-osd', 'ceph-mon'].includes(comm)) pids.push(Number(entry))
    } catch { /* gone */ }
  }
  return pids
}

/** CPU seconds (all threads) the engine's processes used so far. */
export function engineCpu (pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + (cpuOf(pid).total || 0), 0)
}
