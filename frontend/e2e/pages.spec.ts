// A tour of every page, at desktop width and at phone width (the "phone" project runs this file
// only), with a screenshot of each in test-results/screenshots/<project>/.
import { expect, test } from '@playwright/test'
import { logIn, snap, untilShown } from './helpers'

// Twenty pages, each photographed and checked with axe-core: longer than one test is given.
test.slow()

test('every page of a user', async ({ page }) => {
  await page.goto('/')
  await expect(page.getByRole('heading', { name: 'Notifications for the message bus' })).toBeVisible()
  await snap(page, 'home-logged-out')

  await logIn(page, 'carol', true)
  await expect(page.getByRole('link', { name: 'My Events', exact: true })).toBeVisible()
  await snap(page, 'my-rules')

  await page.getByRole('link', { name: 'Add a new rule' }).click()
  await expect(page.getByRole('heading', { name: 'New rule' })).toBeVisible()
  await expect(page.getByRole('button', { name: 'Remove carol' })).toBeVisible()
  await snap(page, 'rule-new')
  await page.getByRole('checkbox', { name: /carol@example\.org/ }).check()
  await page.getByRole('button', { name: 'Preview', exact: true }).click()
  await expect(page.getByTestId('preview-result')).toContainText('notification')
  await snap(page, 'rule-new-preview')
  // Leaving a changed form asks first.
  page.once('dialog', (dialog) => void dialog.accept())
  await page.getByRole('link', { name: 'Cancel' }).click()

  await page.getByRole('link', { name: 'My Events', exact: true }).click()
  await expect(page.getByRole('heading', { name: 'Edit rule' })).toBeVisible()
  await expect(page.getByRole('radio', { name: 'My events' })).toBeChecked()
  await snap(page, 'rule-edit')
  await page.getByRole('link', { name: 'Statistics' }).click()
  await expect(page.getByRole('heading', { name: /statistics/i }).first()).toBeVisible()
  await snap(page, 'rule-stats')

  await page.getByRole('link', { name: 'History' }).click()
  await expect(page.getByRole('heading', { name: 'Notification history' })).toBeVisible()
  await untilShown(page, () => expect(page.getByTestId('history-item').first()).toBeVisible({ timeout: 3_000 }))
  await snap(page, 'history')

  await page.getByRole('link', { name: 'Settings' }).click()
  await expect(page.getByRole('button', { name: 'Save settings' })).toBeVisible()
  await snap(page, 'settings')

  await page.getByTestId('inbox-bell').click()
  await expect(page.getByRole('heading', { name: 'Inbox', exact: true })).toBeVisible()
  await expect(page.getByTestId('inbox-item').first().or(page.getByTestId('inbox-empty'))).toBeVisible()
  await snap(page, 'inbox')

  await page.getByRole('link', { name: 'Team rules' }).click()
  await expect(page.getByTestId('team-item').filter({ hasText: 'desktop-sig' })).toContainText('Sponsor')
  await snap(page, 'teams')
  await page.getByRole('link', { name: 'desktop-sig' }).click()
  await expect(page.getByRole('heading', { name: 'Team rules: desktop-sig' })).toBeVisible()
  await expect(page.getByRole('form', { name: 'Add a destination' })).toBeVisible()
  await snap(page, 'team')

  await page.getByRole('link', { name: 'Mailbox' }).click()
  await untilShown(page, () => expect(page.getByTestId('mail-item').first()).toBeVisible({ timeout: 3_000 }))
  await snap(page, 'mailbox')
  await page.getByTestId('mail-item').first().click()
  await expect(page.getByTestId('mail-text')).toContainText('Sent by Fedora Notifications')
  await snap(page, 'mailbox-mail-text')
  await page.getByRole('button', { name: 'HTML' }).click()
  await expect(page.frameLocator('[data-test="mail-html"]').getByText('Sent by Fedora Notifications because of your rule(s)')).toBeVisible()
  await snap(page, 'mailbox-mail-html')
  await page.getByRole('link', { name: /IRC and Matrix/ }).click()
  await expect(page.getByText('No IRC or Matrix message for you yet').or(page.getByTestId('chat-item').first())).toBeVisible()
  await snap(page, 'mailbox-chat')

  await page.goto('/admin')
  await expect(page.getByText('This part is for administrators only.')).toBeVisible()
  await snap(page, 'admin-refused')

  await page.goto('/no/such/page')
  await expect(page.getByRole('heading', { name: /not found/i })).toBeVisible()
  await snap(page, 'not-found')

  await page.evaluate(() => sessionStorage.clear())
  await page.goto('/history')
  await expect(page.getByRole('heading', { name: 'Log in to go on' })).toBeVisible()
  await snap(page, 'login-required')
})

test('every page of an admin', async ({ page }) => {
  await logIn(page, 'alice')
  await page.getByRole('link', { name: 'Admin' }).click()
  await expect(page.getByRole('heading', { name: 'Disabled rules' })).toBeVisible()
  await snap(page, 'admin-disabled-rules')
  await page.getByRole('link', { name: 'Users’ rules' }).click()
  await page.getByLabel('Username contains').fill('car')
  await page.getByRole('button', { name: 'carol', exact: true }).click()
  await expect(page.getByRole('heading', { name: 'Rules of carol' })).toBeVisible()
  await snap(page, 'admin-user-rules')
  await page.getByRole('link', { name: 'Dead letters' }).click()
  await expect(page.getByRole('heading', { name: 'Dead letters' })).toBeVisible()
  await snap(page, 'admin-deadletters')
  await page.getByRole('link', { name: 'System status' }).click()
  await expect(page.getByRole('listitem').filter({ hasText: 'OK' }).first()).toBeVisible()
  await snap(page, 'admin-status')
})
