import { createRouter, createWebHistory, type RouterHistory } from 'vue-router'
import HomeView from '@/views/HomeView.vue'
import { CALLBACK_PATH } from '@/auth/oidc'

export function createAppRouter(history: RouterHistory = createWebHistory(import.meta.env.BASE_URL)) {
  return createRouter({
    history,
    routes: [
      { path: '/', name: 'home', component: HomeView, meta: { title: 'My rules' } },
      {
        path: '/rules/new',
        name: 'rule-new',
        component: () => import('@/views/RuleEditView.vue'),
        meta: { auth: true, title: 'New rule' },
      },
      {
        path: '/rules/:id(\\d+)',
        name: 'rule-edit',
        component: () => import('@/views/RuleEditView.vue'),
        meta: { auth: true, title: 'Edit rule' },
      },
      {
        path: '/rules/:id(\\d+)/stats',
        name: 'rule-stats',
        component: () => import('@/views/RuleStatsView.vue'),
        meta: { auth: true, title: 'Rule statistics' },
      },
      // Team rules (a group's rules, managed by its sponsors): beside My rules.
      { path: '/teams', name: 'teams', component: () => import('@/views/TeamsView.vue'), meta: { auth: true, title: 'Team rules' } },
      {
        path: '/teams/:group',
        name: 'team',
        component: () => import('@/views/TeamView.vue'),
        meta: { auth: true, title: 'Team rules' },
      },
      {
        path: '/teams/:group/rules/new',
        name: 'team-rule-new',
        component: () => import('@/views/RuleEditView.vue'),
        meta: { auth: true, title: 'New team rule' },
      },
      {
        path: '/teams/:group/rules/:id(\\d+)',
        name: 'team-rule-edit',
        component: () => import('@/views/RuleEditView.vue'),
        meta: { auth: true, title: 'Edit team rule' },
      },
      { path: '/inbox', component: () => import('@/views/InboxView.vue'), meta: { auth: true, title: 'Inbox' } },
      { path: '/history', component: () => import('@/views/HistoryView.vue'), meta: { auth: true, title: 'History' } },
      { path: '/settings', component: () => import('@/views/SettingsView.vue'), meta: { auth: true, title: 'Settings' } },
      // The embedded default's mailbox (shown only when the API has its dev routes).
      { path: '/dev/mail', component: () => import('@/views/DevMailView.vue'), meta: { auth: true, title: 'Mailbox' } },
      {
        path: '/admin',
        component: () => import('@/views/admin/AdminLayout.vue'),
        meta: { auth: true, title: 'Administration' },
        children: [
          { path: '', redirect: '/admin/disabled-rules' },
          { path: 'disabled-rules', component: () => import('@/views/admin/AdminDisabledRules.vue') },
          { path: 'user-rules', component: () => import('@/views/admin/AdminUserRules.vue') },
          { path: 'deadletters', component: () => import('@/views/admin/AdminDeadLetters.vue') },
          { path: 'status', component: () => import('@/views/admin/AdminStatus.vue') },
        ],
      },
      // FMN 3 registered /login/fedora as its redirect URI: both paths finish the login.
      { path: CALLBACK_PATH, alias: '/login/fedora', component: () => import('@/views/LoginCallback.vue'), meta: { title: 'Logging in' } },
      { path: '/:pathMatch(.*)*', component: () => import('@/views/NotFound.vue'), meta: { title: 'Not found' } },
    ],
    scrollBehavior: (_to, _from, saved) => saved ?? { top: 0 },
  })
}

declare module 'vue-router' {
  interface RouteMeta {
    auth?: boolean
    title?: string
  }
}
