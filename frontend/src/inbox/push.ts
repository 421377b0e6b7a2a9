// Web Push for when the app is closed: the service worker (public/sw.js) shows what the push
// service delivers. Subscribing needs the server's VAPID public key; the subscription is kept by
// the API per user and device.
import { api } from '@/api'
import type { PushSubscriptionRecord } from '@/api/types'

export const SERVICE_WORKER_URL = '/sw.js'

export function pushSupported(): boolean {
  return typeof window !== 'undefined' && 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window
}

/** The VAPID key (base64url) as the bytes PushManager.subscribe takes. */
export function base64UrlToBytes(value: string): Uint8Array<ArrayBuffer> {
  const base64 = value.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(value.length / 4) * 4, '=')
  const binary = atob(base64)
  const bytes = new Uint8Array(new ArrayBuffer(binary.length))
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

/** A name for this device, from what the browser says it is ("Firefox on Linux"). */
export function deviceName(userAgent: string = navigator.userAgent): string {
  const browser =
    [
      ['Edg/', 'Edge'],
      ['OPR/', 'Opera'],
      ['Firefox/', 'Firefox'],
      ['Chrome/', 'Chrome'],
      ['Safari/', 'Safari'],
    ].find(([mark]) => userAgent.includes(mark!))?.[1] ?? 'Browser'
  const system =
    [
      ['Android', 'Android'],
      ['iPhone', 'iOS'],
      ['iPad', 'iOS'],
      ['Windows', 'Windows'],
      ['Mac OS', 'macOS'],
      ['CrOS', 'ChromeOS'],
      ['Linux', 'Linux'],
    ].find(([mark]) => userAgent.includes(mark!))?.[1] ?? 'an unknown system'
  return `${browser} on ${system}`
}

async function registration(): Promise<ServiceWorkerRegistration> {
  await navigator.serviceWorker.register(SERVICE_WORKER_URL, { scope: '/' })
  return navigator.serviceWorker.ready
}

/** This browser's subscription, if it has one. */
export async function currentSubscription(): Promise<PushSubscription | null> {
  if (!pushSupported()) return null
  const existing = await navigator.serviceWorker.getRegistration('/')
  return existing ? existing.pushManager.getSubscription() : null
}

/** Subscribe this browser (asks the permission: call it from a click) and tell the API. */
export async function subscribeDevice(username: string): Promise<PushSubscriptionRecord> {
  const permission = await Notification.requestPermission()
  if (permission !== 'granted') throw new Error('The browser does not allow notifications for this site; allow them in its site settings.')
  const reg = await registration()
  const { public_key } = await api.push.vapidKey()
  const subscription =
    (await reg.pushManager.getSubscription()) ??
    (await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlToBytes(public_key) }))
  const json = subscription.toJSON()
  return api.push.subscribe(username, {
    endpoint: subscription.endpoint,
    keys: { p256dh: json.keys?.p256dh ?? '', auth: json.keys?.auth ?? '' },
    device: deviceName(),
  })
}

/** Unsubscribe this browser, and forget it on the server. */
export async function unsubscribeDevice(username: string, records: PushSubscriptionRecord[]): Promise<void> {
  const subscription = await currentSubscription()
  if (!subscription) return
  const record = records.find((r) => r.endpoint === subscription.endpoint)
  if (record) await api.push.remove(username, record.id)
  await subscription.unsubscribe()
}
