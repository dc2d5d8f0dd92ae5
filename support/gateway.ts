import { Writable } from 'node:stream';
import { loadConfig } from '../backend/src/config/index.js';
import { startGateway, type Gateway } from '../backend/src/gateway.js';
import { createLogger } from '../backend/src/observability/logger.js';
import { TEST_SECRETS } from './gateway-process.js';

export interface TestGateway {
  readonly gateway: Gateway;
  readonly url: string;
  /** Everything logged so far, one JSON object per line. */
  logs(): string;
  close(): Promise<void>;
}

/** A gateway in this process on a free port; `env` is applied over test defaults. */
export async function startTestGateway(env: Record<string, string | undefined> = {}): Promise<TestGateway> {
  const config = loadConfig(
    {
      NODE_ENV: 'test',
      PORT: '0',
      LOG_LEVEL: 'info',
      REPLICA_ID: 'in-process',
      // As in production: test tokens carry room grants (support/client.ts).
      ROOM_ACCESS: 'grants',
      ...TEST_SECRETS,
      ...env,
    },
    'test-host',
  );
  let logged = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logged += chunk.toString();
      callback();
    },
  });
  const logger = createLogger({ level: config.logLevel, replica: config.replicaId, destination });
  const gateway = await startGateway({ config, logger });
  return {
    gateway,
    url: `http://127.0.0.1:${gateway.port}`,
    logs: () => logged,
    close: () => gateway.close(),
  };
}
