// A small fetch wrapper: bearer token, JSON in and out, errors as ApiError, pagination headers.
import type { ValidationIssue } from './types'

export type QueryValue = string | number | boolean | null | undefined | readonly (string | number)[]
export type Query = Record<string, QueryValue>

export interface RequestOptions {
  query?: Query
  body?: unknown
  signal?: AbortSignal
}

export interface Page<T> {
  items: T[]
  total: number
  page: number
  pageSize: number
}

export class ApiError extends Error {
  readonly status: number
  readonly detail: unknown

  constructor(status: number, detail: unknown, message?: string) {
    super(message ?? describeStatus(status, detail))
    this.name = 'ApiError'
    this.status = status
    this.detail = detail
  }

  /** FastAPI's 422 list, or an empty list for any other error. */
  get issues(): ValidationIssue[] {
    if (this.status !== 422 || !Array.isArray(this.detail)) return []
    return this.detail.filter(
      (item): item is ValidationIssue =>
        typeof item === 'object' && item !== null && Array.isArray(item.loc) && typeof item.msg === 'string',
    )
  }
}

/** The network failed before any answer came back. */
export class NetworkError extends Error {
  constructor(cause: unknown) {
    super('The server could not be reached. Check your connection and try again.', { cause })
    this.name = 'NetworkError'
  }
}

function describeStatus(status: number, detail: unknown): string {
  const said = typeof detail === 'string' && detail ? ` (${detail})` : ''
  if (status === 401) return `Your session has expired or you are not logged in; log in again${said}.`
  if (status === 403) return `You are not allowed to do this${said}.`
  if (status === 404) return `It does not exist, or no longer exists${said}.`
  if (status === 409) return `It changed in the meantime; reload and try again${said}.`
  if (status === 422) return 'Some values were refused; see the messages next to the fields.'
  if (status === 429) return 'Too many requests; wait a moment and try again.'
  if (status >= 500) return `The server had a problem (HTTP ${status})${said}. Try again later.`
  return `The request failed (HTTP ${status})${said}.`
}

/** Words for any error, for a toast or an alert. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError || error instanceof NetworkError) return error.message
  if (error instanceof DOMException && error.name === 'AbortError') return 'Cancelled.'
  if (error instanceof Error && error.message) return error.message
  return 'Something went wrong.'
}

interface Hooks {
  baseUrl: string
  getAccessToken: () => string | null | Promise<string | null>
  onUnauthorized: () => void
}

const hooks: Hooks = {
  baseUrl: '/api/v1',
  getAccessToken: () => null,
  onUnauthorized: () => {},
}

export function configureApi(changes: Partial<Hooks>): void {
  Object.assign(hooks, changes)
}

export function buildUrl(path: string, query?: Query): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null || value === '') continue
    if (Array.isArray(value)) for (const item of value) params.append(key, String(item))
    else params.append(key, String(value))
  }
  const search = params.toString()
  return `${hooks.baseUrl}${path}${search ? `?${search}` : ''}`
}

export async function rawRequest(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  const token = await hooks.getAccessToken()
  if (token) headers.Authorization = `Bearer ${token}`
  if (options.body !== undefined) headers['Content-Type'] = 'application/json'
  let response: Response
  try {
    response = await fetch(buildUrl(path, options.query), {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    })
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error
    throw new NetworkError(error)
  }
  if (!response.ok) {
    const detail = await readDetail(response)
    if (response.status === 401) hooks.onUnauthorized()
    throw new ApiError(response.status, detail)
  }
  return response
}

async function readDetail(response: Response): Promise<unknown> {
  const text = await response.text().catch(() => '')
  if (!text) return null
  try {
    const body: unknown = JSON.parse(text)
    if (typeof body === 'object' && body !== null && 'detail' in body) return body.detail
    return body
  } catch {
    return text.slice(0, 200)
  }
}

async function readJson<T>(response: Response): Promise<T> {
  if (response.status === 204) return undefined as T
  const text = await response.text()
  return (text ? JSON.parse(text) : undefined) as T
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  return readJson<T>(await rawRequest(method, path, options))
}

/** A paginated list: a JSON array plus X-Total-Count, X-Page and X-Page-Size. */
export async function requestPage<T>(path: string, options: RequestOptions & { page: number; pageSize: number }): Promise<Page<T>> {
  const { page, pageSize, ...rest } = options
  const response = await rawRequest('GET', path, { ...rest, query: { ...rest.query, page, page_size: pageSize } })
  const items = await readJson<T[]>(response)
  const header = (name: string, fallback: number) => {
    const value = Number.parseInt(response.headers.get(name) ?? '', 10)
    return Number.isFinite(value) ? value : fallback
  }
  return {
    items,
    total: header('X-Total-Count', items.length),
    page: header('X-Page', page),
    pageSize: header('X-Page-Size', pageSize),
  }
}

/** The API's largest page (`api.max_page_size`): whole lists are read in pages this big. */
export const MAX_PAGE_SIZE = 500

/**
 * Every item of a list, asked for page by page. The API answers a list asked for without paging
 * parameters whole too (FMN 3's clients ask that way), but refuses one past its hard limit;
 * this app always pages.
 */
export async function requestAll<T>(path: string, options: RequestOptions = {}): Promise<T[]> {
  const items: T[] = []
  for (let page = 1; ; page++) {
    const found = await requestPage<T>(path, { ...options, page, pageSize: MAX_PAGE_SIZE })
    items.push(...found.items)
    if (found.items.length < MAX_PAGE_SIZE || items.length >= found.total) return items
  }
}

/** The first page of a search (what a type-ahead shows). */
export async function requestFirst<T>(path: string, options: RequestOptions & { pageSize: number }): Promise<T[]> {
  const { pageSize, ...rest } = options
  return (await requestPage<T>(path, { ...rest, page: 1, pageSize })).items
}
