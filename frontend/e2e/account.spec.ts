// Logging in and out through the built-in provider, and the settings.
import { expect, test } from '@playwright/test'
import { logIn } from './helpers'

test('logs in with PKCE, saves settings, logs out', async ({ page }) => {
  await logIn(page, 'dave')
  await expect(page.getByTestId('rule-count').or(page.getByText('You have no rules yet'))).toBeVisible()

  await page.getByRole('link', { name: 'Settings' }).click()
  await page.getByLabel('Daily digest').check()
  await page.getByRole('button', { name: 'Save settings' }).click()
  await expect(page.getByText('Settings saved.')).toBeVisible()
  await page.reload()
  await expect(page.getByLabel('Daily digest')).toBeChecked()
  await page.getByLabel('No digest').check()
  await page.getByRole('button', { name: 'Save settings' }).click()
  await expect(page.getByText('Settings saved.').first()).toBeVisible()

  // RP-initiated logout: through the provider's end-session endpoint, which sends the browser back.
  const viaProvider = page.waitForRequest(/\/idp\/logout/)
  await page.getByRole('button', { name: 'Log out' }).click()
  await viaProvider
  await page.waitForURL((url) => url.pathname === '/')
  await expect(page.getByRole('button', { name: 'Log in' }).first()).toBeVisible()
  // The session is gone: a page that needs it asks to log in.
  await page.goto('/history')
  await expect(page.getByRole('heading', { name: 'Log in to go on' })).toBeVisible()
})
