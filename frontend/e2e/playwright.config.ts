// Browser tests of the built app against `fmn run` (the embedded default, with its built-in
// identity provider, SMTP sink and demo feed). Run them with `npm run e2e` (e2e/run.mjs), which
// starts and stops the backend and sets FMN_E2E_URL. Browsers cannot be downloaded here: Chromium
// comes from Debian (`apt-get install chromium`), or CHROMIUM_PATH.
import { defineConfig, devices } from '@playwright/test'

const baseURL = process.env.FMN_E2E_URL
if (!baseURL) throw new Error('run the browser tests with `npm run e2e`, which starts `fmn run` (or set FMN_E2E_URL)')

export default defineConfig({
  testDir: '.',
  // The whole run is meant to stay within a couple of minutes on a busy machine.
  // A test's pages are each checked with axe-core too, which takes seconds a page on a loaded machine
  // (a load average of 20 on two cores is common here and in CI).
  timeout: 180_000,
  globalTimeout: 15 * 60_000,
  expect: { timeout: 15_000 },
  retries: 0,
  // Each spec file logs in as its own sample user, so two run side by side.
  workers: 2,
  forbidOnly: !!process.env.CI,
  reporter: [['list']],
  outputDir: '../test-results',
  use: {
    baseURL,
    testIdAttribute: 'data-test',
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    // Playwright runs it with --no-sandbox (chromiumSandbox is off by default), as root needs.
    launchOptions: { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' },
  },
  projects: [
    // Everything at desktop width; the page tour (a screenshot of every page) at phone width too.
    { name: 'desktop', use: { ...devices['Desktop Chrome'], channel: undefined } },
    {
      name: 'phone',
      testMatch: /pages\.spec\.ts/,
      use: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
    },
  ],
})
