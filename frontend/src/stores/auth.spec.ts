import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import type { User, UserManager } from 'oidc-client-ts'
import type { AppConfig } from '@/api/types'
import { userManagerSettings } from '@/auth/oidc'
import { useAuthStore } from './auth'
import { useToasts } from './toasts'

const CONFIG: AppConfig = {
  oidc_provider_url: 'https://id.example.org/openidc',
  oidc_client_id: 'fmn-web',
  oidc_scopes: 'openid profile email https://id.example.org/scope/groups',
  public_url: 'https://notifications.example.org',
}

function fakeManager(stored: Partial<User> | null = null) {
  const handlers: Record<string, (arg?: unknown) => void> = {}
  const on = (name: string) => (cb: (arg?: unknown) => void) => void (handlers[name] = cb)
  const manager = {
    events: {
      addUserLoaded: on('loaded'),
      addUserUnloaded: on('unloaded'),
      addAccessTokenExpired: on('expired'),
      addSilentRenewError: on('renewError'),
    },
    getUser: vi.fn().mockResolvedValue(stored),
    signinRedirect: vi.fn().mockResolvedValue(undefined),
    signinRedirectCallback: vi.fn(),
    signoutRedirect: vi.fn().mockResolvedValue(undefined),
    revokeTokens: vi.fn().mockResolvedValue(undefined),
    removeUser: vi.fn().mockResolvedValue(undefined),
  }
  return { manager, handlers, make: () => manager as unknown as UserManager }
}

beforeEach(() => setActivePinia(createPinia()))

describe('OIDC settings', () => {
  it('uses the provider, client and scopes from /config with the code flow and silent renewal', () => {
    const settings = userManagerSettings(CONFIG, 'https://notifications.example.org', window.sessionStorage)
    expect(settings).toMatchObject({
      authority: 'https://id.example.org/openidc',
      client_id: 'fmn-web',
      scope: 'openid profile email https://id.example.org/scope/groups',
      response_type: 'code',
      redirect_uri: 'https://notifications.example.org/login/callback',
      silent_redirect_uri: 'https://notifications.example.org/login/silent',
      post_logout_redirect_uri: 'https://notifications.example.org/',
      automaticSilentRenew: true,
    })
  })
})

describe('auth store', () => {
  it('restores a stored session and exposes its token', async () => {
    const { make } = fakeManager({ access_token: 'abc', expired: false })
    const auth = useAuthStore()
    await auth.init(CONFIG, make)
    expect(auth.loggedIn).toBe(true)
    expect(auth.accessToken).toBe('abc')
  })

  it('ignores an expired stored session', async () => {
    const { make } = fakeManager({ access_token: 'abc', expired: true })
    const auth = useAuthStore()
    await auth.init(CONFIG, make)
    expect(auth.loggedIn).toBe(false)
    expect(auth.accessToken).toBeNull()
  })

  it('logs in with the page to come back to, and only returns inside the app', async () => {
    const { manager, make } = fakeManager()
    const auth = useAuthStore()
    await auth.init(CONFIG, make)
    await auth.login('/rules/3')
    expect(manager.signinRedirect).toHaveBeenCalledWith({ state: { returnTo: '/rules/3' } })

    manager.signinRedirectCallback.mockResolvedValueOnce({ access_token: 't', expired: false, state: { returnTo: '/rules/3' } })
    expect(await auth.completeLogin()).toBe('/rules/3')
    expect(auth.loggedIn).toBe(true)
    for (const evil of ['//evil.example', 'https://evil.example', 'javascript:alert(1)']) {
      manager.signinRedirectCallback.mockResolvedValueOnce({ access_token: 't', expired: false, state: { returnTo: evil } })
      expect(await auth.completeLogin()).toBe('/')
    }
  })

  it('logs out locally when the provider has no end-session endpoint', async () => {
    const { manager, make } = fakeManager({ access_token: 'abc', expired: false })
    manager.signoutRedirect.mockRejectedValue(new Error('No end session endpoint'))
    const auth = useAuthStore()
    await auth.init(CONFIG, make)
    await auth.logout()
    expect(manager.revokeTokens).toHaveBeenCalled()
    expect(manager.removeUser).toHaveBeenCalled()
    expect(auth.loggedIn).toBe(false)
  })

  it('follows renewals and tells when one fails', async () => {
    const { handlers, make } = fakeManager({ access_token: 'old', expired: false })
    const auth = useAuthStore()
    await auth.init(CONFIG, make)
    handlers.loaded!({ access_token: 'new', expired: false })
    expect(auth.accessToken).toBe('new')
    handlers.renewError!(new Error('login_required'))
    expect(useToasts().items.map((t) => t.text)).toEqual([
      'Your session could not be renewed (login_required); log in again to go on.',
    ])
    handlers.expired!()
    expect(auth.loggedIn).toBe(false)
  })

  it('forgets a token the API refused, and says it once', async () => {
    const { manager, make } = fakeManager({ access_token: 'abc', expired: false })
    const auth = useAuthStore()
    await auth.init(CONFIG, make)
    auth.sessionRejected()
    auth.sessionRejected()
    expect(auth.loggedIn).toBe(false)
    expect(manager.removeUser).toHaveBeenCalledOnce()
    expect(useToasts().items).toHaveLength(1)
  })
})
