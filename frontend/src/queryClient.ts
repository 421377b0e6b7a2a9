import { MutationCache, QueryCache, QueryClient } from '@tanstack/vue-query'
import { ApiError, errorMessage } from '@/api'

declare module '@tanstack/vue-query' {
  interface Register {
    mutationMeta: { silent422?: boolean; silent?: boolean }
    queryMeta: { toast?: boolean }
  }
}

/**
 * Client errors (4xx) are not retried; failed mutations are told in a toast, except 422 answers a
 * form shows next to its fields. Failed queries are shown where their data would be.
 */
export function createQueryClient(notify: (text: string) => void): QueryClient {
  return new QueryClient({
    queryCache: new QueryCache({
      onError: (error, query) => {
        if (query.meta?.toast) notify(errorMessage(error))
      },
    }),
    mutationCache: new MutationCache({
      onError: (error, _vars, _ctx, mutation) => {
        if (mutation.meta?.silent) return
        if (mutation.meta?.silent422 && error instanceof ApiError && error.status === 422) return
        notify(errorMessage(error))
      },
    }),
    defaultOptions: {
      queries: {
        retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
        refetchOnWindowFocus: false,
        staleTime: 30_000,
      },
      mutations: { retry: false },
    },
  })
}
