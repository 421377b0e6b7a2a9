import { describe, expect, it } from 'vitest'
import { newRuleForm } from './form'
import { FORM, fieldKey, issueMessage, issuesToFieldErrors, validateRuleForm } from './validation'

describe('fieldKey', () => {
  it.each([
    [['body', 'name'], 'name'],
    [['body', 'tracking_rule', 'artifacts-owned', 'params', 2], 'tracking_rule.params'],
    [['body', 'tracking_rule', 'artifacts-followed', 'params', 0, 'type'], 'tracking_rule.params'],
    [['body', 'tracking_rule'], 'tracking_rule'],
    [['body', 'generation_rules'], 'generation_rules'],
    [['body', 'generation_rules', 1, 'destinations', 0, 'address'], 'generation_rules.1.destinations'],
    [['body', 'generation_rules', 1, 'destinations'], 'generation_rules.1.destinations'],
    [['body', 'generation_rules', 0, 'filters', 'topic'], 'generation_rules.0.filters.topic'],
    [['body', 'generation_rules', 0, 'filters', 'severities', 1], 'generation_rules.0.filters.severities'],
    [['body', 'generation_rules', 0, 'filters', 'bogus'], 'generation_rules.0'],
    [['body', 'something'], FORM],
    [['query', 'days'], FORM],
  ] as const)('%j → %s', (loc, key) => {
    expect(fieldKey(loc)).toBe(key)
  })

  it('strips the preview envelope', () => {
    expect(fieldKey(['body', 'rule', 'generation_rules', 0, 'filters', 'topic'], ['rule'])).toBe('generation_rules.0.filters.topic')
    expect(fieldKey(['body', 'days'], ['rule'])).toBe(FORM)
  })
})

describe('issuesToFieldErrors', () => {
  it('groups messages by field and drops pydantic prefixes', () => {
    expect(
      issuesToFieldErrors([
        { loc: ['body', 'generation_rules', 0, 'destinations', 0], msg: "Value error, address 'x' is not a valid email address" },
        { loc: ['body', 'generation_rules', 0, 'destinations', 1], msg: "Value error, address 'x' is not a valid email address" },
        { loc: ['body', 'name'], msg: 'String should have at most 255 characters' },
      ]),
    ).toEqual({
      'generation_rules.0.destinations': ["address 'x' is not a valid email address"],
      name: ['String should have at most 255 characters'],
    })
  })
})

describe('validateRuleForm', () => {
  it('asks for params, and a destination in every delivery', () => {
    const form = newRuleForm(null)
    expect(validateRuleForm(form)).toEqual({
      'tracking_rule.params': ['Pick at least one user.'],
      'generation_rules.0.destinations': ['Pick at least one destination.'],
    })
  })

  it('needs no params for My events', () => {
    const form = newRuleForm(null)
    form.trackingName = 'related-events'
    form.generationRules[0]!.destinations = [{ protocol: 'irc', address: 'alice' }]
    expect(validateRuleForm(form)).toEqual({})
  })

  it('refuses control characters in the topic', () => {
    const form = newRuleForm('alice')
    form.generationRules[0]!.destinations = [{ protocol: 'irc', address: 'alice' }]
    form.generationRules[0]!.topic = 'a\nb'
    expect(Object.keys(validateRuleForm(form))).toEqual(['generation_rules.0.filters.topic'])
  })
})

describe('issueMessage', () => {
  it('puts technical pydantic messages in plain words, as the API sends them', () => {
    expect(
      issueMessage({
        type: 'string_pattern_mismatch',
        loc: ['body', 'generation_rules', 0, 'filters', 'topic'],
        msg: "String should match pattern '^[^\\x00-\\x1f\\x7f]+$'",
        ctx: { pattern: '^[^\\x00-\\x1f\\x7f]+$' },
      }),
    ).toBe('No control characters (line breaks, tabs…) allowed.')
    expect(issueMessage({ type: 'string_too_short', loc: [], msg: 'String should have at least 1 character', ctx: { min_length: 1 } })).toBe(
      'Cannot be empty.',
    )
    expect(issueMessage({ type: 'value_error', loc: [], msg: 'mallory@example.org is not one of your email addresses' })).toBe(
      'mallory@example.org is not one of your email addresses',
    )
  })
})
