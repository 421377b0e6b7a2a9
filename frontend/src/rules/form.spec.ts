import { describe, expect, it } from 'vitest'
import type { NewRule, TrackingRule } from '@/api/types'
import { emptyGenerationRule, formToRule, formTrackingRule, newRuleForm, ruleToForm } from './form'
import { matchesEveryTopic, trackingSummary } from './tracking'

function formWith(tracking: Partial<ReturnType<typeof newRuleForm>>) {
  const form = { ...newRuleForm('alice'), ...tracking }
  form.generationRules[0]!.destinations = [{ protocol: 'email', address: 'alice@example.org' }]
  return form
}

const NO_FILTERS = { applications: [], excluded_applications: [], severities: [], topic: null, my_actions: false }

describe('formToRule', () => {
  it('starts a new rule as FMN 3 does: artifacts owned by the user', () => {
    expect(formToRule(formWith({}))).toEqual({
      name: null,
      disabled: false,
      tracking_rule: { name: 'artifacts-owned', params: ['alice'] },
      generation_rules: [{ destinations: [{ protocol: 'email', address: 'alice@example.org' }], filters: NO_FILTERS }],
    })
  })

  it.each([
    ['artifacts-group-owned', { 'artifacts-group-owned': ['infra-sig', ' infra-sig ', 'python-sig'] }, ['infra-sig', 'python-sig']],
    ['users-followed', { 'users-followed': ['bob', ''] }, ['bob']],
    [
      'artifacts-followed',
      {
        'artifacts-followed': [
          { name: 'python3', type: 'rpms' },
          { name: 'python3', type: 'rpms' },
          { name: 'python3', type: 'containers' },
        ],
      },
      [
        { name: 'python3', type: 'rpms' },
        { name: 'python3', type: 'containers' },
      ],
    ],
  ] as const)('sends %s with its cleaned params', (name, params, expected) => {
    const form = formWith({ trackingName: name })
    Object.assign(form.params, params)
    expect(formToRule(form).tracking_rule).toEqual({ name, params: expected })
  })

  it('sends related-events with null params, whatever other types hold', () => {
    const form = formWith({ trackingName: 'related-events' })
    form.params['users-followed'] = ['bob']
    expect(formToRule(form).tracking_rule).toEqual({ name: 'related-events', params: null })
  })

  it('writes every filter, an empty topic as null, in FMN 3 key order', () => {
    const form = formWith({ name: '  Koji failures  ' })
    const gr = form.generationRules[0]!
    gr.applications = ['koji', 'koji']
    gr.excluded_applications = ['bodhi']
    gr.severities = ['error', 'warning']
    gr.topic = '  *.buildsys.task.state.change  '
    gr.my_actions = true
    const second = emptyGenerationRule()
    second.destinations = [{ protocol: 'matrix', address: '@alice:fedora.im' }]
    form.generationRules.push(second)

    const json = JSON.stringify(formToRule(form))
    expect(json).toBe(
      JSON.stringify({
        name: 'Koji failures',
        disabled: false,
        tracking_rule: { name: 'artifacts-owned', params: ['alice'] },
        generation_rules: [
          {
            destinations: [{ protocol: 'email', address: 'alice@example.org' }],
            filters: {
              applications: ['koji'],
              excluded_applications: ['bodhi'],
              severities: ['error', 'warning'],
              topic: '*.buildsys.task.state.change',
              my_actions: true,
            },
          },
          { destinations: [{ protocol: 'matrix', address: '@alice:fedora.im' }], filters: NO_FILTERS },
        ],
      }),
    )
  })
})

describe('ruleToForm', () => {
  it('round-trips an FMN 3 rule, keeping the generation rule ids and leaving the rule id to the PUT', () => {
    const rule: NewRule = {
      id: 7,
      name: 'Mine',
      disabled: true,
      tracking_rule: { name: 'artifacts-followed', params: [{ name: 'podman', type: 'containers' }] },
      generation_rules: [
        {
          id: 3,
          destinations: [{ protocol: 'irc', address: 'alice' }],
          filters: { applications: ['bodhi'], excluded_applications: [], severities: ['info'], topic: 'a.*', my_actions: false },
        },
      ],
    }
    const { id, ...withoutId } = rule
    expect(id).toBe(7)
    expect(formToRule(ruleToForm(rule))).toEqual(withoutId)
    expect(ruleToForm(rule).id).toBe(7)
  })

  it('keeps the params of the other types out of the rule after switching type', () => {
    const form = ruleToForm({
      name: null,
      disabled: false,
      tracking_rule: { name: 'users-followed', params: ['bob'] },
      generation_rules: [],
    })
    form.trackingName = 'artifacts-group-owned'
    form.params['artifacts-group-owned'] = ['qa']
    expect(formToRule(form).tracking_rule).toEqual({ name: 'artifacts-group-owned', params: ['qa'] })
    form.trackingName = 'users-followed'
    expect(formToRule(form).tracking_rule).toEqual({ name: 'users-followed', params: ['bob'] })
  })
})

describe('fmn’s own tracking rules in the form', () => {
  it('round-trip through the form, projects cleaned of blanks and repeats', () => {
    const base = formToRule(newRuleForm('alice'))
    const kinds: TrackingRule[] = [
      { name: 'applications', params: ['ansible', 'bodhi'] },
      { name: 'topics', params: ['org.fedoraproject.prod.bodhi.*'] },
      { name: 'projects-followed', params: [{ forge: 'pagure.io', name: 'fesco' }] },
    ]
    for (const tracking of kinds) {
      const rule = { ...base, tracking_rule: tracking }
      expect(formToRule(ruleToForm(rule)).tracking_rule).toEqual(tracking)
    }
    const form = newRuleForm('alice')
    form.trackingName = 'projects-followed'
    form.params['projects-followed'] = [
      { forge: 'pagure.io', name: ' fesco ' },
      { forge: 'pagure.io', name: 'fesco' },
      { forge: 'pagure.io', name: '' },
    ]
    expect(formTrackingRule(form)).toEqual({ name: 'projects-followed', params: [{ forge: 'pagure.io', name: 'fesco' }] })
  })

  it('sums them up in one line', () => {
    expect(trackingSummary({ name: 'applications', params: ['ansible'] })).toBe('Everything from ansible')
    expect(trackingSummary({ name: 'topics', params: ['a.*', 'b.*'] })).toBe('Topics a.* and b.*')
    expect(trackingSummary({ name: 'projects-followed', params: [{ forge: 'pagure.io', name: 'fesco' }] })).toBe(
      'Projects fesco on pagure.io',
    )
    expect(matchesEveryTopic('*')).toBe(true)
    expect(matchesEveryTopic('?*')).toBe(true)
    expect(matchesEveryTopic('*.bodhi.*')).toBe(false)
  })
})
