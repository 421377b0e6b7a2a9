import 'bootstrap/dist/css/bootstrap.min.css'
import './styles.css'
import { createApp } from 'vue'
import { createPinia } from 'pinia'
import { VueQueryPlugin } from '@tanstack/vue-query'
import App from './App.vue'
import { api, configureApi, errorMessage } from './api'
import { createUserManager, SILENT_PATH } from './auth/oidc'
import { createQueryClient } from './queryClient'
import { createAppRouter } from './router'
import { useAuthStore } from './stores/auth'
import { useToasts } from './stores/toasts'

async function start(): Promise<void> {
  // The provider, client id and scopes come from the API, so one build serves any deployment.
  let config: Awaited<ReturnType<typeof api.getConfig>> | null = null
  let configError: string | null = null
  try {
    config = await api.getConfig()
  } catch (error) {
    configError = `The configuration could not be loaded, so logging in is not possible: ${errorMessage(error)}`
  }

  // The hidden frame of a silent renewal only hands its answer back to the app.
  if (window.location.pathname === SILENT_PATH) {
    if (config) await createUserManager(config).signinSilentCallback()
    return
  }

  const app = createApp(App)
  const pinia = createPinia()
  app.use(pinia)
  const toasts = useToasts()
  const auth = useAuthStore()
  auth.configError = configError
  if (config) await auth.init(config)

  configureApi({
    getAccessToken: () => auth.accessToken,
    onUnauthorized: () => auth.sessionRejected(),
  })

  app.use(VueQueryPlugin, { queryClient: createQueryClient((text) => toasts.error(text)) })
  app.use(createAppRouter())
  app.mount('#app')
}

void start()
