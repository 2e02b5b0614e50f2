// A real livechart release server per test, on a free loopback port, plus page-error capture.
const base = require('@playwright/test');
const { spawn } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.LIVECHART_BIN || path.join(ROOT, 'target', 'release', 'livechart');

class Server {
  /** `args`: more flags for the binary, e.g. `['--redis-url', url]`. */
  constructor(args = []) {
    this.args = args;
    this.proc = null;
    this.url = null;
    this.port = 0;
    this.log = '';
    // One data directory per server, kept across its restarts, removed at teardown.
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'livechart-e2e-'));
  }

  /** Starts the binary; port 0 the first time, then the same port again (a restart). */
  async start() {
    const proc = spawn(BIN, ['--addr', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir, '--no-self-metrics', ...this.args], {
      cwd: ROOT,
      env: { ...process.env, LEPTOS_SITE_ROOT: path.join(ROOT, 'target', 'site'), RUST_LOG: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    proc.stderr.on('data', (d) => { this.log += d; });
    const url = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}${this.log}`)), 15_000);
      proc.stdout.on('data', (d) => {
        out += d;
        const m = out.match(/listening on (http:\/\/[^\s]+)/);
        if (m) { clearTimeout(timer); resolve(m[1]); }
      });
      proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${out}${this.log}`)); });
    });
    this.url = url;
    this.port = Number(new URL(url).port);
    return url;
  }

  /** SIGTERM, as an operator or a service manager would, and wait for a clean exit. */
  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    proc.kill('SIGTERM');
    const result = await exited;
    this.proc = null;
    return result;
  }

  async restart() {
    await this.stop();
    return this.start();
  }

  /** Pushes [[timestamp_ms, value], …] to one series in one batch request. */
  async push(series, points) {
    const res = await fetch(`${this.url}/api/v1/points`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ series, points }),
    });
    if (res.status !== 200) throw new Error(`POST /api/v1/points answered ${res.status}: ${await res.text()}`);
  }

  /** Posts demo-shaped points: [{series, value, timestamp}], one request each. */
  async post(points) {
    for (const p of points) {
      const res = await fetch(`${this.url}/chart_data`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(p),
      });
      if (res.status !== 200) throw new Error(`POST /chart_data answered ${res.status}: ${await res.text()}`);
    }
  }
}

exports.test = base.test.extend({
  server: async ({}, use) => {
    const server = new Server();
    await server.start();
    await use(server);
    await server.stop();
    fs.rmSync(server.dataDir, { recursive: true, force: true });
  },
  // Any uncaught error or console error in the page fails the test: hydration problems
  // show up here first.
  page: async ({ page }, use) => {
    const errors = [];
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(m.text())) {
        errors.push(`console: ${m.text()}`);
      }
    });
    await use(page);
    base.expect(errors, 'page errors').toEqual([]);
  },
});
exports.expect = base.expect;
exports.Server = Server;
