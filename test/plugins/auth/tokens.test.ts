// Static API tokens (plugins/auth/tokens.ts): the principal a token names,
// compared in constant time; the map checked at register.
import t from 'tap'
import { build, invalidToken, refusesOptions, withToken } from '../../helpers/auth.js'
import { aliceToken, bobToken } from '../../helpers/credentials.js'

t.test('each static token names its principal, a near miss names none', async (t) => {
  const app = await build(t, { tokens: { alice: aliceToken, bob: bobToken } })

  for (const [principal, token] of [['alice', aliceToken], ['bob', bobToken]] as const) {
    const res = await app.inject({ url: '/whoami', headers: withToken(token) })
    t.equal(res.statusCode, 200, principal)
    t.same(res.json(), { principal, callerMaxBytes: null, presigned: null })
  }

  const unknown = 'it is not a known API token; send a valid token'
  for (const token of [aliceToken.replace('0', '1'), aliceToken.slice(0, -1), `${aliceToken}0`, bobToken.toUpperCase()]) {
    const wrong = await app.inject({ url: '/whoami', headers: withToken(token) })
    t.equal(wrong.statusCode, 401, token)
    t.equal(wrong.headers['www-authenticate'], `Bearer error="invalid_token", error_description="${unknown}"`)
    t.same(wrong.json(), invalidToken(unknown))
  }
})

t.test('the map of tokens is checked at register', async (t) => {
  await refusesOptions(t, [
    [{ tokens: [aliceToken] }, 'tokens', 'expected an object of principal: token'],
    [{ tokens: 'alice' }, 'tokens', 'expected an object of principal: token'],
    [{ tokens: null }, 'tokens', 'expected an object of principal: token'],
    [{ tokens: { '': aliceToken } }, 'tokens', 'a principal is empty'],
    [{ tokens: { alice: 'short' } }, 'tokens.alice', 'expected at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (RFC 6750 bearer token syntax)'],
    [{ tokens: { alice: `${aliceToken} x` } }, 'tokens.alice', 'expected at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (RFC 6750 bearer token syntax)'],
    [{ tokens: { alice: 42 } }, 'tokens.alice', 'expected at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (RFC 6750 bearer token syntax)'],
    [{ tokens: { alice: aliceToken, bob: aliceToken } }, 'tokens.bob', 'another principal has the same token; give each principal its own']
  ])
})
