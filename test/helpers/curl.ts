// curl as a real client: what it sent, what it got.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface CurlResult {
  /** The final answer's status (`%{http_code}`). */
  status: number
  /** Body bytes curl sent (`%{size_upload}`). */
  sizeUpload: number
  /** The final answer's body, as text. */
  body: string
  /** The final answer's body, as bytes. */
  bytes: Buffer
  /** curl's `-v` trace: `> ` lines it sent, `< ` lines it received. */
  trace: string
}

/** Runs `curl -sS -v` with `args`; the answer's body goes to a new file in `dir`. Rejects when curl fails. */
export async function curl (dir: string, args: readonly string[]): Promise<CurlResult> {
  const output = join(dir, `answer-${Math.random().toString(36).slice(2)}`)
  const { stdout, stderr } = await run('curl', ['-sS', '-v', '-o', output, '-w', '%{http_code} %{size_upload}', ...args])
  const [status, sizeUpload] = stdout.trim().split(' ')
  const bytes = readFileSync(output)
  return { status: Number(status), sizeUpload: Number(sizeUpload), body: bytes.toString(), bytes, trace: stderr }
}
