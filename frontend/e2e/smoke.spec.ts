import { expect, test, type Page } from '@playwright/test'

/** Log in through the built-in provider of `fmn run` as one of its sample users. */
async function logIn(page: Page, who = 'Alice Anderson') {
  await page.goto('/')
  await page.getByRole('button', { name: 'Log in' }).first().click()
  await page.getByRole('button', { name: new RegExp(who) }).click()
  await expect(page.getByRole('heading', { name: 'My rules' })).toBeVisible()
}

test('logs in with PKCE and lands on My rules', async ({ page }) => {
  await logIn(page)
  await expect(page.getByTestId('rule-count').or(page.getByText('You have no rules yet'))).toBeVisible()
})

test('creates a rule after previewing it, then deletes it', async ({ page }) => {
  await logIn(page)
  await page.getByRole('link', { name: 'Add a new rule' }).click()
  const name = `e2e ${Date.now()}`
  await page.getByLabel('Name').fill(name)
  await page.getByLabel('My events').check()
  await page.getByRole('checkbox', { name: /alice@example\.org/ }).check()
  await page.getByLabel('Topic pattern').fill('*.koji.*')

  await page.getByRole('button', { name: 'Preview', exact: true }).click()
  await expect(page.locator('[data-test="preview-result"]')).toContainText('notification')

  await page.getByRole('button', { name: 'Create' }).click()
  await expect(page.getByRole('heading', { name: 'My rules' })).toBeVisible()
  await page.getByRole('link', { name }).click()
  await expect(page.getByLabel('Topic pattern')).toHaveValue('*.koji.*')
  // A saved rule previews too (its id stays out of the preview request).
  await page.getByRole('button', { name: 'Preview', exact: true }).click()
  await expect(page.locator('[data-test="preview-result"]')).toContainText('notification')

  await page.getByRole('button', { name: 'Delete' }).click()
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click()
  await expect(page.getByRole('heading', { name: 'My rules' })).toBeVisible()
  await expect(page.getByRole('link', { name })).toHaveCount(0)
})

test('says what is missing next to the field', async ({ page }) => {
  await logIn(page)
  await page.getByRole('link', { name: 'Add a new rule' }).click()
  await page.getByRole('button', { name: 'Create' }).click()
  await expect(page.getByText('Pick at least one destination.')).toBeVisible()
})

test('history, settings and the admin pages answer', async ({ page }) => {
  await logIn(page)
  await page.getByRole('link', { name: 'History' }).click()
  await expect(page.getByRole('heading', { name: 'Notification history' })).toBeVisible()

  await page.getByRole('link', { name: 'Settings' }).click()
  await page.getByLabel('Daily digest').check()
  await page.getByRole('button', { name: 'Save settings' }).click()
  await expect(page.getByText('Settings saved.')).toBeVisible()
  await page.getByLabel('No digest').check()
  await page.getByRole('button', { name: 'Save settings' }).click()

  await page.getByRole('link', { name: 'Admin' }).click()
  await expect(page.getByRole('heading', { name: 'Disabled rules' })).toBeVisible()
  await page.getByRole('link', { name: 'System status' }).click()
  await expect(page.getByRole('heading', { name: 'System status' })).toBeVisible()
})

test('logs out', async ({ page }) => {
  await logIn(page)
  await page.getByRole('button', { name: 'Log out' }).click()
  await page.waitForURL((url) => !url.pathname.startsWith('/idp') || url.searchParams.has('post_logout_redirect_uri'))
  const confirm = page.getByRole('button', { name: /log out/i })
  if (await confirm.isVisible().catch(() => false)) await confirm.click()
  await page.goto('/')
  await expect(page.getByRole('button', { name: 'Log in' }).first()).toBeVisible()
})
