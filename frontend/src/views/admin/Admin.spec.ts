import { afterEach, describe, expect, it } from 'vitest'
import type { VueWrapper } from '@vue/test-utils'
import { ALICE, fakeApi, makeRule, mountRoute, settle } from '@/test/helpers'

let wrapper: VueWrapper | undefined
afterEach(() => wrapper?.unmount())

const ADMIN = { id: 2, name: 'root', is_admin: true }

const LETTER = {
  id: '7',
  protocol: 'matrix',
  address: '@bob:example.org',
  user: 'bob',
  reason: 'M_FORBIDDEN: not in room',
  failed_at: '2025-07-01T10:00:00Z',
  attempts: 5,
  summary: '<i>koji</i> build failed',
}

describe('admin', () => {
  it('refuses the pages to others', async () => {
    fakeApi({ 'GET /users/me': { body: ALICE } })
    ;({ wrapper } = await mountRoute('/admin/status'))
    expect(wrapper.text()).toContain('for administrators only')
  })

  it('lists disabled rules and enables one', async () => {
    const api = fakeApi({
      'GET /users/me': { body: ADMIN },
      'GET /admin/rules': { body: [makeRule({ id: 12, disabled: true, user: { id: 3, name: 'bob', is_admin: false } })] },
      'PATCH /admin/rules/12': { body: makeRule({ id: 12 }) },
    })
    ;({ wrapper } = await mountRoute('/admin/disabled-rules'))
    expect(api.callsTo('GET', '/admin/rules')[0]!.query.get('disabled')).toBe('true')
    const row = wrapper.find('[data-test="admin-rule"]')
    expect(row.text()).toContain('bob')
    await row.find('button').trigger('click')
    await settle()
    expect(JSON.parse(api.callsTo('PATCH', '/admin/rules/12')[0]!.body!)).toEqual({ disabled: false })
  })

  it('replays a dead letter, and discards one only after confirmation', async () => {
    const api = fakeApi({
      'GET /users/me': { body: ADMIN },
      'GET /admin/deadletters': { body: [LETTER], headers: { 'X-Total-Count': '1' } },
      'POST /admin/deadletters/7/replay': { status: 202, body: { detail: 'queued' } },
      'DELETE /admin/deadletters/7': { status: 204 },
    })
    ;({ wrapper } = await mountRoute('/admin/deadletters'))
    const item = wrapper.find('[data-test="dead-letter"]')
    expect(item.text()).toContain('<i>koji</i> build failed')
    expect(item.element.querySelector('i')).toBeNull()

    await item.findAll('button').find((b) => b.text().startsWith('Replay'))!.trigger('click')
    await settle()
    expect(api.callsTo('POST', '/admin/deadletters/7/replay')).toHaveLength(1)

    await item.findAll('button').find((b) => b.text().startsWith('Discard'))!.trigger('click')
    expect(api.callsTo('DELETE', '/admin/deadletters/7')).toHaveLength(0)
    const dialog = document.querySelector('[role="dialog"]')!
    dialog.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }))
    await settle()
    expect(document.querySelector('[role="dialog"]')).toBeNull()

    await item.findAll('button').find((b) => b.text().startsWith('Discard'))!.trigger('click')
    ;[...document.querySelectorAll<HTMLButtonElement>('[role="dialog"] button')].find((b) => b.textContent?.trim() === 'Discard')!.click()
    await settle()
    expect(api.callsTo('DELETE', '/admin/deadletters/7')).toHaveLength(1)
  })

  it('shows the system status', async () => {
    fakeApi({
      'GET /users/me': { body: ADMIN },
      'GET /admin/status': { body: { components: [{ name: 'database', ok: true, detail: null }, { name: 'sender email', ok: false, detail: 'no heartbeat for 5 min' }] } },
    })
    ;({ wrapper } = await mountRoute('/admin/status'))
    const items = wrapper.findAll('li.list-group-item').map((li) => li.findAll('span').map((s) => s.text()))
    expect(items).toEqual([
      ['OK', 'database'],
      ['Failing', 'sender email', 'no heartbeat for 5 min'],
    ])
  })
})
