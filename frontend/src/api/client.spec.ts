import { afterEach, describe, expect, it, vi } from 'vitest'
import { fakeApi } from '@/test/helpers'
import { api, ApiError, buildUrl, configureApi, errorMessage, NetworkError } from './index'

afterEach(() => configureApi({ getAccessToken: () => null, onUnauthorized: () => {} }))

describe('API client', () => {
  it('repeats list parameters and drops empty ones', () => {
    expect(buildUrl('/artifacts', { users: ['a', 'b'], groups: [], names: undefined, x: '' })).toBe('/api/v1/artifacts?users=a&users=b')
  })

  it('sends the bearer token and JSON', async () => {
    configureApi({ getAccessToken: () => 'tok' })
    const fake = fakeApi({ 'PATCH /users/alice/rules/3': { body: { id: 3 } } })
    await api.patchRule('alice', 3, { disabled: true })
    const [call] = fake.calls
    expect(call!.headers.Authorization).toBe('Bearer tok')
    expect(call!.headers['Content-Type']).toBe('application/json')
    expect(call!.body).toBe('{"disabled":true}')
  })

  it('escapes user names in paths', async () => {
    const fake = fakeApi({})
    await api.listRules('a/b?c').catch(() => undefined)
    expect(fake.calls[0]!.path).toBe('/users/a%2Fb%3Fc/rules')
  })

  it('reads pagination headers', async () => {
    fakeApi({ 'GET /admin/deadletters': { body: [{ id: 1 }], headers: { 'X-Total-Count': '321', 'X-Page': '4', 'X-Page-Size': '50' } } })
    const page = await api.admin.listDeadLetters('email', { page: 4, pageSize: 50 })
    expect(page).toEqual({ items: [{ id: 1 }], total: 321, page: 4, pageSize: 50 })
  })

  it('reads a whole list page by page, always with paging parameters', async () => {
    const rules = Array.from({ length: 560 }, (_, i) => ({ id: i + 1 }))
    const fake = fakeApi({
      'GET /users/alice/rules': (call) => {
        const page = Number(call.query.get('page'))
        const size = Number(call.query.get('page_size'))
        return { body: rules.slice((page - 1) * size, page * size), headers: { 'X-Total-Count': '560' } }
      },
    })
    expect(await api.listRules('alice')).toEqual(rules)
    expect(fake.calls.map((c) => [c.query.get('page'), c.query.get('page_size')])).toEqual([
      ['1', '500'],
      ['2', '500'],
    ])
  })

  it('asks a type-ahead search for its first page only', async () => {
    const fake = fakeApi({ 'GET /artifacts': { body: [{ type: 'rpms', name: 'foo' }], headers: { 'X-Total-Count': '90' } } })
    expect(await api.searchArtifacts({ names: ['*foo*'] })).toEqual([{ type: 'rpms', name: 'foo' }])
    expect([fake.calls[0]!.query.get('page'), fake.calls[0]!.query.get('page_size')]).toEqual(['1', '50'])
  })

  it('turns a 422 into field issues', async () => {
    fakeApi({ 'POST /users/alice/rules': { status: 422, body: { detail: [{ loc: ['body', 'name'], msg: 'bad', type: 'x' }, 'junk'] } } })
    const error = await api.createRule('alice', {} as never).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ApiError)
    expect((error as ApiError).issues).toEqual([{ loc: ['body', 'name'], msg: 'bad', type: 'x' }])
  })

  it('says errors in words and reports a refused token', async () => {
    const onUnauthorized = vi.fn()
    configureApi({ onUnauthorized })
    fakeApi({ 'GET /users/me': { status: 401, body: { detail: 'Token expired' } }, 'GET /applications': { status: 403, body: { detail: 'Not an admin' } } })
    const expired = await api.getMe().catch((e: unknown) => e)
    expect(errorMessage(expired)).toBe('Your session has expired or you are not logged in; log in again (Token expired).')
    expect(onUnauthorized).toHaveBeenCalledOnce()
    expect(errorMessage(await api.listApplications().catch((e: unknown) => e))).toBe('You are not allowed to do this (Not an admin).')
  })

  it('tells a network failure apart', async () => {
    vi.stubGlobal('fetch', vi.fn().mockRejectedValue(new TypeError('Failed to fetch')))
    const error = await api.getMe().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(NetworkError)
    expect(errorMessage(error)).toContain('could not be reached')
  })
})
