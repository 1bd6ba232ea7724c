/**
 * An error caused by the user's input (a bad file, a bad argument), as opposed to a bug.
 * The command line prints its message on one line and exits non-zero, without a stack trace.
 * The message should name the file or argument and the reason.
 */
export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UserError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
