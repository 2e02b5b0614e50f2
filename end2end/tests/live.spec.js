// The foundation slice in a real browser: push over HTTP, see it drawn; survive a restart; fit
// a phone. Runs in the desktop and the phone (390×844, DPR 3, touch) projects.
const { test, expect } = require('./fixtures');
const { waitForFrames, drawnNear, seriesColor } = require('./chart');

const conn = (page) => page.locator('.conn');
const legendValue = (page, name) => page.locator(`.legend-item[data-series="${name}"] .series-value`);

async function openLive(page, server) {
  await page.goto(server.url);
  await expect(conn(page)).toHaveAttribute('data-state', 'live');
  await waitForFrames(page);
}

test('points pushed over HTTP are drawn where they belong', async ({ page, server }) => {
  await openLive(page, server);
  await expect(page.locator('.hint')).toBeVisible();

  const now = Date.now();
  const points = [0, 1, 2, 3, 4].map((i) => ({ series: 'e2e', value: 10 * (i + 1), timestamp: now - 8000 + 2000 * i }));
  await server.post(points);

  await expect(legendValue(page, 'e2e')).toHaveText('50');
  await expect(page.locator('canvas.chart-canvas')).toHaveAttribute('aria-label', /e2e 50/);
  await expect(page.locator('.hint')).toBeHidden();
  const rgb = await seriesColor(page, 'e2e');
  for (const p of points) {
    await expect.poll(() => drawnNear(page, p.timestamp, p.value, rgb)).toMatchObject({ ok: true });
  }
  // And not where it does not belong: halfway up between two points the line is elsewhere.
  const off = await drawnNear(page, points[1].timestamp, 45, rgb, 2);
  expect(off.ok).toBe(false);
});

test('a hole in the data is drawn as a break, not bridged', async ({ page, server }) => {
  await openLive(page, server);
  const now = Date.now();
  // One point a second, then nothing for 12 s, then one a second again.
  const early = [0, 1, 2, 3, 4].map((i) => ({ series: 'holed', value: 20, timestamp: now - 30000 + 1000 * i }));
  const late = [0, 1, 2, 3, 4].map((i) => ({ series: 'holed', value: 60, timestamp: now - 14000 + 1000 * i }));
  await server.post([...early, ...late]);
  await expect(legendValue(page, 'holed')).toHaveText('60');
  const canvas = page.locator('canvas.chart-canvas');
  await expect(canvas).toHaveAttribute('data-segments', '2');
  const rgb = await seriesColor(page, 'holed');
  for (const p of [...early, ...late]) {
    await expect.poll(() => drawnNear(page, p.timestamp, p.value, rgb)).toMatchObject({ ok: true });
  }
  // Halfway across the hole, where a bridging line would pass: nothing.
  const across = await drawnNear(page, now - 20500, 40, rgb, 3);
  expect(across.ok).toBe(false);
});

test('every series gets its own line and legend entry', async ({ page, server }) => {
  await openLive(page, server);
  const now = Date.now();
  await server.post([
    { series: 'alpha', value: 1, timestamp: now - 3000 },
    { series: 'alpha', value: 2, timestamp: now - 1000 },
    { series: 'beta', value: 9, timestamp: now - 3000 },
    { series: 'beta', value: 8, timestamp: now - 1000 },
  ]);
  await expect(legendValue(page, 'alpha')).toHaveText('2');
  await expect(legendValue(page, 'beta')).toHaveText('8');
  const [a, b] = [await seriesColor(page, 'alpha'), await seriesColor(page, 'beta')];
  expect(a).not.toEqual(b);
  await expect.poll(() => drawnNear(page, now - 1000, 2, a)).toMatchObject({ ok: true });
  await expect.poll(() => drawnNear(page, now - 1000, 8, b)).toMatchObject({ ok: true });
});

