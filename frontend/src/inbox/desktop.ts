// Desktop notifications while the app is open: the browser's Notification API, switched on per
// device (localStorage), permission asked for only from a click in Settings.
import type { InboxEntry } from '@/api/types'
import { safeHttpUrl } from '@/rules/url'

export const DESKTOP_KEY = 'fmn.desktop-notifications'

export type Permission = NotificationPermission | 'unsupported'

export function desktopPermission(): Permission {
  return typeof window !== 'undefined' && 'Notification' in window ? Notification.permission : 'unsupported'
}

/** The switch of this device (it says what the user wants; the browser's permission may still be missing). */
export function desktopWanted(): boolean {
  try {
    return localStorage.getItem(DESKTOP_KEY) === 'on'
  } catch {
    return false
  }
}

export function setDesktopWanted(on: boolean): void {
  try {
    if (on) localStorage.setItem(DESKTOP_KEY, 'on')
    else localStorage.removeItem(DESKTOP_KEY)
  } catch {
    // Storage refused (private mode): the switch lasts as long as the page.
  }
}

/**
 * Turn the switch on: asks the browser's permission first when it was never given, which browsers
 * allow only during a user's click, so call this from one. Answers the permission it ends with.
 */
export async function enableDesktop(): Promise<Permission> {
  let permission = desktopPermission()
  if (permission === 'default') permission = await Notification.requestPermission()
  setDesktopWanted(permission === 'granted')
  return permission
}

/** The text of a notification, cut short: the inbox has the whole of it. */
function shortText(text: string, max = 180): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}

/** More entries than this at once (a reconnection catching up) make one notification, not one each. */
export const MAX_SINGLE_NOTIFICATIONS = 3

/** One notification for many entries that came together. */
export function showDesktopSummary(count: number, openInbox: () => void): Notification | null {
  if (!desktopWanted() || desktopPermission() !== 'granted') return null
  const notification = new Notification(`${count} new notifications`, { body: 'Open your inbox to read them.', tag: 'fmn-many' })
  notification.onclick = () => {
    window.focus()
    openInbox()
    notification.close()
  }
  return notification
}

/**
 * A desktop notification for a new entry, when this device wants them and the browser allows them.
 * Its tag is the one the service worker gives a push of the same entry, so the two never show twice.
 */
export function showDesktop(entry: InboxEntry, openInbox: () => void): Notification | null {
  if (!desktopWanted() || desktopPermission() !== 'granted') return null
  const notification = new Notification(entry.subject, { body: shortText(entry.text), tag: `fmn-${entry.id}` })
  const link = safeHttpUrl(entry.link)
  notification.onclick = () => {
    window.focus()
    if (link) window.open(link, '_blank', 'noopener')
    else openInbox()
    notification.close()
  }
  return notification
}
