// Shared queries and mutations, keyed so that a change invalidates exactly what it affects.
import { computed, type MaybeRefOrGetter, toValue } from 'vue'
import { useMutation, useQuery, useQueryClient } from '@tanstack/vue-query'
import { api, ApiError, type Destination, type DevInfo, type NewRule, type RulePatch } from '@/api'
import { useAuthStore } from '@/stores/auth'

export const keys = {
  me: ['me'] as const,
  rules: (user: string) => ['rules', user] as const,
  rule: (user: string, id: number) => ['rules', user, id] as const,
  destinations: (user: string) => ['destinations', user] as const,
  groups: (user: string) => ['groups', user] as const,
  applications: ['applications'] as const,
  settings: (user: string) => ['settings', user] as const,
  devInfo: ['dev-info'] as const,
  teams: (user: string) => ['teams', user] as const,
  teamDestinations: (group: string) => ['team-destinations', group] as const,
  /** Every page and filter of a user's inbox. */
  inbox: (user: string) => ['inbox', user] as const,
  feeds: (user: string) => ['feeds', user] as const,
  pushSubscriptions: (user: string) => ['push-subscriptions', user] as const,
}

export function useMe() {
  const auth = useAuthStore()
  return useQuery({
    queryKey: keys.me,
    queryFn: api.getMe,
    enabled: computed(() => auth.loggedIn),
    staleTime: 5 * 60_000,
  })
}

/**
 * What the embedded default (`fmn run`) is made of, or null when the API has no dev routes (any
 * real deployment): the dev pages are shown only when this is not null.
 */
export function useDevInfo() {
  const auth = useAuthStore()
  return useQuery({
    queryKey: keys.devInfo,
    queryFn: async ({ signal }): Promise<DevInfo | null> => {
      try {
        return await api.dev.info(signal)
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return null
        throw error
      }
    },
    enabled: computed(() => auth.loggedIn),
    staleTime: Infinity,
  })
}

/** The logged-in user's name, once /users/me has answered. */
export function useUsername() {
  const me = useMe()
  return computed(() => me.data.value?.name ?? '')
}

export function useRules(user: MaybeRefOrGetter<string>) {
  return useQuery({
    queryKey: computed(() => keys.rules(toValue(user))),
    queryFn: () => api.listRules(toValue(user)),
    enabled: computed(() => !!toValue(user)),
  })
}

export function useRule(user: MaybeRefOrGetter<string>, id: MaybeRefOrGetter<number | null>) {
  return useQuery({
    queryKey: computed(() => keys.rule(toValue(user), toValue(id) ?? 0)),
    queryFn: () => api.getRule(toValue(user), toValue(id)!),
    enabled: computed(() => !!toValue(user) && toValue(id) !== null),
  })
}

export function useDestinations(user: MaybeRefOrGetter<string>) {
  return useQuery({
    queryKey: computed(() => keys.destinations(toValue(user))),
    queryFn: () => api.getDestinations(toValue(user)),
    enabled: computed(() => !!toValue(user)),
    staleTime: 10 * 60_000,
  })
}

export function useGroups(user: MaybeRefOrGetter<string>) {
  return useQuery({
    queryKey: computed(() => keys.groups(toValue(user))),
    queryFn: () => api.getGroups(toValue(user)),
    enabled: computed(() => !!toValue(user)),
    staleTime: 10 * 60_000,
  })
}

export function useApplications() {
  return useQuery({ queryKey: keys.applications, queryFn: api.listApplications, staleTime: 60 * 60_000 })
}

export function useRuleMutations(user: MaybeRefOrGetter<string>) {
  const client = useQueryClient()
  const refresh = () => client.invalidateQueries({ queryKey: ['rules', toValue(user)] })
  return {
    create: useMutation({
      mutationFn: (rule: NewRule) => api.createRule(toValue(user), rule),
      onSuccess: refresh,
      meta: { silent422: true },
    }),
    update: useMutation({
      mutationFn: ({ id, rule }: { id: number; rule: NewRule }) => api.updateRule(toValue(user), id, rule),
      onSuccess: refresh,
      meta: { silent422: true },
    }),
    patch: useMutation({
      mutationFn: ({ id, patch }: { id: number; patch: RulePatch }) => api.patchRule(toValue(user), id, patch),
      onSuccess: refresh,
    }),
    remove: useMutation({
      mutationFn: (id: number) => api.deleteRule(toValue(user), id),
      onSuccess: refresh,
    }),
  }
}

/** The groups the user belongs to, and which of them they sponsor (team rules). */
export function useTeams(user: MaybeRefOrGetter<string>) {
  return useQuery({
    queryKey: computed(() => keys.teams(toValue(user))),
    queryFn: () => api.teams.list(toValue(user)),
    enabled: computed(() => !!toValue(user)),
    staleTime: 5 * 60_000,
  })
}

export function useTeamDestinations(group: MaybeRefOrGetter<string>) {
  return useQuery({
    queryKey: computed(() => keys.teamDestinations(toValue(group))),
    queryFn: () => api.teams.destinations(toValue(group)),
    enabled: computed(() => !!toValue(group)),
  })
}

/** A group's destinations: add one (a code is sent to it), send a new code, enter it, remove one. */
export function useTeamDestinationMutations(group: MaybeRefOrGetter<string>) {
  const client = useQueryClient()
  const refresh = () => client.invalidateQueries({ queryKey: keys.teamDestinations(toValue(group)) })
  return {
    add: useMutation({
      mutationFn: (destination: Destination) => api.teams.addDestination(toValue(group), destination),
      onSuccess: refresh,
      meta: { silent422: true },
    }),
    sendCode: useMutation({
      mutationFn: (id: number) => api.teams.sendCode(toValue(group), id),
      onSuccess: refresh,
    }),
    verify: useMutation({
      mutationFn: ({ id, code }: { id: number; code: string }) => api.teams.verify(toValue(group), id, code),
      onSuccess: refresh,
      meta: { silent422: true },
    }),
    remove: useMutation({
      mutationFn: (id: number) => api.teams.removeDestination(toValue(group), id),
      onSuccess: refresh,
    }),
  }
}
