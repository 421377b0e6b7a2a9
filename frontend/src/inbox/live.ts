// Wires the inbox's live stream to the app, once (App.vue): started while someone is logged in,
// new entries refresh the inbox's lists and, if this device wants them, show desktop
// notifications. Entries are handled in batches (a reconnection's catch-up brings many at once):
// one refresh a batch, and one notification for a batch of more than a few.
import { onScopeDispose, watch } from 'vue'
import { useRouter } from 'vue-router'
import { useQueryClient } from '@tanstack/vue-query'
import { keys, useUsername } from '@/composables/queries'
import type { InboxEntry } from '@/api/types'
import { MAX_SINGLE_NOTIFICATIONS, showDesktop, showDesktopSummary } from '@/inbox/desktop'
import { useAuthStore } from '@/stores/auth'
import { useInboxStore } from '@/stores/inbox'

/** How long entries gather before they are handled together. */
const BATCH_MS = 200

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

  const openInbox = () => void router.push('/inbox')
  let batch: InboxEntry[] = []
  let timer: ReturnType<typeof setTimeout> | undefined

  function flush(): void {
    timer = undefined
    const entries = batch
    batch = []
    if (username.value) void client.invalidateQueries({ queryKey: keys.inbox(username.value) })
    if (entries.length > MAX_SINGLE_NOTIFICATIONS) showDesktopSummary(entries.length, openInbox)
    else for (const entry of entries) showDesktop(entry, openInbox)
  }

  const unlisten = inbox.onEntry((entry) => {
    batch.push(entry)
    timer ??= setTimeout(flush, BATCH_MS)
  })

  onScopeDispose(() => {
    clearTimeout(timer)
    unlisten()
    inbox.stop()
  })
}
