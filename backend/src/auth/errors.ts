/** The access JWT does not admit its bearer: forged, expired, for someone else, or malformed. */
export class UnauthorizedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnauthorizedError';
  }
}

/**
 * The token may well be valid, but the keys to check it cannot be fetched right now.
 * Clients should retry later rather than sign in again.
 */
export class IdentityUnavailableError extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
    this.name = 'IdentityUnavailableError';
  }
}
