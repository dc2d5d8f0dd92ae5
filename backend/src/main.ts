import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from './config/index.js';
import { startGateway } from './gateway.js';
import { createLogger, prettyDestination } from './observability/logger.js';

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
  const logger = createLogger({ level: config.logLevel, replica: config.replicaId, destination: pretty });
  for (const warning of config.warnings) logger.warn(warning);

  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason }, 'unhandled rejection');
  });

  const gateway = await startGateway({
    config,
    logger,
    staticDir: fileURLToPath(new URL('../../frontend/dist-demo', import.meta.url)),
  });

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, budgetMs: config.shutdownTimeoutMs }, 'draining');
    const deadline = setTimeout(() => {
      logger.error({ budgetMs: config.shutdownTimeoutMs }, 'drain exceeded its budget; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    gateway.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
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
