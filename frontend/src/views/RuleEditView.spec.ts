import { afterEach, describe, expect, it } from 'vitest'
import type { VueWrapper } from '@vue/test-utils'
import { ALICE, fakeApi, makeRule, mountRoute, settle } from '@/test/helpers'

const DESTINATIONS = [
  { protocol: 'email', address: 'alice@example.org' },
  { protocol: 'matrix', address: '@alice:fedora.im' },
]

function baseRoutes() {
  return {
    'GET /users/me': { body: ALICE },
    'GET /users/alice/destinations': { body: DESTINATIONS },
    'GET /users/alice/groups': { body: ['packager', 'infra-sig'] },
    'GET /applications': { body: ['bodhi', 'koji', 'pagure'] },
    'GET /artifacts': { body: [{ type: 'rpms', name: 'python3' }] },
  }
}

let wrapper: VueWrapper | undefined
afterEach(() => wrapper?.unmount())

/** The element that the field's aria-describedby points at and that holds its errors. */
function errorsOf(w: VueWrapper, selector: string): string {
  const field = w.find(selector)
  const ids = (field.attributes('aria-describedby') ?? '').split(' ').filter(Boolean)
  return ids.map((id) => document.getElementById(id)?.textContent ?? '').join(' ')
}

async function pickApplication(w: VueWrapper, text: string) {
  const input = w.find('input[id$="-apps"]')
  await input.trigger('focus')
  await input.setValue(text)
  await input.trigger('keydown', { key: 'ArrowDown' })
  await input.trigger('keydown', { key: 'Enter' })
}

