import js from '@eslint/js'
import globals from 'globals'
import pluginVue from 'eslint-plugin-vue'
import { defineConfigWithVueTs, vueTsConfigs } from '@vue/eslint-config-typescript'

export default defineConfigWithVueTs(
  { name: 'fmn/files', files: ['**/*.{ts,mts,mjs,vue}'] },
  { name: 'fmn/service-worker', files: ['public/sw.js'], languageOptions: { globals: globals.serviceworker } },
  { name: 'fmn/node-scripts', files: ['scripts/**', 'e2e/**', '*.config.ts'], languageOptions: { globals: globals.node } },
  { name: 'fmn/ignores', ignores: ['dist/**', 'coverage/**', 'node_modules/**', 'src/api/schema.d.ts'] },
  js.configs.recommended,
  pluginVue.configs['flat/recommended'],
  vueTsConfigs.recommended,
  {
    name: 'fmn/rules',
    rules: {
      // Nothing that comes from a bus message or a user is ever rendered as HTML.
      'vue/no-v-html': 'error',
      'vue/no-v-text-v-html-on-component': 'error',
      'no-restricted-properties': [
        'error',
        { property: 'innerHTML', message: 'Render text, never HTML.' },
        { property: 'outerHTML', message: 'Render text, never HTML.' },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.property.name='insertAdjacentHTML']", message: 'Render text, never HTML.' },
      ],
      'vue/multi-word-component-names': 'off',
      'vue/max-attributes-per-line': 'off',
      'vue/singleline-html-element-content-newline': 'off',
      'vue/html-self-closing': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
)
