// The inbox's unread count and its live stream, one per logged-in tab: the bell shows the count,
// the inbox page and the desktop notifications listen for new entries.
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import { api, buildUrl } from '@/api'
import type { InboxEntry } from '@/api/types'
import { openInboxStream, type InboxStream, type StreamState } from '@/inbox/stream'

export type EntryListener = (entry: InboxEntry) => void

export const useInboxStore = defineStore('inbox', () => {
  /** null until the first count arrives. */
  const unread = ref<number | null>(null)
  const state = ref<StreamState>('stopped')
  /** The newest entry the stream brought, for the polite announcement. */
  const latest = shallowRef<InboxEntry | null>(null)
  const listeners = new Set<EntryListener>()
  let stream: InboxStream | null = null
  let user = ''

  async function refreshCount(): Promise<void> {
    if (!user) return
    const asked = user
    try {
      const count = await api.inbox.count(asked)
      if (asked === user) unread.value = count.unread
    } catch {
      // The bell keeps what it had; the stream's next count corrects it.
    }
  }

  /** Listen for the user's new inbox entries; returns how to stop listening. */
  function onEntry(listener: EntryListener): () => void {
    listeners.add(listener)
    return () => listeners.delete(listener)
  }

  function start(username: string, getToken: () => string | null, onUnauthorized?: () => void): void {
    if (stream && user === username) return
    stop()
    user = username
    stream = openInboxStream({
      url: buildUrl(api.inbox.streamPath(username)),
      getToken,
      onEntry: (entry) => {
        latest.value = entry
        for (const listener of listeners) listener(entry)
      },
      onCount: (count) => (unread.value = count),
      // Whatever changed while it was down (read elsewhere, entries the resume does not carry).
      onOpen: () => void refreshCount(),
      onState: (s) => (state.value = s),
      onUnauthorized,
    })
  }

  function stop(): void {
    stream?.close()
    stream = null
    user = ''
    unread.value = null
    latest.value = null
    state.value = 'stopped'
  }

  return { unread, state, latest, start, stop, onEntry, refreshCount }
})
