import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type VueWrapper } from '@vue/test-utils'
import { reactive } from 'vue'
import { newRuleForm, type RuleForm } from '@/rules/form'
import { fakeApi, mountWithApp, settle, type Call } from '@/test/helpers'
import TrackingRuleEditor from './TrackingRuleEditor.vue'

let wrapper: VueWrapper | undefined
beforeEach(() => vi.useFakeTimers())
afterEach(() => {
  wrapper?.unmount()
  vi.useRealTimers()
})

async function mountEditor(plain: RuleForm) {
  const form = reactive(plain)
  ;({ wrapper } = await mountWithApp(TrackingRuleEditor, {
    props: { modelValue: form, username: 'alice', errors: {} },
  }))
  return { w: wrapper!, form }
}

describe('TrackingRuleEditor', () => {
  it('labels each picker for itself: no id is used twice, whatever the kind (found by the e2e run)', async () => {
    fakeApi({
      'GET /users/alice/groups': { body: ['packager'] },
      'GET /applications': { body: ['ansible'] },
      'GET /forges': { body: ['pagure.io'] },
      'GET /forges/pagure.io/projects': { body: [] },
    })
    const { w, form } = await mountEditor(newRuleForm('alice'))
    const kinds = [
      'artifacts-owned',
      'artifacts-group-owned',
      'artifacts-followed',
      'related-events',
      'users-followed',
      'applications',
      'topics',
      'projects-followed',
    ] as const
    for (const kind of kinds) {
      form.trackingName = kind
      await settle()
      const ids = w.findAll('[id]').map((e) => e.attributes('id'))
      expect(ids.filter((id, i) => ids.indexOf(id) !== i), kind).toEqual([])
      for (const label of w.findAll('label[for]')) {
        expect(w.findAll(`[id="${label.attributes('for')}"]`), label.text()).toHaveLength(1)
      }
      const picker = w.find('[role="combobox"]')
      if (kind !== 'related-events') expect(w.find(`label[for="${picker.attributes('id')}"]`).exists(), kind).toBe(true)
    }
  })

  it('searches artifacts 500 ms after the last key, grouped by type', async () => {
    const api = fakeApi({
      'GET /artifacts': (call: Call) => ({
        body: call.query.get('names') === '*pyth*' ? [
          { type: 'containers', name: 'python3' },
          { type: 'rpms', name: 'python3' },
          { type: 'rpms', name: 'python-docs' },
        ] : [],
      }),
    })
    const form = newRuleForm('alice')
    form.trackingName = 'artifacts-followed'
    const { w, form: live } = await mountEditor(form)
    const input = w.find('#tracking-artifacts')
    await input.trigger('focus')
    await input.setValue('py')
    await vi.advanceTimersByTimeAsync(200)
    await input.setValue('pyth')
    await vi.advanceTimersByTimeAsync(499)
    expect(api.callsTo('GET', '/artifacts')).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1)
    await settle()
    expect(api.callsTo('GET', '/artifacts').map((c) => c.query.get('names'))).toEqual(['*pyth*'])

    expect(w.findAll('[role="presentation"]').map((g) => g.text())).toEqual(['Packages', 'Containers'])
    expect(w.findAll('[role="option"]').map((o) => o.text())).toEqual(['python-docs', 'python3', 'python3'])
    await w.findAll('[role="option"]')[2]!.trigger('mousedown')
    expect(live.params['artifacts-followed']).toEqual([{ type: 'containers', name: 'python3' }])
    expect(w.find('button[aria-label="Remove python3 (container)"]').exists()).toBe(true)
  })

  it('sums up what the picked users maintain', async () => {
    const api = fakeApi({
      'GET /artifacts': {
        body: [
          { type: 'rpms', name: 'a' },
          { type: 'rpms', name: 'b' },
          { type: 'flatpaks', name: 'c' },
        ],
      },
    })
    await mountEditor(newRuleForm('alice'))
    await vi.advanceTimersByTimeAsync(400)
    await settle()
    const [call] = api.callsTo('GET', '/artifacts')
    expect(call!.query.getAll('users')).toEqual(['alice'])
    expect(wrapper!.find('[data-test="owned-summary"]').text()).toContain('alice maintains 2 packages, 1 flatpaks')
  })

  it('offers the user’s groups', async () => {
    fakeApi({ 'GET /users/alice/groups': { body: ['packager', 'python-sig'] }, 'GET /artifacts': { body: [] } })
    const form = newRuleForm('alice')
    form.trackingName = 'artifacts-group-owned'
    const { w } = await mountEditor(form)
    await w.find('#tracking-groups').trigger('focus')
    expect(w.findAll('[role="option"]').map((o) => o.text())).toEqual(['packager', 'python-sig'])
  })
})

