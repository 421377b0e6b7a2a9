// @vitest-environment node
// Nothing from a bus message or a user is rendered as HTML: no v-html, no innerHTML, anywhere.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name: string) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sources(path)
    return /\.(vue|ts)$/.test(name) && !name.endsWith('.spec.ts') ? [path] : []
  })
}

describe('no raw HTML', () => {
  it('has no v-html, innerHTML, outerHTML or insertAdjacentHTML in the app', () => {
    const root = fileURLToPath(new URL('..', import.meta.url))
    const files = sources(root)
    expect(files.length).toBeGreaterThan(20)
    const offenders = files.filter((file) => /v-html|innerHTML|outerHTML|insertAdjacentHTML/.test(readFileSync(file, 'utf8')))
    expect(offenders).toEqual([])
  })

  it('shows other HTML (a mail) only in frames sandboxed without any permission, from srcdoc', () => {
    const root = fileURLToPath(new URL('..', import.meta.url))
    const templates = sources(root).filter((file) => file.endsWith('.vue'))
    const frames = templates.flatMap((file) => readFileSync(file, 'utf8').match(/<iframe[^>]*>/g) ?? [])
    expect(frames.length).toBeGreaterThan(0)
    for (const frame of frames) {
      expect(frame).toMatch(/\ssandbox=""/)
      expect(frame).toMatch(/\s:srcdoc=/)
      expect(frame).not.toMatch(/\s:?src=/)
    }
  })
})
