/**
 * The SDK as an app gets it: `npm pack` of @switchboard/contract and @switchboard/client,
 * the two tarballs installed into a scratch project outside this repository
 * (socket.io-client and zod come from the registry), and then used from there: plain
 * Node against a real gateway process, a strict TypeScript consumer, a browser bundle.
 * Needs `npm run build` first (the gateway process runs backend/dist).
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RoomEvent, SessionPayload } from '@switchboard/contract';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { ROOT } from './deploy-files.js';

const FIXTURES = join(ROOT, 'e2e/sdk-package');
const require = createRequire(import.meta.url);
const TSC = require.resolve('typescript/bin/tsc');
/** tsx's loader, as `node --import` takes it. */
const TSX = pathToFileURL(require.resolve('tsx')).href;

interface RunResult {
  code: number | null;
  stdout: string;
  /** stdout and stderr as they came. */
  output: string;
}

/**
 * Runs a command to its end. npm's `npm_*` variables of a surrounding `npm test` are
 * dropped: npm reads them back as configuration (the prefix among them), and the scratch
 * project must be installed as a stranger's would be.
 */
function run(command: string, args: string[], cwd: string, timeoutMs = 60_000): Promise<RunResult> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name) && name !== 'NODE_OPTIONS'),
  );
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} took over ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, output });
    });
  });
}

async function succeed(command: string, args: string[], cwd: string, timeoutMs?: number): Promise<string> {
  const result = await run(command, args, cwd, timeoutMs);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}:\n${result.output}`);
  return result.stdout;
}

interface PackedFile {
  name: string;
  filename: string;
  files: Array<{ path: string }>;
}

describe('the packed SDK in a scratch project', () => {
  let dir: string;
  let app: string;
  let packed: PackedFile[];
  let gateway: GatewayProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchboard-sdk-package-'));
    const packs = join(dir, 'packs');
    app = join(dir, 'app');
    await Promise.all([mkdir(packs), mkdir(app)]);
    // `npm pack` runs each package's prepack (an incremental tsc -b), as a publish would.
    const json = await succeed(
      'npm',
      ['pack', '--json', '--pack-destination', packs, '--workspace', 'contract', '--workspace', 'frontend'],
      ROOT,
    );
    packed = JSON.parse(json) as PackedFile[];
    await writeFile(
      join(app, 'package.json'),
      JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }, null, 2),
    );
    const tarballs = packed.map((pack) => join(packs, pack.filename));
    await succeed('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs], app, 120_000);
    for (const fixture of ['consumer.mjs', 'consumer.mts']) {
      await copyFile(join(FIXTURES, fixture), join(app, fixture));
    }
  }, 180_000);

  afterAll(async () => {
    await gateway?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('ships the built ESM with declarations and source maps, and no sources', async () => {
    expect(packed.map((pack) => pack.name).sort()).toEqual(['@switchboard/client', '@switchboard/contract']);
    for (const pack of packed) {
      const paths = pack.files.map((file) => file.path);
      for (const path of ['dist/index.js', 'dist/index.d.ts', 'dist/index.js.map', 'package.json']) {
        expect(paths, `${pack.name} holds ${path}`).toContain(path);
      }
      expect(paths.filter((path) => !path.startsWith('dist/') && !/^(package\.json|README\.md)$/.test(path))).toEqual(
        [],
      );
      expect(paths.filter((path) => path.endsWith('.tsbuildinfo'))).toEqual([]);
    }
    const manifest = JSON.parse(await readFile(join(app, 'node_modules/@switchboard/client/package.json'), 'utf8')) as {
      exports: Record<string, unknown>;
      private?: boolean;
    };
    expect(manifest.private).toBeUndefined();
    expect(manifest.exports['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
  });

  it('signs in, joins a room and hears a published event from plain Node', async () => {
    gateway = await startGatewayProcess();
    const output = await succeed('node', ['consumer.mjs', gateway.url], app, 30_000);
    const seen = JSON.parse(output.trim().split('\n').at(-1) ?? '') as {
      aliceSession: SessionPayload;
      bobSession: SessionPayload;
      published: { id: string };
      event: RoomEvent;
    };
    expect(seen.aliceSession).toMatchObject({ userId: 'alice', name: 'User alice', room: 'pack-test' });
    expect(seen.aliceSession.replica).toBe(gateway.replica);
    expect(seen.bobSession.userId).toBe('bob');
    expect(seen.event).toMatchObject({
      id: seen.published.id,
      type: 'greeting',
      data: { text: 'hello from node' },
      from: seen.aliceSession.peerId,
    });
  });

  it('loads from CommonJS with require(), and from TypeScript files run with tsx', async () => {
    const listExports = "console.log(Object.keys(sdk).sort().join(' '));\n";
    const asTypeScript = `import * as sdk from '@switchboard/client';\n${listExports}`;
    await mkdir(join(app, 'commonjs'));
    await writeFile(join(app, 'commonjs/package.json'), JSON.stringify({ type: 'commonjs' }));
    await writeFile(join(app, 'commonjs/consumer.js'), `const sdk = require('@switchboard/client');\n${listExports}`);
    await writeFile(join(app, 'commonjs/consumer.ts'), asTypeScript);
    await writeFile(join(app, 'consumer-esm.ts'), asTypeScript);
    for (const args of [
      ['commonjs/consumer.js'],
      ['--import', TSX, 'commonjs/consumer.ts'],
      ['--import', TSX, 'consumer-esm.ts'],
    ]) {
      const output = await succeed(process.execPath, args, app);
      expect(output.trim().split(' '), args.join(' ')).toEqual(
        expect.arrayContaining(['createSwitchboard', 'devLogin', 'mintRtcToken', 'Call']),
      );
    }
  });

  it('type-checks a strict TypeScript consumer against the published declarations', async () => {
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2022', 'DOM'],
          types: [],
          // Check the published .d.ts files too, not only the consumer.
          skipLibCheck: false,
        },
        files: ['consumer.mts'],
      }),
    );
    // consumer.mts holds @ts-expect-error lines, so declarations that degrade to `any` fail too.
    const result = await run(process.execPath, [TSC, '-p', '.'], app);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  }, 60_000);

  it('bundles for a browser without the contract schemas or zod', async () => {
    await writeFile(join(app, 'browser.js'), "export { createSwitchboard, devLogin } from '@switchboard/client';\n");
    const result = await build({
      root: app,
      configFile: false,
      logLevel: 'silent',
      build: {
        write: false,
        minify: false,
        lib: { entry: join(app, 'browser.js'), formats: ['es'], fileName: 'app' },
      },
    });
    if (!Array.isArray(result) && !('output' in result)) throw new Error('vite started a watcher');
    const code = (Array.isArray(result) ? result : [result])
      .flatMap((output) => output.output)
      .map((chunk) => (chunk.type === 'chunk' ? chunk.code : ''))
      .join('\n');
    expect(code).toContain('session:refresh');
    expect(code).toContain('token_missing');
    // Every zod schema object carries `_zod`; the contract's validators start with `z.`.
    expect(code).not.toContain('_zod');
    expect(code).not.toContain('roomNameSchema');
  });
});
