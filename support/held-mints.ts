import type { Page } from 'playwright-core';

/**
 * Lets a test hold back a page's RTC token mints (`POST /api/rtc/tokens`), so that after
 * it cuts the connection the page cannot reconnect until the test has done what it wants
 * to happen meanwhile. `hold()` returns the release.
 */
export async function holdableMints(page: Page): Promise<{ hold(): () => void }> {
  let held: Promise<void> | undefined;
  await page.route('**/api/rtc/tokens', async (route) => {
    await held;
    await route.continue();
  });
  return {
    hold() {
      let release: () => void = () => undefined;
      held = new Promise<void>((resolve) => {
        release = resolve;
      });
      return release;
    },
  };
}
