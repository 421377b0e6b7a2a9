// fmn's service worker: Web Push while the app is closed. The payload is the API's
// {"title", "body", "url", "id"}; a click opens its url (the event's link, else the inbox).
// The tag is the one the open app gives the same entry, so the two never show twice.
'use strict'

function safeUrl(value) {
  try {
    const url = new URL(value, self.location.origin)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null
  } catch {
    return null
  }
}

self.addEventListener('install', () => self.skipWaiting())
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()))

self.addEventListener('push', (event) => {
  let payload = {}
  try {
    payload = event.data ? event.data.json() : {}
  } catch {
    payload = { body: event.data ? event.data.text() : '' }
  }
  const title = typeof payload.title === 'string' && payload.title ? payload.title : 'New notification'
  const options = {
    body: typeof payload.body === 'string' ? payload.body : '',
    tag: payload.id !== undefined ? `fmn-${payload.id}` : undefined,
    data: { url: safeUrl(payload.url) ?? new URL('/inbox', self.location.origin).href },
  }
  event.waitUntil(self.registration.showNotification(title, options))
})

self.addEventListener('notificationclick', (event) => {
  event.notification.close()
  const url = event.notification.data && event.notification.data.url
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => w.url === url)
      if (open) return open.focus()
      return self.clients.openWindow(url)
    }),
  )
})
