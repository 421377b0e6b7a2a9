import { afterEach, describe, expect, it } from 'vitest'
import type { VueWrapper } from '@vue/test-utils'
import { ALICE, fakeApi, mountRoute, settle, type Call } from '@/test/helpers'

let wrapper: VueWrapper | undefined
afterEach(() => wrapper?.unmount())

const SETTINGS = { digest_mode: 'none', quiet_hours: null, timezone: 'Europe/Paris', muted_until: null }

describe('SettingsView', () => {
  it('saves digest mode, quiet hours, time zone and mute as the API expects', async () => {
    const api = fakeApi({
      'GET /users/me': { body: ALICE },
      'GET /users/alice/settings': { body: SETTINGS },
      'PUT /users/alice/settings': (call: Call) => ({ body: JSON.parse(call.body!) }),
    })
    ;({ wrapper } = await mountRoute('/settings'))
    expect((wrapper.find('#timezone').element as HTMLInputElement).value).toBe('Europe/Paris')
    expect(wrapper.find('#quiet-start').attributes('disabled')).toBeDefined()

    await wrapper.find('#digest-daily').setValue(true)
    await wrapper.find('#quiet-on').setValue(true)
    await wrapper.find('#quiet-start').setValue('23:00')
    await wrapper.find('#timezone').setValue('America/New_York')
    await wrapper.find('#muted-until').setValue('2030-01-02T03:04')
    await wrapper.find('form').trigger('submit')
    await settle()

    const body = JSON.parse(api.callsTo('PUT', '/users/alice/settings')[0]!.body!)
    expect(body).toEqual({
      digest_mode: 'daily',
      quiet_hours: { start: '23:00', end: '07:00' },
      timezone: 'America/New_York',
      muted_until: new Date('2030-01-02T03:04').toISOString(),
    })
    expect(wrapper.find('[data-test="muted-now"]').exists()).toBe(true)
  })

  it('shows a refused time zone next to its field', async () => {
    fakeApi({
      'GET /users/me': { body: ALICE },
      'GET /users/alice/settings': { body: SETTINGS },
      'PUT /users/alice/settings': {
        status: 422,
        body: { detail: [{ loc: ['body', 'timezone'], msg: 'Value error, unknown time zone Mars/Olympus', type: 'value_error' }] },
      },
    })
    ;({ wrapper } = await mountRoute('/settings'))
    await wrapper.find('#timezone').setValue('Mars/Olympus')
    await wrapper.find('form').trigger('submit')
    await settle()
    expect(wrapper.find('#timezone-error').text()).toBe('unknown time zone Mars/Olympus')
    expect(wrapper.find('#timezone').attributes('aria-invalid')).toBe('true')
  })
})
