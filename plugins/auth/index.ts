// Who is asking: bearer tokens (static or JWT) and presigned URLs, checked
// in onRequest, before any body byte. A caller's own limit (a JWT claim, a
// grant's size) is handed to the expectation plugin, which owns every body
// limit.
import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
  RouteOptions
} from 'fastify'
import fp from 'fastify-plugin'
import { mediaTypeOf } from 'upfront/http'
import {
  AuthInvalidOptionError,
  GrantMediaTypeError,
  InvalidTokenError,
  MissingCredentialsError,
  PresignNotConfiguredError,
  UnsupportedSchemeError
} from '../../errors.js'
import { compileJwt } from './jwt.js'
import type { JwtOptions, TokenIdentity } from './jwt.js'
import { checkPathPrefix, checkSecret, hasSignature, signUpload, verifyUpload } from './presign.js'
import type { PresignedUpload, UploadGrant } from './presign.js'
import { B64TOKEN, compileStaticTokens } from './tokens.js'

export { publicKeyAlgorithms } from './jwt.js'
export type { JwtOptions } from './jwt.js'
export { PRESIGN_PARAMS, signUpload, verifyUpload } from './presign.js'
export type { PresignedUpload, SignUploadOptions, UploadGrant } from './presign.js'

export interface PresignOptions {
  /** HMAC-SHA256 key of presigned URLs: at least 32 bytes. */
  secret: string | Buffer
  /** Path under which a grant's name is mounted; begins and ends with `/`. Default `/files/`. */
  pathPrefix?: string
}

export interface AuthOptions {
  /** Static bearer tokens by principal: `{ alice: '<token>' }`. */
  tokens?: Readonly<Record<string, string>>
  /** JWT bearer tokens; their `sub` is the principal. */
  jwt?: JwtOptions
  /** Presigned upload URLs, made with `signUpload`. */
  presign?: PresignOptions
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false` lets requests to this route through without credentials. */
    auth?: boolean
  }
  interface FastifyRequest {
    /** Who made the request: a token's principal, a JWT's `sub` or a presigned grant's owner; null on routes with `config.auth: false`. */
    principal: string | null
    /** The caller's own body limit in bytes (a JWT's max-bytes claim, a grant's size), already applied; null when only the routes' limits apply. */
    callerMaxBytes: number | null
    /** The verified grant of a presigned request, else null. */
    presigned: PresignedUpload | null
  }
  interface FastifyInstance {
    /** `signUpload` with the plugin's presign secret and path prefix. */
    presignUpload: (grant: UploadGrant) => string
  }
}

// RFC 6750 §3: error_description is a quoted string of printable ASCII without `"` and `\`.
function quotable (text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '?')
}

function refuseUnauthenticated (reply: FastifyReply, done: HookHandlerDoneFunction, error: Error, description: string | null): void {
  reply.header('www-authenticate', description === null
    ? 'Bearer'
    : `Bearer error="invalid_token", error_description="${quotable(description)}"`)
  done(error)
}