describe('new rule', () => {
  it('sends the exact FMN 3 rule JSON', async () => {
    const api = fakeApi({ ...baseRoutes(), 'POST /users/alice/rules': { status: 201, body: makeRule({ id: 5 }) } })
    ;({ wrapper } = await mountRoute('/rules/new'))

    await wrapper.find('#rule-name').setValue('Koji errors')
    const email = wrapper.findAll('input[type="checkbox"][id*="-dest-"]')
    expect(email).toHaveLength(2)
    await email[0]!.setValue(true)
    await pickApplication(wrapper, 'ko')
    await wrapper.find('input[id$="-sev-error"]').setValue(true)
    await wrapper.find('input[id$="-topic"]').setValue('org.fedoraproject.*.buildsys.*')
    await wrapper.find('input[id$="-mine"]').setValue(true)
    await wrapper.find('form[aria-label="Rule"]').trigger('submit')
    await settle()

    const [post] = api.callsTo('POST', '/users/alice/rules')
    expect(post?.headers.Authorization).toBe('Bearer token-123')
    expect(post?.body).toBe(
      JSON.stringify({
        name: 'Koji errors',
        disabled: false,
        tracking_rule: { name: 'artifacts-owned', params: ['alice'] },
        generation_rules: [
          {
            destinations: [{ protocol: 'email', address: 'alice@example.org' }],
            filters: {
              applications: ['koji'],
              excluded_applications: [],
              severities: ['error'],
              topic: 'org.fedoraproject.*.buildsys.*',
              my_actions: true,
            },
          },
        ],
      }),
    )
  })

  it('sends My events with null params', async () => {
    const api = fakeApi({ ...baseRoutes(), 'POST /users/alice/rules': { status: 201, body: makeRule() } })
    ;({ wrapper } = await mountRoute('/rules/new'))
    await wrapper.find('#rule-kind-related-events').setValue(true)
    await wrapper.findAll('input[id*="-dest-"]')[1]!.setValue(true)
    await wrapper.find('form[aria-label="Rule"]').trigger('submit')
    await settle()
    const body = JSON.parse(api.callsTo('POST', '/users/alice/rules')[0]!.body!)
    expect(body.tracking_rule).toEqual({ name: 'related-events', params: null })
    expect(body.generation_rules[0].destinations).toEqual([{ protocol: 'matrix', address: '@alice:fedora.im' }])
  })

  it('offers the inbox as "Web (inbox)" without an address, and sends it as the API lists it', async () => {
    const withWeb = [...DESTINATIONS, { protocol: 'web', address: 'alice' }]
    const api = fakeApi({
      ...baseRoutes(),
      'GET /users/alice/destinations': { body: withWeb },
      'POST /users/alice/rules': { status: 201, body: makeRule() },
    })
    ;({ wrapper } = await mountRoute('/rules/new'))
    const web = wrapper.findAll('input[id*="-dest-"]')[2]!
    const label = wrapper.find(`label[for="${web.attributes('id')}"]`)
    expect(label.text()).toContain('Web (inbox)')
    expect(label.text()).not.toContain('alice')
    await web.setValue(true)
    await wrapper.find('form[aria-label="Rule"]').trigger('submit')
    await settle()
    const body = JSON.parse(api.callsTo('POST', '/users/alice/rules')[0]!.body!)
    expect(body.generation_rules[0].destinations).toEqual([{ protocol: 'web', address: 'alice' }])
  })

  it('tells what is missing next to the field, without asking the server', async () => {
    const api = fakeApi(baseRoutes())
    ;({ wrapper } = await mountRoute('/rules/new'))
    await wrapper.find('form[aria-label="Rule"]').trigger('submit')
    await settle()
    expect(api.callsTo('POST', '/users/alice/rules')).toHaveLength(0)
    expect(errorsOf(wrapper, 'input[id*="-dest-0"]')).toContain('Pick at least one destination.')
    expect(wrapper.find('[data-test="error-summary"]').text()).toContain('One field needs attention')
    expect(document.activeElement?.id).toMatch(/-dest-0$/)
  })

  it('shows the server’s 422 messages next to their fields', async () => {
    fakeApi({
      ...baseRoutes(),
      'POST /users/alice/rules': {
        status: 422,
        body: {
          detail: [
            { loc: ['body', 'generation_rules', 0, 'filters', 'topic'], msg: 'String should match pattern', type: 'string_pattern_mismatch' },
            { loc: ['body', 'tracking_rule', 'artifacts-owned', 'params', 0], msg: 'Unknown user: alice', type: 'value_error' },
            { loc: ['body', 'generation_rules', 0, 'destinations', 0], msg: "Value error, address 'alice@example.org' is not yours", type: 'value_error' },
          ],
        },
      },
    })
    ;({ wrapper } = await mountRoute('/rules/new'))
    await wrapper.findAll('input[id*="-dest-"]')[0]!.setValue(true)
    await wrapper.find('input[id$="-topic"]').setValue('x')
    await wrapper.find('form[aria-label="Rule"]').trigger('submit')
    await settle()

    expect(errorsOf(wrapper, 'input[id$="-topic"]')).toContain('String should match pattern')
    expect(wrapper.find('input[id$="-topic"]').attributes('aria-invalid')).toBe('true')
    expect(errorsOf(wrapper, '#tracking-users-owned')).toContain('Unknown user: alice')
    expect(errorsOf(wrapper, 'input[id*="-dest-0"]')).toContain("address 'alice@example.org' is not yours")
    expect(wrapper.find('[data-test="error-summary"]').text()).toContain('3 fields need attention')
  })
})

