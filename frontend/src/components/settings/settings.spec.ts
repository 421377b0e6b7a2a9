import { afterEach, describe, expect, it, vi } from 'vitest'
import type { VueWrapper } from '@vue/test-utils'
import { base64UrlToBytes, deviceName } from '@/inbox/push'
import { ALICE, fakeApi, mountRoute, settle } from '@/test/helpers'

let wrapper: VueWrapper | undefined
afterEach(() => {
  wrapper?.unmount()
  localStorage.clear()
})

const SETTINGS = { digest_mode: 'none', quiet_hours: null, timezone: 'Europe/Paris', muted_until: null }
const FEEDS = {
  inbox: 'http://127.0.0.1:8080/api/v1/feeds/s3cret/inbox.atom',
  rules: [{ id: 7, name: 'My Events', url: 'http://127.0.0.1:8080/api/v1/feeds/s3cret/rules/7.atom' }],
}
const FRESH = {
  inbox: 'http://127.0.0.1:8080/api/v1/feeds/n3w/inbox.atom',
  rules: [{ id: 7, name: 'My Events', url: 'http://127.0.0.1:8080/api/v1/feeds/n3w/rules/7.atom' }],
}

function routes(extra: Record<string, unknown> = {}) {
  return {
    'GET /users/me': { body: ALICE },
    'GET /users/alice/settings': { body: SETTINGS },
    'GET /users/alice/feeds': { body: FEEDS },
    'GET /users/alice/push-subscriptions': { body: [] },
    ...extra,
  }
}

function fakeNotification(permission: NotificationPermission, answer: NotificationPermission) {
  const requestPermission = vi.fn(async () => {
    Fake.permission = answer
    return answer
  })
  const Fake = Object.assign(vi.fn(), { permission, requestPermission })
  vi.stubGlobal('Notification', Fake)
  return Fake
}

describe('desktop notifications in Settings', () => {
  it('asks the browser only when the switch is clicked, and keeps the choice on this device', async () => {
    const Fake = fakeNotification('default', 'granted')
    fakeApi(routes())
    ;({ wrapper } = await mountRoute('/settings'))
    const toggle = wrapper.find('#desktop-on')
    expect((toggle.element as HTMLInputElement).checked).toBe(false)
    expect(Fake.requestPermission).not.toHaveBeenCalled()

    await toggle.setValue(true)
    await settle()
    expect(Fake.requestPermission).toHaveBeenCalledOnce()
    expect(localStorage.getItem('fmn.desktop-notifications')).toBe('on')
    expect((toggle.element as HTMLInputElement).checked).toBe(true)

    await toggle.setValue(false)
    expect(localStorage.getItem('fmn.desktop-notifications')).toBeNull()
  })

  it('stays off and says how to fix it when the browser refuses', async () => {
    fakeNotification('default', 'denied')
    fakeApi(routes())
    ;({ wrapper } = await mountRoute('/settings'))
    await wrapper.find('#desktop-on').setValue(true)
    await settle()
    expect((wrapper.find('#desktop-on').element as HTMLInputElement).checked).toBe(false)
    expect(localStorage.getItem('fmn.desktop-notifications')).toBeNull()
    expect(wrapper.find('[data-test="desktop-blocked"]').text()).toContain('site settings')
  })
})

