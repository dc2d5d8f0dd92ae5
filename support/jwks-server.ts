import { randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { ALL_ROOMS } from './client.js';

export type JwksAlgorithm = 'RS256' | 'ES256';

/**
 * How the endpoint answers: `ok` serves the published keys, `error` a 500, `garbage`
 * a 200 that is not a key set, `hang` accepts the request and never answers.
 */
export type JwksMode = 'ok' | 'error' | 'garbage' | 'hang';

export interface JwksServer {
  /** The JWKS URL, for `JWT_JWKS_URL`. */
  readonly url: string;
  /** Requests for the key set so far, answered or not. */
  fetches(): number;
  /** Generates a key pair and (unless told otherwise) publishes its public half; returns its `kid`. */
  addKey(alg: JwksAlgorithm, options?: { published?: boolean }): Promise<string>;
  publishKey(kid: string): void;
  /** Stops publishing `kid`; tokens it signed can still be made with `sign`. */
  removeKey(kid: string): void;
  /** An access JWT signed with the key `kid` (expiring in 5 minutes unless `exp` is given). */
  sign(kid: string, claims: JWTPayload): Promise<string>;
  setMode(mode: JwksMode): void;
  close(): Promise<void>;
}

interface KeyEntry {
  alg: JwksAlgorithm;
  privateKey: CryptoKey;
  publicJwk: JWK;
  published: boolean;
}

/** An identity provider's key endpoint on 127.0.0.1, whose keys a test rotates. */
export async function startJwksServer(): Promise<JwksServer> {
  const keys = new Map<string, KeyEntry>();
  let mode: JwksMode = 'ok';
  let fetches = 0;
  const hanging = new Set<ServerResponse>();

  const server = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    fetches += 1;
    if (mode === 'hang') {
      hanging.add(res);
      return;
    }
    if (mode === 'error') {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('identity provider is down');
      return;
    }
    const body =
      mode === 'garbage'
        ? { hello: 'world' }
        : { keys: [...keys.values()].filter((key) => key.published).map((key) => key.publicJwk) };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    fetches: () => fetches,
    async addKey(alg, { published = true } = {}) {
      const kid = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`;
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
      keys.set(kid, { alg, privateKey, publicJwk, published });
      return kid;
    },
    publishKey(kid) {
      const key = keys.get(kid);
      if (key) key.published = true;
    },
    removeKey(kid) {
      const key = keys.get(kid);
      if (key) key.published = false;
    },
    async sign(kid, claims) {
      const key = keys.get(kid);
      if (!key) throw new Error(`no key ${kid}`);
      // Like support/client.ts: test users may enter every room unless a test says otherwise.
      const jwt = new SignJWT({ rooms: ALL_ROOMS, ...claims })
        .setProtectedHeader({ alg: key.alg, kid, typ: 'JWT' })
        .setIssuedAt();
      if (claims.exp === undefined) jwt.setExpirationTime('5m');
      return jwt.sign(key.privateKey);
    },
    setMode(next) {
      mode = next;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
