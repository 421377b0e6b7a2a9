// OpenID Connect login: authorization code with PKCE, silent renewal, log-out. The provider, the
// client id and the scopes come from GET /api/v1/config, so one build works against any provider.
import { UserManager, WebStorageStateStore, type UserManagerSettings } from 'oidc-client-ts'
import type { AppConfig } from '@/api/types'

export const CALLBACK_PATH = '/login/callback'
export const SILENT_PATH = '/login/silent'

export function userManagerSettings(config: AppConfig, origin: string, storage: Storage): UserManagerSettings {
  return {
    authority: config.oidc_provider_url,
    client_id: config.oidc_client_id,
    scope: config.oidc_scopes,
    response_type: 'code', // PKCE is added by oidc-client-ts for the code flow
    redirect_uri: `${origin}${CALLBACK_PATH}`,
    silent_redirect_uri: `${origin}${SILENT_PATH}`,
    post_logout_redirect_uri: `${origin}/`,
    automaticSilentRenew: true,
    // Tokens live as long as the tab: nothing in localStorage for another tab or person to find.
    userStore: new WebStorageStateStore({ store: storage }),
    loadUserInfo: false,
  }
}

export function createUserManager(config: AppConfig): UserManager {
  return new UserManager(userManagerSettings(config, window.location.origin, window.sessionStorage))
}
