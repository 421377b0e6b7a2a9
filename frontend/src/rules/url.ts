/** A link taken from a bus message, kept only when it is plain http(s): never javascript: or data:. */
export function safeHttpUrl(value: string | null | undefined): string | null {
  if (!value) return null
  try {
    const url = new URL(value)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null
  } catch {
    return null
  }
}

export function formatDateTime(iso: string): string {
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return iso
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
}

export interface TextSegment {
  text: string
  /** Set on the http(s) links found in the text; everything else stays text. */
  href: string | null
}

const URL_IN_TEXT = /https?:\/\/[^\s<>"'`]+/g

/** Plain text cut into text and http(s) links, for rendering links without any HTML. */
export function linkSegments(text: string): TextSegment[] {
  const out: TextSegment[] = []
  let last = 0
  for (const match of text.matchAll(URL_IN_TEXT)) {
    const url = match[0].replace(/[.,;:!?)\]]+$/, '')
    const start = match.index
    if (start > last) out.push({ text: text.slice(last, start), href: null })
    out.push({ text: url, href: safeHttpUrl(url) })
    last = start + url.length
  }
  if (last < text.length) out.push({ text: text.slice(last), href: null })
  return out
}
