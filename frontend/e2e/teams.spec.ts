// Team rules (FMN #179) in the embedded default: carol sponsors desktop-sig (the sample
// directory). She adds the group's IRC channel, reads the code fmn said there in the dev mailbox
// (the IRC stand-in keeps what the sender said to the channels of her groups), enters it, and
// creates a team rule that sends to the channel; then edits and deletes it.
import { expect, test } from '@playwright/test'
import { logIn, snap, untilShown } from './helpers'

test('a sponsor verifies the group’s channel and creates a team rule for it', async ({ page }) => {
  // Unique per run, so the test also passes against a run that has seen it before (FMN_E2E_URL).
  const channel = `#desktop-e2e-${Date.now().toString(36)}`
  await logIn(page, 'carol')

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Team rules' }).click()
  await expect(page.getByRole('heading', { name: 'Team rules' })).toBeVisible()
  const team = page.getByTestId('team-item').filter({ hasText: 'desktop-sig' })
  await expect(team).toContainText('Sponsor')
  await snap(page, 'teams')
  await team.getByRole('link', { name: 'desktop-sig' }).click()
  await expect(page.getByRole('heading', { name: 'Team rules: desktop-sig' })).toBeVisible()

  // A name that is no channel is refused next to the field.
  await page.getByLabel('Kind').selectOption('irc')
  await page.getByLabel('Address', { exact: true }).fill('desktop-sig')
  await page.getByRole('button', { name: 'Add and send a code' }).click()
  await expect(page.locator('#team-dest-error')).toContainText('is not an IRC channel')

  await page.getByLabel('Address', { exact: true }).fill(channel)
  await page.getByRole('button', { name: 'Add and send a code' }).click()
  const destination = page.getByTestId('team-destination').filter({ hasText: channel })
  await expect(destination.getByTestId('state')).toHaveText('Unverified')
  // No rule may use it yet: the rule editor offers no destination.
  await page.getByRole('link', { name: 'Add a team rule' }).click()
  await expect(page.getByText('The group has no verified destination yet.')).toBeVisible()
  await page.getByRole('link', { name: 'Cancel' }).click()

  // The code went through the send queue and the IRC sender to the channel.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Mailbox' }).click()
  await page.getByRole('link', { name: /IRC and Matrix/ }).click()
  const said = page.getByTestId('chat-item').filter({ hasText: channel }).first()
  await untilShown(page, () => expect(said).toBeVisible({ timeout: 3_000 }))
  const text = (await said.textContent()) ?? ''
  const code = /code for the group desktop-sig: ([A-Z2-9]{8})/.exec(text)?.[1]
  expect(code, text).toBeTruthy()
  await snap(page, 'teams-code-in-mailbox')

  await page.goto('/teams/desktop-sig')
  const codeField = destination.getByRole('textbox')
  await codeField.fill('WRONGCODE')
  await destination.getByRole('button', { name: 'Verify' }).click()
  await expect(destination).toContainText('That is not the code sent to this destination')
  // Typed as read off a chat line: lower case and a space do not matter.
  await codeField.fill(`${code!.slice(0, 4).toLowerCase()} ${code!.slice(4)}`)
  await destination.getByRole('button', { name: 'Verify' }).click()
  await expect(destination.getByTestId('state')).toHaveText('Verified')
  await expect(destination).toContainText('Verified by carol')
  await snap(page, 'team-destinations')

  // A team rule: the group's artifacts, to the verified channel.
  await page.getByRole('link', { name: 'Add a team rule' }).click()
  await expect(page.getByRole('heading', { name: 'New team rule of desktop-sig' })).toBeVisible()
  await page.getByLabel('Name').fill('Desktop builds')
  await page.getByRole('checkbox', { name: channel }).check()
  await page.getByRole('button', { name: 'Create' }).click()
  await expect(page.getByRole('heading', { name: 'Team rules: desktop-sig' })).toBeVisible()
  const rule = page.getByTestId('team-rule').filter({ hasText: 'Desktop builds' })
  await expect(rule).toContainText(channel)
  await expect(rule).toContainText('Artifacts owned by groups')

  // Edited and read back, then deleted.
  await rule.getByRole('link', { name: 'Desktop builds' }).click()
  await expect(page.getByRole('heading', { name: 'Edit team rule of desktop-sig' })).toBeVisible()
  await expect(page.getByRole('checkbox', { name: channel })).toBeChecked()
  await page.getByLabel('Name').fill('Desktop builds and updates')
  await page.getByRole('button', { name: 'Save' }).click()
  await expect(page.getByTestId('team-rule').filter({ hasText: 'Desktop builds and updates' })).toBeVisible()
  await page.getByRole('link', { name: 'Desktop builds and updates' }).click()
  await page.getByRole('button', { name: 'Delete' }).click()
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click()
  await expect(page.getByRole('heading', { name: 'Team rules: desktop-sig' })).toBeVisible()
  await expect(page.getByTestId('team-rule').filter({ hasText: 'Desktop builds' })).toHaveCount(0)
})

test('a member sees the group’s rules and destinations read-only', async ({ page }) => {
  // carol is in packager too (the sample directory), which alice sponsors.
  await logIn(page, 'carol')
  await page.goto('/teams')
  const team = page.getByTestId('team-item').filter({ hasText: 'packager' })
  await expect(team).toContainText('Member')
  await team.getByRole('link', { name: 'packager' }).click()
  await expect(page.getByTestId('read-only')).toBeVisible()
  await expect(page.getByRole('link', { name: 'Add a team rule' })).toHaveCount(0)
  await expect(page.getByRole('form', { name: 'Add a destination' })).toHaveCount(0)
})
