import { afterEach, describe, expect, it } from 'vitest'
import type { VueWrapper } from '@vue/test-utils'
import type { Me, TeamDestination } from '@/api/types'
import { fakeApi, makeRule, mountRoute, settle } from '@/test/helpers'

const BOB: Me = { id: 2, name: 'bob', is_admin: false }
const TEAMS = [
  { group: 'packager', sponsor: false },
  { group: 'python-sig', sponsor: true },
]

function destination(overrides: Partial<TeamDestination> = {}): TeamDestination {
  return {
    id: 1,
    protocol: 'irc',
    address: '#python-sig',
    verified: false,
    verified_at: null,
    verified_by: null,
    code_sent_at: '2026-12-06T10:00:00Z',
    ...overrides,
  }
}

const TEAM_RULE = makeRule({
  id: 7,
  name: 'Python builds',
  user: { id: 3, name: 'group:python-sig', is_admin: false },
  tracking_rule: { name: 'artifacts-group-owned', params: ['python-sig'] },
  generation_rules: [
    {
      id: 70,
      destinations: [{ protocol: 'email', address: 'python-devel@lists.example.org' }],
      filters: { applications: [], excluded_applications: [], severities: [], topic: null, my_actions: false },
    },
  ],
})

function routes(destinations: TeamDestination[] = [destination()]) {
  return {
    'GET /users/me': { body: BOB },
    'GET /users/bob/teams': { body: TEAMS },
    'GET /groups/python-sig/rules': { body: [TEAM_RULE] },
    'GET /groups/python-sig/destinations': { body: destinations },
    'GET /groups/packager/rules': { body: [makeRule({ id: 8, name: 'Packager news', user: { id: 4, name: 'group:packager', is_admin: false } })] },
    'GET /groups/packager/destinations': { body: [destination({ id: 2, address: '#packager', verified: true })] },
  }
}

let wrapper: VueWrapper | undefined
afterEach(() => wrapper?.unmount())

describe('Team rules list', () => {
  it('lists the user’s groups, those they sponsor first', async () => {
    fakeApi(routes())
    ;({ wrapper } = await mountRoute('/teams'))
    const items = wrapper.findAll('[data-test="team-item"]')
    expect(items.map((i) => i.text())).toEqual(['python-sigSponsor', 'packagerMember'])
    expect(items[0]!.find('a').attributes('href')).toBe('/teams/python-sig')
  })
})

describe('a group the user sponsors', () => {
  it('shows its rules to edit and its destinations with their state', async () => {
    fakeApi(routes([destination(), destination({ id: 3, protocol: 'email', address: 'python-devel@lists.example.org', verified: true, verified_by: 'bob' })]))
    ;({ wrapper } = await mountRoute('/teams/python-sig'))
    const rule = wrapper.find('[data-test="team-rule"]')
    expect(rule.find('a').text()).toBe('Python builds')
    expect(rule.find('a').attributes('href')).toBe('/teams/python-sig/rules/7')
    expect(rule.text()).toContain('python-devel@lists.example.org')
    const states = wrapper.findAll('[data-test="team-destination"]').map((d) => d.find('[data-test="state"]').text())
    expect(states).toEqual(['Unverified', 'Verified'])
    expect(wrapper.find('#code-1').exists()).toBe(true)
    expect(wrapper.find('#code-3').exists()).toBe(false)
    expect(wrapper.text()).toContain('Add a team rule')
  })

  it('adds a destination, which sends it a code', async () => {
    const api = fakeApi({ ...routes([]), 'POST /groups/python-sig/destinations': { status: 201, body: destination({ id: 5, protocol: 'matrix', address: '!room:example.org' }) } })
    ;({ wrapper } = await mountRoute('/teams/python-sig'))
    await wrapper.find('#team-dest-protocol').setValue('matrix')
    expect(wrapper.find('#team-dest-help').text()).toContain('invite')
    await wrapper.find('#team-dest-address').setValue(' !room:example.org ')
    await wrapper.find('form[aria-label="Add a destination"]').trigger('submit')
    await settle()
    expect(JSON.parse(api.callsTo('POST', '/groups/python-sig/destinations')[0]!.body!)).toEqual({
      protocol: 'matrix',
      address: '!room:example.org',
    })
    // The list is read again for the new destination.
    expect(api.callsTo('GET', '/groups/python-sig/destinations').length).toBeGreaterThan(1)
  })

  it('shows a refused address next to the field', async () => {
    fakeApi({
      ...routes([]),
      'POST /groups/python-sig/destinations': {
        status: 422,
        body: { detail: [{ loc: ['body', 'address'], msg: "'python' is not an IRC channel (#name)", type: 'value_error' }] },
      },
    })
    ;({ wrapper } = await mountRoute('/teams/python-sig'))
    await wrapper.find('#team-dest-protocol').setValue('irc')
    await wrapper.find('#team-dest-address').setValue('python')
    await wrapper.find('form[aria-label="Add a destination"]').trigger('submit')
    await settle()
    expect(wrapper.find('#team-dest-error').text()).toContain('is not an IRC channel')
    expect(wrapper.find('#team-dest-address').attributes('aria-invalid')).toBe('true')
  })

  it('verifies a destination with the code, and says when the code is wrong', async () => {
    let verified = false
    const api = fakeApi({
      ...routes(),
      'GET /groups/python-sig/destinations': () => ({ body: [destination({ verified, verified_by: verified ? 'bob' : null })] }),
      'POST /groups/python-sig/destinations/1/verify': (call) => {
        if (JSON.parse(call.body!).code !== 'ABCD2345')
          return { status: 422, body: { detail: [{ loc: ['body', 'code'], msg: 'That is not the code sent to this destination', type: 'value_error' }] } }
        verified = true
        return { body: destination({ verified: true }) }
      },
    })
    ;({ wrapper } = await mountRoute('/teams/python-sig'))
    await wrapper.find('#code-1').setValue('WRONG')
    await wrapper.find('[data-test="team-destination"] form').trigger('submit')
    await settle()
    expect(wrapper.find('#code-1-error').text()).toContain('That is not the code')

    await wrapper.find('#code-1').setValue('ABCD2345')
    await wrapper.find('[data-test="team-destination"] form').trigger('submit')
    await settle()
    expect(api.callsTo('POST', '/groups/python-sig/destinations/1/verify')).toHaveLength(2)
    expect(wrapper.find('[data-test="state"]').text()).toBe('Verified')
    expect(wrapper.find('#code-1').exists()).toBe(false)
  })

  it('sends a new code on request', async () => {
    const api = fakeApi({ ...routes(), 'POST /groups/python-sig/destinations/1/code': { body: destination() } })
    ;({ wrapper } = await mountRoute('/teams/python-sig'))
    const button = wrapper.findAll('button').find((b) => b.text() === 'Send a new code')!
    await button.trigger('click')
    await settle()
    expect(api.callsTo('POST', '/groups/python-sig/destinations/1/code')).toHaveLength(1)
  })
})

