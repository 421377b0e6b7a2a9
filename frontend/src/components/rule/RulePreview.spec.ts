import { afterEach, describe, expect, it } from 'vitest'
import type { VueWrapper } from '@vue/test-utils'
import type { NewRule, PreviewResult } from '@/api/types'
import { fakeApi, mountWithApp, settle, type Reply } from '@/test/helpers'
import RulePreview from './RulePreview.vue'

const RULE: NewRule = {
  name: null,
  disabled: false,
  tracking_rule: { name: 'related-events', params: null },
  generation_rules: [
    {
      destinations: [{ protocol: 'email', address: 'alice@example.org' }],
      filters: { applications: [], excluded_applications: [], severities: [], topic: null, my_actions: false },
    },
  ],
}

const HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'

const RESULT: PreviewResult = {
  total: 3,
  complete: false,
  scanned: 18000,
  per_day: [
    { date: '2025-07-01', count: 2 },
    { date: '2025-07-02', count: 0 },
    { date: '2025-07-03', count: 1 },
  ],
  expected_per_day: 1,
  digest_suggested: false,
  notifications: [
    {
      message: { id: 'm1', topic: 'org.fedoraproject.prod.bodhi.update.comment', sent_at: '2025-07-01T10:00:00Z', app_name: 'bodhi', summary: HOSTILE, url: 'javascript:alert(1)' },
      destinations: [{ protocol: 'email', address: 'alice@example.org' }],
    },
    {
      message: { id: 'm2', topic: 'org.fedoraproject.prod.koji.build.state.change', sent_at: '2025-07-01T11:00:00Z', app_name: 'koji', summary: 'Build of foo completed', url: 'https://koji.example.org/b/1' },
      destinations: [{ protocol: 'email', address: 'alice@example.org' }],
    },
  ],
}

let wrapper: VueWrapper | undefined
afterEach(() => wrapper?.unmount())

async function mountPreview(reply: () => Reply | Promise<Reply>, buildRule: () => NewRule | null = () => RULE) {
  const api = fakeApi({ 'GET /users/me': { body: { id: 1, name: 'alice', is_admin: false } }, 'POST /users/alice/rules/preview': reply })
  ;({ wrapper } = await mountWithApp(RulePreview, { props: { username: 'alice', buildRule } }))
  return api
}

describe('RulePreview', () => {
  it('shows progress while it runs, then per-day counts and the matching messages', async () => {
    let release: (reply: Reply) => void = () => {}
    const api = await mountPreview(() => new Promise<Reply>((resolve) => (release = resolve)))
    await wrapper!.find('#preview-days').setValue('3')
    await wrapper!.findAll('button').find((b) => b.text() === 'Preview')!.trigger('click')
    await settle()

    expect(wrapper!.find('[data-test="preview-progress"]').text()).toContain('Reading the last 3 days of messages')
    expect(wrapper!.find('[role="progressbar"]').exists()).toBe(true)
    const [call] = api.callsTo('POST', '/users/alice/rules/preview')
    expect(JSON.parse(call!.body!)).toEqual({ rule: RULE, days: 3 })
    expect(call!.query.get('page')).toBe('1')

    release({ body: RESULT })
    await settle()
    expect(wrapper!.find('[data-test="preview-progress"]').exists()).toBe(false)
    const result = wrapper!.find('[data-test="preview-result"]')
    expect(result.text()).toContain('3 notifications over the last 3 days')
    expect(result.text()).toContain('18000 messages read')
    const rows = wrapper!.findAll('[data-test="day-row"]').map((r) => r.findAll('th, td').map((c) => c.text()))
    expect(rows).toEqual([
      ['2025-07-01', '2'],
      ['2025-07-02', '0'],
      ['2025-07-03', '1'],
    ])
    expect(wrapper!.findAll('rect.bar')).toHaveLength(3)
    expect(wrapper!.findAll('[data-test="preview-message"]')).toHaveLength(2)
    expect(wrapper!.find('[data-test="preview-rate"]').text()).toContain('About 1 notification a day')
    expect(wrapper!.find('[data-test="preview-digest"]').exists()).toBe(false)
  })

  it('suggests a digest when the server says the rule would flood', async () => {
    await mountPreview(() => ({ body: { ...RESULT, total: 400, expected_per_day: 57.1, digest_suggested: true } }))
    await wrapper!.findAll('button').find((b) => b.text() === 'Preview')!.trigger('click')
    await settle()

    expect(wrapper!.find('[data-test="preview-rate"]').text()).toContain('About 57.1 notifications a day')
    const digest = wrapper!.find('[data-test="preview-digest"]')
    expect(digest.text()).toContain('Choose a digest in Settings')
    expect(digest.find('a').attributes('href')).toBe('/settings')
  })

  it('says when the window was not read in full', async () => {
    await mountPreview(() => ({ body: RESULT }))
    await wrapper!.findAll('button').find((b) => b.text() === 'Preview')!.trigger('click')
    await settle()
    expect(wrapper!.find('[data-test="preview-incomplete"]').text()).toContain('ran out of time')
  })

  it('shows a hostile summary as text and drops non-http links', async () => {
    await mountPreview(() => ({ body: RESULT }))
    await wrapper!.findAll('button').find((b) => b.text() === 'Preview')!.trigger('click')
    await settle()
    const [first, second] = wrapper!.findAll('[data-test="summary"]')
    expect(first!.text()).toBe(HOSTILE)
    expect(first!.element.querySelector('script, img')).toBeNull()
    expect(first!.find('a').exists()).toBe(false)
    expect(document.querySelector('a[href^="javascript"]')).toBeNull()
    expect(second!.find('a').attributes('href')).toBe('https://koji.example.org/b/1')
    expect(second!.find('a').attributes('rel')).toContain('noopener')
  })

  it('does not ask the server while the form is invalid', async () => {
    const api = await mountPreview(() => ({ body: RESULT }), () => null)
    await wrapper!.findAll('button').find((b) => b.text() === 'Preview')!.trigger('click')
    await settle()
    expect(api.callsTo('POST', '/users/alice/rules/preview')).toHaveLength(0)
  })

  it('hands a 422 to the form and says so', async () => {
    await mountPreview(() => ({ status: 422, body: { detail: [{ loc: ['body', 'rule', 'name'], msg: 'too long' }] } }))
    await wrapper!.findAll('button').find((b) => b.text() === 'Preview')!.trigger('click')
    await settle()
    expect(wrapper!.emitted('refused')).toHaveLength(1)
    expect(wrapper!.text()).toContain('The preview refused the rule')
  })
})
