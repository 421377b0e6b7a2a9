import { afterEach, describe, expect, it } from 'vitest'
import { mount, type VueWrapper } from '@vue/test-utils'
import TagPicker from './TagPicker.vue'

const OPTIONS = [
  { value: 'rpms/python3', label: 'python3', group: 'Packages' },
  { value: 'rpms/pytest', label: 'pytest', group: 'Packages' },
  { value: 'containers/python3', label: 'python3', group: 'Containers' },
]

let wrapper: VueWrapper | undefined
afterEach(() => wrapper?.unmount())

function mountPicker(props: Record<string, unknown> = {}) {
  wrapper = mount(TagPicker, {
    attachTo: document.body,
    props: {
      id: 'picker',
      label: 'Artifacts',
      modelValue: [],
      options: OPTIONS,
      'onUpdate:modelValue': (value: string[]) => wrapper!.setProps({ modelValue: value }),
      ...props,
    },
  })
  return wrapper
}

const picked = () => (wrapper!.props() as { modelValue: string[] }).modelValue
const key = (w: VueWrapper, k: string) => w.find('input').trigger('keydown', { key: k })

describe('TagPicker', () => {
  it('is a labelled combobox tied to its listbox', () => {
    const w = mountPicker()
    const input = w.find('input')
    expect(w.find('label').attributes('for')).toBe('picker')
    expect(input.attributes('role')).toBe('combobox')
    expect(input.attributes('aria-controls')).toBe('picker-list')
    expect(w.find('#picker-list').attributes('role')).toBe('listbox')
    expect(input.attributes('aria-expanded')).toBe('false')
  })

  it('picks with the arrows and Enter, in the grouped order', async () => {
    const w = mountPicker()
    await w.find('input').trigger('focus')
    expect(w.find('input').attributes('aria-expanded')).toBe('true')
    expect(w.findAll('[role="presentation"]').map((g) => g.text())).toEqual(['Packages', 'Containers'])
    await key(w, 'ArrowDown')
    await key(w, 'ArrowDown')
    await key(w, 'ArrowDown')
    const active = w.find('input').attributes('aria-activedescendant')!
    expect(document.getElementById(active)?.textContent).toContain('python3')
    await key(w, 'Enter')
    expect(picked()).toEqual(['containers/python3'])
    expect(w.find(`#${active}`).attributes('aria-selected')).toBe('true')
    await key(w, 'ArrowUp')
    await key(w, 'Enter')
    expect(picked()).toEqual(['containers/python3', 'rpms/pytest'])
  })

  it('closes on Escape and drops the last pick on Backspace', async () => {
    const w = mountPicker({ modelValue: ['rpms/python3', 'rpms/pytest'] })
    await w.find('input').trigger('focus')
    await key(w, 'Escape')
    expect(w.find('input').attributes('aria-expanded')).toBe('false')
    await key(w, 'Backspace')
    expect(picked()).toEqual(['rpms/python3'])
  })

  it('removes a pick with its own labelled button', async () => {
    const w = mountPicker({ modelValue: ['rpms/pytest'] })
    await w.find('button[aria-label="Remove pytest"]').trigger('click')
    expect(picked()).toEqual([])
  })

  it('filters locally and can add a typed value', async () => {
    const w = mountPicker({ allowCustom: true, options: [{ value: 'packager', label: 'packager' }] })
    await w.find('input').setValue('infra')
    expect(w.findAll('[role="option"]')).toHaveLength(0)
    expect(w.text()).toContain('Press Enter to add “infra”')
    await key(w, 'Enter')
    expect(picked()).toEqual(['infra'])
  })

  it('tells its parent what is typed when the server searches', async () => {
    const w = mountPicker({ filterLocally: false })
    await w.find('input').setValue(' py ')
    expect(w.emitted('update:query')!.at(-1)).toEqual(['py'])
    expect(w.findAll('[role="option"]')).toHaveLength(3)
  })
})