test('reports POST-to-drawn latency (measured, not asserted)', async ({ page, server }) => {
  await openLive(page, server);
  // Measured in the page: from just before the POST until the frame that drew it has been
  // painted. Reported, not asserted: speed goals belong to benchmarks.
  const samples = await page.evaluate(async () => {
    const canvas = document.querySelector('canvas.chart-canvas');
    const out = [];
    for (let i = 0; i < 15; i++) {
      const before = Number(canvas.dataset.frames);
      const value = 100 + i;
      const t0 = performance.now();
      await fetch('/chart_data', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ series: 'latency', value }) });
      await new Promise((resolve) => {
        const check = () => {
          const label = canvas.getAttribute('aria-label') || '';
          if (Number(canvas.dataset.frames) > before && label.includes(`latency ${value}`)) resolve();
          else requestAnimationFrame(check);
        };
        check();
      });
      out.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 50));
    }
    return out;
  });
  samples.sort((x, y) => x - y);
  const median = samples[Math.floor(samples.length / 2)];
  console.log(`[${test.info().project.name}] POST→drawn latency ms: median ${median.toFixed(1)}, min ${samples[0].toFixed(1)}, max ${samples[samples.length - 1].toFixed(1)}`);
  expect(samples.length).toBe(15);
});

test('line protocol with tags shows labelled series on the chart', async ({ page, server }) => {
  await openLive(page, server);
  const s = Math.floor(Date.now() / 1000);
  const body = `cpu,host=web-1 usage_idle=90,usage_user=7i ${s - 2}\ncpu,host=web-1 usage_idle=80,usage_user=9i ${s - 1}\ncpu,host=web-2 usage_idle=60 ${s - 1}`;
  const res = await fetch(`${server.url}/api/v2/write?precision=s`, { method: 'POST', body });
  expect(res.status).toBe(204);
  await expect(legendValue(page, 'cpu.usage_idle{host=web-1}')).toHaveText('80');
  await expect(legendValue(page, 'cpu.usage_user{host=web-1}')).toHaveText('9');
  await expect(legendValue(page, 'cpu.usage_idle{host=web-2}')).toHaveText('60');
  const rgb = await seriesColor(page, 'cpu.usage_idle{host=web-1}');
  await expect.poll(() => drawnNear(page, (s - 1) * 1000, 80, rgb)).toMatchObject({ ok: true });
});

test('a burst of points is drawn in at most one frame per animation frame', async ({ page, server }) => {
  await openLive(page, server);
  const r = await page.evaluate(async () => {
    const canvas = document.querySelector('canvas.chart-canvas');
    let ticks = 0;
    let counting = true;
    const tick = () => { ticks++; if (counting) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
    const before = Number(canvas.dataset.frames);
    const t0 = Date.now() - 100;
    const post = (i) => fetch('/chart_data', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ series: 'burst', value: i, timestamp: t0 + i }) });
    await Promise.all(Array.from({ length: 40 }, (_, i) => post(i)));
    // Wait until a frame has drawn all 40 points.
    await new Promise((resolve) => {
      const check = () => Number(canvas.dataset.points) >= 40 ? resolve() : requestAnimationFrame(check);
      check();
    });
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    counting = false;
    return { frames: Number(canvas.dataset.frames) - before, ticks };
  });
  expect(r.frames).toBeGreaterThan(0);
  expect(r.frames).toBeLessThanOrEqual(r.ticks + 1);
});

test('the page reconnects after a server restart and keeps drawing', async ({ page, server }) => {
  await openLive(page, server);
  await server.post([{ series: 'before', value: 1 }]);
  await expect(legendValue(page, 'before')).toHaveText('1');

  await server.stop();
  // Reconnecting, or already offline (still retrying) when the server took long to stop.
  await expect(conn(page)).toHaveAttribute('data-state', /^(reconnecting|offline)$/);
  await server.start();
  await expect(conn(page)).toHaveAttribute('data-state', 'live');

  const now = Date.now();
  const after = [{ series: 'after', value: 3, timestamp: now - 2000 }, { series: 'after', value: 7, timestamp: now - 500 }];
  await server.post(after);
  await expect(legendValue(page, 'after')).toHaveText('7');
  const rgb = await seriesColor(page, 'after');
  await expect.poll(() => drawnNear(page, after[1].timestamp, 7, rgb)).toMatchObject({ ok: true });
});

