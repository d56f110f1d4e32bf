// Behind HAProxy, as the README's deployment notes say: the proxy passes the
// 100-continue exchange through, so refusals still come before the body.
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { curl } from '../helpers/curl.js'
import { freePort } from '../helpers/net.js'
import { BACKENDS, bearer, scratch, startService } from '../helpers/service.js'

for (const backend of BACKENDS) {
  t.test(`HAProxy in front: accepted through it, refused before the body through it, on ${backend}`, async (t) => {
    const { port: servicePort } = await startService(t, { MAX_UPLOAD_BYTES: String(4 * 1024 * 1024) }, backend)
    const proxyPort = await freePort()
    const dir = scratch(t, { 'three.bin': Buffer.alloc(3 * 1024 * 1024, 3), 'five.bin': Buffer.alloc(5 * 1024 * 1024, 5) })
    const config = join(dir, 'haproxy.cfg')
    writeFileSync(config, [
      'defaults',
      '  mode http',
      '  timeout connect 5s',
      '  timeout client 30s',
      '  timeout server 30s',
      'frontend uploads',
      `  bind 127.0.0.1:${proxyPort}`,
      '  default_backend service',
      'backend service',
      `  server upfront 127.0.0.1:${servicePort}`,
      ''
    ].join('\n'))
    const proxy = spawn('haproxy', ['-f', config, '-db'], { stdio: 'ignore' })
    t.teardown(() => { proxy.kill('SIGKILL') })
    // Wait until it accepts connections.
    const base = `http://127.0.0.1:${proxyPort}`
    for (let i = 0; i < 100; i++) {
      try {
        await curl(dir, [`${base}/healthz`])
        break
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    /** [status, body bytes curl sent] */
    const upload = async (args: string[]): Promise<[number, number]> => {
      const { status, sizeUpload } = await curl(dir, args)
      return [status, sizeUpload]
    }
    const auth = ['-H', bearer('alice')]

    t.same(await upload([...auth, '-T', join(dir, 'three.bin'), `${base}/files/three.bin`]), [201, 3 * 1024 * 1024], 'accepted through the proxy')
    t.same(await upload(['-T', join(dir, 'three.bin'), `${base}/files/x.bin`]), [401, 0], 'no token: nothing sent, through the proxy')
    t.same(await upload([...auth, '-T', join(dir, 'five.bin'), `${base}/files/x.bin`]), [413, 0], 'too large: nothing sent, through the proxy')
  })
}
