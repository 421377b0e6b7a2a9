// Test helpers: a fake API behind fetch, and mounting with Pinia, TanStack Query and the router.
import { flushPromises, mount, type ComponentMountingOptions } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { QueryClient, VueQueryPlugin } from '@tanstack/vue-query'
import { vi } from 'vitest'
import { defineComponent, h, type Component } from 'vue'
import { createMemoryHistory, RouterView } from 'vue-router'
import type { User } from 'oidc-client-ts'
import { configureApi } from '@/api'
import type { InboxEntry, Me, Rule } from '@/api/types'
import { createAppRouter } from '@/router'
import { useAuthStore } from '@/stores/auth'

export interface Reply {
  status?: number
  body?: unknown
  headers?: Record<string, string>
  /** Answered as it is (an event stream, say), instead of status, body and headers. */
  raw?: Response
}

export interface Call {
  method: string
  path: string
  query: URLSearchParams
  body: string | undefined
  headers: Record<string, string>
}

type Handler = Reply | ((call: Call) => Reply | Promise<Reply>)

/** Routes are "METHOD /path" under /api/v1; unknown routes answer 404. */
export function fakeApi(routes: Record<string, Handler>) {
  const calls: Call[] = []
  const fetchMock = vi.fn(async (input: string, init: RequestInit = {}) => {
    const url = new URL(input, 'http://localhost')
    const call: Call = {
      method: init.method ?? 'GET',
      path: url.pathname.replace(/^\/api\/v1/, ''),
      query: url.searchParams,
      body: typeof init.body === 'string' ? init.body : undefined,
      headers: (init.headers ?? {}) as Record<string, string>,
    }
    calls.push(call)
    const handler = routes[`${call.method} ${call.path}`]
    const reply = typeof handler === 'function' ? await handler(call) : (handler ?? { status: 404, body: { detail: 'Not Found' } })
    if (reply.raw) return reply.raw
    const status = reply.status ?? 200
    const text = reply.body === undefined ? '' : JSON.stringify(reply.body)
    return new Response(status === 204 ? null : text, {
      status,
      headers: { 'Content-Type': 'application/json', ...reply.headers },
    })
  })
  vi.stubGlobal('fetch', fetchMock)
  return {
    calls,
    fetchMock,
    callsTo: (method: string, path: string) => calls.filter((c) => c.method === method && c.path === path),
  }
}

export const ALICE: Me = { id: 1, name: 'alice', is_admin: false }

/** Let queries, mutations and the DOM settle. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await flushPromises()
}

export interface AppOptions {
  route?: string
  loggedIn?: boolean
}

export async function mountWithApp<C extends Component>(
  component: C,
  { route = '/', loggedIn = true, ...options }: AppOptions & ComponentMountingOptions<C> = {},
) {
  const pinia = createPinia()
  setActivePinia(pinia)
  const auth = useAuthStore()
  if (loggedIn) auth.user = { access_token: 'token-123', expired: false } as unknown as User
  configureApi({ baseUrl: '/api/v1', getAccessToken: () => auth.accessToken, onUnauthorized: () => auth.sessionRejected() })
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } })
  const router = createAppRouter(createMemoryHistory())
  await router.push(route)
  await router.isReady()
  const wrapper = mount(component, {
    ...options,
    attachTo: document.body,
    global: { plugins: [pinia, [VueQueryPlugin, { queryClient }], router], ...options.global },
  } as ComponentMountingOptions<C>)
  await settle()
  return { wrapper, router, queryClient, auth }
}

export function makeRule(overrides: Partial<Rule> = {}): Rule {
  return {
    id: 1,
    name: null,
    disabled: false,
    user: { id: 1, name: 'alice', is_admin: false },
    tracking_rule: { name: 'artifacts-owned', params: ['alice'] },
    generation_rules: [
      {
        id: 10,
        destinations: [{ protocol: 'email', address: 'alice@example.org' }],
        filters: { applications: [], excluded_applications: [], severities: [], topic: null, my_actions: false },
      },
    ],
    generated_last_week: 0,
    ...overrides,
  }
}

/**
 * A Server-Sent Events answer: `send` writes events as the server would, `end` closes the stream.
 * It stays open until then (or until the reader lets it go), like the API's.
 */
export function eventStream() {
  const encoder = new TextEncoder()
  let sink: ReadableStreamDefaultController<Uint8Array> | null = null
  const pending: string[] = []
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      sink = controller
      for (const chunk of pending.splice(0)) controller.enqueue(encoder.encode(chunk))
    },
  })
  const write = (chunk: string) => (sink ? sink.enqueue(encoder.encode(chunk)) : pending.push(chunk))
  return {
    response: new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } }),
    send(event: string, data: unknown, id?: number) {
      write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
    },
    end() {
      sink?.close()
    },
  }
}

/** An inbox entry as the API answers it. */
export function makeEntry(overrides: Partial<InboxEntry> = {}): InboxEntry {
  return {
    id: 1,
    subject: 'alice commented on pagure#1',
    text: 'alice commented on pagure#1\n\nhttps://pagure.io/fmn/issue/1',
    link: 'https://pagure.io/fmn/issue/1',
    application: 'pagure',
    topic: 'io.pagure.prod.pagure.issue.comment.added',
    message_id: 'msg-1',
    message_time: '2026-12-01T10:00:00Z',
    created_at: '2026-12-01T10:00:01Z',
    read: false,
    rules: [{ id: 7, name: 'My Events' }],
    ...overrides,
  }
}

const RouterHost = defineComponent({ name: 'RouterHost', render: () => h(RouterView) })

/** Mount whatever the router shows at `route`, as the app does. */
export function mountRoute(route: string, options: AppOptions = {}) {
  return mountWithApp(RouterHost, { ...options, route })
}
