// Redis mode in a real browser: two livechart servers share one redis-server (installed by
// scripts/setup.sh test, started here on a free loopback port). A page on B draws what is
// pushed to A; when Redis hangs (SIGSTOP) the page says so instead of looking live, and when
// it continues, so does the page, without a reload.
const { test, expect, Server } = require('./fixtures');
const { waitForFrames } = require('./chart');
const { spawn } = require('node:child_process');
const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const conn = (page) => page.locator('.conn');
const legendValue = (page, name) => page.locator(`.legend-item[data-series="${name}"] .series-value`);

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'livechart-e2e-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  // Ready when it takes a connection.
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  return { proc, url: `redis://127.0.0.1:${port}`, dir };
}

test('a page on one instance draws what another took, and shows a Redis outage', async ({ page }) => {
  const redis = await startRedis();
  const a = new Server(['--redis-url', redis.url]);
  const b = new Server(['--redis-url', redis.url]);
  try {
    await a.start();
    await b.start();
    await page.goto(b.url);
    await expect(conn(page)).toHaveAttribute('data-state', 'live');
    await waitForFrames(page);

    await a.push('shared', [[Date.now() - 1000, 12]]);
    await expect(legendValue(page, 'shared')).toHaveText('12');

    redis.proc.kill('SIGSTOP');
    await expect(conn(page)).toHaveAttribute('data-state', 'degraded');
    await expect(conn(page)).toContainText('store unavailable');
    redis.proc.kill('SIGCONT');
    await expect(conn(page)).toHaveAttribute('data-state', 'live');

    await a.push('shared', [[Date.now() - 500, 34]]);
    await expect(legendValue(page, 'shared')).toHaveText('34');
    await expect(conn(page)).toHaveAttribute('data-reloads', '0');
  } finally {
    redis.proc.kill('SIGCONT');
    await a.stop();
    await b.stop();
    redis.proc.kill('SIGKILL');
    for (const s of [a, b]) fs.rmSync(s.dataDir, { recursive: true, force: true });
    fs.rmSync(redis.dir, { recursive: true, force: true });
  }
});
