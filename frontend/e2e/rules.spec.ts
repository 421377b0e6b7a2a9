// alice's rules, one test after the other: each of the eight kinds created after a preview (an
// applications rule then seen firing on the feed's messages), one edited, one disabled (and found
// on the admin page of disabled rules), all deleted.
import { expect, test, type Page } from '@playwright/test'
import { logIn, snap, untilShown } from './helpers'

test.describe.configure({ mode: 'serial' })

interface Kind {
  slug: string
  radio: string
  name: string
  pick: (page: Page) => Promise<void>
}

/** Type into a picker and pick the option; its chip shows. */
async function pickOption(page: Page, picker: string, typed: string, option: string): Promise<void> {
  const input = page.getByRole('combobox', { name: picker })
  await input.fill(typed)
  await page.getByRole('option', { name: option, exact: true }).click()
  await expect(page.getByRole('button', { name: `Remove ${option}` })).toBeVisible()
  await input.fill('')
  // A long list (every application) would cover the fields below.
  await input.press('Escape')
}

const KINDS: Kind[] = [
  {
    slug: 'artifacts-owned',
    radio: 'Artifacts owned by users',
    name: 'e2e: packages of alice and bob',
    // A new rule starts with the user's own artifacts.
    pick: async (page) => {
      await expect(page.getByRole('button', { name: 'Remove alice' })).toBeVisible()
      await pickOption(page, 'Users whose artifacts to track', 'bo', 'bob')
    },
  },
  {
    slug: 'artifacts-group-owned',
    radio: 'Artifacts owned by groups',
    name: 'e2e: packages of the packagers',
    pick: (page) => pickOption(page, 'Groups whose artifacts to track', 'pack', 'packager'),
  },
  {
    slug: 'artifacts-followed',
    radio: 'Artifacts',
    name: 'e2e: guake',
    pick: (page) => pickOption(page, 'Artifacts to track', 'guake', 'guake'),
  },
  {
    slug: 'related-events',
    radio: 'My events',
    name: 'e2e: about me',
    pick: async (page) => await expect(page.getByText('Events that name you (alice)')).toBeVisible(),
  },
  {
    slug: 'users-followed',
    radio: 'Actions of users',
    name: 'e2e: what carol does',
    pick: (page) => pickOption(page, 'Users whose actions to track', 'car', 'carol'),
  },
  {
    slug: 'applications',
    radio: 'Applications',
    name: 'e2e: everything from bodhi',
    pick: (page) => pickOption(page, 'Applications to track', 'bod', 'bodhi'),
  },
  {
    slug: 'topics',
    radio: 'Topics',
    name: 'e2e: bodhi pushes',
    pick: async (page) => {
      const input = page.getByRole('combobox', { name: 'Topic patterns' })
      await input.fill('org.fedoraproject.prod.bodhi.*')
      // The live count from the archive (the feed has been filling it).
      await expect(page.locator('#tracking-topics-count')).toContainText(/matched \d+ messages? in the last 7 days/)
      await input.press('Enter')
      await expect(page.getByRole('button', { name: 'Remove org.fedoraproject.prod.bodhi.*' })).toBeVisible()
    },
  },
  {
    slug: 'projects-followed',
    radio: 'Forge projects',
    name: 'e2e: fesco tickets',
    pick: async (page) => {
      await expect(page.getByLabel('Forge', { exact: true })).toHaveValue('pagure.io')
      const input = page.getByRole('combobox', { name: 'Projects to track' })
      await input.fill('fesco')
      await input.press('Enter')
      await expect(page.getByRole('button', { name: 'Remove fesco on pagure.io' })).toBeVisible()
    },
  },
]

const ruleLink = (page: Page, name: string) => page.getByRole('link', { name, exact: true })

test.beforeEach(async ({ page }) => {
  await logIn(page, 'alice')
})

test('says what is missing next to the field', async ({ page }) => {
  await page.getByRole('link', { name: 'Add a new rule' }).click()
  await page.getByRole('button', { name: 'Create' }).click()
  await expect(page.getByText('Pick at least one destination.')).toBeVisible()
  await expect(page.getByRole('checkbox', { name: /alice@example\.org/ })).toBeFocused()
  await snap(page, 'rules-validation')
})

test('creates each of the eight kinds of rule, after a preview', async ({ page }) => {
  test.slow() // eight rules, each previewed: past the default minute on a loaded machine
  for (const kind of KINDS) {
    await page.getByRole('link', { name: 'Add a new rule' }).click()
    await expect(page.getByRole('heading', { name: 'New rule' })).toBeVisible()
    await page.getByLabel('Name').fill(kind.name)
    await page.getByRole('radio', { name: kind.radio, exact: true }).check()
    await kind.pick(page)
    await page.getByRole('checkbox', { name: /alice@example\.org/ }).check()

    await page.getByRole('button', { name: 'Preview', exact: true }).click()
    const result = page.getByTestId('preview-result')
    await expect(result).toContainText(/\d+ notifications? over the last 7 days/)
    await expect(result).toContainText(/\(\d+ messages? read\)/)
    await expect(page.getByTestId('preview-rate')).toContainText(/About [\d.]+ notifications? a day expected/)
    await snap(page, `rules-new-${kind.slug}`)

    await page.getByRole('button', { name: 'Create' }).click()
    await expect(page.getByText(`Rule “${kind.name}” saved.`)).toBeVisible()
    await expect(page.getByRole('heading', { name: 'My rules' })).toBeVisible()
    await expect(ruleLink(page, kind.name)).toBeVisible()
  }
  // Each kind under its own label in the list.
  for (const kind of KINDS) {
    const item = page.getByTestId('rule-item').filter({ has: ruleLink(page, kind.name) })
    await expect(item.locator('.badge.text-bg-info')).toHaveText(kind.radio)
  }
  await snap(page, 'rules-list')
})

