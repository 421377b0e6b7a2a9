// Wires the inbox's live stream to the app, once (App.vue): started while someone is logged in,
// each new entry refreshes the inbox's lists and, if this device wants them, shows a desktop
// notification.
import { onScopeDispose, watch } from 'vue'
import { useRouter } from 'vue-router'
import { useQueryClient } from '@tanstack/vue-query'
import { keys, useUsername } from '@/composables/queries'
import { showDesktop } from '@/inbox/desktop'
import { useAuthStore } from '@/stores/auth'
import { useInboxStore } from '@/stores/inbox'

export function useInboxLive(): void {
  const auth = useAuthStore()
  const inbox = useInboxStore()
  const username = useUsername()
  const client = useQueryClient()
  const router = useRouter()

  watch(
    () => (auth.loggedIn ? username.value : ''),
    (user) => {
      if (user) inbox.start(user, () => auth.accessToken, () => auth.sessionRejected())
      else inbox.stop()
    },
    { immediate: true },
  )

  const unlisten = inbox.onEntry((entry) => {
    if (username.value) void client.invalidateQueries({ queryKey: keys.inbox(username.value) })
    showDesktop(entry, () => void router.push('/inbox'))
  })

  onScopeDispose(() => {
    unlisten()
    inbox.stop()
  })
}
