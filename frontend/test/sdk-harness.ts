import { createSwitchboard, type Switchboard, type SwitchboardOptions } from '../src/sdk/index.js';
import { startFakeGateway, type FakeGateway } from './fake-gateway.js';

const cleanups: Array<() => Promise<void> | void> = [];

/** Closes every gateway and client the test made, newest first: `afterEach(closeAll)`. */
export async function closeAll(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}

/** A scripted gateway, closed after the test. */
export async function gateway(options: Parameters<typeof startFakeGateway>[0]): Promise<FakeGateway> {
  const started = await startFakeGateway(options);
  cleanups.push(() => started.close());
  return started;
}

/** A Switchboard with quick retries and acks, closed after the test. */
export function client(options: Partial<SwitchboardOptions> & Pick<SwitchboardOptions, 'urls'>): Switchboard {
  const switchboard = createSwitchboard({
    getAccessToken: () => 'access-token',
    backoff: { baseMs: 20, maxMs: 200 },
    ackTimeoutMs: 2_000,
    ...options,
  });
  cleanups.push(() => {
    switchboard.close();
  });
  return switchboard;
}

/** Registers a cleanup for something else the test opened. */
export function onCleanup(cleanup: () => Promise<void> | void): void {
  cleanups.push(cleanup);
}