test('a server that stops answering without closing is noticed, and the page comes back', async ({ page, server }, testInfo) => {
  test.skip(testInfo.project.name === 'phone', 'the same code on both; one long run is enough');
  test.setTimeout(120_000);
  await openLive(page, server);
  // Frozen, not stopped: the socket stays open and silent, as after a network switch or a
  // dead NAT entry. The page's own heartbeats do not count as hearing the server.
  server.proc.kill('SIGSTOP');
  try {
    await expect(conn(page)).toHaveAttribute('data-state', /^(reconnecting|offline)$/, { timeout: 30_000 });
  } finally {
    server.proc.kill('SIGCONT');
  }
  await expect(conn(page)).toHaveAttribute('data-state', 'live', { timeout: 60_000 });
  await server.post([{ series: 'thawed', value: 5 }]);
  await expect(legendValue(page, 'thawed')).toHaveText('5');
});

test('the page keeps a continuous line across a server restart: it resumes, not reloads', async ({ page, server }) => {
  await openLive(page, server);
  const now = Date.now();
  const before = [{ series: 'cont', value: 10, timestamp: now - 6000 }, { series: 'cont', value: 20, timestamp: now - 5000 }];
  await server.post(before);
  await expect(legendValue(page, 'cont')).toHaveText('20');

  await server.stop();
  // Reconnecting, or already offline (still retrying) when the server took long to stop.
  await expect(conn(page)).toHaveAttribute('data-state', /^(reconnecting|offline)$/);
  await server.start();
  await expect(conn(page)).toHaveAttribute('data-state', 'live');
  // The page said where it stopped and the server continued from there: no reload, no gap.
  await expect(conn(page)).toHaveAttribute('data-resumes', '1');
  await expect(conn(page)).toHaveAttribute('data-reloads', '0');

  const after = [{ series: 'cont', value: 40, timestamp: now - 3000 }, { series: 'cont', value: 30, timestamp: now - 2000 }];
  await server.post(after);
  await expect(legendValue(page, 'cont')).toHaveText('30');
  const rgb = await seriesColor(page, 'cont');
  for (const p of [...before, ...after]) {
    await expect.poll(() => drawnNear(page, p.timestamp, p.value, rgb)).toMatchObject({ ok: true });
  }
  // The segment across the restart is drawn: its midpoint is on the line.
  await expect.poll(() => drawnNear(page, now - 4000, 30, rgb)).toMatchObject({ ok: true });
});

test('a page opened after a restart shows what was pushed before it, drawn from disk', async ({ page, server }) => {
  const now = Date.now();
  const points = [0, 1, 2, 3].map((i) => ({ series: 'kept', value: 20 + 10 * i, timestamp: now - 9000 + 2000 * i }));
  await server.post(points);
  await server.restart(); // SIGTERM, then the same binary on the same data directory

  await openLive(page, server);
  await expect(legendValue(page, 'kept')).toHaveText('50');
  const rgb = await seriesColor(page, 'kept');
  for (const p of points) {
    await expect.poll(() => drawnNear(page, p.timestamp, p.value, rgb)).toMatchObject({ ok: true });
  }
});

