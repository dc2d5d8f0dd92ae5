import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How the fake answers the next client-secret requests. */
export type FakeOpenAiBehaviour =
  | {
      kind: 'ok';
      /** Answer an `expires_at` this many seconds away instead of the one asked for. */ expiresInSeconds?: number;
    }
  /** Accept the request and never answer. */
  | { kind: 'stall' }
  | { kind: 'status'; status: number; retryAfter?: string };

export interface ClientSecretCall {
  authorization: string | undefined;
  body: { expires_after?: { anchor?: string; seconds?: number }; session?: Record<string, unknown> };
}

export interface SdpCall {
  authorization: string | undefined;
  contentType: string | undefined;
  sdp: string;
}

export interface FakeOpenAi {
  /** The API base, as OPENAI_BASE_URL takes it: `http://127.0.0.1:<port>/v1`. */
  readonly baseUrl: string;
  /** Every well-formed client-secret request, in order. */
  readonly calls: ClientSecretCall[];
  /** Every secret handed out. */
  readonly minted: string[];
  /** SDP offers POSTed to `/v1/realtime/calls`. */
  readonly sdpOffers: SdpCall[];
  behave(behaviour: FakeOpenAiBehaviour): void;
  close(): Promise<void>;
}

const SECRETS = '/v1/realtime/client_secrets';
const CALLS = '/v1/realtime/calls';

/**
 * A local stand-in for the provider's REST API, following its published shape:
 * `POST /v1/realtime/client_secrets` `{expires_after, session}` → `{value, expires_at, session}`,
 * with errors as `{error: {message, type, code}}`. It refuses a wrong key with 401 and a
 * message that echoes the key, as the provider does in part, so a test can prove that no
 * error text reaches a log. `POST /v1/realtime/calls` records the browser's SDP offer and
 * answers 503: no real media server stands behind it.
 */
export async function startFakeOpenAi(apiKey: string): Promise<FakeOpenAi> {
  const calls: ClientSecretCall[] = [];
  const minted: string[] = [];
  const sdpOffers: SdpCall[] = [];
  let behaviour: FakeOpenAiBehaviour = { kind: 'ok' };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res
      .writeHead(status, { 'content-type': 'application/json', 'access-control-allow-origin': '*', ...headers })
      .end(JSON.stringify(body));
  };
  const error = (res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}) => {
    send(res, status, { error: { message, type: 'invalid_request_error', code: null, param: null } }, headers);
  };
  const readBody = async (req: IncomingMessage): Promise<string> => {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    return text;
  };

  const clientSecret = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const authorization = req.headers.authorization;
    if (authorization !== `Bearer ${apiKey}`) {
      error(res, 401, `Incorrect API key provided: ${authorization?.replace(/^Bearer /, '') ?? ''}.`);
      return;
    }
    let body: ClientSecretCall['body'];
    try {
      body = JSON.parse(await readBody(req)) as ClientSecretCall['body'];
    } catch {
      error(res, 400, 'We could not parse the JSON body of your request.');
      return;
    }
    const seconds = body.expires_after?.seconds;
    if (body.expires_after?.anchor !== 'created_at' || typeof seconds !== 'number' || seconds < 10 || seconds > 7200) {
      error(res, 400, 'expires_after.seconds must be between 10 and 7200, anchored at created_at.');
      return;
    }
    if (body.session?.type !== 'realtime') {
      error(res, 400, "session.type must be 'realtime'.");
      return;
    }
    calls.push({ authorization, body });
    const current = behaviour;
    if (current.kind === 'stall') return;
    if (current.kind === 'status') {
      error(
        res,
        current.status,
        `scripted ${current.status}`,
        current.retryAfter ? { 'retry-after': current.retryAfter } : {},
      );
      return;
    }
    const value = `ek_${randomBytes(24).toString('hex')}`;
    minted.push(value);
    const expiresAt = Math.floor(Date.now() / 1000) + (current.expiresInSeconds ?? seconds);
    send(res, 200, {
      value,
      expires_at: expiresAt,
      session: {
        ...body.session,
        id: `sess_${randomBytes(8).toString('hex')}`,
        object: 'realtime.session',
        expires_at: 0,
      },
    });
  };

  const sdpCall = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    sdpOffers.push({
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      sdp: await readBody(req),
    });
    error(res, 503, 'no media server behind this fake');
  };

  const server = createServer((req, res) => {
    if (req.method === 'OPTIONS') {
      // The browser preflights the SDP POST (Authorization, Content-Type: application/sdp).
      res
        .writeHead(204, {
          'access-control-allow-origin': '*',
          'access-control-allow-methods': 'POST',
          'access-control-allow-headers': 'authorization, content-type',
        })
        .end();
      return;
    }
    const route =
      req.method === 'POST' && req.url === SECRETS
        ? clientSecret
        : req.method === 'POST' && req.url === CALLS
          ? sdpCall
          : undefined;
    if (!route) {
      error(res, 404, `no route ${req.method ?? ''} ${req.url ?? ''}`);
      return;
    }
    route(req, res).catch(() => {
      res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    calls,
    minted,
    sdpOffers,
    behave(next) {
      behaviour = next;
    },
    close() {
      closing ??= new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}
