import { ERROR_MESSAGES, HTTP_ERROR_STATUS, type ErrorCode, type HttpErrorResponse } from '@switchboard/contract';

/** The HTTP status of each code the HTTP API answers with (400 for any other); part of the contract. */
export const ERROR_STATUS = HTTP_ERROR_STATUS;

/** An error with a contract code; the HTTP error handler turns it into the JSON body. */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string = ERROR_MESSAGES[code],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = ERROR_STATUS[code] ?? 400;
  }

  body(): HttpErrorResponse {
    return { error: { code: this.code, message: this.message } };
  }
}

/** A JSON body that does not parse: the same answer from Express's parser and from the raw route. */
export const notJsonError = (): ApiError => new ApiError('invalid_request', 'the body is not valid JSON');