test('fits a 360 px wide phone: no horizontal scrolling, readable labels, crisp canvas', async ({ page, server }) => {
  await page.setViewportSize({ width: 360, height: 740 });
  await openLive(page, server);
  await server.post([
    { series: 'host=web-01.example.org,path=/api/v1/some/rather/long/route.latency_p99', value: 123.456 },
    { series: 'short', value: 1 },
  ]);
  await expect(legendValue(page, 'short')).toHaveText('1');
  const m = await page.evaluate(() => {
    const c = document.querySelector('canvas.chart-canvas');
    const r = c.getBoundingClientRect();
    return {
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
      legendFont: parseFloat(getComputedStyle(document.querySelector('.legend')).fontSize),
      canvasW: c.width,
      expectedW: Math.round(r.width * devicePixelRatio),
      canvasRight: r.right,
    };
  });
  expect(m.scrollWidth).toBeLessThanOrEqual(m.clientWidth);
  expect(m.canvasRight).toBeLessThanOrEqual(360);
  expect(m.legendFont).toBeGreaterThanOrEqual(12);
  expect(m.canvasW).toBe(m.expectedW);
});

test('the canvas follows its container on resize and rotation', async ({ page, server }) => {
  await openLive(page, server);
  const size = () => page.evaluate(() => {
    const c = document.querySelector('canvas.chart-canvas');
    const r = c.getBoundingClientRect();
    return { w: c.width, h: c.height, ew: Math.round(r.width * devicePixelRatio), eh: Math.round(r.height * devicePixelRatio) };
  });
  const vp = page.viewportSize();
  await page.setViewportSize({ width: vp.height, height: vp.width });
  await expect.poll(async () => { const s = await size(); return s.w === s.ew && s.h === s.eh; }).toBe(true);
  const rotated = await size();
  await page.setViewportSize(vp);
  await expect.poll(async () => { const s = await size(); return s.w === s.ew && s.h === s.eh && s.w !== rotated.w; }).toBe(true);
});

test('minutes of 10 Hz data leave the page live without its memory growing', async ({ page, server }, testInfo) => {
  test.skip(testInfo.project.name === 'phone', 'one long run is enough; the code is the same');
  test.setTimeout(5 * 60_000);
  await openLive(page, server);
  // 10 points a second for the whole test, from outside the page.
  let stop = false;
  let sent = 0;
  const feeder = (async () => {
    const start = Date.now();
    while (!stop) {
      await server.post([{ series: 'hz', value: Math.sin(sent / 10) * 50 + 50 }]);
      sent += 1;
      const next = start + sent * 100;
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
  })();
  const cdp = await page.context().newCDPSession(page);
  const sample = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    const { usedSize } = await cdp.send('Runtime.getHeapUsage');
    const c = page.locator('canvas.chart-canvas');
    const n = async (name) => Number(await c.getAttribute(name));
    return {
      js: usedSize,
      wasm: await n('data-wasm-bytes'),
      frames: await n('data-frames'),
      points: await n('data-points') + await n('data-history-points'),
    };
  };
  // Warm up past the feed's two windows (the ring's steady size), then measure two minutes.
  await page.waitForTimeout(125_000);
  const before = await sample();
  await page.waitForTimeout(120_000);
  const after = await sample();
  stop = true;
  await feeder;
  expect(await legendValue(page, 'hz').textContent()).not.toBe('');
  console.log(`10 Hz for ${(sent / 10).toFixed(0)} s: JS heap ${before.js} → ${after.js} bytes, WASM memory ${before.wasm} → ${after.wasm} bytes, points held ${before.points} → ${after.points}, ${after.frames - before.frames} frames in the last 120 s`);
  // Still drawing at the end.
  expect(after.frames - before.frames).toBeGreaterThan(120 * 4);
  // No growth with the stream: the points held the same (within 2 s of the feed), the JS heap
  // within 10 % (GC noise), WASM memory grown by at most one 64 KiB page. The allocator may
  // take one more page when a frame's buffers meet a fragmented heap (seen once in five runs:
  // 1376256 → 1441792 bytes); a window that is not bounded shows in the points held.
  expect(after.points).toBeLessThanOrEqual(before.points + 20);
  expect(after.js).toBeLessThan(before.js * 1.1);
  expect(after.wasm).toBeLessThanOrEqual(before.wasm + 65_536);
});
