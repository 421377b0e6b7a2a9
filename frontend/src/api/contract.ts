// Compile-time check that the hand-written types (types.ts) agree with the backend's OpenAPI
// document (schema.d.ts, from `npm run gen:api`). `npm run lint` fails when they drift apart.
// Nothing here runs.
import type { components } from './schema'
import type * as T from './types'

type S = components['schemas']
/** What the API answers: every field is present in the JSON, even those with defaults. */
type Answer<X> = X extends readonly (infer E)[]
  ? Answer<E>[]
  : X extends object
    ? { [K in keyof X]-?: Answer<Exclude<X[K], undefined>> }
    : X
type Check<A extends B, B> = [A, B]

/** Each pair: [generated answer, what the app reads] or [what the app sends, generated request]. */
export type Contract = [
  Check<Answer<S['UserPublic']>, T.Me>,
  Check<Answer<S['AppConfig']>, T.AppConfig>,
  Check<Answer<S['RulePublic']>, T.Rule>,
  Check<T.NewRule, S['RuleCreate']>,
  Check<T.NewRule & { id: number }, S['RuleUpdate']>,
  Check<T.RulePatch, S['RulePatch']>,
  Check<Answer<S['ArtifactPublic']>, T.Artifact>,
  Check<T.PreviewRequest, S['PreviewRequest']>,
  Check<Answer<S['PreviewResult']>, T.PreviewResult>,
  Check<Answer<S['TopicCounts']>, T.TopicCounts>,
  Check<Answer<S['NotificationPublic']>, T.NotificationRecord>,
  Check<Answer<S['RuleStats']>, T.RuleStats>,
  Check<Answer<S['SettingsPublic']>, T.UserSettings>,
  Check<T.UserSettings, S['SettingsUpdate']>,
  Check<Answer<S['DeadLetterPublic']>, T.DeadLetter>,
  Check<Answer<S['SystemStatus']>, T.SystemStatus>,
  Check<Answer<S['ValidationError']>, T.ValidationIssue>,
  Check<Answer<S['InboxEntryPublic']>, T.InboxEntry>,
  Check<Answer<S['InboxCount']>, T.InboxCount>,
  Check<Answer<S['Marked']>, T.MarkedCount>,
  Check<{ read: boolean }, S['ReadState']>,
  Check<{ before_id?: number }, S['ReadAll']>,
  Check<Answer<S['SubscriptionPublic']>, T.PushSubscriptionRecord>,
  Check<T.NewPushSubscription, S['SubscriptionCreate']>,
  Check<Answer<S['VapidKey']>, T.VapidKey>,
  Check<Answer<S['FeedLinks']>, T.Feeds>,
  Check<Answer<S['DevInfo']>, T.DevInfo>,
  Check<Answer<S['DevMail']>, T.DevMail>,
  Check<Answer<S['ChatMessage']>, T.DevChatMessage>,
]
