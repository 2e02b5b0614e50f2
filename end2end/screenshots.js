// Writes the README's screenshots (docs/screenshot-desktop.png, docs/screenshot-phone.png):
// the release binary with its demo feed, in Chromium at desktop and phone size.
//   cd end2end && node screenshots.js        (after `make build`)
const { chromium } = require('@playwright/test');
const { spawn } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');

const ROOT = path.resolve(__dirname, '..');

(async () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'livechart-shots-'));
  const proc = spawn(path.join(ROOT, 'target', 'release', 'livechart'),
    ['--addr', '127.0.0.1:0', '--demo', '--data-dir', data], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise((resolve) => {
    let out = '';
    proc.stdout.on('data', (d) => { out += d; const m = out.match(/listening on (\S+)/); if (m) resolve(m[1]); });
  });
  // A minute of demo data, and a second chart for a dashboard.
  await new Promise((r) => setTimeout(r, 20_000));
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', args: ['--no-sandbox'] });
  for (const [name, opts] of [
    ['desktop', { viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1, colorScheme: 'light' }],
    ['phone', { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: 'dark' }],
  ]) {
    const page = await (await browser.newContext(opts)).newPage();
    await page.goto(`${url}/?c0.s=demo.sine&c0.s=demo.walk&c0.span=1m&c1.s=livechart.ingest.points_per_s&c1.s=livechart.ws.connections&c1.span=5m`);
    await page.waitForSelector('.conn[data-state="live"]');
    await page.waitForTimeout(1500);
    await page.screenshot({ path: path.join(ROOT, 'docs', `screenshot-${name}.png`) });
  }
  await browser.close();
  proc.kill('SIGTERM');
  fs.rmSync(data, { recursive: true, force: true });
})();
