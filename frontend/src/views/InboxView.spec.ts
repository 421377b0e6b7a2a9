import { afterEach, describe, expect, it, vi } from 'vitest'
import type { VueWrapper } from '@vue/test-utils'
import App from '@/App.vue'
import { ALICE, eventStream, fakeApi, makeEntry, makeRule, mountRoute, mountWithApp, settle, type Call } from '@/test/helpers'

let wrapper: VueWrapper | undefined
afterEach(() => {
  wrapper?.unmount()
  localStorage.clear()
})

const ENTRIES = [
  makeEntry({ id: 3, subject: 'koji build failed', link: null, application: 'koji', rules: [{ id: 9, name: null }] }),
  makeEntry({ id: 2, subject: 'pagure comment', read: true }),
]

function routes(entries = ENTRIES, extra: Record<string, unknown> = {}) {
  return {
    'GET /users/me': { body: ALICE },
    'GET /users/alice/rules': { body: [makeRule({ id: 7, name: 'My Events' })] },
    'GET /applications': { body: ['koji', 'pagure'] },
    'GET /users/alice/inbox': { body: entries, headers: { 'X-Total-Count': String(entries.length) } },
    'GET /users/alice/inbox/count': { body: { unread: entries.filter((e) => !e.read).length, total: entries.length } },
    ...extra,
  }
}

describe('InboxView', () => {
  it('lists the entries, newest first as the API gives them, unread ones marked, the link only when http(s)', async () => {
    fakeApi(routes())
    ;({ wrapper } = await mountRoute('/inbox'))
    const items = wrapper.findAll('[data-test="inbox-item"]')
    expect(items.map((i) => i.find('[data-test="inbox-subject"]').text())).toEqual(['koji build failed', 'pagure comment'])
    expect(items[0]!.text()).toContain('Unread')
    expect(items[1]!.text()).not.toContain('Unread')
    expect(items[0]!.find('a[target="_blank"]').exists()).toBe(false)
    expect(items[1]!.find('a[target="_blank"]').attributes('href')).toBe('https://pagure.io/fmn/issue/1')
    expect(items[1]!.find('a[target="_blank"]').attributes('rel')).toContain('noopener')
  })

  it('says why: the rule, linked, or that it was deleted since', async () => {
    fakeApi(routes())
    ;({ wrapper } = await mountRoute('/inbox'))
    const why = wrapper.findAll('[data-test="inbox-why"]')
    expect(why[0]!.text()).toContain('(a rule since deleted)')
    expect(why[1]!.find('a').attributes('href')).toBe('/rules/7')
    expect(why[1]!.find('a').text()).toBe('My Events')
    expect(why[1]!.text()).toMatch(/^Your rule My Events matched this message/)
  })

  it('marks one read and unread, and all read, asking the API', async () => {
    const api = fakeApi(
      routes(ENTRIES, {
        'PATCH /users/alice/inbox/3': (call: Call) => ({ body: { ...ENTRIES[0], read: JSON.parse(call.body!).read } }),
        'PATCH /users/alice/inbox/2': (call: Call) => ({ body: { ...ENTRIES[1], read: JSON.parse(call.body!).read } }),
        'POST /users/alice/inbox/read-all': { body: { marked: 1 } },
      }),
    )
    ;({ wrapper } = await mountRoute('/inbox'))
    const buttons = wrapper.findAll('[data-test="toggle-read"]')
    expect(buttons.map((b) => b.text())).toEqual(['Mark read: koji build failed', 'Mark unread: pagure comment'])
    await buttons[0]!.trigger('click')
    await settle()
    expect(JSON.parse(api.callsTo('PATCH', '/users/alice/inbox/3')[0]!.body!)).toEqual({ read: true })
    await wrapper.findAll('[data-test="toggle-read"]')[1]!.trigger('click')
    await settle()
    expect(JSON.parse(api.callsTo('PATCH', '/users/alice/inbox/2')[0]!.body!)).toEqual({ read: false })
    // The list and the count are asked again after each change.
    expect(api.callsTo('GET', '/users/alice/inbox').length).toBeGreaterThan(1)

    const all = wrapper.findAll('button').find((b) => b.text() === 'Mark all read')!
    await all.trigger('click')
    await settle()
    // Up to the newest entry shown: one that came meanwhile unseen stays unread.
    expect(JSON.parse(api.callsTo('POST', '/users/alice/inbox/read-all')[0]!.body!)).toEqual({ before_id: 3 })
  })

  it('filters by rule, application and unread, and pages', async () => {
    const many = Array.from({ length: 25 }, (_, i) => makeEntry({ id: 100 - i }))
    const api = fakeApi(routes(many, { 'GET /users/alice/inbox': { body: many, headers: { 'X-Total-Count': '60' } } }))
    ;({ wrapper } = await mountRoute('/inbox'))
    await wrapper.find('#inbox-rule').setValue('7')
    await wrapper.find('#inbox-app').setValue('koji')
    await wrapper.find('#inbox-unread-only').setValue(true)
    await settle()
    const last = api.callsTo('GET', '/users/alice/inbox').at(-1)!
    expect(last.query.get('rule_id')).toBe('7')
    expect(last.query.get('application')).toBe('koji')
    expect(last.query.get('unread')).toBe('true')
    expect(wrapper.text()).toContain('1–25 of 60')
    await wrapper.findAll('button').find((b) => b.text() === 'Next')!.trigger('click')
    await settle()
    expect(api.callsTo('GET', '/users/alice/inbox').at(-1)!.query.get('page')).toBe('2')
  })

  it('explains how to get notifications when the inbox is empty', async () => {
    fakeApi(routes([]))
    ;({ wrapper } = await mountRoute('/inbox'))
    const empty = wrapper.find('[data-test="inbox-empty"]')
    expect(empty.text()).toContain('Your inbox is empty')
    expect(empty.text()).toContain('Web (inbox)')
    expect(empty.find('a[href="/rules/new"]').exists()).toBe(true)
  })
})

