import { defineStore } from 'pinia'
import { computed, ref, shallowRef } from 'vue'
import type { User, UserManager } from 'oidc-client-ts'
import type { AppConfig } from '@/api/types'
import { createUserManager } from '@/auth/oidc'
import { useToasts } from './toasts'

interface LoginState {
  returnTo?: string
}

export const useAuthStore = defineStore('auth', () => {
  const config = ref<AppConfig | null>(null)
  const configError = ref<string | null>(null)
  const user = shallowRef<User | null>(null)
  const manager = shallowRef<UserManager | null>(null)

  const loggedIn = computed(() => user.value !== null && !user.value.expired)
  const accessToken = computed(() => (loggedIn.value ? user.value!.access_token : null))

  async function init(appConfig: AppConfig, make: (c: AppConfig) => UserManager = createUserManager): Promise<void> {
    config.value = appConfig
    const um = make(appConfig)
    manager.value = um
    um.events.addUserLoaded((u) => {
      user.value = u
    })
    um.events.addUserUnloaded(() => {
      user.value = null
    })
    um.events.addAccessTokenExpired(() => {
      user.value = null
    })
    um.events.addSilentRenewError((error) => {
      useToasts().push('warning', `Your session could not be renewed (${error.message}); log in again to go on.`)
    })
    try {
      const stored = await um.getUser()
      user.value = stored && !stored.expired ? stored : null
    } catch {
      user.value = null
    }
  }

  function requireManager(): UserManager {
    if (!manager.value) throw new Error('Login is not available: the configuration could not be loaded.')
    return manager.value
  }

  async function login(returnTo = '/'): Promise<void> {
    await requireManager().signinRedirect({ state: { returnTo } satisfies LoginState })
  }

  /** Finish the redirect from the provider; returns where the user was going. */
  async function completeLogin(): Promise<string> {
    const signedIn = await requireManager().signinRedirectCallback()
    user.value = signedIn
    const state = signedIn.state as LoginState | undefined
    const target = state?.returnTo
    // Only paths inside this app: never an open redirect.
    return typeof target === 'string' && target.startsWith('/') && !target.startsWith('//') ? target : '/'
  }

  async function logout(): Promise<void> {
    const um = requireManager()
    try {
      await um.signoutRedirect()
    } catch {
      // Providers without an end-session endpoint: forget the tokens here.
      await um.revokeTokens().catch(() => undefined)
      await um.removeUser()
      user.value = null
    }
  }

  /** The API refused the token: forget it, once. */
  function sessionRejected(): void {
    if (!user.value) return
    user.value = null
    void manager.value?.removeUser()
    useToasts().push('warning', 'Your session has expired; log in again.')
  }

  return {
    config,
    configError,
    user,
    manager,
    loggedIn,
    accessToken,
    init,
    login,
    completeLogin,
    logout,
    sessionRejected,
  }
})
