// What each tracking rule (FMN 3's five and fmn's own three) is called and how a rule is summed
// up in one line.
import type { ArtifactType, ProjectRef, Protocol, Rule, Severity, TrackingRule, TrackingRuleName } from '@/api/types'

export interface TrackingRuleInfo {
  name: TrackingRuleName
  label: string
  description: string
}

export const TRACKING_RULES: readonly TrackingRuleInfo[] = [
  {
    name: 'artifacts-owned',
    label: 'Artifacts owned by users',
    description: 'Events about the packages, containers, modules and flatpaks these people maintain.',
  },
  {
    name: 'artifacts-group-owned',
    label: 'Artifacts owned by groups',
    description: 'Events about the artifacts these groups maintain.',
  },
  {
    name: 'artifacts-followed',
    label: 'Artifacts',
    description: 'Events about the artifacts you pick, whoever maintains them.',
  },
  {
    name: 'related-events',
    label: 'My events',
    description: 'Events that concern you: your builds, updates, comments, memberships.',
  },
  {
    name: 'users-followed',
    label: 'Actions of users',
    description: 'Events started by these people.',
  },
  {
    name: 'applications',
    label: 'Applications',
    description: 'Every event of these applications: ansible runs, bodhi pushes, wiki edits…',
  },
  {
    name: 'topics',
    label: 'Topics',
    description: 'Every event whose topic matches a pattern (wildcards * and ?).',
  },
  {
    name: 'projects-followed',
    label: 'Forge projects',
    description: 'Issues, pull requests, commits and changes of projects on a forge such as pagure.io.',
  },
]

export function trackingRuleInfo(name: TrackingRuleName): TrackingRuleInfo {
  return TRACKING_RULES.find((info) => info.name === name) ?? TRACKING_RULES[0]!
}

export const ARTIFACT_TYPES: readonly { type: ArtifactType; label: string; singular: string }[] = [
  { type: 'rpms', label: 'Packages', singular: 'package' },
  { type: 'containers', label: 'Containers', singular: 'container' },
  { type: 'modules', label: 'Modules', singular: 'module' },
  { type: 'flatpaks', label: 'Flatpaks', singular: 'flatpak' },
]

export function artifactTypeLabel(type: ArtifactType, plural = true): string {
  const info = ARTIFACT_TYPES.find((t) => t.type === type)
  if (!info) return type
  return plural ? info.label : info.singular
}

export const PROTOCOL_LABELS: Record<Protocol, string> = { email: 'Email', irc: 'IRC', matrix: 'Matrix', web: 'Web (inbox)' }

/** The address a destination is shown with: none for the inbox (it is always the owner's own). */
export function destinationAddress(d: { protocol: string; address: string | null }): string {
  return d.protocol === 'web' ? '' : (d.address ?? '')
}

export function protocolLabel(protocol: string): string {
  return (PROTOCOL_LABELS as Record<string, string>)[protocol] ?? protocol
}

export const SEVERITIES: readonly { value: Severity; label: string }[] = [
  { value: 'debug', label: 'Debug' },
  { value: 'info', label: 'Info' },
  { value: 'warning', label: 'Warning' },
  { value: 'error', label: 'Error' },
]

/** "a, b and 3 more" */
export function shortList(items: readonly string[], max = 3): string {
  if (items.length === 0) return 'nobody'
  if (items.length <= max) {
    if (items.length === 1) return items[0]!
    return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`
  }
  return `${items.slice(0, max).join(', ')} and ${items.length - max} more`
}

export function trackingSummary(tracking: TrackingRule): string {
  switch (tracking.name) {
    case 'artifacts-owned':
      return `Artifacts owned by ${shortList(tracking.params)}`
    case 'artifacts-group-owned':
      return `Artifacts owned by the group${tracking.params.length === 1 ? '' : 's'} ${shortList(tracking.params)}`
    case 'artifacts-followed':
      return tracking.params.length
        ? `Artifacts: ${shortList(tracking.params.map((a) => `${a.name} (${artifactTypeLabel(a.type, false)})`))}`
        : 'Artifacts: none picked'
    case 'related-events':
      return 'Events about me'
    case 'users-followed':
      return `Actions of ${shortList(tracking.params)}`
    case 'applications':
      return `Everything from ${shortList(tracking.params)}`
    case 'topics':
      return `Topics ${shortList(tracking.params)}`
    case 'projects-followed':
      return `Projects ${shortList(tracking.params.map(projectLabel))}`
  }
}

/** "fesco on pagure.io" */
export function projectLabel(project: ProjectRef): string {
  return `${project.name} on ${project.forge}`
}

/** The rule's name, or a summary of what it tracks when it has none. */
export function ruleTitle(rule: Pick<Rule, 'name' | 'tracking_rule'>): string {
  return rule.name?.trim() || trackingSummary(rule.tracking_rule)
}

/** Whether a topic pattern lets every topic through (`*`, `**`, `?*`…), as the API judges it. */
export function matchesEveryTopic(pattern: string): boolean {
  return pattern.includes('*') && /^[*?]+$/.test(pattern)
}
