// Web notifications: the demo feed of `fmn run` names bob every few seconds, his default rule
// "My Events" delivers to his inbox, `fmn sender web` stores it and the API's stream brings it to
// the open app: the bell counts up and the inbox lists it without a reload, a desktop notification
// shows (permission granted to the browser context), the read state outlives a reload, and
// Settings gives the feed's address, which answers Atom without logging in.
import { expect, test, type Page } from '@playwright/test'
import { logIn, snap } from './helpers'

interface Shown {
  title: string
  body: string
  tag: string
}

// Run in the page before the app (as text: these tests are type-checked without the DOM's types).
// Every Notification the app makes is recorded; headless Chromium shows none anywhere.
const RECORD_NOTIFICATIONS = `
  window.shownNotifications = []
  const Original = window.Notification
  window.Notification = class extends Original {
    constructor(title, options = {}) {
      super(title, options)
      window.shownNotifications.push({ title, body: options.body ?? '', tag: options.tag ?? '' })
    }
  }
`
const shownNotifications = (page: Page) => page.evaluate('window.shownNotifications') as Promise<Shown[]>

/** The bell's count, from its accessible name ("Inbox, 3 unread" or "Inbox, nothing unread"). */
async function bellCount(page: Page): Promise<number> {
  const label = (await page.getByTestId('inbox-bell').getAttribute('aria-label')) ?? ''
  return Number(/(\d+) unread/.exec(label)?.[1] ?? 0)
}

test('a notification arrives live in the inbox and on the desktop; read state and feeds', async ({ page, context, baseURL }) => {
  await context.grantPermissions(['notifications'], { origin: baseURL })
  await page.addInitScript(RECORD_NOTIFICATIONS)

  await logIn(page, 'bob')

  // Desktop notifications on for this device: the switch in Settings (the browser already allows).
  await page.getByRole('link', { name: 'Settings' }).click()
  const desktop = page.getByRole('switch', { name: /Show new inbox notifications on this device/ })
  await desktop.check()
  await expect(desktop).toBeChecked()
  expect(await page.evaluate(() => localStorage.getItem('fmn.desktop-notifications'))).toBe('on')

  // The feed's address, and what it answers.
  const feed = page.getByTestId('feed-inbox')
  await expect(feed).toHaveValue(/\/feeds\/[^/]+\/inbox\.atom$/)
  const atom = await page.request.get(await feed.inputValue())
  expect(atom.status()).toBe(200)
  expect(await atom.text()).toContain('<feed xmlns="http://www.w3.org/2005/Atom"')

  // From here on, nothing reloads the page until the read-state check.
  await page.getByTestId('inbox-bell').click()
  await expect(page.getByRole('heading', { name: 'Inbox', exact: true })).toBeVisible()
  // Still there at the end: the page was not reloaded meanwhile.
  await page.evaluate('window.sameDocument = true')
  const items = page.getByTestId('inbox-item')
  await expect(items.first().or(page.getByTestId('inbox-empty'))).toBeVisible()
  const before = await bellCount(page)
  const newestBefore = (await items.count()) ? await items.first().getAttribute('data-entry-id') : null

  // The bell counts up and the list grows by itself as the feed's messages are delivered.
  await expect.poll(() => bellCount(page), { timeout: 45_000 }).toBeGreaterThan(before)
  await expect(items.first()).not.toHaveAttribute('data-entry-id', newestBefore ?? 'none')
  // Pinned by its id: newer ones keep coming on top.
  const id = (await items.first().getAttribute('data-entry-id'))!
  const entry = page.locator(`[data-entry-id="${id}"]`)
  await expect(entry).toHaveAttribute('data-read', 'false')
  expect(await page.evaluate('window.sameDocument')).toBe(true)

  // The screen reader is told politely.
  await expect(page.getByTestId('inbox-announcer')).toHaveAttribute('aria-live', 'polite')
  await expect(page.getByTestId('inbox-announcer')).toContainText('New notification: ')

  // And the desktop: one notification per entry that arrived, titled with its subject.
  await expect.poll(async () => (await shownNotifications(page)).length).toBeGreaterThan(0)
  const shown = await shownNotifications(page)
  const subjects = await page.getByTestId('inbox-subject').allTextContents()
  expect(subjects).toContain(shown[0]!.title)
  expect(shown[0]!.tag).toMatch(/^fmn-\d+$/)

  // "Why did I get this?" names the rule and leads to it.
  await entry.getByText('Why did I get this?').click()
  await expect(entry.getByTestId('inbox-why').getByRole('link', { name: 'My Events' })).toBeVisible()
  await snap(page, 'inbox-live')

  // Read state, set from the keyboard, kept across a reload.
  await entry.getByRole('button', { name: /^Mark read/ }).focus()
  await page.keyboard.press('Enter')
  await expect(entry).toHaveAttribute('data-read', 'true')
  await page.reload()
  await expect(entry).toHaveAttribute('data-read', 'true')
  await expect(entry.getByRole('button', { name: /^Mark unread/ })).toBeVisible()
})
