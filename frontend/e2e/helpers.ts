// What the browser tests share: logging in through the built-in provider of `fmn run`, and a
// screenshot of each page into test-results/screenshots/<project>/.
import { join } from 'node:path'
import AxeBuilder from '@axe-core/playwright'
import { expect, test, type Page } from '@playwright/test'

// The sample users of the embedded default (fmn/dev/sample-directory.json); alice is the admin.
// Each spec file logs in as its own user, so the files can run side by side.
export const USERS = {
  alice: 'Alice Anderson',
  bob: 'Bob Brown',
  carol: 'Carol Clark',
  dave: 'Dave Davis',
} as const
export type SampleUser = keyof typeof USERS

const SHOTS = join(import.meta.dirname, '..', 'test-results', 'screenshots')

/** Log in with the code flow and PKCE through the built-in provider, as one of its sample users. */
export async function logIn(page: Page, who: SampleUser, snapLogin = false): Promise<void> {
  await page.goto('/')
  await page.getByRole('button', { name: 'Log in' }).first().click()
  await page.waitForURL(/\/idp\//)
  if (snapLogin) await snap(page, 'idp-sign-in')
  await page.getByRole('button', { name: new RegExp(USERS[who]) }).click()
  await expect(page.getByRole('heading', { name: 'My rules' })).toBeVisible()
  await expect(page.getByRole('navigation', { name: 'Main' }).getByText(who, { exact: true })).toBeVisible()
}

/** The rules axe-core runs: those of WCAG 2.0 and 2.1, levels A and AA. */
export const WCAG_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']

/**
 * axe-core's WCAG 2.1 AA rules find nothing on the page as it is now. A violation fails the test
 * with each rule, what it means and the elements it found, so the message says what to fix.
 */
export async function expectAccessible(page: Page, name: string): Promise<void> {
  // A mail's HTML part sits in a frame sandboxed without scripts, where axe-core cannot run (it
  // would wait for it until the test times out); it is the sender's document, not the app's.
  const { violations } = await new AxeBuilder({ page }).withTags(WCAG_AA).exclude('iframe[sandbox=""]').analyze()
  const found = violations.map(
    (v) => `${v.id} (${v.impact}): ${v.help}\n${v.nodes.map((n) => `  ${n.target.join(' ')}: ${n.failureSummary?.split('\n').join(' ')}`).join('\n')}`,
  )
  // Soft: the tour goes on, so one run lists the violations of every page.
  expect.soft(found, `axe-core on "${name}"`).toEqual([])
}

/**
 * A full-page screenshot, once the page has nothing left loading; and the page checked with axe-core
 * (every page the tests visit passes through here, so each one is checked at each width).
 */
export async function snap(page: Page, name: string): Promise<void> {
  await expect(page.locator('.spinner-border')).toHaveCount(0, { timeout: 10_000 }).catch(() => {})
  await page.evaluate('document.fonts.ready.then(() => true)')
  // A sandboxed frame paints in its own process, a moment after its content is there.
  if (await page.locator('iframe').count()) await page.waitForTimeout(1_000)
  await page.screenshot({ path: join(SHOTS, test.info().project.name, `${name}.png`), fullPage: true, animations: 'disabled' })
  await expectAccessible(page, name)
}

/** The access token the app holds (oidc-client-ts keeps the session in sessionStorage). */
export async function accessToken(page: Page): Promise<string> {
  return page.evaluate(() => {
    for (let i = 0; i < sessionStorage.length; i++) {
      const key = sessionStorage.key(i)!
      if (key.startsWith('oidc.user:')) return (JSON.parse(sessionStorage.getItem(key)!) as { access_token: string }).access_token
    }
    throw new Error('no session in sessionStorage')
  })
}

/** Reload until `check` passes: for what the backend does on its own time (the feed, the senders). */
export async function untilShown(page: Page, check: () => Promise<void>, seconds = 60): Promise<void> {
  const deadline = Date.now() + seconds * 1000
  for (;;) {
    try {
      await check()
      return
    } catch (error) {
      if (Date.now() > deadline) throw error
    }
    await page.reload()
  }
}
