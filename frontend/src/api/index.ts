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
  Feeds,
  InboxCount,
  InboxEntry,
  InboxFilters,
  MarkedCount,
  Me,
  NewPushSubscription,
  NewRule,
  NotificationRecord,
  NotificationStatus,
  PreviewRequest,
  PreviewResult,
  Protocol,
  PushSubscriptionRecord,
  Rule,
  RulePatch,
  RuleStats,
  SystemStatus,
  Team,
  TeamDestination,
  TopicCounts,
  UserRef,
  UserSettings,
  VapidKey,
} from './types'

export * from './client'
export type * from './types'

const u = (username: string) => `/users/${encodeURIComponent(username)}`
const g = (group: string) => `/groups/${encodeURIComponent(group)}`

/** A group's rules are owned by `group:<name>`, as in the API's owner rows (no account name has a colon). */
const TEAM_PREFIX = 'group:'
export const teamOwner = (group: string) => `${TEAM_PREFIX}${group}`
/** Where an owner's rules live: a user's under /users/{u}, a group's under /groups/{g}. */
const rulesOf = (owner: string) => (owner.startsWith(TEAM_PREFIX) ? g(owner.slice(TEAM_PREFIX.length)) : u(owner))

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

  // `owner` is a username or a group's teamOwner(group).
  // all_kinds: fmn's own tracking rules too (FMN 3's clients, which do not ask, get FMN 3's only).
  listRules: (owner: string) => requestAll<Rule>(`${rulesOf(owner)}/rules`, { query: { all_kinds: true } }),
  getRule: (owner: string, id: number) => request<Rule>('GET', `${rulesOf(owner)}/rules/${id}`),
  createRule: (owner: string, rule: NewRule) => request<Rule>('POST', `${rulesOf(owner)}/rules`, { body: rule }),
  updateRule: (owner: string, id: number, rule: NewRule) =>
    request<Rule>('PUT', `${rulesOf(owner)}/rules/${id}`, { body: { ...rule, id } }),
  patchRule: (owner: string, id: number, patch: RulePatch) =>
    request<Rule>('PATCH', `${rulesOf(owner)}/rules/${id}`, { body: patch }),
  deleteRule: (owner: string, id: number) => request<void>('DELETE', `${rulesOf(owner)}/rules/${id}`),
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

  inbox: {
    list: (username: string, filters: InboxFilters, paging: PageParams): Promise<Page<InboxEntry>> =>
      requestPage<InboxEntry>(`${u(username)}/inbox`, {
        query: { rule_id: filters.ruleId, application: filters.application, unread: filters.unread || undefined },
        ...paging,
      }),
    count: (username: string) => request<InboxCount>('GET', `${u(username)}/inbox/count`),
    setRead: (username: string, id: number, read: boolean) =>
      request<InboxEntry>('PATCH', `${u(username)}/inbox/${id}`, { body: { read } }),
    /** Every entry up to `beforeId` (all of them without it) marked read. */
    readAll: (username: string, beforeId?: number) =>
      request<MarkedCount>('POST', `${u(username)}/inbox/read-all`, { body: beforeId === undefined ? {} : { before_id: beforeId } }),
    /** The path of the live stream (Server-Sent Events), read by src/inbox/stream.ts. */
    streamPath: (username: string) => `${u(username)}/inbox/stream`,
  },

  push: {
    vapidKey: () => request<VapidKey>('GET', '/push/vapid-public-key'),
    list: (username: string) => request<PushSubscriptionRecord[]>('GET', `${u(username)}/push-subscriptions`),
    subscribe: (username: string, subscription: NewPushSubscription) =>
      request<PushSubscriptionRecord>('POST', `${u(username)}/push-subscriptions`, { body: subscription }),
    remove: (username: string, id: number) => request<void>('DELETE', `${u(username)}/push-subscriptions/${id}`),
  },

  feeds: {
    get: (username: string) => request<Feeds>('GET', `${u(username)}/feeds`),
    regenerate: (username: string) => request<Feeds>('POST', `${u(username)}/feeds/regenerate`),
  },

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

  teams: {
    list: (username: string) => requestAll<Team>(`${u(username)}/teams`),
    destinations: (group: string) => request<TeamDestination[]>('GET', `${g(group)}/destinations`),
    addDestination: (group: string, destination: Destination) =>
      request<TeamDestination>('POST', `${g(group)}/destinations`, { body: destination }),
    sendCode: (group: string, id: number) => request<TeamDestination>('POST', `${g(group)}/destinations/${id}/code`),
    verify: (group: string, id: number, code: string) =>
      request<TeamDestination>('POST', `${g(group)}/destinations/${id}/verify`, { body: { code } }),
    removeDestination: (group: string, id: number) => request<void>('DELETE', `${g(group)}/destinations/${id}`),
  },

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