test('an applications rule fires on the bus messages of that application', async ({ page }) => {
  await page.getByRole('link', { name: 'History' }).click()
  const fired = page.getByTestId('history-item').filter({ has: page.getByRole('link', { name: 'e2e: everything from bodhi' }) })
  await untilShown(page, () => expect(fired.first()).toBeVisible({ timeout: 3_000 }))
  await expect(fired.first().locator('code')).toHaveText(/\.bodhi\./)
  await snap(page, 'rules-applications-fired')
})

test('edits a rule: its name, what it tracks, a filter and a second address', async ({ page }) => {
  await ruleLink(page, 'e2e: what carol does').click()
  await expect(page.getByRole('heading', { name: 'Edit rule' })).toBeVisible()
  await expect(page.getByRole('button', { name: 'Remove carol' })).toBeVisible()
  await page.getByLabel('Name').fill('e2e: what carol and dave do')
  await pickOption(page, 'Users whose actions to track', 'dav', 'dave')
  await page.getByLabel('Topic pattern').fill('*.bodhi.*')
  await page.getByRole('checkbox', { name: /IRC\s*alice/ }).check()
  // The saved rule previews as it stands in the form.
  await page.getByRole('button', { name: 'Preview', exact: true }).click()
  await expect(page.getByTestId('preview-result')).toContainText('notification')
  await page.getByRole('button', { name: 'Save' }).click()
  await expect(page.getByText('Rule “e2e: what carol and dave do” saved.')).toBeVisible()
  await expect(page.getByRole('heading', { name: 'My rules' })).toBeVisible()
  await expect(ruleLink(page, 'e2e: what carol does')).toHaveCount(0)

  // What the server kept, read back.
  await page.reload()
  await ruleLink(page, 'e2e: what carol and dave do').click()
  await expect(page.getByLabel('Name')).toHaveValue('e2e: what carol and dave do')
  await expect(page.getByRole('button', { name: 'Remove carol' })).toBeVisible()
  await expect(page.getByRole('button', { name: 'Remove dave' })).toBeVisible()
  await expect(page.getByLabel('Topic pattern')).toHaveValue('*.bodhi.*')
  await expect(page.getByRole('checkbox', { name: /IRC\s*alice/ })).toBeChecked()
  await expect(page.getByRole('checkbox', { name: /alice@example\.org/ })).toBeChecked()
  await snap(page, 'rules-edit')
})

test('disables a rule from the list; it shows disabled there and to the admins', async ({ page }) => {
  const item = page.getByTestId('rule-item').filter({ has: ruleLink(page, 'e2e: guake') })
  await item.getByRole('switch').uncheck()
  await expect(page.getByText('e2e: guake: disabled.')).toBeVisible()
  await expect(item.getByText('Disabled', { exact: true })).toBeVisible()

  await page.reload()
  const reloaded = page.getByTestId('rule-item').filter({ has: ruleLink(page, 'e2e: guake') })
  await expect(reloaded.getByRole('switch')).not.toBeChecked()
  await expect(reloaded).toHaveClass(/rule-disabled/)
  // Disabled rules come last.
  await expect(page.getByTestId('rule-item').last()).toContainText('e2e: guake')
  await snap(page, 'rules-disabled')

  await page.getByRole('link', { name: 'Admin' }).click()
  await expect(page.getByRole('heading', { name: 'Disabled rules' })).toBeVisible()
  await expect(page.getByTestId('admin-rule').filter({ hasText: 'e2e: guake' })).toContainText('alice')

  // And back on from the rule's own page.
  await page.goto('/')
  await ruleLink(page, 'e2e: guake').click()
  await expect(page.getByRole('switch', { name: 'Rule enabled' })).not.toBeChecked()
  await page.getByRole('switch', { name: 'Rule enabled' }).check()
  await page.getByRole('button', { name: 'Save' }).click()
  await expect(page.getByText('Rule “e2e: guake” saved.')).toBeVisible()
  await expect(page.getByRole('heading', { name: 'My rules' })).toBeVisible()
  await expect(page.getByTestId('rule-item').filter({ has: ruleLink(page, 'e2e: guake') }).getByRole('switch')).toBeChecked()
})

test('deletes the rules', async ({ page }) => {
  const names = [
    'e2e: packages of alice and bob',
    'e2e: packages of the packagers',
    'e2e: guake',
    'e2e: about me',
    'e2e: what carol and dave do',
    'e2e: everything from bodhi',
    'e2e: bodhi pushes',
    'e2e: fesco tickets',
  ]
  for (const name of names) {
    await ruleLink(page, name).click()
    await page.getByRole('button', { name: 'Delete' }).click()
    const dialog = page.getByRole('dialog')
    await expect(dialog).toContainText(name)
    if (name === names[0]) await snap(page, 'rules-delete-confirm')
    await dialog.getByRole('button', { name: 'Delete' }).click()
    await expect(page.getByRole('heading', { name: 'My rules' })).toBeVisible()
    await expect(ruleLink(page, name)).toHaveCount(0)
  }
  await page.reload()
  await expect(page.getByTestId('rule-item').filter({ hasText: 'e2e:' })).toHaveCount(0)
  // The rule every new user gets stays.
  await expect(ruleLink(page, 'My Events')).toBeVisible()
})
