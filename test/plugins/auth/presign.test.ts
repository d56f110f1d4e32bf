// Presigned upload URLs (plugins/auth/presign.ts): signed, verified, and
// refused when anything in them was changed; options checked at register.
import t from 'tap'
import { signUpload, verifyUpload } from '../../../plugins/auth/index.js'
import type { UploadGrant } from '../../../plugins/auth/index.js'
import { build, forbidden, inSeconds, MISMATCH, MISSING, presignInvalid, refusesOptions, withToken } from '../../helpers/auth.js'
import { aliceToken, presignSecret } from '../../helpers/credentials.js'

/** The error `verifyUpload` throws. */
function presignInvalidError (reason: string): { code: string, statusCode: number, message: string } {
  return { code: 'UPFRONT_FORBIDDEN', statusCode: 403, message: `This presigned URL is not valid for this request: ${reason}; use the URL exactly as it was issued, or ask for a new one` }
}

t.test('presigned uploads', async (t) => {
  const app = await build(t, { tokens: { alice: aliceToken }, presign: { secret: presignSecret } })
  const grant: UploadGrant = { owner: 'alice', name: 'photos/2024 summer/beach.png', maxBytes: 10, contentType: 'image/png', expiresAt: inSeconds(60) }
  const url = signUpload(grant, presignSecret)
  t.match(url, /^\/files\/photos\/2024%20summer\/beach\.png\?upfront-owner=alice&upfront-max-bytes=10&upfront-content-type=image%2Fpng&upfront-expires=\d+&upfront-signature=[A-Za-z0-9_-]{43}$/)
  t.equal(app.presignUpload(grant), url, 'the decorator signs with the plugin\'s secret')

  const put = async (target: string, headers: Record<string, string> = { 'content-type': 'image/png' }, payload = 'png bytes') =>
    await app.inject({ method: 'PUT', url: target, headers, payload })

  const good = await put(url)
  t.equal(good.statusCode, 200)
  t.same(good.json(), {
    principal: 'alice',
    callerMaxBytes: 10,
    presigned: { owner: 'alice', name: 'photos/2024 summer/beach.png', maxBytes: 10, contentType: 'image/png', expiresAt: grant.expiresAt, method: 'PUT' }
  })
  t.equal((await put(url, { 'content-type': 'Image/PNG; charset=binary' })).statusCode, 200, 'the media type is compared without case or parameters')

  const anyType = signUpload({ ...grant, contentType: undefined }, presignSecret)
  const untyped = await put(anyType, { 'content-type': 'text/plain' })
  t.equal(untyped.statusCode, 200, 'a grant without a type takes any')
  t.equal(untyped.json().presigned.contentType, null)

  const tooLarge = await put(url, { 'content-type': 'image/png' }, '0123456789!')
  t.equal(tooLarge.statusCode, 413)
  t.same(tooLarge.json(), {
    statusCode: 413,
    code: 'UPFRONT_BODY_TOO_LARGE',
    error: 'Payload Too Large',
    message: 'Content-Length of 11 bytes exceeds the 10-byte limit that this presigned URL allows; send a smaller body'
  })
  const wrongType = await put(url, { 'content-type': 'image/gif' })
  t.equal(wrongType.statusCode, 415)
  t.same(wrongType.json(), {
    statusCode: 415,
    code: 'UPFRONT_UNSUPPORTED_MEDIA_TYPE',
    error: 'Unsupported Media Type',
    message: 'Content-Type "image/gif" is not the one this presigned URL was issued for; send the body with Content-Type: image/png'
  })
  const noType = await put(url, {})
  t.equal(noType.json().message,
    'Content-Type (none) is not the one this presigned URL was issued for; send the body with Content-Type: image/png')

  const expired = signUpload({ ...grant, expiresAt: 1_700_000_000 }, presignSecret)
  const late = await put(expired)
  t.equal(late.statusCode, 403)
  t.same(late.json(), forbidden('This presigned URL expired at 2023-11-14T22:13:20.000Z; ask for a new one'))

  const post = await app.inject({ method: 'POST', url, headers: { 'content-type': 'image/png' }, payload: 'x' })
  t.equal(post.statusCode, 403)
  t.same(post.json(), forbidden('A presigned URL is only valid for PUT, not POST; send the upload with PUT'))

  const [path, query] = url.split('?') as [string, string]
  const withParam = (name: string, value: string | null): string => {
    const params = new URLSearchParams(query)
    if (value === null) params.delete(name)
    else params.set(name, value)
    return `${path}?${params.toString()}`
  }
  const signature = new URLSearchParams(query).get('upfront-signature') as string
  const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1)
  // The last of 43 base64url characters carries 4 bits: the next one up
  // decodes to the same bytes, and must still be refused.
  const lastSpelling = signature.slice(0, -1) + String.fromCharCode(signature.charCodeAt(42) + 1)
  const tampered: Array<[string, string, object]> = [
    ['another owner', withParam('upfront-owner', 'bob'), presignInvalid(MISMATCH)],
    ['a larger size', withParam('upfront-max-bytes', '11'), presignInvalid(MISMATCH)],
    ['another type', withParam('upfront-content-type', 'image/gif'), presignInvalid(MISMATCH)],
    ['no type', withParam('upfront-content-type', null), presignInvalid(MISMATCH)],
    ['a later expiry', withParam('upfront-expires', String(grant.expiresAt + 1)), presignInvalid(MISMATCH)],
    ['another signature', withParam('upfront-signature', flipped), presignInvalid(MISMATCH)],
    ['another spelling of the signature', withParam('upfront-signature', lastSpelling), presignInvalid(MISMATCH)],
    ['another name', url.replace('beach.png', 'beach2.png'), presignInvalid(MISMATCH)],
    ['another spelling of the path', url.replace('%20', '+'), presignInvalid(MISMATCH)],
    ['another prefix', url.replace('/files/', '/files/x/'), presignInvalid(MISMATCH)],
    ['a type added', `${anyType}&upfront-content-type=image%2Fpng`, presignInvalid(MISMATCH)],
    ['a repeated parameter', `${url}&upfront-owner=bob`, presignInvalid('parameter upfront-owner is repeated')],
    ['no owner', withParam('upfront-owner', null), presignInvalid('parameter upfront-owner is missing')],
    ['an empty type', withParam('upfront-content-type', ''), presignInvalid('parameter upfront-content-type is empty')],
    ['a size of 0', withParam('upfront-max-bytes', '0'), presignInvalid('parameter upfront-max-bytes is not a positive whole number')],
    ['a size in words', withParam('upfront-max-bytes', 'ten'), presignInvalid('parameter upfront-max-bytes is not a positive whole number')],
    ['a huge size', withParam('upfront-max-bytes', '9007199254740993'), presignInvalid('parameter upfront-max-bytes is not a positive whole number')],
    ['an expiry with a sign', withParam('upfront-expires', `+${grant.expiresAt}`), presignInvalid('parameter upfront-expires is not a positive whole number')],
    ['a short signature', withParam('upfront-signature', signature.slice(1)), presignInvalid('parameter upfront-signature is not a signature')]
  ]
  for (const [name, target, body] of tampered) {
    const res = await put(target)
    t.equal(res.statusCode, 403, name)
    t.same(res.json(), body, name)
    t.equal(res.headers['www-authenticate'], undefined, name)
  }

  const withBearer = await app.inject({ method: 'PUT', url, headers: { ...withToken(aliceToken), 'content-type': 'image/gif' }, payload: '0123456789!' })
  t.same(withBearer.json(), { principal: 'alice', callerMaxBytes: null, presigned: null }, 'a bearer token wins over presign parameters')
  const unsigned = await app.inject({ method: 'PUT', url: '/files/a.png?upfront-owner=alice', payload: 'x' })
  t.same(unsigned.json(), MISSING, 'without a signature parameter, a request is just unauthenticated')
})

