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
    fakeApi({ 'GET /users/alice/groups': { body: ['packager'] } })
    const { w, form } = await mountEditor(newRuleForm('alice'))
    for (const kind of ['artifacts-owned', 'artifacts-group-owned', 'artifacts-followed', 'related-events', 'users-followed'] as const) {
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
