// The JSON shapes of the REST API, written by hand from docs/api.md and fmn/rules/schema.py.
//
// This is the only file the rest of the app takes API types from. Once the backend serves its
// OpenAPI document, `npm run gen:api` writes src/api/schema.d.ts and these aliases can point at
// `components['schemas'][...]` instead, without touching any caller.

export type ArtifactType = 'rpms' | 'containers' | 'modules' | 'flatpaks'
/** "web": the rule owner's inbox in this app; its address is their username (the app shows none). */
export type Protocol = 'email' | 'irc' | 'matrix' | 'web'
export type Severity = 'debug' | 'info' | 'warning' | 'error'

export interface UserRef {
  id?: number | null
  name: string
  is_admin: boolean
}

export interface Me {
  id: number | null
  name: string
  is_admin: boolean
}

export interface ArtifactRef {
  name: string
  type: ArtifactType
}

/** A project on a forge (GET /forges), as a projects-followed rule names it. */
export interface ProjectRef {
  forge: string
  name: string
}

export type TrackingRule =
  | { name: 'artifacts-owned'; params: string[] }
  | { name: 'artifacts-group-owned'; params: string[] }
  | { name: 'artifacts-followed'; params: ArtifactRef[] }
  | { name: 'related-events'; params: string | null } // unused; FMN 3's clients may send ""
  | { name: 'users-followed'; params: string[] }
  // fmn's own: the API lists them only when asked (all_kinds=true), FMN 3's clients cannot read them.
  | { name: 'applications'; params: string[] }
  | { name: 'topics'; params: string[] }
  | { name: 'projects-followed'; params: ProjectRef[] }

export type TrackingRuleName = TrackingRule['name']

export interface Destination {
  protocol: Protocol
  address: string
}

export interface Filters {
  applications: string[]
  excluded_applications: string[]
  severities: Severity[]
  topic: string | null
  my_actions: boolean
}

export interface GenerationRule {
  id?: number | null
  destinations: Destination[]
  filters: Filters
}

/** A rule as POSTed (and, with its id, PUT) to /users/{u}/rules. */
export interface NewRule {
  id?: number
  name: string | null
  disabled: boolean
  tracking_rule: TrackingRule
  generation_rules: GenerationRule[]
}

/** A rule as the API returns it. */
export interface Rule extends NewRule {
  id: number
  user: UserRef
  generated_last_week: number
  /** fmn's addition: the rule sends nothing until then. */
  muted_until?: string | null
}

export interface RulePatch {
  disabled?: boolean
  muted_until?: string | null
}

export interface Artifact {
  type: ArtifactType
  name: string
}

export interface AppConfig {
  oidc_provider_url: string
  oidc_client_id: string
  oidc_scopes: string
  public_url: string
}

export interface DayCount {
  /** ISO date, YYYY-MM-DD */
  date: string
  count: number
}

export interface PreviewMessage {
  id: string
  topic: string
  sent_at: string
  app_name: string | null
  summary: string
  url: string | null
}

export interface PreviewNotification {
  message: PreviewMessage
  destinations: Destination[]
}

export interface PreviewRequest {
  rule: NewRule
  days: number
}

export interface PreviewResult {
  total: number
  complete: boolean
  scanned: number
  per_day: DayCount[]
  /** At the rate of the archive read (its newest part when incomplete). */
  expected_per_day: number
  /** Above the server's threshold and no digest chosen yet. */
  digest_suggested: boolean
  notifications: PreviewNotification[]
}

/** GET /topics?pattern=: what a topic pattern matched in the archive. */
export interface TopicCounts {
  pattern: string
  days: number
  messages: number
  per_day: number
  topics: { topic: string; count: number }[]
}

export type NotificationStatus = 'sent' | 'failed' | 'dead' | 'held' | 'digested'

export interface NotificationRecord {
  id: number
  created_at: string
  /** email, irc or matrix; the API types it as any string. */
  protocol: string
  address: string
  rule_ids: number[]
  message_id: string
  topic: string
  summary: string | null
  status: NotificationStatus
  attempt: number
  detail: string | null
}

