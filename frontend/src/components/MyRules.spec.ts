import { afterEach, describe, expect, it } from 'vitest'
import type { VueWrapper } from '@vue/test-utils'
import { ALICE, fakeApi, makeRule, mountWithApp, settle } from '@/test/helpers'
import MyRules from './MyRules.vue'

let wrapper: VueWrapper | undefined
afterEach(() => wrapper?.unmount())

const RULES = [
  makeRule({ id: 1, name: 'Old stuff', disabled: true, generated_last_week: 0 }),
  makeRule({ id: 2, name: null, tracking_rule: { name: 'users-followed', params: ['bob', 'carol'] }, generated_last_week: 12 }),
  makeRule({ id: 3, name: 'Python', tracking_rule: { name: 'artifacts-followed', params: [{ name: 'python3', type: 'rpms' }] } }),
]

describe('MyRules', () => {
  it('shows each rule with its type, destinations and 7-day count, disabled ones greyed and last', async () => {
    fakeApi({ 'GET /users/me': { body: ALICE }, 'GET /users/alice/rules': { body: RULES } })
    ;({ wrapper } = await mountWithApp(MyRules))
    const items = wrapper.findAll('[data-test="rule-item"]')
    expect(items.map((i) => i.find('a').text())).toEqual(['Actions of bob and carol', 'Python', 'Old stuff'])
    expect(items[2]!.classes()).toContain('rule-disabled')
    expect(items[0]!.classes()).not.toContain('rule-disabled')
    expect(items[0]!.text()).toContain('Actions of users')
    expect(items[0]!.text()).toContain('alice@example.org')
    expect(items[0]!.text()).toContain('12 / 7 days')
    expect(wrapper.find('[data-test="rule-count"]').text()).toBe('3 rules, 3 shown')
  })

  it('filters by type and by search', async () => {
    fakeApi({ 'GET /users/me': { body: ALICE }, 'GET /users/alice/rules': { body: RULES } })
    ;({ wrapper } = await mountWithApp(MyRules))
    await wrapper.find('#rule-type-filter').setValue('artifacts-followed')
    expect(wrapper.findAll('[data-test="rule-item"]').map((i) => i.find('a').text())).toEqual(['Python'])
    expect(wrapper.find('[data-test="rule-count"]').text()).toBe('3 rules, 1 shown')
    await wrapper.find('#rule-type-filter').setValue('')
    await wrapper.find('#rule-search').setValue('CAROL')
    expect(wrapper.findAll('[data-test="rule-item"]').map((i) => i.find('a').text())).toEqual(['Actions of bob and carol'])
  })

  it('enables and disables with PATCH', async () => {
    const api = fakeApi({
      'GET /users/me': { body: ALICE },
      'GET /users/alice/rules': { body: RULES },
      'PATCH /users/alice/rules/1': { body: { ...RULES[0], disabled: false } },
    })
    ;({ wrapper } = await mountWithApp(MyRules))
    await wrapper.find('#rule-enabled-1').setValue(true)
    await settle()
    expect(JSON.parse(api.callsTo('PATCH', '/users/alice/rules/1')[0]!.body!)).toEqual({ disabled: false })
    expect(api.callsTo('GET', '/users/alice/rules').length).toBeGreaterThan(1)
  })

  it('invites to create a first rule', async () => {
    fakeApi({ 'GET /users/me': { body: ALICE }, 'GET /users/alice/rules': { body: [] } })
    ;({ wrapper } = await mountWithApp(MyRules))
    expect(wrapper.text()).toContain('You have no rules yet')
  })

  it('says in words when the rules cannot be loaded', async () => {
    fakeApi({ 'GET /users/me': { body: ALICE }, 'GET /users/alice/rules': { status: 503, body: { detail: 'database down' } } })
    ;({ wrapper } = await mountWithApp(MyRules))
    expect(wrapper.find('[role="alert"]').text()).toContain('The server had a problem (HTTP 503) (database down)')
  })
})