describe('the bell and the live inbox', () => {
  it('counts up from the stream without a reload, refreshes the list and announces the entry politely', async () => {
    const live = eventStream()
    const entries = [...ENTRIES]
    fakeApi(
      routes(entries, {
        'GET /users/alice/inbox': () => ({ body: entries, headers: { 'X-Total-Count': String(entries.length) } }),
        'GET /users/alice/inbox/stream': { raw: live.response },
      }),
    )
    ;({ wrapper } = await mountWithApp(App, { route: '/inbox' }))
    const bell = () => wrapper!.find('[data-test="inbox-bell"]')
    await vi.waitFor(() => expect(bell().attributes('aria-label')).toBe('Inbox, 1 unread'))
    expect(bell().find('[data-test="unread-count"]').text()).toBe('1')

    const fresh = makeEntry({ id: 4, subject: 'bodhi update pushed' })
    entries.unshift(fresh)
    live.send('notification', fresh, 4)
    live.send('count', { unread: 2 })
    await vi.waitFor(() => expect(bell().attributes('aria-label')).toBe('Inbox, 2 unread'))
    const announcer = wrapper.find('[data-test="inbox-announcer"]')
    expect(announcer.attributes('aria-live')).toBe('polite')
    expect(announcer.text()).toBe('New notification: bodhi update pushed')
    await vi.waitFor(() => expect(wrapper!.findAll('[data-test="inbox-subject"]')[0]!.text()).toBe('bodhi update pushed'))
  })

  it('shows a desktop notification for a new entry when this device wants them and the browser allows', async () => {
    const shown: { title: string; options?: NotificationOptions }[] = []
    class FakeNotification {
      static permission: NotificationPermission = 'granted'
      static requestPermission = vi.fn(async () => 'granted' as NotificationPermission)
      onclick: (() => void) | null = null
      constructor(title: string, options?: NotificationOptions) {
        shown.push({ title, options })
      }
      close() {}
    }
    vi.stubGlobal('Notification', FakeNotification)
    localStorage.setItem('fmn.desktop-notifications', 'on')
    const live = eventStream()
    fakeApi(routes(ENTRIES, { 'GET /users/alice/inbox/stream': { raw: live.response } }))
    ;({ wrapper } = await mountWithApp(App, { route: '/' }))
    await settle()
    live.send('notification', makeEntry({ id: 8, subject: 'koji build done', text: 'koji build done' }), 8)
    await vi.waitFor(() => expect(shown).toHaveLength(1))
    expect(shown[0]!.title).toBe('koji build done')
    expect(shown[0]!.options?.tag).toBe('fmn-8')
    expect(FakeNotification.requestPermission).not.toHaveBeenCalled()
  })

  it('makes one notification of many entries that come at once (a reconnection catching up)', async () => {
    const shown: string[] = []
    vi.stubGlobal(
      'Notification',
      class {
        static permission = 'granted'
        onclick = null
        constructor(title: string) {
          shown.push(title)
        }
      },
    )
    localStorage.setItem('fmn.desktop-notifications', 'on')
    const live = eventStream()
    fakeApi(routes(ENTRIES, { 'GET /users/alice/inbox/stream': { raw: live.response } }))
    ;({ wrapper } = await mountWithApp(App, { route: '/' }))
    for (let id = 10; id < 15; id++) live.send('notification', makeEntry({ id, subject: `entry ${id}` }), id)
    await vi.waitFor(() => expect(shown).toEqual(['5 new notifications']))
  })

  it('shows none when this device has not switched them on', async () => {
    const made = vi.fn()
    vi.stubGlobal('Notification', Object.assign(made, { permission: 'granted' }))
    const live = eventStream()
    fakeApi(routes(ENTRIES, { 'GET /users/alice/inbox/stream': { raw: live.response } }))
    ;({ wrapper } = await mountWithApp(App, { route: '/inbox' }))
    live.send('notification', makeEntry({ id: 9, subject: 'quiet' }), 9)
    await vi.waitFor(() => expect(wrapper!.find('[data-test="inbox-announcer"]').text()).toContain('quiet'))
    expect(made).not.toHaveBeenCalled()
  })
})
