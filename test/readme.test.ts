// The typed example in the README is test/readme/plugin-usage.ts, which
// `npm test` type-checks: this keeps the two identical.
import { readFileSync } from 'node:fs'
import t from 'tap'

t.test('the README shows the plugin usage example as it compiles', async (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const example = readFileSync(new URL('./readme/plugin-usage.ts', import.meta.url), 'utf8')
  t.ok(readme.includes('```ts\n' + example + '```'), 'README.md holds test/readme/plugin-usage.ts')
})

t.test('the example runs', async (t) => {
  const { default: app } = await import('./readme/plugin-usage.js')
  t.teardown(() => app.close())
  const refused = await app.inject({ method: 'PUT', url: '/avatars/ann', headers: { 'content-type': 'image/png' }, payload: Buffer.alloc(10) })
  t.equal(refused.statusCode, 401)
  const wrongType = await app.inject({ method: 'PUT', url: '/avatars/ann', headers: { 'content-type': 'image/gif', authorization: 'Bearer let-me-in' }, payload: 'GIF89a' })
  t.equal(wrongType.json().code, 'UPFRONT_UNSUPPORTED_MEDIA_TYPE')
  const accepted = await app.inject({ method: 'PUT', url: '/avatars/ann', headers: { 'content-type': 'image/png', authorization: 'Bearer let-me-in' }, payload: Buffer.alloc(10) })
  t.same(accepted.json(), { size: 10 })
  const stats = await app.inject({ method: 'GET', url: '/metrics/upfront', headers: { authorization: 'Bearer let-me-in' } })
  t.same(stats.json(), { refused: { 'media-type': 1 }, unsentBytes: 0, continued: 0 })
})
