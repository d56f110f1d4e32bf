// Every error the plugin raises, once. Each constructor's type is spelled
// out with @fastify/error's named type, so that the emitted declarations
// resolve under every `moduleResolution` (a declaration that reaches the
// type through the default import's namespace does not, under `bundler`).
import createError from '@fastify/error'
import type { FastifyErrorConstructor } from '@fastify/error'

// Client errors are expected traffic, not bugs: no stack trace is captured,
// which keeps a flood of refusals as cheap as the refusal itself.
const noStack = false

/** 417: an `Expect` member other than `100-continue` (RFC 9110 §10.1.1). Argument: the member, quoted. */
export const ExpectationFailedError: FastifyErrorConstructor<{ code: 'UPFRONT_EXPECTATION_FAILED', statusCode: 417 }, [string]> = createError(
  'UPFRONT_EXPECTATION_FAILED',
  'Unsupported expectation %s: this server only supports "100-continue"; retry the request without the Expect header',
  417,
  Error,
  noStack
)

/**
 * 413: a declared `Content-Length` over the request's limit. Arguments: the
 * declared bytes, the limit in bytes, and whose limit it is, as a phrase
 * that completes "the N-byte limit …" ("of this route", "that your token
 * allows").
 */
export const BodyTooLargeError: FastifyErrorConstructor<{ code: 'UPFRONT_BODY_TOO_LARGE', statusCode: 413 }, [number, number, string]> = createError(
  'UPFRONT_BODY_TOO_LARGE',
  'Content-Length of %d bytes exceeds the %d-byte limit %s; send a smaller body',
  413,
  Error,
  noStack
)

/**
 * 413: bytes counted while they arrive passed a limit. Arguments: what
 * passed it ("The request body", "A file of the form"), the limit in
 * bytes, and whose limit it is (as for `BodyTooLargeError`). Same code as
 * the declared case: one limit, one code, wherever it is detected.
 */
export const StreamTooLargeError: FastifyErrorConstructor<{ code: 'UPFRONT_BODY_TOO_LARGE', statusCode: 413 }, [string, number, string]> = createError(
  'UPFRONT_BODY_TOO_LARGE',
  '%s exceeds the %d-byte limit %s; send a smaller body',
  413,
  Error,
  noStack
)

/** 415: a `Content-Type` outside the route's list. Arguments: the type sent (quoted, or "(none)"), the accepted list. */
export const UnsupportedMediaTypeError: FastifyErrorConstructor<{ code: 'UPFRONT_UNSUPPORTED_MEDIA_TYPE', statusCode: 415 }, [string, string]> = createError(
  'UPFRONT_UNSUPPORTED_MEDIA_TYPE',
  'Content-Type %s is not accepted by this route; send one of: %s',
  415,
  Error,
  noStack
)

/** 417 standing for a 401 or 403, with `authRefusal: 'expectation-failed'`. Arguments: the status and its reason phrase. */
export const RefusedBeforeBodyError: FastifyErrorConstructor<{ code: 'UPFRONT_REFUSED_BEFORE_BODY', statusCode: 417 }, [number, string]> = createError(
  'UPFRONT_REFUSED_BEFORE_BODY',
  'The request was refused with %d (%s) before its body was sent; fix the credentials, then send the request again',
  417,
  Error,
  noStack
)

/** Thrown at `register` (or by a decorator) for a bad option or argument. Arguments: the option's name, what is wrong. */
export const InvalidOptionError: FastifyErrorConstructor<{ code: 'UPFRONT_INVALID_OPTION' }, [string, string]> = createError(
  'UPFRONT_INVALID_OPTION',
  'Invalid upfront option "%s": %s',
  500,
  TypeError
)

/** Thrown at `register` when the plugin is already on this server. */
export const AlreadyRegisteredError: FastifyErrorConstructor<{ code: 'UPFRONT_ALREADY_REGISTERED' }, []> = createError(
  'UPFRONT_ALREADY_REGISTERED',
  'The upfront plugin is already registered on this server; register it once, at the root of the app',
  500
)
