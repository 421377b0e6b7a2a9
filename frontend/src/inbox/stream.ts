// The inbox's live stream (Server-Sent Events) read with fetch, because EventSource cannot send the
// bearer header. Each (re)connection is a new request carrying the current token and the id of the
// last entry received (Last-Event-ID), so the server first sends what was missed; between two
// attempts the wait doubles, up to half a minute, with some jitter so that many browsers cut off
// together do not all come back in the same second.
import { fetchEventSource, type EventSourceMessage } from '@microsoft/fetch-event-source'
import type { InboxEntry } from '@/api/types'

export type StreamState = 'connecting' | 'open' | 'waiting' | 'stopped'

export interface StreamOptions {
  /** The stream's URL (buildUrl of api.inbox.streamPath). */
  url: string
  /** The bearer token, asked for at every connection (it is renewed while the stream runs). */
  getToken: () => string | null
  /** Resume after this entry id (none: only what comes from now on). */
  lastEventId?: string | null
  onEntry: (entry: InboxEntry) => void
  onCount: (unread: number) => void
  /** Each successful connection: a good moment to read what the stream does not carry again. */
  onOpen?: () => void
  onState?: (state: StreamState) => void
  /** The server refused the token (401): the stream stops. */
  onUnauthorized?: () => void
}

export interface InboxStream {
  close: () => void
  lastEventId: () => string | null
}

export const FIRST_RETRY_MS = 1_000
export const MAX_RETRY_MS = 30_000

/** How long to wait before the attempt after `failures` failed ones: 1 s, 2 s, 4 s... 30 s, ±20 %. */
export function retryDelay(failures: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, failures - 1))
  return Math.round(base * (0.8 + 0.4 * random()))
}

/** An answer that trying again will not change (the route is missing, the token refused). */
class StreamRefused extends Error {
  constructor(readonly status: number) {
    super(`the inbox stream was refused (HTTP ${status})`)
  }
}

/** The server ended the stream (a restart, a proxy's timeout): connect again. */
class StreamEnded extends Error {}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((done) => {
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      done()
    })
  })
}

export function openInboxStream(options: StreamOptions): InboxStream {
  const controller = new AbortController()
  let lastId = options.lastEventId ?? null
  const setState = (state: StreamState) => options.onState?.(state)

  function dispatch(message: EventSourceMessage): void {
    if (!message.data) return
    let data: unknown
    try {
      data = JSON.parse(message.data)
    } catch {
      return // a broken event is skipped, not the stream
    }
    if (message.event === 'notification') {
      if (message.id) lastId = message.id
      options.onEntry(data as InboxEntry)
    } else if (message.event === 'count') {
      const unread = (data as { unread?: unknown }).unread
      if (typeof unread === 'number') options.onCount(unread)
    }
  }

  async function run(): Promise<void> {
    let failures = 0
    while (!controller.signal.aborted) {
      setState('connecting')
      const headers: Record<string, string> = { Accept: 'text/event-stream' }
      const token = options.getToken()
      if (token) headers.Authorization = `Bearer ${token}`
      // Lower case: the library writes the ids it receives under this very key.
      if (lastId) headers['last-event-id'] = lastId
      try {
        await fetchEventSource(options.url, {
          headers,
          signal: controller.signal,
          // Desktop notifications need the stream while the tab is in the background too.
          openWhenHidden: true,
          fetch: (input, init) => fetch(input, init),
          onopen: async (response) => {
            const type = response.headers.get('content-type') ?? ''
            if (response.ok && type.startsWith('text/event-stream')) {
              failures = 0
              setState('open')
              options.onOpen?.()
              return
            }
            if (response.status === 401 || response.status === 403 || response.status === 404) throw new StreamRefused(response.status)
            throw new Error(`the inbox stream answered HTTP ${response.status}`)
          },
          onmessage: dispatch,
          onclose: () => {
            throw new StreamEnded()
          },
          // Never the library's own retry: each attempt is a new request with a fresh token.
          onerror: (error: unknown) => {
            throw error
          },
        })
      } catch (error) {
        if (controller.signal.aborted) break
        if (error instanceof StreamRefused) {
          if (error.status === 401) options.onUnauthorized?.()
          break
        }
        failures++
      }
      if (controller.signal.aborted) break
      setState('waiting')
      await sleep(retryDelay(Math.max(1, failures)), controller.signal)
    }
    setState('stopped')
  }

  void run()
  return {
    close: () => controller.abort(),
    lastEventId: () => lastId,
  }
}
