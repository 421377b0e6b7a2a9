// The rule form's state and its exact translation to and from FMN 3's rule JSON.
import type {
  ArtifactRef,
  Destination,
  Filters,
  GenerationRule,
  NewRule,
  ProjectRef,
  Rule,
  Severity,
  TrackingRule,
  TrackingRuleName,
} from '@/api/types'

export interface GenerationRuleForm {
  /** Local key for lists; never sent. */
  key: number
  id: number | null
  destinations: Destination[]
  applications: string[]
  excluded_applications: string[]
  severities: Severity[]
  topic: string
  my_actions: boolean
}

export interface TrackingParamsForm {
  'artifacts-owned': string[]
  'artifacts-group-owned': string[]
  'artifacts-followed': ArtifactRef[]
  'users-followed': string[]
  applications: string[]
  topics: string[]
  'projects-followed': ProjectRef[]
}

export interface RuleForm {
  id: number | null
  name: string
  disabled: boolean
  trackingName: TrackingRuleName
  /** Kept per type so switching the type back and forth loses nothing. */
  params: TrackingParamsForm
  generationRules: GenerationRuleForm[]
}

let nextKey = 1

export function emptyGenerationRule(): GenerationRuleForm {
  return {
    key: nextKey++,
    id: null,
    destinations: [],
    applications: [],
    excluded_applications: [],
    severities: [],
    topic: '',
    my_actions: false,
  }
}

/** A new rule: artifacts the user owns, one generation rule, as FMN 3 starts it. */
export function newRuleForm(username: string | null): RuleForm {
  return {
    id: null,
    name: '',
    disabled: false,
    trackingName: 'artifacts-owned',
    params: {
      'artifacts-owned': username ? [username] : [],
      'artifacts-group-owned': [],
      'artifacts-followed': [],
      'users-followed': [],
      applications: [],
      topics: [],
      'projects-followed': [],
    },
    generationRules: [emptyGenerationRule()],
  }
}

/** A new team rule: the artifacts its group owns. */
export function newTeamRuleForm(group: string): RuleForm {
  const form = newRuleForm(null)
  form.trackingName = 'artifacts-group-owned'
  form.params['artifacts-group-owned'] = [group]
  return form
}

export function ruleToForm(rule: Rule | NewRule): RuleForm {
  const form = newRuleForm(null)
  form.id = rule.id ?? null
  form.name = rule.name ?? ''
  form.disabled = rule.disabled
  form.trackingName = rule.tracking_rule.name
  const tracking = rule.tracking_rule
  switch (tracking.name) {
    case 'artifacts-followed':
      form.params['artifacts-followed'] = tracking.params.map((a) => ({ name: a.name, type: a.type }))
      break
    case 'projects-followed':
      form.params['projects-followed'] = tracking.params.map((p) => ({ forge: p.forge, name: p.name }))
      break
    case 'related-events':
      break
    default:
      form.params[tracking.name] = [...tracking.params]
  }
  form.generationRules = rule.generation_rules.map((gr) => ({
    key: nextKey++,
    id: gr.id ?? null,
    destinations: gr.destinations.map((d) => ({ protocol: d.protocol, address: d.address })),
    applications: [...gr.filters.applications],
    excluded_applications: [...gr.filters.excluded_applications],
    severities: [...gr.filters.severities],
    topic: gr.filters.topic ?? '',
    my_actions: gr.filters.my_actions,
  }))
  return form
}

function cleanNames(values: readonly string[]): string[] {
  const out: string[] = []
  for (const value of values) {
    const trimmed = value.trim()
    if (trimmed && !out.includes(trimmed)) out.push(trimmed)
  }
  return out
}

export function formTrackingRule(form: RuleForm): TrackingRule {
  switch (form.trackingName) {
    case 'related-events':
      return { name: 'related-events', params: null }
    case 'artifacts-followed': {
      const seen = new Set<string>()
      const params: ArtifactRef[] = []
      for (const a of form.params['artifacts-followed']) {
        const name = a.name.trim()
        const key = `${a.type}/${name}`
        if (!name || seen.has(key)) continue
        seen.add(key)
        params.push({ name, type: a.type })
      }
      return { name: 'artifacts-followed', params }
    }
    case 'projects-followed': {
      const seen = new Set<string>()
      const params: ProjectRef[] = []
      for (const p of form.params['projects-followed']) {
        const name = p.name.trim()
        const key = `${p.forge}:${name}`
        if (!name || seen.has(key)) continue
        seen.add(key)
        params.push({ forge: p.forge, name })
      }
      return { name: 'projects-followed', params }
    }
    default:
      return { name: form.trackingName, params: cleanNames(form.params[form.trackingName]) }
  }
}

function formFilters(gr: GenerationRuleForm): Filters {
  const topic = gr.topic.trim()
  return {
    applications: cleanNames(gr.applications),
    excluded_applications: cleanNames(gr.excluded_applications),
    severities: [...new Set(gr.severities)],
    topic: topic || null,
    my_actions: gr.my_actions,
  }
}

/**
 * The JSON the API takes: FMN 3's rule shape, keys in FMN 3's order. Without the rule's own id,
 * which the preview and creation refuse; `api.updateRule` adds it to a PUT.
 */
export function formToRule(form: RuleForm): NewRule {
  return {
    name: form.name.trim() || null,
    disabled: form.disabled,
    tracking_rule: formTrackingRule(form),
    generation_rules: form.generationRules.map((gr) => {
      const out: GenerationRule = {
        destinations: gr.destinations.map((d) => ({ protocol: d.protocol, address: d.address })),
        filters: formFilters(gr),
      }
      return gr.id === null ? out : { id: gr.id, ...out }
    }),
  }
}

export function sameDestination(a: Destination, b: Destination): boolean {
  return a.protocol === b.protocol && a.address === b.address
}