describe('existing rule', () => {
  const rule = makeRule({
    id: 42,
    name: 'Old',
    tracking_rule: { name: 'users-followed', params: ['bob'] },
    generation_rules: [
      {
        id: 9,
        destinations: [{ protocol: 'irc', address: 'alice_' }],
        filters: { applications: ['bodhi'], excluded_applications: [], severities: [], topic: null, my_actions: false },
      },
    ],
  })

  it('loads the rule, keeps ids and addresses no longer in the profile, and can disable it', async () => {
    const api = fakeApi({ ...baseRoutes(), 'GET /users/alice/rules/42': { body: rule }, 'PUT /users/alice/rules/42': { body: rule } })
    ;({ wrapper } = await mountRoute('/rules/42'))

    expect((wrapper.find('#rule-name').element as HTMLInputElement).value).toBe('Old')
    expect(wrapper.text()).toContain('(no longer in your profile)')
    await wrapper.find('#rule-enabled').setValue(false)
    await wrapper.find('form[aria-label="Rule"]').trigger('submit')
    await settle()

    const body = JSON.parse(api.callsTo('PUT', '/users/alice/rules/42')[0]!.body!)
    expect(body).toEqual({
      id: 42,
      name: 'Old',
      disabled: true,
      tracking_rule: { name: 'users-followed', params: ['bob'] },
      generation_rules: [
        {
          id: 9,
          destinations: [{ protocol: 'irc', address: 'alice_' }],
          filters: { applications: ['bodhi'], excluded_applications: [], severities: [], topic: null, my_actions: false },
        },
      ],
    })
  })

  it('previews an existing rule without its id, which the preview refuses', async () => {
    const api = fakeApi({
      ...baseRoutes(),
      'GET /users/alice/rules/42': { body: rule },
      'POST /users/alice/rules/preview': { body: { total: 0, complete: true, scanned: 10, per_day: [], notifications: [] } },
    })
    ;({ wrapper } = await mountRoute('/rules/42'))
    await wrapper.findAll('button').find((b) => b.text() === 'Preview')!.trigger('click')
    await settle()
    const sent = JSON.parse(api.callsTo('POST', '/users/alice/rules/preview')[0]!.body!)
    expect(sent.rule).not.toHaveProperty('id')
    expect(sent.rule.generation_rules[0].id).toBe(9)
    expect(sent.days).toBe(7)
  })

  it('deletes only after confirmation', async () => {
    const api = fakeApi({
      ...baseRoutes(),
      'GET /users/alice/rules/42': { body: rule },
      'DELETE /users/alice/rules/42': { status: 204 },
    })
    const mounted = await mountRoute('/rules/42')
    wrapper = mounted.wrapper
    const deleteButton = wrapper.findAll('button').find((b) => b.text() === 'Delete')!
    await deleteButton.trigger('click')
    const dialog = document.querySelector('[role="dialog"]')!
    expect(dialog.textContent).toContain('Delete this rule?')
    expect(document.activeElement?.textContent).toBe('Cancel')
    expect(api.callsTo('DELETE', '/users/alice/rules/42')).toHaveLength(0)

    const confirm = [...dialog.querySelectorAll('button')].find((b) => b.textContent?.trim() === 'Delete')!
    confirm.click()
    await settle()
    expect(api.callsTo('DELETE', '/users/alice/rules/42')).toHaveLength(1)
    expect(mounted.router.currentRoute.value.path).toBe('/')
  })
})

describe('muting a rule', () => {
  it('mutes for the chosen time and unmutes, with PATCH muted_until', async () => {
    const muted = makeRule({ id: 42, muted_until: '2999-01-01T00:00:00Z' })
    let current = makeRule({ id: 42 })
    const api = fakeApi({
      ...baseRoutes(),
      'GET /users/alice/rules/42': () => ({ body: current }),
      'PATCH /users/alice/rules/42': () => ({ body: (current = current.muted_until ? makeRule({ id: 42 }) : muted) }),
    })
    ;({ wrapper } = await mountRoute('/rules/42'))
    await wrapper.find('#rule-mute-for').setValue('168')
    const before = Date.now()
    await wrapper.findAll('button').find((b) => b.text() === 'Mute')!.trigger('click')
    await settle()
    const sent = JSON.parse(api.callsTo('PATCH', '/users/alice/rules/42')[0]!.body!)
    const hours = (new Date(sent.muted_until).getTime() - before) / 3600_000
    expect(hours).toBeGreaterThan(167.9)
    expect(hours).toBeLessThan(168.1)
    expect(wrapper.find('[data-test="rule-muted"]').text()).toContain('Muted until')

    await wrapper.findAll('button').find((b) => b.text() === 'Unmute')!.trigger('click')
    await settle()
    expect(JSON.parse(api.callsTo('PATCH', '/users/alice/rules/42')[1]!.body!)).toEqual({ muted_until: null })
    expect(wrapper.find('[data-test="rule-muted"]').exists()).toBe(false)
  })
})
