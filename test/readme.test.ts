// The typed example in the plugin's README is test/readme/plugin-usage.ts,
// which `npm test` type-checks and runs: this keeps the two identical.
import { readFileSync } from 'node:fs'
import t from 'tap'

t.test('the plugin\'s README shows the usage example as it compiles', async (t) => {
  const readme = readFileSync(new URL('../plugins/upfront/README.md', import.meta.url), 'utf8')
  const example = readFileSync(new URL('./readme/plugin-usage.ts', import.meta.url), 'utf8')
  t.ok(readme.includes('```ts\n' + example + '```'), 'plugins/upfront/README.md holds test/readme/plugin-usage.ts')
})

t.test('the example runs', async (t) => {
  const { default: app } = await import('./readme/plugin-usage.js')
  t.teardown(() => app.close())
  const token = { authorization: 'Bearer let-me-in' }
  const refused = await app.inject({ method: 'PUT', url: '/avatars/ann', headers: { 'content-type': 'image/png' }, payload: Buffer.alloc(10) })
  t.equal(refused.statusCode, 401)
  const wrongType = await app.inject({ method: 'PUT', url: '/avatars/ann', headers: { 'content-type': 'image/gif', ...token }, payload: 'GIF89a' })
  t.equal(wrongType.json().code, 'UPFRONT_UNSUPPORTED_MEDIA_TYPE')
  const overPlan = await app.inject({ method: 'PUT', url: '/avatars/ann', headers: { 'content-type': 'image/png', ...token }, payload: Buffer.alloc(1024 * 1024 + 1) })
  t.same(overPlan.json(), {
    statusCode: 413,
    code: 'UPFRONT_BODY_TOO_LARGE',
    error: 'Payload Too Large',
    message: 'Content-Length of 1048577 bytes exceeds the 1048576-byte limit that your plan allows; send a smaller body'
  })
  const accepted = await app.inject({ method: 'PUT', url: '/avatars/ann', headers: { 'content-type': 'image/png', ...token }, payload: Buffer.alloc(10) })
  t.same(accepted.json(), { size: 10 })
  const stats = await app.inject({ method: 'GET', url: '/metrics/upfront', headers: token })
  t.same(stats.json(), { refused: { 'media-type': 1, 'too-large': 1 }, unsentBytes: 0, continued: 0 })
})
