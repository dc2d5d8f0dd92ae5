import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

const DEMO_INDEX = fileURLToPath(new URL('../frontend/dist-demo/index.html', import.meta.url));

/** Debian's package, Ubuntu's (a snap), or one named by CHROMIUM_PATH; scripts/system-deps.sh looks alike. */
function chromiumPath(): string | undefined {
  return [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/snap/bin/chromium'].find(
    (candidate): candidate is string => candidate !== undefined && existsSync(candidate),
  );
}

/**
 * The system's headless Chromium, with a fake camera and microphone that need no prompt,
 * for the demo app's end-to-end suites. Stops at once, saying what to do, when the demo
 * is not built or Chromium is not installed (nothing is ever downloaded).
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(DEMO_INDEX)) throw new Error('frontend/dist-demo is missing: run `npm run build` first');
  const executablePath = chromiumPath();
  if (!executablePath)
    throw new Error('Chromium is missing: `npm test` installs it (scripts/system-deps.sh), or set CHROMIUM_PATH');
  return chromium.launch({
    executablePath,
    args: [
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A page in a context of its own (separate storage, as two people on two machines would
 * have), with what it logs kept in `log` for the message of a failed wait.
 */
export async function openLoggedPage(browser: Browser | undefined): Promise<{ page: Page; log: string[] }> {
  if (!browser) throw new Error('browser did not start');
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const log: string[] = [];
  page.on('console', (message) => log.push(`[${message.type()}] ${message.text()}`));
  page.on('pageerror', (error) => log.push(`[pageerror] ${error.message}`));
  return { page, log };
}
