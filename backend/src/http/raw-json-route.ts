import type { IncomingMessage, ServerResponse } from 'node:http';
import { notJsonError, type ApiError } from './errors.js';

export interface RawJsonRouteOptions<Context> {
  method: string;
  /** Matched exactly (no query string, no trailing slash); variants go to Express. */
  path: string;
  /** Bodies declared larger than this go to Express, which refuses them with 413. */
  limitBytes: number;
  /** Headers every answer carries (security, CORS), as a flat `[name, value, ...]` list. */
  headers(req: IncomingMessage): string[];
  /**
   * Runs first, like an authentication middleware, while the body is read; reject to
   * refuse. Its refusal wins over a bad body, as in Express.
   */
  before(req: IncomingMessage): Promise<Context>;
  handle(context: Context, body: unknown): Promise<{ status: number; body: unknown }>;
  /** Turns anything thrown into the error the Express error handler would send. */
  toApiError(error: unknown, req: IncomingMessage): ApiError;
}

/** What express.json() accepts without further checks: JSON, UTF-8 (its default charset). */
const JSON_TYPE = /^application\/json\s*(?:;\s*charset="?utf-8"?\s*)?$/i;
/** express.json() in strict mode: after whitespace, an object or an array. */
const STRICT_START = /^[ \t\n\r]*[[{]/;

const NOT_JSON = Symbol('not JSON');

/** The body as express.json() in strict mode reads it, or NOT_JSON where it answers 400. */
function strictJson(chunks: Buffer[]): unknown {
  let text = (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString('utf8');
  // express.json() decodes through iconv-lite, which drops a byte order mark.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.length === 0) return {};
  if (!STRICT_START.test(text)) return NOT_JSON;
  try {
    return JSON.parse(text);
  } catch {
    return NOT_JSON;
  }
}

/**
 * Serves one hot JSON route straight on node:http. Express 5's router, body parser
 * and response helpers cost ~100 µs of CPU per request on a small core, more than
 * everything the route itself does; this answers byte-for-byte as the Express route
 * would (same status, body and headers) for the requests it takes, and takes only the
 * plain ones: the exact method and path, a JSON body with a Content-Length within the
 * limit, no Content-Encoding. Anything else returns false and goes to Express.
 */
export function rawJsonRoute<Context>(
  options: RawJsonRouteOptions<Context>,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const send = (req: IncomingMessage, res: ServerResponse, status: number, body: unknown, extra: string[]) => {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, [
      ...options.headers(req),
      ...extra,
      'Content-Type',
      'application/json; charset=utf-8',
      'Content-Length',
      String(Buffer.byteLength(text)),
    ]);
    res.end(text);
  };
  const fail = (req: IncomingMessage, res: ServerResponse, error: unknown): void => {
    const apiError = options.toApiError(error, req);
    send(req, res, apiError.status, apiError.body(), Object.entries(apiError.headers).flat());
  };

  return (req, res) => {
    if (req.method !== options.method || req.url !== options.path) return false;
    const { headers } = req;
    const type = headers['content-type'];
    const length = Number(headers['content-length'] ?? Number.NaN);
    if (
      type === undefined ||
      !JSON_TYPE.test(type) ||
      headers['content-encoding'] !== undefined ||
      headers['transfer-encoding'] !== undefined ||
      !Number.isSafeInteger(length) ||
      length > options.limitBytes
    ) {
      return false;
    }

    const context = options.before(req);
    // Settled once the body is in; a refusal before then is not unhandled.
    context.catch(() => undefined);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
    });
    req.on('end', () => {
      context
        .then(async (who) => {
          const body = strictJson(chunks);
          if (body === NOT_JSON) {
            fail(req, res, notJsonError());
            return;
          }
          const result = await options.handle(who, body);
          send(req, res, result.status, result.body, []);
        })
        .catch((error: unknown) => {
          fail(req, res, error);
        });
    });
    return true;
  };
}
