import { defineStore } from 'pinia'
import { ref } from 'vue'

export type ToastKind = 'success' | 'danger' | 'warning' | 'info'

export interface Toast {
  id: number
  kind: ToastKind
  text: string
}

export const useToasts = defineStore('toasts', () => {
  const items = ref<Toast[]>([])
  let nextId = 1

  function dismiss(id: number): void {
    items.value = items.value.filter((t) => t.id !== id)
  }

  /** Errors stay until dismissed; the rest go after a few seconds. */
  function push(kind: ToastKind, text: string, timeoutMs = kind === 'danger' ? 0 : 5000): number {
    const existing = items.value.find((t) => t.kind === kind && t.text === text)
    if (existing) return existing.id
    const id = nextId++
    items.value.push({ id, kind, text })
    if (timeoutMs > 0) setTimeout(() => dismiss(id), timeoutMs)
    return id
  }

  return {
    items,
    dismiss,
    push,
    success: (text: string) => push('success', text),
    error: (text: string) => push('danger', text),
    info: (text: string) => push('info', text),
  }
})
