import { afterEach, describe, expect, it, vi } from 'vitest'
import type { InboxEntry } from '@/api/types'
import { MAX_RETRY_MS, openInboxStream, retryDelay, type InboxStream } from '@/inbox/stream'
import { eventStream, fakeApi, makeEntry, type Call } from '@/test/helpers'

const URL = '/api/v1/users/alice/inbox/stream'
let stream: InboxStream | undefined
afterEach(() => stream?.close())

function collect() {
  const entries: InboxEntry[] = []
  const counts: number[] = []
  return { entries, counts, onEntry: (e: InboxEntry) => entries.push(e), onCount: (n: number) => counts.push(n) }
}

describe('the inbox stream', () => {
  it('reads entries and counts with the bearer header', async () => {
    const live = eventStream()
    const api = fakeApi({ 'GET /users/alice/inbox/stream': { raw: live.response } })
    const got = collect()
    stream = openInboxStream({ url: URL, getToken: () => 'token-1', ...got })
    await vi.waitFor(() => expect(api.calls).toHaveLength(1))
    // Read now: the reader keeps the ids it receives in these very headers.
    expect(api.calls[0]!.headers.Authorization).toBe('Bearer token-1')
    expect(api.calls[0]!.headers['last-event-id']).toBeUndefined()
    live.send('notification', makeEntry({ id: 5 }), 5)
    live.send('count', { unread: 3 })
    await vi.waitFor(() => expect(got.counts).toEqual([3]))
    expect(got.entries.map((e) => e.id)).toEqual([5])
    expect(stream.lastEventId()).toBe('5')
  })

  it('connects again when the server ends the stream, resuming after the last entry with a fresh token', async () => {
    const streams = [eventStream(), eventStream()]
    const seen: Call[] = []
    fakeApi({
      'GET /users/alice/inbox/stream': (call) => {
        seen.push(call)
        return { raw: streams[seen.length - 1]!.response }
      },
    })
    let token = 'old'
    const got = collect()
    stream = openInboxStream({ url: URL, getToken: () => token, ...got })
    streams[0]!.send('notification', makeEntry({ id: 41 }), 41)
    await vi.waitFor(() => expect(got.entries).toHaveLength(1))
    token = 'renewed'
    streams[0]!.end()
    await vi.waitFor(() => expect(seen).toHaveLength(2), { timeout: 5_000 })
    expect(seen[1]!.headers['last-event-id']).toBe('41')
    expect(seen[1]!.headers.Authorization).toBe('Bearer renewed')
    streams[1]!.send('notification', makeEntry({ id: 42 }), 42)
    await vi.waitFor(() => expect(got.entries.map((e) => e.id)).toEqual([41, 42]))
  })

  it('stops for good when the token is refused, and says so', async () => {
    const api = fakeApi({ 'GET /users/alice/inbox/stream': { status: 401, body: { detail: 'expired' } } })
    const onUnauthorized = vi.fn()
    const states: string[] = []
    stream = openInboxStream({ url: URL, getToken: () => 'x', ...collect(), onUnauthorized, onState: (s) => states.push(s) })
    await vi.waitFor(() => expect(states).toContain('stopped'))
    expect(onUnauthorized).toHaveBeenCalledOnce()
    expect(api.calls).toHaveLength(1)
  })

  it('skips an event it cannot read and goes on', async () => {
    const live = eventStream()
    fakeApi({ 'GET /users/alice/inbox/stream': { raw: live.response } })
    const got = collect()
    stream = openInboxStream({ url: URL, getToken: () => null, ...got })
    live.send('count', 'not an object')
    live.send('count', { unread: 1 })
    await vi.waitFor(() => expect(got.counts).toEqual([1]))
  })
})

describe('retryDelay', () => {
  it('doubles from one second up to its ceiling, with jitter', () => {
    const middle = () => 0.5
    expect([1, 2, 3, 4].map((n) => retryDelay(n, middle))).toEqual([1000, 2000, 4000, 8000])
    expect(retryDelay(20, middle)).toBe(MAX_RETRY_MS)
    expect(retryDelay(1, () => 0)).toBe(800)
    expect(retryDelay(1, () => 1)).toBe(1200)
  })
})
