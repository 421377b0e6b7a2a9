// The whole way of a notification: the demo feed of `fmn run` publishes real Fedora bus messages
// (retargeted to the sample users) on the bus, the consumer matches bob's default rule, the email
// sender delivers to the SMTP sink; the app shows it in the history and in the dev mailbox.
import { expect, test } from '@playwright/test'
import { logIn, snap, untilShown } from './helpers'

test('a bus message from the feed shows in the notification history and in the mailbox', async ({ page }) => {
  await logIn(page, 'bob')
  // Every new user gets "My Events" (events naming them) by email and in the inbox.
  await expect(page.getByRole('link', { name: 'My Events', exact: true })).toBeVisible()

  await page.getByRole('link', { name: 'History' }).click()
  await expect(page.getByRole('heading', { name: 'Notification history' })).toBeVisible()
  // "My Events" delivers to the inbox too: the email deliveries are the ones with the address.
  const sent = page.getByTestId('history-item').filter({ hasText: 'Sent' }).filter({ hasText: 'bob@example.org' }).first()
  await untilShown(page, () => expect(sent).toBeVisible({ timeout: 3_000 }))
  // The bus topic of the message (the corpus has Fedora's, CentOS's, release-monitoring's...).
  await expect(sent.locator('code')).toHaveText(/^[a-z]+\.[\w.-]+\.[\w.-]+$/)
  await expect(sent.getByRole('link', { name: 'My Events' })).toBeVisible()
  const summary = (await sent.getByTestId('summary').textContent())!.trim()
  expect(summary).not.toBe('')
  await snap(page, 'notifications-history')

  await page.getByRole('link', { name: 'Mailbox' }).click()
  await expect(page.getByRole('heading', { name: 'Mailbox' })).toBeVisible()
  const newest = page.getByTestId('mail-item').first()
  await untilShown(page, () => expect(newest).toBeVisible({ timeout: 3_000 }))
  await expect(newest).toContainText('to bob@example.org')
  // The mail of the notification the history listed.
  await expect(page.getByTestId('mail-item').filter({ hasText: summary.slice(0, 40) }).first()).toBeVisible()
  const subject = (await newest.locator('.fw-semibold').textContent())!.trim()
  await newest.click()

  const reader = page.getByTestId('mail-reader')
  await expect(reader.getByRole('heading', { name: subject })).toBeVisible()
  const text = reader.getByTestId('mail-text')
  await expect(text).toContainText('Sent by Fedora Notifications because of your rule(s):')
  await expect(text).toContainText('"My Events"')
  await snap(page, 'notifications-mail-text')

  // The HTML part, in a frame sandboxed without any permission.
  await reader.getByRole('button', { name: 'HTML' }).click()
  const frame = reader.getByTestId('mail-html')
  await expect(frame).toHaveAttribute('sandbox', '')
  await expect(page.frameLocator('[data-test="mail-html"]').getByText('Sent by Fedora Notifications because of your rule(s)')).toBeVisible()
  const scripts = await page.frameLocator('[data-test="mail-html"]').locator('script').count()
  expect(scripts).toBe(0)
  await snap(page, 'notifications-mail-html')
})
