#!/usr/bin/env node
// `npm run e2e`: start the real backend (`fmn run`, the embedded default) on a free port in a
// temporary directory, run the Playwright tests against it in headless Chromium, and stop it
// afterwards — when the tests fail, and on Ctrl-C too. Its log is kept in test-results/fmn-run.log.
//   npm run e2e                                      # everything
//   npm run e2e -- --project=desktop -g 'mailbox'    # arguments go to `playwright test`
//   FMN_E2E_URL=http://127.0.0.1:8080 npm run e2e    # against a run you started (`make run`)
// Needs: frontend/dist (npm run build), the checkout's .venv (make venv) or FMN_BIN, the corpus of
// bus messages (../shared/corpus, or FMN_DEV__CORPUS_DIR) for the demo feed, and Chromium
// (/usr/bin/chromium, or CHROMIUM_PATH).
import { spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const frontend = fileURLToPath(new URL('..', import.meta.url))
const repo = resolve(frontend, '..')
const results = join(frontend, 'test-results')
const playwright = join(frontend, 'node_modules', '.bin', 'playwright')
const args = ['test', '-c', join(frontend, 'e2e', 'playwright.config.ts'), ...process.argv.slice(2)]
// Seconds between two messages of the demo feed: each sample user gets a notification every few.
const FEED_INTERVAL = process.env.FMN_E2E_FEED_INTERVAL ?? '0.5'
const START_TIMEOUT_MS = 120_000
const STOP_TIMEOUT_MS = 20_000

function fail(message) {
  console.error(`e2e: ${message}`)
  process.exit(2)
}

function freePort() {
  return new Promise((done, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => done(port))
    })
  })
}

// The test runner while it runs, and how it ended.
let tests = null
let testsDone = Promise.resolve(0)

function runPlaywright(env) {
  testsDone = new Promise((done) => {
    tests = spawn(playwright, args, { cwd: frontend, env, stdio: 'inherit' })
    tests.on('exit', (code, signal) => done(code ?? (signal ? 1 : 0)))
    tests.on('error', (error) => {
      console.error(`e2e: cannot start playwright: ${error.message}`)
      done(2)
    })
  })
  return testsDone
}

if (process.env.FMN_E2E_URL) {
  process.exit(await runPlaywright(process.env))
}

const fmn = process.env.FMN_BIN ?? join(repo, '.venv', 'bin', 'fmn')
const dist = join(frontend, 'dist')
const corpus = resolve(process.env.FMN_DEV__CORPUS_DIR ?? join(repo, '..', 'shared', 'corpus'))
if (!existsSync(fmn)) fail(`no ${fmn}: run \`make venv\` at the top of the checkout (or set FMN_BIN)`)
if (!existsSync(join(dist, 'index.html'))) fail('no frontend/dist: run `npm run build` first')
if (!existsSync(corpus)) fail(`no corpus of bus messages at ${corpus} (set FMN_DEV__CORPUS_DIR): the demo feed needs it`)

const port = await freePort()
const url = `http://127.0.0.1:${port}`
const tmp = mkdtempSync(join(tmpdir(), 'fmn-e2e-'))
const logPath = join(tmp, 'fmn-run.log')
writeFileSync(join(tmp, 'fmn.toml'), '')
// Only the stand-ins: nothing of the caller's FMN_* settings reaches the run.
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('FMN_')))
const log = openSync(logPath, 'a')
const server = spawn(fmn, ['run', '--builtin-login', '--host', '127.0.0.1', '--port', String(port)], {
  cwd: tmp,
  env: {
    ...env,
    FMN_CONFIG: join(tmp, 'fmn.toml'),
    FMN_DEV__DATA_DIR: join(tmp, 'var'),
    FMN_DEV__CORPUS_DIR: corpus,
    FMN_DEV__FEED_INTERVAL: FEED_INTERVAL,
    FMN_API__FRONTEND_DIR: dist,
  },
  stdio: ['ignore', log, log],
  detached: true, // its own process group, stopped as a whole
})
let serverExit = null
server.on('exit', (code, signal) => (serverExit = { code, signal }))

const readLog = () => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '')
const logTail = (lines = 60) => readLog().split('\n').slice(-lines).join('\n')
const sleep = (ms) => new Promise((done) => setTimeout(done, ms))

function signalServer(signal) {
  if (serverExit || server.pid === undefined) return
  try {
    process.kill(-server.pid, signal)
  } catch {
    // already gone
  }
}

let stopping = null
const stop = () => (stopping ??= stopServer())

async function stopServer() {
  // Ctrl-C for `fmn run`: it stops its parts in order; killed if it takes too long.
  signalServer('SIGINT')
  const deadline = Date.now() + STOP_TIMEOUT_MS
  while (!serverExit && Date.now() < deadline) await sleep(100)
  if (!serverExit) {
    console.error('e2e: fmn run did not stop in time; killed')
    signalServer('SIGKILL')
    while (!serverExit) await sleep(50)
  }
  try {
    mkdirSync(results, { recursive: true })
    copyFileSync(logPath, join(results, 'fmn-run.log'))
  } catch {
    // nothing to keep
  }
  rmSync(tmp, { recursive: true, force: true })
}

// Whatever happens to this script, the server does not outlive it; an interrupt (Ctrl-C, or a
// SIGTERM for this script alone) ends the test runner too, which closes its browsers.
let interrupted = false
process.on('exit', () => signalServer('SIGKILL'))
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (interrupted) return
    interrupted = true
    if (tests && tests.exitCode === null && tests.signalCode === null) tests.kill(signal)
    const testsGone = Promise.race([testsDone, sleep(STOP_TIMEOUT_MS).then(() => tests?.kill('SIGKILL'))])
    void Promise.all([testsGone, stop()]).then(() => process.exit(130))
  })
}

async function started() {
  const deadline = Date.now() + START_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (serverExit) return false
    // The banner comes once every part runs (the API, the consumer, the senders, the feed).
    if (readLog().includes('Ctrl-C stops everything')) return true
    await sleep(200)
  }
  return false
}

let code = 1
const began = Date.now()
try {
  if (!(await started())) {
    if (!interrupted)
      console.error(`e2e: fmn run did not start (${serverExit ? `exit ${serverExit.code ?? serverExit.signal}` : 'timeout'}):\n${logTail()}`)
  } else {
    console.log(`e2e: fmn run on ${url} (data in ${tmp}), ready in ${((Date.now() - began) / 1000).toFixed(1)} s`)
    code = await runPlaywright({ ...process.env, FMN_E2E_URL: url })
    if (interrupted) {
      code = 130
    } else if (serverExit) {
      console.error(`e2e: fmn run stopped during the tests (exit ${serverExit.code ?? serverExit.signal}):\n${logTail()}`)
      code = code || 1
    } else if (code !== 0) {
      console.error(`e2e: the last lines of fmn run's log (all of it in test-results/fmn-run.log):\n${logTail(30)}`)
    }
  }
} finally {
  await stop()
}
process.exit(code)
