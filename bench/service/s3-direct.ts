// The direct reference of the S3 PUT figure, as a process of its own:
// `node s3-direct.js '<json DirectConfig>'` uploads a file to the engine
// with @aws-sdk/lib-storage's Upload (a file stream, the service's part
// size and queue size, checksums only where S3 requires them), checks the
// stored size with HeadObject, deletes the object, and prints one JSON line
// (DirectResult). The engine's settings come from the environment, as
// s3-engine.ts reads them.
import { createReadStream, statSync } from 'node:fs'
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { toJson } from '../lib/json.js'
import { engineClient, engineSettings } from './s3-engine.js'

export interface DirectConfig {
  file: string
  key: string
  partSize: number
  queueSize: number
}

export interface DirectResult {
  /** From the Upload's creation to its end (CompleteMultipartUpload answered). */
  seconds: number
  bytes: number
  /** HeadObject's ContentLength. */
  storedBytes: number
  /** This process's CPU seconds (user + system) for the upload. */
  cpu: number
  deleted: boolean
}

const config = JSON.parse(process.argv[2] ?? '{}') as DirectConfig
const engine = engineSettings()
const client = engineClient(engine)
const bytes = statSync(config.file).size
const cpuBefore = process.cpuUsage()
const started = process.hrtime.bigint()
const upload = new Upload({
  client,
  params: { Bucket: engine.bucket, Key: config.key, Body: createReadStream(config.file), ContentType: 'application/octet-stream' },
  partSize: config.partSize,
  queueSize: config.queueSize,
  leavePartsOnError: false
})
await upload.done()
const seconds = Number(process.hrtime.bigint() - started) / 1e9
const cpuUsed = process.cpuUsage(cpuBefore)
const head = await client.send(new HeadObjectCommand({ Bucket: engine.bucket, Key: config.key }))
await client.send(new DeleteObjectCommand({ Bucket: engine.bucket, Key: config.key }))
client.destroy()
const result: DirectResult = {
  seconds,
  bytes,
  storedBytes: head.ContentLength ?? -1,
  cpu: (cpuUsed.user + cpuUsed.system) / 1e6,
  deleted: true
}
process.stdout.write(`${toJson(result)}\n`)
