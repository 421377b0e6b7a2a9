import { afterEach, describe, expect, it } from 'vitest'
import type { VueWrapper } from '@vue/test-utils'
import type { DevChatMessage, DevInfo, DevMail } from '@/api/types'
import { ALICE, fakeApi, mountRoute, settle } from '@/test/helpers'

let wrapper: VueWrapper | undefined
afterEach(() => wrapper?.unmount())

const INFO: DevInfo = {
  embedded: ['database', 'directory', 'oidc', 'email', 'irc', 'matrix', 'bus', 'cache'],
  logins: [{ username: 'alice', name: 'Alice Anderson', email: 'alice@example.org', groups: ['packager'] }],
  smtp_sink: '127.0.0.1:2525',
}

const MAIL: DevMail[] = [
  {
    id: 9,
    received_at: '2025-07-01T10:05:00Z',
    mail_from: 'notifications@example.org',
    to: ['alice@example.org'],
    subject: 'koji build of guake failed',
    text: 'Build failed: https://koji.example.org/taskinfo?id=1.\nNot a link: javascript:alert(1)\n<b>stays text</b>',
    html: '<p>Build <b>failed</b></p><script>parent.stolen = true</script><img src="https://tracker.example.org/x.png">',
  },
  {
    id: 4,
    received_at: '2025-07-01T10:00:00Z',
    mail_from: 'notifications@example.org',
    to: ['alice@example.org'],
    subject: 'plain only',
    text: 'no html here',
    html: null,
  },
]

const CHAT: DevChatMessage[] = [
  { id: 11, sent_at: '2025-07-01T10:06:00Z', protocol: 'irc', address: 'alice', text: 'guake: build failed <b>x</b>', html: null },
]

function routes(info: DevInfo | null = INFO) {
  return {
    'GET /users/me': { body: ALICE },
    'GET /dev/info': info ? { body: info } : { status: 404, body: { detail: 'Not Found' } },
    'GET /dev/mail': { body: MAIL },
    'GET /dev/chat': { body: CHAT },
  }
}

describe('DevMailView', () => {
  it('says there is no mailbox when the API has no dev routes, and asks for no mail', async () => {
    const api = fakeApi(routes(null))
    ;({ wrapper } = await mountRoute('/dev/mail'))
    expect(wrapper.find('[data-test="no-dev-mode"]').exists()).toBe(true)
    expect(api.callsTo('GET', '/dev/mail')).toEqual([])
  })

  it('lists the mail, newest first, and shows the text part as text with http(s) links only', async () => {
    const api = fakeApi(routes())
    const mounted = await mountRoute('/dev/mail')
    wrapper = mounted.wrapper
    expect(api.callsTo('GET', '/dev/mail')[0]!.query.get('limit')).toBe('100')
    const items = wrapper.findAll('[data-test="mail-item"]')
    expect(items.map((i) => i.find('.fw-semibold').text())).toEqual(['koji build of guake failed', 'plain only'])
    expect(wrapper.text()).toContain('Pick a mail to read it.')

    await mounted.router.push('/dev/mail?mail=9')
    await settle()
    const text = wrapper.find('[data-test="mail-text"]')
    expect(text.text()).toContain('<b>stays text</b>')
    expect(text.find('b').exists()).toBe(false)
    const links = text.findAll('a')
    expect(links.map((a) => a.attributes('href'))).toEqual(['https://koji.example.org/taskinfo?id=1'])
    expect(links[0]!.attributes('rel')).toContain('noopener')
    expect(wrapper.find('iframe').exists()).toBe(false)
  })

  it('shows the HTML part only in a frame sandboxed without any permission, loading nothing', async () => {
    fakeApi(routes())
    ;({ wrapper } = await mountRoute('/dev/mail?mail=9'))
    const htmlButton = wrapper.findAll('button').find((b) => b.text() === 'HTML')!
    await htmlButton.trigger('click')
    const frame = wrapper.find('iframe')
    expect(frame.attributes('sandbox')).toBe('')
    const srcdoc = frame.attributes('srcdoc')!
    expect(srcdoc).toContain(`default-src 'none'`)
    expect(srcdoc).toContain('<p>Build <b>failed</b></p>')
    expect(frame.attributes('src')).toBeUndefined()
    expect(wrapper.find('[data-test="mail-text"]').exists()).toBe(false)
    expect((window as unknown as { stolen?: boolean }).stolen).toBeUndefined()
  })

  it('has no HTML switch for a text-only mail, and lists IRC and Matrix messages as text', async () => {
    fakeApi(routes())
    const mounted = await mountRoute('/dev/mail?mail=4')
    wrapper = mounted.wrapper
    expect(wrapper.findAll('button').some((b) => b.text() === 'HTML')).toBe(false)
    expect(wrapper.find('[data-test="mail-text"]').text()).toBe('no html here')

    await mounted.router.push('/dev/mail?tab=chat')
    await settle()
    const line = wrapper.find('[data-test="chat-item"]')
    expect(line.text()).toContain('IRC')
    expect(line.text()).toContain('guake: build failed <b>x</b>')
    expect(line.find('b').exists()).toBe(false)
  })
})
