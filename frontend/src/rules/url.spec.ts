import { describe, expect, it } from 'vitest'
import { linkSegments, safeHttpUrl } from './url'

describe('safeHttpUrl', () => {
  it('keeps http(s) only', () => {
    expect(safeHttpUrl('https://example.org/a')).toBe('https://example.org/a')
    expect(safeHttpUrl('javascript:alert(1)')).toBeNull()
    expect(safeHttpUrl('data:text/html,x')).toBeNull()
    expect(safeHttpUrl('not a url')).toBeNull()
  })
})

describe('linkSegments', () => {
  it('cuts text into text and http(s) links, leaving trailing punctuation out', () => {
    expect(linkSegments('See https://a.example/x?y=1. Or (http://b.example/z), or javascript:alert(1)')).toEqual([
      { text: 'See ', href: null },
      { text: 'https://a.example/x?y=1', href: 'https://a.example/x?y=1' },
      { text: '. Or (', href: null },
      { text: 'http://b.example/z', href: 'http://b.example/z' },
      { text: '), or javascript:alert(1)', href: null },
    ])
  })

  it('gives text without links back whole', () => {
    expect(linkSegments('plain')).toEqual([{ text: 'plain', href: null }])
    expect(linkSegments('')).toEqual([])
  })
})
