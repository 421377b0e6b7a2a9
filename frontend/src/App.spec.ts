import { afterEach, describe, expect, it } from 'vitest'
import type { VueWrapper } from '@vue/test-utils'
import App from '@/App.vue'
import { ALICE, fakeApi, mountWithApp, settle } from '@/test/helpers'

let wrapper: VueWrapper | undefined
afterEach(() => wrapper?.unmount())

const ADMIN = { id: 2, name: 'root', is_admin: true }

describe('navigation', () => {
  it('shows the Admin link only to administrators', async () => {
    fakeApi({ 'GET /users/me': { body: ALICE }, 'GET /users/alice/rules': { body: [] } })
    ;({ wrapper } = await mountWithApp(App))
    expect(wrapper.find('a[href="/admin"]').exists()).toBe(false)
    wrapper.unmount()

    fakeApi({ 'GET /users/me': { body: ADMIN }, 'GET /users/root/rules': { body: [] } })
    ;({ wrapper } = await mountWithApp(App))
    expect(wrapper.find('a[href="/admin"]').exists()).toBe(true)
  })

  it('shows the Mailbox link only when the API has the dev routes of the embedded default', async () => {
    fakeApi({ 'GET /users/me': { body: ALICE }, 'GET /users/alice/rules': { body: [] } })
    ;({ wrapper } = await mountWithApp(App))
    expect(wrapper.find('a[href="/dev/mail"]').exists()).toBe(false)
    wrapper.unmount()

    const info = { embedded: ['email'], logins: [], smtp_sink: '127.0.0.1:2525' }
    fakeApi({ 'GET /users/me': { body: ALICE }, 'GET /users/alice/rules': { body: [] }, 'GET /dev/info': { body: info } })
    ;({ wrapper } = await mountWithApp(App))
    expect(wrapper.find('a[href="/dev/mail"]').text()).toBe('Mailbox')
  })

  it('asks logged-out visitors to log in, on pages that need it', async () => {
    fakeApi({})
    ;({ wrapper } = await mountWithApp(App, { route: '/history', loggedIn: false }))
    expect(wrapper.text()).toContain('Log in to go on')
    expect(wrapper.find('a[href="/history"]').exists()).toBe(false)
  })
})

describe('session end', () => {
  it('forgets cached data and offers to log in again when the API refuses the token', async () => {
    fakeApi({ 'GET /users/me': { body: ALICE }, 'GET /users/alice/settings': { status: 401, body: { detail: 'Token expired' } } })
    const mounted = await mountWithApp(App, { route: '/settings' })
    wrapper = mounted.wrapper
    await settle()
    expect(mounted.auth.loggedIn).toBe(false)
    expect(mounted.queryClient.getQueryData(['me'])).toBeUndefined()
    expect(wrapper.text()).toContain('Log in to go on')
  })
})
