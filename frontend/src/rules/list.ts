import type { Rule, TrackingRuleName } from '@/api/types'
import { ruleTitle } from './tracking'

/** Enabled rules first, then disabled ones; by id within each. */
export function sortRules(rules: readonly Rule[]): Rule[] {
  return [...rules].sort((a, b) => Number(a.disabled) - Number(b.disabled) || a.id - b.id)
}

function searchableText(rule: Rule): string {
  const params = rule.tracking_rule.params ?? []
  const parts: string[] = [ruleTitle(rule), rule.name ?? '']
  for (const p of params) parts.push(typeof p === 'string' ? p : p.name)
  for (const gr of rule.generation_rules) {
    for (const d of gr.destinations) parts.push(d.address)
    parts.push(...gr.filters.applications, gr.filters.topic ?? '')
  }
  return parts.join('\n').toLowerCase()
}

export function filterRules(rules: readonly Rule[], type: TrackingRuleName | '', search: string): Rule[] {
  const needle = search.trim().toLowerCase()
  return sortRules(rules).filter(
    (rule) => (!type || rule.tracking_rule.name === type) && (!needle || searchableText(rule).includes(needle)),
  )
}