export interface RuleStats {
  rule_id: number
  series: DayCount[]
}

export type DigestMode = 'none' | 'hourly' | 'daily'

export interface QuietHours {
  /** "HH:MM" */
  start: string
  end: string
}

export interface UserSettings {
  digest_mode: DigestMode
  quiet_hours: QuietHours | null
  timezone: string
  muted_until: string | null
}

export interface DeadLetter {
  id: string
  protocol: string
  address: string | null
  user: string | null
  reason: string
  failed_at: string
  attempts: number
  summary: string | null
}

export interface ComponentStatus {
  name: string
  ok: boolean
  detail: string | null
}

export interface SystemStatus {
  components: ComponentStatus[]
}

// Web notifications: the inbox, its live stream, Web Push and the feeds.

export interface RuleName {
  id: number
  /** null: the rule was deleted since. */
  name: string | null
}

/** One notification in the user's inbox (GET /users/{u}/inbox, and the stream's `notification` event). */
export interface InboxEntry {
  id: number
  subject: string
  text: string
  link: string | null
  application: string | null
  topic: string
  message_id: string
  message_time: string
  created_at: string
  read: boolean
  /** The rules that fired for it. */
  rules: RuleName[]
}

export interface InboxCount {
  unread: number
  total: number
}

export interface InboxFilters {
  ruleId?: number | null
  application?: string
  unread?: boolean
}

export interface MarkedCount {
  marked: number
}

/** A device subscribed to Web Push. */
export interface PushSubscriptionRecord {
  id: number
  endpoint: string
  device: string
  created_at: string
}

/** What the app POSTs: the browser's PushSubscription.toJSON() and a name for the device. */
export interface NewPushSubscription {
  endpoint: string
  keys: { p256dh: string; auth: string }
  device: string
}

export interface VapidKey {
  /** base64url, an uncompressed P-256 point */
  public_key: string
}

export interface RuleFeed {
  id: number
  name: string
  url: string
}

/** The user's private Atom feeds: absolute URLs holding a secret token. */
export interface Feeds {
  inbox: string
  rules: RuleFeed[]
}

/** One item of FastAPI's 422 `detail` list. */
export interface ValidationIssue {
  loc: (string | number)[]
  msg: string
  type?: string
  ctx?: Record<string, unknown> | null
}

// The embedded default's dev routes (`fmn run` only; elsewhere /dev/* answers 404).

export interface DevLogin {
  username: string
  name: string
  email: string
  groups: string[]
}

/** GET /dev/info: what the embedded run is made of. Its presence is how the app knows dev mode is on. */
export interface DevInfo {
  /** The parts replaced by stand-ins: "database", "directory", "oidc", "email", "irc", "matrix", "bus", "cache". */
  embedded: string[]
  logins: DevLogin[]
  smtp_sink: string | null
}

/** A mail the SMTP sink received (GET /dev/mail: the logged-in user's, newest first). */
export interface DevMail {
  id: number
  received_at: string
  mail_from: string
  to: string[]
  subject: string
  text: string
  /** The mail's HTML part as sent: shown only in a sandboxed frame without scripts. */
  html: string | null
}

/** An IRC or Matrix message the stand-in senders kept (GET /dev/chat). */
export interface DevChatMessage {
  id: number
  sent_at: string
  protocol: string
  address: string
  text: string
  html: string | null
}

// Team rules (FMN #179): a group's rules and its own destinations.

/** GET /users/{u}/teams: a group the user belongs to; its sponsors manage its rules. */
export interface Team {
  group: string
  sponsor: boolean
}

/** A group's mailing list, IRC channel or Matrix room; team rules use it once verified. */
export interface TeamDestination {
  id: number
  protocol: Protocol
  address: string
  verified: boolean
  verified_at: string | null
  verified_by: string | null
  code_sent_at: string | null
}
