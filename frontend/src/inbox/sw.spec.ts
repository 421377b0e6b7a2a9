// @vitest-environment node
// The service worker (public/sw.js) run against a stand-in of its global scope.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, vi } from 'vitest'

type Listener = (event: Record<string, unknown>) => void

function loadWorker(windows: { url: string; focus: () => Promise<unknown> }[] = []) {
  const listeners: Record<string, Listener> = {}
  const scope = {
    location: new URL('https://notifications.example.org/sw.js'),
    addEventListener: (type: string, listener: Listener) => (listeners[type] = listener),
    skipWaiting: vi.fn(),
    registration: { showNotification: vi.fn(async () => undefined) },
    clients: { claim: vi.fn(), matchAll: vi.fn(async () => windows), openWindow: vi.fn(async () => null) },
  }
  const source = readFileSync(fileURLToPath(new URL('../../public/sw.js', import.meta.url)), 'utf8')
  new Function('self', source)(scope)
  /** Fire an event; answers what it asked to wait for. */
  const fire = async (type: string, fields: Record<string, unknown>) => {
    let waited: Promise<unknown> = Promise.resolve()
    listeners[type]!({ ...fields, waitUntil: (p: Promise<unknown>) => (waited = p) })
    await waited
  }
  return { scope, fire }
}

const pushData = (payload: unknown) => ({ data: { json: () => payload, text: () => JSON.stringify(payload) } })

describe('the service worker', () => {
  it('shows the push payload, tagged like the open app tags the same entry', async () => {
    const { scope, fire } = loadWorker()
    await fire('push', pushData({ title: 'koji build failed', body: 'python3 failed', url: 'https://koji.example/42', id: 42 }))
    expect(scope.registration.showNotification).toHaveBeenCalledWith('koji build failed', {
      body: 'python3 failed',
      tag: 'fmn-42',
      data: { url: 'https://koji.example/42' },
    })
  })

  it('opens the inbox instead of a url that is not http(s)', async () => {
    const { scope, fire } = loadWorker()
    await fire('push', pushData({ title: 't', body: 'b', url: 'javascript:alert(1)', id: 1 }))
    const options = (scope.registration.showNotification.mock.calls[0] as unknown[])[1] as { data: { url: string } }
    expect(options.data.url).toBe('https://notifications.example.org/inbox')
  })

  it('opens the url on a click, or focuses a window already showing it', async () => {
    const { scope, fire } = loadWorker()
    const notification = { close: vi.fn(), data: { url: 'https://koji.example/42' } }
    await fire('notificationclick', { notification })
    expect(notification.close).toHaveBeenCalled()
    expect(scope.clients.openWindow).toHaveBeenCalledWith('https://koji.example/42')

    const open = { url: 'https://koji.example/42', focus: vi.fn(async () => undefined) }
    const second = loadWorker([open])
    await second.fire('notificationclick', { notification })
    expect(open.focus).toHaveBeenCalled()
    expect(second.scope.clients.openWindow).not.toHaveBeenCalled()
  })
})
