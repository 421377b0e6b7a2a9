import { afterEach, describe, expect, it } from 'vitest'
import type { VueWrapper } from '@vue/test-utils'
import type { NotificationRecord } from '@/api/types'
import { ALICE, fakeApi, makeRule, mountRoute, settle, type Call } from '@/test/helpers'

let wrapper: VueWrapper | undefined
afterEach(() => wrapper?.unmount())

function record(id: number, summary: string): NotificationRecord {
  return {
    id,
    created_at: '2025-07-01T10:00:00Z',
    protocol: 'email',
    address: 'alice@example.org',
    rule_ids: [1],
    message_id: `msg-${id}`,
    topic: 'org.fedoraproject.prod.bodhi.update.comment',
    summary,
    status: id === 1 ? 'dead' : 'sent',
    attempt: id === 1 ? 5 : 1,
    detail: id === 1 ? 'SMTP 550 mailbox unavailable' : null,
  }
}

function routes() {
  return {
    'GET /users/me': { body: ALICE },
    'GET /users/alice/rules': { body: [makeRule({ id: 1, name: 'Bodhi comments' })] },
    'GET /users/alice/notifications': (call: Call) => ({
      body: [record(call.query.get('page') === '2' ? 51 : 1, '<b onmouseover="x()">bold</b> & <script>steal()</script>')],
      headers: { 'X-Total-Count': '120', 'X-Page': call.query.get('page') ?? '1', 'X-Page-Size': '50' },
    }),
  }
}

describe('HistoryView', () => {
  it('lists what was sent, by which rule, with the message shown as text', async () => {
    fakeApi(routes())
    ;({ wrapper } = await mountRoute('/history'))
    const item = wrapper.find('[data-test="history-item"]')
    expect(item.find('[data-test="summary"]').text()).toBe('<b onmouseover="x()">bold</b> & <script>steal()</script>')
    expect(item.element.querySelector('script, b')).toBeNull()
    expect(item.text()).toContain('Failed for good')
    expect(item.text()).toContain('SMTP 550 mailbox unavailable')
    expect(item.text()).toContain('msg-1')
    expect(item.find('a[href="/rules/1"]').text()).toBe('Bodhi comments')
  })

  it('pages with X-Total-Count and filters by status and rule', async () => {
    const api = fakeApi(routes())
    ;({ wrapper } = await mountRoute('/history'))
    expect(wrapper.text()).toContain('1–50 of 120')
    expect(wrapper.text()).toContain('Page 1 of 3')
    await wrapper.findAll('button').find((b) => b.text() === 'Next')!.trigger('click')
    await settle()
    expect(api.calls.at(-1)!.query.get('page')).toBe('2')
    expect(wrapper.text()).toContain('51–100 of 120')

    await wrapper.find('#history-status').setValue('dead')
    await wrapper.find('#history-rule').setValue('1')
    await settle()
    const last = api.callsTo('GET', '/users/alice/notifications').at(-1)!
    expect(last.query.get('status')).toBe('dead')
    expect(last.query.get('rule_id')).toBe('1')
    expect(last.query.get('page')).toBe('1')
    expect(last.query.get('page_size')).toBe('50')
  })
})
