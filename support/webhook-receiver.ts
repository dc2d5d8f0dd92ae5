import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { waitFor } from './ports.js';

/**
 * A webhook receiver as a process of its own (so a test's gateways cannot share its event
 * loop): it records every POST and answers as it is told. Control, on the same port:
 * `GET /_received` (what it accepted), `POST /_behave` with a {@link ReceiverBehaviour}.
 */

/** How the receiver answers the next webhooks. */
export type ReceiverBehaviour =
  /** 204 after `delayMs` (default 0). */
  | { kind: 'accept'; delayMs?: number }
  /** Answer this status (a refusal): nothing is recorded. */
  | { kind: 'status'; status: number }
  /** Close the connection without answering, as a receiver that is down. */
  | { kind: 'drop' };

export interface ReceivedWebhook {
  /** The body exactly as received. */
  body: string;
  signature: string | undefined;
  path: string;
  /** When it arrived, epoch ms. */
  at: number;
}

export interface WebhookReceiver {
  /** Where to send webhooks: `http://127.0.0.1:<port>/hooks`. */
  readonly url: string;
  received(): Promise<ReceivedWebhook[]>;
  behave(behaviour: ReceiverBehaviour): Promise<void>;
  /** Requests seen, accepted or not. */
  attempts(): Promise<number>;
  close(): Promise<void>;
}

const SELF = fileURLToPath(import.meta.url);

/** Starts the receiver process and waits until it answers. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const child = spawn(process.execPath, ['--import', 'tsx', SELF], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const port = await waitFor('webhook receiver', () => /listening (\d+)/.exec(output)?.[1], { timeoutMs: 20_000 });
  const base = `http://127.0.0.1:${port}`;
  return {
    url: `${base}/hooks`,
    async received() {
      return (await (await fetch(`${base}/_received`)).json()) as ReceivedWebhook[];
    },
    async attempts() {
      return ((await (await fetch(`${base}/_attempts`)).json()) as { attempts: number }).attempts;
    },
    async behave(behaviour) {
      const response = await fetch(`${base}/_behave`, { method: 'POST', body: JSON.stringify(behaviour) });
      if (!response.ok) throw new Error(`receiver refused ${JSON.stringify(behaviour)}`);
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

function serve(): void {
  const received: ReceivedWebhook[] = [];
  let behaviour: ReceiverBehaviour = { kind: 'accept' };
  let attempts = 0;
  const server = createServer((req, res) => {
    void (async () => {
      const path = req.url ?? '/';
      const body = await readBody(req);
      if (path === '/_received') return res.writeHead(200).end(JSON.stringify(received));
      if (path === '/_attempts') return res.writeHead(200).end(JSON.stringify({ attempts }));
      if (path === '/_behave') {
        behaviour = JSON.parse(body) as ReceiverBehaviour;
        return res.writeHead(204).end();
      }
      attempts++;
      const now = behaviour;
      if (now.kind === 'drop') return req.socket.destroy();
      if (now.kind === 'status') return res.writeHead(now.status).end();
      if (now.delayMs) await new Promise((resolve) => setTimeout(resolve, now.delayMs));
      const signature = req.headers['switchboard-signature'];
      received.push({ body, signature: typeof signature === 'string' ? signature : undefined, path, at: Date.now() });
      res.writeHead(204).end();
    })().catch(() => res.destroy());
  });
  server.keepAliveTimeout = 1_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
  });
  process.once('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

if (process.argv[1] === SELF) serve();
