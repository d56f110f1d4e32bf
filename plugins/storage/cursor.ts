// Listing cursors, the same for every backend: opaque to clients and
// routes, made and checked here.
import { InvalidCursorError } from '../../errors.js'
import { isValidName } from './names.js'

/** The cursor of the page after the one that ended with `name`: the name as base64url. */
export function cursorAfter (name: string): string {
  return Buffer.from(name).toString('base64url')
}

/** The name a cursor stands for; `InvalidCursorError` (400) when it is not one `cursorAfter` made. */
export function nameOfCursor (cursor: string): string {
  const name = Buffer.from(cursor, 'base64url').toString()
  if (cursorAfter(name) !== cursor || !isValidName(name)) throw new InvalidCursorError()
  return name
}