describe('TrackingRuleEditor: fmn’s own kinds', () => {
  it('offers the applications /applications lists', async () => {
    const api = fakeApi({ 'GET /applications': { body: ['ansible', 'bodhi', 'Koji'] } })
    const form = newRuleForm('alice')
    form.trackingName = 'applications'
    const { w, form: live } = await mountEditor(form)
    await settle()
    const input = w.find('#tracking-applications')
    await input.trigger('focus')
    await input.setValue('an')
    expect(w.findAll('[role="option"]').map((o) => o.text())).toEqual(['ansible'])
    await w.findAll('[role="option"]')[0]!.trigger('mousedown')
    expect(live.params.applications).toEqual(['ansible'])
    expect(api.callsTo('GET', '/applications')).toHaveLength(1)
  })

  it('counts what a typed topic pattern matched, 400 ms after the last key, and takes it on Enter', async () => {
    const api = fakeApi({
      'GET /topics': (call: Call) => ({
        body: {
          pattern: call.query.get('pattern'),
          days: 7,
          messages: 42,
          per_day: 6,
          topics: [
            { topic: 'org.fedoraproject.prod.bodhi.update.request.testing', count: 30 },
            { topic: 'org.fedoraproject.prod.bodhi.update.request.stable', count: 12 },
          ],
        },
      }),
    })
    const form = newRuleForm('alice')
    form.trackingName = 'topics'
    const { w, form: live } = await mountEditor(form)
    const input = w.find('#tracking-topics')
    await input.trigger('focus')
    await input.setValue('org.fedoraproject.prod.bodhi.update.request.*')
    await vi.advanceTimersByTimeAsync(399)
    expect(api.callsTo('GET', '/topics')).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1)
    await settle()

    expect(api.callsTo('GET', '/topics').map((c) => c.query.get('pattern'))).toEqual([
      'org.fedoraproject.prod.bodhi.update.request.*',
    ])
    expect(w.find('#tracking-topics-count').text()).toContain('matched 42 messages in the last 7 days (about 6 a day)')
    expect(w.findAll('[role="option"]').map((o) => o.text())).toEqual([
      'org.fedoraproject.prod.bodhi.update.request.* (this pattern)',
      'org.fedoraproject.prod.bodhi.update.request.testing (30)',
      'org.fedoraproject.prod.bodhi.update.request.stable (12)',
    ])
    await input.trigger('keydown', { key: 'Enter' })
    expect(live.params.topics).toEqual(['org.fedoraproject.prod.bodhi.update.request.*'])
  })

  it('warns that a pattern matching every topic needs a digest', async () => {
    fakeApi({ 'GET /topics': { body: { pattern: '*', days: 7, messages: 9000, per_day: 1285.7, topics: [] } } })
    const form = newRuleForm('alice')
    form.trackingName = 'topics'
    form.params.topics = ['*']
    const { w } = await mountEditor(form)
    await settle()
    expect(w.text()).toContain('matches every topic: email and IRC destinations need a digest')
  })

  it('finds projects seen on the forge and keeps the forge with each', async () => {
    const api = fakeApi({
      'GET /forges': { body: ['pagure.io'] },
      'GET /forges/pagure.io/projects': (call: Call) => ({
        body: ['fesco', 'packaging-committee'].filter((p) => p.includes(call.query.get('name') ?? '')),
      }),
    })
    const form = newRuleForm('alice')
    form.trackingName = 'projects-followed'
    const { w, form: live } = await mountEditor(form)
    await settle()
    const input = w.find('#tracking-projects')
    await input.trigger('focus')
    await input.setValue('fes')
    await vi.advanceTimersByTimeAsync(300)
    await settle()
    expect(api.callsTo('GET', '/forges/pagure.io/projects').at(-1)!.query.get('name')).toBe('fes')
    expect(w.findAll('[role="option"]').map((o) => o.text())).toEqual(['fesco'])
    await w.findAll('[role="option"]')[0]!.trigger('mousedown')
    expect(live.params['projects-followed']).toEqual([{ forge: 'pagure.io', name: 'fesco' }])
    expect(w.find('button[aria-label="Remove fesco on pagure.io"]').exists()).toBe(true)

    // A project no recent event was about, typed in full.
    await input.setValue('fedora-infra/ansible')
    await input.trigger('keydown', { key: 'Enter' })
    expect(live.params['projects-followed']).toEqual([
      { forge: 'pagure.io', name: 'fesco' },
      { forge: 'pagure.io', name: 'fedora-infra/ansible' },
    ])
  })
})
