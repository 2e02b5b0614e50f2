// The shipped artifact: the release binary (built with the site embedded by `make build`),
// copied alone into an empty directory and started there, serves the whole app: the page,
// its WASM and CSS under content-hashed names with long cache lifetimes, precompressed, and
// the page goes live and draws a pushed point.
const { test, expect } = require('./fixtures');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.LIVECHART_BIN || path.join(ROOT, 'target', 'release', 'livechart');

test('the binary alone in an empty directory serves the whole app', async ({ page }) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'livechart-alone-'));
  const bin = path.join(dir, 'livechart');
  fs.copyFileSync(BIN, bin);
  fs.chmodSync(bin, 0o755);
  const env = { ...process.env };
  delete env.LEPTOS_SITE_ROOT;
  const proc = spawn(bin, ['--addr', '127.0.0.1:0', '--data-dir', path.join(dir, 'data'), '--no-self-metrics'], {
    cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const url = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`did not start: ${out}`)), 15_000);
      proc.stdout.on('data', (d) => {
        out += d;
        const m = out.match(/listening on (http:\/\/[^\s]+)/);
        if (m) { clearTimeout(timer); resolve(m[1]); }
      });
      proc.on('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)));
    });
    // Nothing but the binary (and the data directory the store creates as it starts).
    expect(fs.readdirSync(dir).filter((f) => f !== 'data')).toEqual(['livechart']);

    const fetched = [];
    page.on('response', (r) => {
      if (r.url().includes('/pkg/')) fetched.push(r);
    });
    const res = await page.goto(url);
    expect(res.headers()['cache-control']).toBe('no-cache');
    await expect(page.locator('.conn')).toHaveAttribute('data-state', 'live');

    const wasm = fetched.find((r) => r.url().endsWith('.wasm'));
    expect(wasm, 'the page loaded its WASM').toBeTruthy();
    expect(wasm.url()).toMatch(/\/pkg\/livechart\.[0-9a-f]{16}\.wasm$/);
    expect(wasm.status()).toBe(200);
    expect(wasm.headers()['cache-control']).toContain('immutable');
    expect(wasm.headers()['content-encoding']).toBe('br');
    const css = fetched.find((r) => r.url().endsWith('.css'));
    expect(css && css.headers()['content-type']).toContain('text/css');

    const r = await fetch(`${url}/api/v1/points`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ series: 'alone', points: [[Date.now() - 500, 7]] }),
    });
    expect(r.status).toBe(200);
    await expect(page.locator('.legend-item[data-series="alone"] .series-value')).toHaveText('7');
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => (proc.exitCode !== null ? r() : proc.once('exit', r)));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