describe('Web Push in Settings', () => {
  it('subscribes this device with the VAPID key and sends the subscription with a device name', async () => {
    fakeNotification('default', 'granted')
    const subscription = {
      endpoint: 'https://push.example/abc',
      toJSON: () => ({ endpoint: 'https://push.example/abc', keys: { p256dh: 'BPk', auth: 'AuT' } }),
      unsubscribe: vi.fn(async () => true),
    }
    let subscribed: typeof subscription | null = null
    const pushManager = {
      getSubscription: vi.fn(async () => subscribed),
      subscribe: vi.fn(async () => (subscribed = subscription)),
    }
    const registration = { pushManager }
    vi.stubGlobal('PushManager', function PushManager() {})
    Object.defineProperty(navigator, 'serviceWorker', {
      configurable: true,
      value: { register: vi.fn(async () => registration), ready: Promise.resolve(registration), getRegistration: vi.fn(async () => registration) },
    })
    const record = { id: 5, endpoint: subscription.endpoint, device: 'Chrome on Linux', created_at: '2026-12-01T10:00:00Z' }
    let records: (typeof record)[] = []
    const api = fakeApi(
      routes({
        'GET /push/vapid-public-key': { body: { public_key: 'BAAB' } },
        'GET /users/alice/push-subscriptions': () => ({ body: records }),
        'POST /users/alice/push-subscriptions': () => {
          records = [record]
          return { status: 201, body: record }
        },
        'DELETE /users/alice/push-subscriptions/5': () => {
          records = []
          return { status: 204 }
        },
      }),
    )
    try {
      ;({ wrapper } = await mountRoute('/settings'))
      expect(wrapper.find('[data-test="push-state"]').text()).toBe('This device is not subscribed.')
      await wrapper.findAll('button').find((b) => b.text() === 'Get push notifications on this device')!.trigger('click')
      await settle(10)
      expect(pushManager.subscribe).toHaveBeenCalledWith({ userVisibleOnly: true, applicationServerKey: base64UrlToBytes('BAAB') })
      const sent = JSON.parse(api.callsTo('POST', '/users/alice/push-subscriptions')[0]!.body!)
      expect(sent).toEqual({ endpoint: 'https://push.example/abc', keys: { p256dh: 'BPk', auth: 'AuT' }, device: deviceName() })
      expect(wrapper.find('[data-test="push-state"]').text()).toBe('This device is subscribed.')
      expect(wrapper.find('[data-test="push-device"]').text()).toContain('this device')

      await wrapper.findAll('button').find((b) => b.text() === 'Stop push notifications on this device')!.trigger('click')
      await settle(10)
      expect(api.callsTo('DELETE', '/users/alice/push-subscriptions/5')).toHaveLength(1)
      expect(subscription.unsubscribe).toHaveBeenCalled()
      expect(wrapper.find('[data-test="push-state"]').text()).toBe('This device is not subscribed.')
    } finally {
      delete (navigator as { serviceWorker?: unknown }).serviceWorker
    }
  })

  it('offers no subscription when the server has no VAPID key', async () => {
    fakeNotification('default', 'granted')
    vi.stubGlobal('PushManager', function PushManager() {})
    Object.defineProperty(navigator, 'serviceWorker', { configurable: true, value: { getRegistration: vi.fn(async () => undefined) } })
    fakeApi(routes({ 'GET /push/vapid-public-key': { status: 404, body: { detail: 'Web Push is not configured' } } }))
    try {
      ;({ wrapper } = await mountRoute('/settings'))
      expect(wrapper.find('[data-test="push-off"]').text()).toBe('This server does not send push notifications.')
      expect(wrapper.findAll('button').some((b) => b.text().includes('push notifications on this device'))).toBe(false)
    } finally {
      delete (navigator as { serviceWorker?: unknown }).serviceWorker
    }
  })

  it('names the device from its user agent and decodes the VAPID key', () => {
    expect(deviceName('Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0')).toBe('Firefox on Linux')
    expect(deviceName('Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36')).toBe('Chrome on Android')
    expect([...base64UrlToBytes('-_8')]).toEqual([0xfb, 0xff])
  })
})

describe('feeds in Settings', () => {
  it('shows the inbox and rule feed addresses, copies one, and makes new ones only once confirmed', async () => {
    const writeText = vi.fn(async () => undefined)
    Object.defineProperty(navigator, 'clipboard', { configurable: true, value: { writeText } })
    const api = fakeApi(routes({ 'POST /users/alice/feeds/regenerate': { body: FRESH } }))
    ;({ wrapper } = await mountRoute('/settings'))
    expect((wrapper.find('[data-test="feed-inbox"]').element as HTMLInputElement).value).toBe(FEEDS.inbox)
    expect(wrapper.find('[data-test="feed-rule"]').text()).toContain('My Events')
    expect((wrapper.find('#feed-rule-7').element as HTMLInputElement).value).toBe(FEEDS.rules[0]!.url)

    await wrapper.findAll('button').find((b) => b.text().startsWith('Copy'))!.trigger('click')
    expect(writeText).toHaveBeenCalledWith(FEEDS.inbox)

    await wrapper.findAll('button').find((b) => b.text() === 'Make new feed addresses')!.trigger('click')
    const dialog = document.querySelector('[role="dialog"]')!
    expect(dialog.textContent).toContain('stops working')
    ;(dialog.querySelector('button.btn-secondary') as HTMLButtonElement).click()
    await settle()
    expect(api.callsTo('POST', '/users/alice/feeds/regenerate')).toHaveLength(0)

    await wrapper.findAll('button').find((b) => b.text() === 'Make new feed addresses')!.trigger('click')
    ;(document.querySelector('[role="dialog"] button.btn-danger') as HTMLButtonElement).click()
    await settle()
    expect(api.callsTo('POST', '/users/alice/feeds/regenerate')).toHaveLength(1)
    expect((wrapper.find('[data-test="feed-inbox"]').element as HTMLInputElement).value).toBe(FRESH.inbox)
  })
})
