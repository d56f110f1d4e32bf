// The SHA-256 ceiling of the service suite, in its own process (pinned to
// the server core): `node sha256-ceiling.js <bytes> <runs>` hashes <bytes>
// held in memory (a buffer of up to 64 MiB, repeated) <runs> times, and
// prints the rates in MB/s as a JSON array.
import { createHash, randomBytes } from 'node:crypto'

const bytes = Number(process.argv[2] ?? 1024 ** 3)
const runs = Number(process.argv[3] ?? 3)
const buffer = randomBytes(Math.min(bytes, 64 * 1024 * 1024))
const rates: number[] = []
for (let run = 0; run < runs; run++) {
  const started = process.hrtime.bigint()
  const hash = createHash('sha256')
  for (let done = 0; done < bytes; done += buffer.length) hash.update(buffer)
  hash.digest()
  rates.push(bytes / (Number(process.hrtime.bigint() - started) / 1e9) / 1e6)
}
process.stdout.write(`${JSON.stringify(rates)}\n`)