describe('a group the user is a member of', () => {
  it('shows its rules and destinations read-only', async () => {
    fakeApi(routes())
    ;({ wrapper } = await mountRoute('/teams/packager'))
    expect(wrapper.find('[data-test="read-only"]').exists()).toBe(true)
    const rule = wrapper.find('[data-test="team-rule"]')
    expect(rule.text()).toContain('Packager news')
    expect(rule.find('a').exists()).toBe(false)
    expect(wrapper.find('form[aria-label="Add a destination"]').exists()).toBe(false)
    expect(wrapper.text()).not.toContain('Add a team rule')
    expect(wrapper.findAll('[data-test="team-destination"] button')).toHaveLength(0)
  })
})

describe('a team rule in the rule editor', () => {
  it('tracks the group, offers only its verified destinations and saves to the group', async () => {
    const api = fakeApi({
      ...routes([destination(), destination({ id: 3, protocol: 'email', address: 'python-devel@lists.example.org', verified: true })]),
      'GET /users/bob/groups': { body: ['python-sig'] },
      'GET /applications': { body: ['koji'] },
      'GET /artifacts': { body: [] },
      'POST /groups/python-sig/rules': { status: 201, body: TEAM_RULE },
    })
    const mounted = await mountRoute('/teams/python-sig/rules/new')
    wrapper = mounted.wrapper
    expect(wrapper.find('h1').text()).toBe('New team rule of python-sig')
    const choices = wrapper.findAll('input[type="checkbox"][id*="-dest-"]')
    expect(choices).toHaveLength(1)
    await choices[0]!.setValue(true)
    await wrapper.find('form[aria-label="Rule"]').trigger('submit')
    await settle()
    const body = JSON.parse(api.callsTo('POST', '/groups/python-sig/rules')[0]!.body!)
    expect(body.tracking_rule).toEqual({ name: 'artifacts-group-owned', params: ['python-sig'] })
    expect(body.generation_rules[0].destinations).toEqual([{ protocol: 'email', address: 'python-devel@lists.example.org' }])
    expect(mounted.router.currentRoute.value.path).toBe('/teams/python-sig')
  })

  it('saves an edited team rule to the group with PUT', async () => {
    const api = fakeApi({
      ...routes([destination({ id: 3, protocol: 'email', address: 'python-devel@lists.example.org', verified: true })]),
      'GET /users/bob/groups': { body: ['python-sig'] },
      'GET /applications': { body: ['koji'] },
      'GET /artifacts': { body: [] },
      'GET /groups/python-sig/rules/7': { body: TEAM_RULE },
      'PUT /groups/python-sig/rules/7': { body: TEAM_RULE },
    })
    ;({ wrapper } = await mountRoute('/teams/python-sig/rules/7'))
    await wrapper.find('#rule-name').setValue('Python builds and updates')
    await wrapper.find('form[aria-label="Rule"]').trigger('submit')
    await settle()
    const put = JSON.parse(api.callsTo('PUT', '/groups/python-sig/rules/7')[0]!.body!)
    expect(put.name).toBe('Python builds and updates')
    expect(put.id).toBe(7)
  })
})
