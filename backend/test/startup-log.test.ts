import { describe, expect, it } from 'vitest';
import { startGatewayProcess } from '../../support/gateway-process.js';
import { freePort, waitFor } from '../../support/ports.js';

describe('what a newcomer reads at start-up', () => {
  it('the URL to open, and one "running degraded" line when Redis cannot be reached', async () => {
    const gateway = await startGatewayProcess({
      env: { LOG_LEVEL: 'info', ADMIN_ENABLED: 'true', REDIS_URL: `redis://127.0.0.1:${await freePort()}` },
    });
    try {
      await waitFor('the degraded line', () => gateway.output().includes('running degraded') || undefined);
      const output = gateway.output();
      expect(output).toContain(
        `open http://localhost:${gateway.port}/ for the demo, http://localhost:${gateway.port}/admin for the dashboard`,
      );
      expect(output.match(/running degraded/g)).toHaveLength(1);
    } finally {
      await gateway.stop();
    }
  });

  it('says which variable is a near miss, and echoes a bad PORT', async () => {
    const warned = await startGatewayProcess({ env: { LOG_LEVEL: 'warn', REDIS_URI: 'redis://127.0.0.1:6390' } });
    try {
      expect(warned.output()).toContain('REDIS_URI is not a Switchboard variable: did you mean REDIS_URL?');
    } finally {
      await warned.stop();
    }
    const refused = await startGatewayProcess({ port: 0, env: { PORT: 'abc' }, waitReady: false });
    expect(await refused.exited).toBe(1);
    expect(refused.output()).toContain('PORT: must be a whole number from 0 to 65535 (got "abc")');
  });
});
