// curl as a client, on the client core: one transfer, with what curl says
// about it (`-w`) and its own CPU time (the shell's `times`).
import type { CpuSplit } from './proc.js'
import { run } from './proc.js'

export interface CurlResult {
  status: number
  /** Body bytes curl sent (`%{size_upload}`). */
  uploaded: number
  /** Bytes of the request head (`%{size_request}`). */
  requestBytes: number
  localPort: number
  /** curl's total time, connection to the end of the answer. */
  seconds: number
  /** curl's own CPU time, user + system. */
  cpu: number
  /** The answer's body. */
  body: string
  error: string | null
}

/** `times` prints the shell's user and system time, then its children's: `0m1.234s 0m0.567s`. */
function childrenCpu (stderr: string): { cpu: number, rest: string } {
  const lines = stderr.trimEnd().split('\n')
  const children = lines.pop() ?? ''
  lines.pop()
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]))
  return { cpu: seconds.length === 2 ? seconds[0]! + seconds[1]! : Number.NaN, rest: lines.join('\n') }
}

export async function curl (split: CpuSplit, curlArgs: string[], maxSeconds: number): Promise<CurlResult> {
  const done = await run(...split.on('client', 'bash', ['-c', 'curl "$@"; code=$?; times >&2; exit $code', 'curl',
    '-sS', '--max-time', String(maxSeconds), '-o', '-',
    '-w', '\n%{http_code} %{size_upload} %{time_total} %{size_request} %{local_port}', ...curlArgs]),
  { timeoutMs: maxSeconds * 1000 + 10_000 })
  const lines = done.stdout.split('\n')
  const [status = '0', uploaded = '0', seconds = 'NaN', requestBytes = '0', localPort = '0'] = (lines.pop() ?? '').split(' ')
  const { cpu, rest } = childrenCpu(done.stderr)
  return {
    status: Number(status),
    uploaded: Number(uploaded),
    requestBytes: Number(requestBytes),
    localPort: Number(localPort),
    seconds: Number(seconds),
    cpu,
    body: lines.join('\n'),
    error: done.code === 0 ? null : `curl exited with ${String(done.code)}${done.timedOut ? ' (timed out)' : ''}: ${rest.trim()}`
  }
}

/** `curl 7.88.1`, say. */
export async function curlVersion (): Promise<string> {
  const done = await run('curl', ['--version'], { timeoutMs: 10_000 })
  return done.stdout.split('\n')[0]?.split(' ').slice(0, 2).join(' ') ?? 'curl'
}
