import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from './config/index.js';
import { startGateway } from './gateway.js';
import { createLogger, EXIT_FLUSH_MS, prettyDestination, stdoutDestination } from './observability/logger.js';

// The only place that reads the environment and installs signal handlers.
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env, hostname());
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`switchboard: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  // People read a terminal; machines read everything else, and production always.
  const pretty = process.stdout.isTTY && config.env !== 'production' ? await prettyDestination() : undefined;
  const stdout = pretty ? undefined : stdoutDestination();
  const logger = createLogger({ level: config.logLevel, replica: config.replicaId, destination: pretty ?? stdout });
  // Whatever happens to stdout (a closed or stalled pipe), the exit waits at most a moment for it.
  const exit = (code: number): void => {
    void (stdout?.flushBeforeExit() ?? Promise.resolve()).then(() => process.exit(code));
  };
  for (const warning of config.warnings) logger.warn(warning);

  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason }, 'unhandled rejection');
  });

  const gateway = await startGateway({
    config,
    logger,
    staticDir: fileURLToPath(new URL('../../frontend/dist-demo', import.meta.url)),
  });
  const base = `http://localhost:${gateway.port}`;
  logger.info(`open ${base}/ for the demo${config.adminEnabled ? `, ${base}/admin for the dashboard` : ''}`);

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, budgetMs: config.shutdownTimeoutMs }, 'draining');
    const deadline = setTimeout(
      () => {
        logger.error({ budgetMs: config.shutdownTimeoutMs }, 'drain exceeded its budget; exiting');
        exit(1);
      },
      Math.max(0, config.shutdownTimeoutMs - EXIT_FLUSH_MS),
    );
    deadline.unref();
    gateway.close().then(
      () => exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  process.stderr.write(`switchboard: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
