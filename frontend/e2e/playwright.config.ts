// Browser tests of the built app against `fmn run` (the embedded default, with its built-in
// identity provider). Browsers cannot be downloaded here: Chromium comes from Debian
// (`apt-get install chromium`), or CHROMIUM_PATH.
//   npm run build && npm run e2e                         # starts `fmn run` on 127.0.0.1:8765
//   FMN_E2E_URL=http://127.0.0.1:8080 npm run e2e        # against a running instance
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { defineConfig, devices } from '@playwright/test'

const repo = resolve(import.meta.dirname, '../..')
const external = process.env.FMN_E2E_URL
const port = Number(process.env.FMN_E2E_PORT ?? 8765)
const baseURL = external ?? `http://127.0.0.1:${port}`
const venvFmn = join(repo, '.venv/bin/fmn')
const fmn = existsSync(venvFmn) ? venvFmn : 'fmn'

export default defineConfig({
  testDir: '.',
  timeout: 60_000,
  expect: { timeout: 15_000 },
  retries: 0,
  workers: 1,
  reporter: [['list']],
  outputDir: '../test-results',
  use: {
    baseURL,
    testIdAttribute: 'data-test',
    trace: 'retain-on-failure',
    launchOptions: { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox'] },
  },
  projects: [
    { name: 'desktop', use: { ...devices['Desktop Chrome'], channel: undefined } },
    { name: 'phone', use: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true } },
  ],
  webServer: external
    ? undefined
    : {
        command: `${fmn} run --host 127.0.0.1 --port ${port}`,
        cwd: repo,
        url: `${baseURL}/api/v1/config`,
        timeout: 120_000,
        reuseExistingServer: true,
        env: { FMN_DEV__DATA_DIR: mkdtempSync(join(tmpdir(), 'fmn-e2e-')), FMN_DEV__FEED_INTERVAL: '0' },
      },
})