const authPlugin: FastifyPluginAsync<AuthOptions> = async (fastify: FastifyInstance, opts: AuthOptions) => {
  const principalOfToken = compileStaticTokens(opts.tokens)
  const verifyJwt = compileJwt(opts.jwt)
  let presign: { secret: string | Buffer, pathPrefix: string } | null = null
  if (opts.presign !== undefined) {
    if (typeof opts.presign !== 'object' || opts.presign === null) throw new AuthInvalidOptionError('presign', 'expected an object')
    presign = { secret: checkSecret('presign.secret', opts.presign.secret), pathPrefix: checkPathPrefix('presign.pathPrefix', opts.presign.pathPrefix) }
  }
  const hasTokens = opts.tokens !== undefined && Object.keys(opts.tokens).length > 0
  if (!hasTokens && verifyJwt === null && presign === null) {
    throw new AuthInvalidOptionError('tokens', 'no credentials would be accepted; set tokens, jwt or presign')
  }

  fastify.decorateRequest('principal', null)
  fastify.decorateRequest('callerMaxBytes', null)
  fastify.decorateRequest('presigned', null)
  fastify.decorate('presignUpload', (grant: UploadGrant): string => {
    if (presign === null) throw new PresignNotConfiguredError()
    return signUpload(grant, presign.secret, { pathPrefix: presign.pathPrefix })
  })

  fastify.addHook('onRoute', (route: RouteOptions) => {
    const auth = route.config?.auth
    if (auth !== undefined && typeof auth !== 'boolean') {
      throw new AuthInvalidOptionError(`config.auth of route ${String(route.method)} ${route.url}`, 'expected true or false')
    }
  })

  /** Admits a caller: its principal, and its own limit through the expectation plugin (a 413 when the declared body is over it). */
  function admit (request: FastifyRequest, done: HookHandlerDoneFunction, principal: string, maxBytes: number | null, source: string): void {
    request.principal = principal
    request.callerMaxBytes = maxBytes
    if (maxBytes !== null) {
      try {
        fastify.upfront.limitBody(request, maxBytes, source)
      /* c8 ignore start -- limitBody throws only once upfront's checks (preParsing) have run, or for a byte count it refuses: from onRequest, with a limit checked as a positive whole number, never */
      } catch (error) {
        done(error as Error)
        return
      }
      /* c8 ignore stop */
    }
    done()
  }

  function admitPresigned (request: FastifyRequest, done: HookHandlerDoneFunction, settings: { secret: string | Buffer, pathPrefix: string }): void {
    let grant: PresignedUpload
    try {
      grant = verifyUpload(request, settings.secret, { pathPrefix: settings.pathPrefix })
    } catch (error) {
      done(error as Error)
      return
    }
    request.presigned = grant
    const contentType = request.headers['content-type']
    if (grant.contentType !== null && (contentType === undefined || mediaTypeOf(contentType) !== grant.contentType)) {
      done(new GrantMediaTypeError(contentType === undefined ? '(none)' : JSON.stringify(contentType), grant.contentType))
      return
    }
    admit(request, done, grant.owner, grant.maxBytes, 'that this presigned URL allows')
  }

  const admitToken = (request: FastifyRequest, done: HookHandlerDoneFunction, identity: TokenIdentity): void => {
    admit(request, done, identity.principal, identity.maxBytes, 'that your token allows')
  }
  const refuseToken = (reply: FastifyReply, done: HookHandlerDoneFunction, error: Error): void => {
    if (error instanceof InvalidTokenError) refuseUnauthenticated(reply, done, error, error.message.replace(/^Invalid bearer token: /, ''))
    else done(error)
  }

  fastify.addHook('onRequest', function authenticate (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    if (request.routeOptions.config.auth === false) {
      done()
      return
    }
    const authorization = request.headers.authorization
    if (authorization === undefined) {
      if (presign !== null && hasSignature(request.url)) {
        admitPresigned(request, done, presign)
        return
      }
      refuseUnauthenticated(reply, done, new MissingCredentialsError(), null)
      return
    }
    const space = authorization.indexOf(' ')
    const scheme = space === -1 ? authorization : authorization.slice(0, space)
    const token = space === -1 ? '' : authorization.slice(space + 1).trim()
    if (scheme.toLowerCase() !== 'bearer') {
      refuseUnauthenticated(reply, done, new UnsupportedSchemeError(), null)
      return
    }
    if (token === '') {
      refuseUnauthenticated(reply, done, new MissingCredentialsError(), null)
      return
    }
    if (!B64TOKEN.test(token)) {
      refuseToken(reply, done, new InvalidTokenError('it is malformed; send the token exactly as it was issued'))
      return
    }
    const principal = principalOfToken(token)
    if (principal !== null) {
      admitToken(request, done, { principal, maxBytes: null })
      return
    }
    if (verifyJwt === null) {
      refuseToken(reply, done, new InvalidTokenError('it is not a known API token; send a valid token'))
      return
    }
    let identity: TokenIdentity | Promise<TokenIdentity>
    try {
      identity = verifyJwt(token)
    } catch (error) {
      refuseToken(reply, done, error as Error)
      return
    }
    if (identity instanceof Promise) {
      identity.then((verified) => { admitToken(request, done, verified) }, (error: Error) => { refuseToken(reply, done, error) })
    } else {
      admitToken(request, done, identity)
    }
  })
}

/** Bearer tokens (static or JWT) and presigned URLs, checked in onRequest, before any body byte. */
export const auth = fp(authPlugin, { name: 'upfront-auth', fastify: '5.x', dependencies: ['upfront'] })
export default auth
