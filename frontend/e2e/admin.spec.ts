// The admin pages answer an admin (alice, group sysadmin-main) and are refused to everyone else,
// by the app and by the API.
import { expect, test } from '@playwright/test'
import { accessToken, logIn, snap } from './helpers'

test('an admin reads the admin pages', async ({ page }) => {
  await logIn(page, 'alice')
  await page.getByRole('link', { name: 'Admin' }).click()
  await expect(page.getByRole('heading', { name: 'Administration' })).toBeVisible()
  await expect(page.getByRole('heading', { name: 'Disabled rules' })).toBeVisible()

  await page.getByRole('link', { name: 'Users’ rules' }).click()
  await page.getByLabel('Username contains').fill('ali')
  await page.getByRole('button', { name: 'alice', exact: true }).click()
  await expect(page.getByRole('heading', { name: 'Rules of alice' })).toBeVisible()
  await expect(page.getByTestId('admin-rule').filter({ hasText: 'My Events' })).toBeVisible()

  await page.getByRole('link', { name: 'Dead letters' }).click()
  await expect(page.getByRole('heading', { name: 'Dead letters' })).toBeVisible()

  await page.getByRole('link', { name: 'System status' }).click()
  await expect(page.getByRole('heading', { name: 'System status' })).toBeVisible()
  await expect(page.getByRole('listitem').filter({ hasText: 'OK' }).first()).toBeVisible()

  const token = await accessToken(page)
  const status = await page.request.get('/api/v1/admin/status', { headers: { Authorization: `Bearer ${token}` } })
  expect(status.status()).toBe(200)
})

test('everyone else is refused them, in the app and by the API', async ({ page }) => {
  await logIn(page, 'dave')
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' })).toHaveCount(0)
  for (const path of ['/admin/disabled-rules', '/admin/user-rules', '/admin/deadletters', '/admin/status']) {
    await page.goto(path)
    await expect(page.getByText('This part is for administrators only.')).toBeVisible()
    await expect(page.getByRole('heading', { name: 'System status' })).toHaveCount(0)
  }
  await snap(page, 'admin-refused')

  const token = await accessToken(page)
  const auth = { Authorization: `Bearer ${token}` }
  for (const path of ['/api/v1/admin/status', '/api/v1/admin/rules?disabled=true', '/api/v1/admin/deadletters', '/api/v1/admin/users?search=a']) {
    const answer = await page.request.get(path, { headers: auth })
    expect(answer.status(), path).toBe(403)
  }
  // Another user's rules too.
  const theirs = await page.request.get('/api/v1/users/alice/rules', { headers: auth })
  expect(theirs.status()).toBe(403)
})
