// Validation messages keyed by form field: from the form itself, and from the API's 422 answers.
import type { ValidationIssue } from '@/api/types'
import { TRACKING_RULES } from './tracking'
import type { RuleForm } from './form'

/** Field key → messages. Keys: name, tracking_rule, tracking_rule.params, generation_rules,
 *  generation_rules.N.destinations, generation_rules.N.filters.<filter>; FORM for the rest. */
export type FieldErrors = Record<string, string[]>

export const FORM = '_form'

const TRACKING_NAMES = new Set<string>(TRACKING_RULES.map((t) => t.name))
const FILTER_NAMES = new Set(['applications', 'excluded_applications', 'severities', 'topic', 'my_actions'])

function add(errors: FieldErrors, key: string, message: string): void {
  const list = (errors[key] ??= [])
  if (!list.includes(message)) list.push(message)
}

/** The form field a pydantic location points at. `strip` drops a leading body key (e.g. "rule"). */
export function fieldKey(loc: readonly (string | number)[], strip: readonly string[] = []): string {
  let path = [...loc]
  if (path[0] === 'body') path = path.slice(1)
  for (const key of strip) if (path[0] === key) path = path.slice(1)
  const [head, ...rest] = path
  if (head === 'name' && rest.length === 0) return 'name'
  if (head === 'disabled') return 'disabled'
  if (head === 'tracking_rule') {
    // A discriminated union puts the tag in the location: tracking_rule.<name>.params.0
    const inner = typeof rest[0] === 'string' && TRACKING_NAMES.has(rest[0]) ? rest.slice(1) : rest
    return inner[0] === 'params' ? 'tracking_rule.params' : 'tracking_rule'
  }
  if (head === 'generation_rules') {
    const [index, part, filter] = rest
    if (typeof index !== 'number') return 'generation_rules'
    if (part === 'destinations') return `generation_rules.${index}.destinations`
    if (part === 'filters' && typeof filter === 'string' && FILTER_NAMES.has(filter)) {
      return `generation_rules.${index}.filters.${filter}`
    }
    return `generation_rules.${index}`
  }
  return FORM
}

/** Pydantic's messages in plain words where they are technical; its "Value error, " prefix dropped. */
export function issueMessage(issue: ValidationIssue): string {
  if (issue.type === 'string_pattern_mismatch' && String(issue.ctx?.pattern ?? '').includes('\\x00')) {
    return 'No control characters (line breaks, tabs…) allowed.'
  }
  if (issue.type === 'string_too_short' && issue.ctx?.min_length === 1) return 'Cannot be empty.'
  if (issue.type === 'missing') return 'Required.'
  return issue.msg.replace(/^(Value|Assertion) error, /, '')
}

export function issuesToFieldErrors(issues: readonly ValidationIssue[], strip: readonly string[] = []): FieldErrors {
  const errors: FieldErrors = {}
  for (const issue of issues) add(errors, fieldKey(issue.loc, strip), issueMessage(issue))
  return errors
}

const CONTROL = /[\x00-\x1f\x7f]/ // eslint-disable-line no-control-regex

/** What can be told before asking the server. */
export function validateRuleForm(form: RuleForm): FieldErrors {
  const errors: FieldErrors = {}
  if (form.name.length > 255) add(errors, 'name', 'At most 255 characters.')
  if (CONTROL.test(form.name)) add(errors, 'name', 'The name cannot contain control characters.')
  if (form.trackingName !== 'related-events' && form.params[form.trackingName].length === 0) {
    const what = {
      'artifacts-owned': 'Pick at least one user.',
      'artifacts-group-owned': 'Pick at least one group.',
      'artifacts-followed': 'Pick at least one artifact.',
      'users-followed': 'Pick at least one user.',
      applications: 'Pick at least one application.',
      topics: 'Add at least one topic pattern.',
      'projects-followed': 'Pick at least one project.',
    }[form.trackingName]
    add(errors, 'tracking_rule.params', what)
  }
  if (form.generationRules.length === 0) {
    add(errors, 'generation_rules', 'Add at least one destination group.')
  }
  form.generationRules.forEach((gr, index) => {
    if (gr.destinations.length === 0) {
      add(errors, `generation_rules.${index}.destinations`, 'Pick at least one destination.')
    }
    if (gr.topic.length > 255) add(errors, `generation_rules.${index}.filters.topic`, 'At most 255 characters.')
    if (CONTROL.test(gr.topic)) {
      add(errors, `generation_rules.${index}.filters.topic`, 'The pattern cannot contain control characters.')
    }
  })
  return errors
}

export function hasErrors(errors: FieldErrors): boolean {
  return Object.values(errors).some((list) => list.length > 0)
}
