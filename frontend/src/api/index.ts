// One function per endpoint of docs/api.md. Paths and shapes live here and in types.ts only.
import { request, requestAll, requestFirst, requestPage, type Page } from './client'
import type {
  AppConfig,
  Artifact,
  DeadLetter,
  Destination,
  DevChatMessage,
  DevInfo,
  DevMail,
  Me,
  NewRule,
  NotificationRecord,
  NotificationStatus,
  PreviewRequest,
  PreviewResult,
  Protocol,
  Rule,
  RulePatch,
  RuleStats,
  SystemStatus,
  TopicCounts,
  UserRef,
  UserSettings,
} from './types'

export * from './client'
export type * from './types'

const u = (username: string) => `/users/${encodeURIComponent(username)}`

/** Type-ahead searches show this many results (narrow the search for others). */
export const SEARCH_PAGE_SIZE = 50

export interface PageParams {
  page: number
  pageSize: number
}

export const api = {
  getConfig: (signal?: AbortSignal) => request<AppConfig>('GET', '/config', { signal }),
  getMe: () => request<Me>('GET', '/users/me'),
  searchUsers: (search: string, signal?: AbortSignal) =>
    requestFirst<string>('/users', { query: { search }, signal, pageSize: SEARCH_PAGE_SIZE }),
  getGroups: (username: string) => requestAll<string>(`${u(username)}/groups`),
  getDestinations: (username: string) => requestAll<Destination>(`${u(username)}/destinations`),

  // all_kinds: fmn's own tracking rules too (FMN 3's clients, which do not ask, get FMN 3's only).
  listRules: (username: string) => requestAll<Rule>(`${u(username)}/rules`, { query: { all_kinds: true } }),
  getRule: (username: string, id: number) => request<Rule>('GET', `${u(username)}/rules/${id}`),
  createRule: (username: string, rule: NewRule) => request<Rule>('POST', `${u(username)}/rules`, { body: rule }),
  updateRule: (username: string, id: number, rule: NewRule) =>
    request<Rule>('PUT', `${u(username)}/rules/${id}`, { body: { ...rule, id } }),
  patchRule: (username: string, id: number, patch: RulePatch) =>
    request<Rule>('PATCH', `${u(username)}/rules/${id}`, { body: patch }),
  deleteRule: (username: string, id: number) => request<void>('DELETE', `${u(username)}/rules/${id}`),
  previewRule: (username: string, body: PreviewRequest, paging: PageParams, signal?: AbortSignal) =>
    request<PreviewResult>('POST', `${u(username)}/rules/preview`, {
      body,
      query: { page: paging.page, page_size: paging.pageSize },
      signal,
    }),
  ruleStats: (username: string, id: number, days: number) =>
    request<RuleStats>('GET', `${u(username)}/rules/${id}/stats`, { query: { days } }),

  listNotifications: (
    username: string,
    filters: { status?: NotificationStatus | ''; ruleId?: number | null },
    paging: PageParams,
  ): Promise<Page<NotificationRecord>> =>
    requestPage<NotificationRecord>(`${u(username)}/notifications`, {
      query: { status: filters.status, rule_id: filters.ruleId },
      ...paging,
    }),

  getSettings: (username: string) => request<UserSettings>('GET', `${u(username)}/settings`),
  putSettings: (username: string, settings: UserSettings) =>
    request<UserSettings>('PUT', `${u(username)}/settings`, { body: settings }),

  listApplications: () => requestAll<string>('/applications'),
  countTopics: (pattern: string, signal?: AbortSignal) =>
    request<TopicCounts>('GET', '/topics', { query: { pattern }, signal }),
  listForges: () => request<string[]>('GET', '/forges'),
  searchProjects: (forge: string, name: string, signal?: AbortSignal) =>
    request<string[]>('GET', `/forges/${encodeURIComponent(forge)}/projects`, { query: { name }, signal }),
  searchArtifacts: (query: { names?: string[]; users?: string[]; groups?: string[] }, signal?: AbortSignal) =>
    requestFirst<Artifact>('/artifacts', { query, signal, pageSize: SEARCH_PAGE_SIZE }),
  /** Every artifact the users or groups own (the owned-artifacts summary). */
  ownedArtifacts: (query: { users?: string[]; groups?: string[] }, signal?: AbortSignal) =>
    requestAll<Artifact>('/artifacts', { query, signal }),

  admin: {
    listRules: (filters: { disabled?: boolean; username?: string }) =>
      requestAll<Rule>('/admin/rules', { query: { ...filters, all_kinds: true } }),
    searchUsers: (search: string, signal?: AbortSignal) =>
      requestFirst<UserRef>('/admin/users', { query: { search }, signal, pageSize: SEARCH_PAGE_SIZE }),
    patchRule: (id: number, disabled: boolean) => request<Rule>('PATCH', `/admin/rules/${id}`, { body: { disabled } }),
    listDeadLetters: (protocol: Protocol | '', paging: PageParams) =>
      requestPage<DeadLetter>('/admin/deadletters', { query: { protocol }, ...paging }),
    replayDeadLetter: (id: string) => request<void>('POST', `/admin/deadletters/${encodeURIComponent(id)}/replay`),
    discardDeadLetter: (id: string) => request<void>('DELETE', `/admin/deadletters/${encodeURIComponent(id)}`),
    status: () => request<SystemStatus>('GET', '/admin/status'),
  },

  /** Only `fmn run` (the embedded default) serves these. */
  dev: {
    info: (signal?: AbortSignal) => request<DevInfo>('GET', '/dev/info', { signal }),
    mail: (limit: number) => request<DevMail[]>('GET', '/dev/mail', { query: { limit } }),
    chat: (limit: number) => request<DevChatMessage[]>('GET', '/dev/chat', { query: { limit } }),
  },
}