t.test('signUpload and verifyUpload', async (t) => {
  const grant: UploadGrant = { owner: 'alice', name: 'a.txt', maxBytes: 10, expiresAt: inSeconds(60) }
  const url = signUpload(grant, presignSecret)
  t.same(verifyUpload({ method: 'PUT', url }, presignSecret), { ...grant, contentType: null, method: 'PUT' })
  t.throws(() => verifyUpload({ method: 'PUT', url: '/files/a.txt' }, presignSecret), presignInvalidError('parameter upfront-owner is missing'))
  const badEncoding = url.replace('a.txt', '%E0%A4%A')
  t.throws(() => verifyUpload({ method: 'PUT', url: badEncoding }, presignSecret), presignInvalidError(MISMATCH))

  const invalid: Array<[Partial<UploadGrant>, string]> = [
    [{ owner: '' }, 'owner must be a non-empty string'],
    [{ name: '' }, 'name must be a non-empty string'],
    [{ maxBytes: 0 }, 'maxBytes must be a positive whole number'],
    [{ maxBytes: 1.5 }, 'maxBytes must be a positive whole number'],
    [{ contentType: 'image/png; charset=x' }, 'contentType must be a lower-case media type without parameters, such as "image/png"'],
    [{ contentType: 'Image/PNG' }, 'contentType must be a lower-case media type without parameters, such as "image/png"'],
    [{ expiresAt: Date.now() }, 'expiresAt must be a Unix time in seconds'],
    [{ expiresAt: 1.5 }, 'expiresAt must be a Unix time in seconds'],
    [{ expiresAt: 0 }, 'expiresAt must be a Unix time in seconds'],
    [{ method: 'POST' as 'PUT' }, 'method must be "PUT"']
  ]
  for (const [change, reason] of invalid) {
    t.throws(() => signUpload({ ...grant, ...change }, presignSecret), { code: 'UPFRONT_INVALID_GRANT', message: `Invalid upload grant: ${reason}` }, reason)
  }
  t.throws(() => signUpload(grant, 'short'), {
    code: 'UPFRONT_AUTH_INVALID_OPTION',
    message: 'Invalid upfront-auth option "secret": expected a string or Buffer of at least 32 bytes'
  })
  t.throws(() => verifyUpload({ method: 'PUT', url }, presignSecret, { pathPrefix: 'files' }), {
    code: 'UPFRONT_AUTH_INVALID_OPTION',
    message: 'Invalid upfront-auth option "pathPrefix": expected a path that begins and ends with "/", such as "/files/"'
  })
})

t.test('presign options are checked at register', async (t) => {
  await refusesOptions(t, [
    [{ presign: {} }, 'presign.secret', 'expected a string or Buffer of at least 32 bytes'],
    [{ presign: { secret: presignSecret, pathPrefix: '/files' } }, 'presign.pathPrefix', 'expected a path that begins and ends with "/", such as "/files/"']
  ])
})
