// The chart as a user handles it: zoom, pan, pause and back to live, inspect, hide series,
// export. Desktop uses mouse, wheel and keys; the phone project uses touch (through CDP, the
// way a finger reaches Chromium), with vertical page scrolling left alone.
const { test, expect } = require('./fixtures');
const { waitForFrames, nextFrames, drawnNear, seriesColor } = require('./chart');
const fs = require('node:fs');

const canvas = (page) => page.locator('canvas.chart-canvas');
const chart = (page) => page.locator('figure.chart');
const legendValue = (page, name) => page.locator(`.legend-item[data-series="${name}"] .series-value`);

/** The visible time range [from, to] in ms, as last drawn. */
async function xRange(page) {
  const r = await canvas(page).getAttribute('data-x-range');
  return r.split(',').map(Number);
}

/** The plot area in CSS pixels relative to the page: {left, top, right, bottom}. */
async function plotBox(page) {
  return canvas(page).evaluate((c) => {
    const [x0, y0, x1, y1] = c.dataset.plot.split(',').map(Number);
    const r = c.getBoundingClientRect();
    const k = r.width / c.width;
    return { left: r.left + x0 * k, top: r.top + y0 * k, right: r.left + x1 * k, bottom: r.top + y1 * k };
  });
}

async function openWith(page, server, series, points) {
  await server.push(series, points);
  await page.goto(server.url);
  await expect(page.locator('.conn')).toHaveAttribute('data-state', 'live');
  await waitForFrames(page);
  await expect(legendValue(page, series)).toBeVisible();
}

/** Touch through CDP: a list of [x, y] per finger per step, from down to up. */
async function touchPath(page, steps) {
  const cdp = await page.context().newCDPSession(page);
  const points = (xy) => xy.map(([x, y], id) => ({ x, y, id }));
  // Sent without waiting for each answer (CDP keeps their order): awaited one by one, a
  // stalled round trip on a loaded machine could hold the finger still past the chart's
  // 450 ms long press and turn the swipe into an inspection.
  const sent = [cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: points(steps[0]) })];
  for (const s of steps.slice(1)) {
    sent.push(cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: points(s) }));
  }
  sent.push(cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] }));
  await Promise.all(sent);
  await cdp.detach();
}

function lerpSteps(from, to, n) {
  const out = [];
  for (let i = 0; i <= n; i++) {
    out.push(from.map(([x, y], f) => [x + ((to[f][0] - x) * i) / n, y + ((to[f][1] - y) * i) / n]));
  }
  return out;
}

const isPhone = (testInfo) => testInfo.project.name === 'phone';

test('zooming pauses the chart, data keeps arriving, and Live returns', async ({ page, server }, testInfo) => {
  const now = Date.now();
  await openWith(page, server, 'z', [[now - 30000, 1], [now - 20000, 2], [now - 10000, 3]]);
  await expect(chart(page)).toHaveAttribute('data-mode', 'live');
  const [from0, to0] = await xRange(page);
  const box = await plotBox(page);
  const mid = [(box.left + box.right) / 2, (box.top + box.bottom) / 2];

  if (isPhone(testInfo)) {
    // Fingers apart: zoom in about their middle.
    await touchPath(page, lerpSteps([[mid[0] - 30, mid[1]], [mid[0] + 30, mid[1]]], [[mid[0] - 120, mid[1]], [mid[0] + 120, mid[1]]], 8));
  } else {
    await page.mouse.move(mid[0], mid[1]);
    await page.mouse.wheel(0, -400);
  }
  await expect(chart(page)).toHaveAttribute('data-mode', 'paused');
  await expect(page.locator('.live-toggle')).toHaveAttribute('data-live', 'false');
  await expect.poll(async () => { const [a, b] = await xRange(page); return b - a; }).toBeLessThan((to0 - from0) * 0.7);

  // Paused, a new point still reaches the legend, but the view stays where it was. A pinch
  // draws views on its way: first wait until the drawn range stops changing.
  let prev;
  await expect.poll(async () => {
    await nextFrames(page);
    const cur = (await xRange(page)).join();
    const still = cur === prev;
    prev = cur;
    return still;
  }).toBe(true);
  const [pf, pt] = prev.split(',').map(Number);
  await server.push('z', [[Date.now(), 42]]);
  await expect(legendValue(page, 'z')).toHaveText('42');
  await nextFrames(page);
  expect(await xRange(page)).toEqual([pf, pt]);

  await page.locator('.live-toggle').click();
  await expect(chart(page)).toHaveAttribute('data-mode', 'live');
  await expect.poll(async () => { const [a, b] = await xRange(page); return b - a; }).toBe(60000);
  const rgb = await seriesColor(page, 'z');
  const last = Date.now();
  await server.push('z', [[last, 7]]);
  await expect.poll(() => drawnNear(page, last, 7, rgb)).toMatchObject({ ok: true });
});

test('panning into the past loads history from the server and draws it', async ({ page, server }, testInfo) => {
  const now = Date.now();
  // A bump 20 to 17 minutes ago, one point a second (the live feed holds only two minutes),
  // and a recent point.
  const old = [];
  for (let t = now - 20 * 60000; t <= now - 17 * 60000; t += 1000) old.push([t, t < now - 18.5 * 60000 ? 10 : 90]);
  await server.push('h', old);
  await openWith(page, server, 'h', [[now - 1000, 50]]);

  await page.locator('.preset[data-span="15m"]').click();
  await expect.poll(async () => { const [a, b] = await xRange(page); return b - a; }).toBe(15 * 60000);
  // The bump is outside the view: nothing of it is held yet beyond what the view needs.
  const box = await plotBox(page);
  const y = (box.top + box.bottom) / 2;
  const dx = (box.right - box.left) * 0.6;
  if (isPhone(testInfo)) {
    await touchPath(page, lerpSteps([[box.left + 20, y]], [[box.left + 20 + dx, y]], 10));
  } else {
    await page.mouse.move(box.left + 20, y);
    await page.mouse.down();
    await page.mouse.move(box.left + 20 + dx / 2, y, { steps: 5 });
    await page.mouse.move(box.left + 20 + dx, y, { steps: 5 });
    await page.mouse.up();
  }
  await expect(chart(page)).toHaveAttribute('data-mode', 'paused');
  // The mode flips before the frame that draws the last move: wait for that frame.
  await expect.poll(async () => (await xRange(page))[1]).toBeLessThan(now - 5 * 60000);
  expect((await xRange(page))[0]).toBeLessThan(now - 20 * 60000);
  await expect.poll(async () => Number(await canvas(page).getAttribute('data-history-points'))).toBeGreaterThan(10);
  const rgb = await seriesColor(page, 'h');
  await expect.poll(() => drawnNear(page, now - 19.5 * 60000, 10, rgb)).toMatchObject({ ok: true });
  await expect.poll(() => drawnNear(page, now - 17.5 * 60000, 90, rgb)).toMatchObject({ ok: true });
});

test('a wide preset shows history from before the page opened', async ({ page, server }) => {
  const now = Date.now();
  const pts = [];
  for (let i = 0; i < 60; i++) pts.push([now - 3 * 3600000 + i * 60000, i % 2 ? 30 : 70]);
  // A quiet series, last heard two hours ago, sorted before the live one: in the legend with
  // its age, and its colour matching its line, drawn from history.
  await server.push('awol', [[now - 3 * 3600000, 20], [now - 2 * 3600000, 25]]);
  await openWith(page, server, 'wide', [...pts, [now - 2000, 50]]);
  await expect(legendValue(page, 'awol')).toHaveText('25');
  const age = page.locator('.legend-item[data-series="awol"] .series-age');
  await expect(age).toHaveText('2 h ago');
  await page.locator('.preset[data-span="6h"]').click();
  // Inside the view now: no age.
  await expect(age).toHaveCount(0);
  const awol = await seriesColor(page, 'awol');
  await expect.poll(() => drawnNear(page, now - 2.5 * 3600000, 22.5, awol)).toMatchObject({ ok: true });
  // Still live: a preset changes the window, not the mode.
  await expect(chart(page)).toHaveAttribute('data-mode', 'live');
  const rgb = await seriesColor(page, 'wide');
  await expect.poll(() => drawnNear(page, pts[10][0], pts[10][1], rgb)).toMatchObject({ ok: true });
  await expect(page.locator('.preset[data-span="6h"]')).toHaveAttribute('aria-pressed', 'true');
});

test('inspecting shows every series at that time; on touch it pauses and sits above the finger', async ({ page, server }, testInfo) => {
  const now = Date.now();
  const pts = (v) => [0, 1, 2, 3, 4, 5].map((i) => [now - 30000 + i * 5000, v + i]);
  await server.push('one', pts(10));
  await openWith(page, server, 'two', pts(100));
  const box = await plotBox(page);
  const [from, to] = await xRange(page);
  const x = box.left + ((now - 20000 - from) / (to - from)) * (box.right - box.left);
  const y = (box.top + box.bottom) / 2;
  const tooltip = page.locator('.tooltip');
  if (isPhone(testInfo)) {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x, y, id: 0 }] });
    await expect(tooltip).toBeVisible();
    await expect(tooltip).toHaveAttribute('data-placement', 'above');
    const tip = await tooltip.boundingBox();
    expect(tip.y + tip.height).toBeLessThanOrEqual(y);
    await expect(chart(page)).toHaveAttribute('data-mode', 'paused');
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    await cdp.detach();
  } else {
    await page.mouse.move(x, y);
    await expect(tooltip).toBeVisible();
    // Hovering is not a reason to stop following the data.
    await expect(chart(page)).toHaveAttribute('data-mode', 'live');
  }
  await expect(tooltip.locator('.tooltip-row[data-series="one"] .series-value')).toHaveText(/^1[0-5]$/);
  await expect(tooltip.locator('.tooltip-row[data-series="two"] .series-value')).toHaveText(/^10[0-5]$/);
  await expect(page.locator('.crosshair')).toBeVisible();
});

test('legend entries hide and show their series', async ({ page, server }) => {
  const now = Date.now();
  await server.push('keep', [[now - 20000, 5], [now - 10000, 5]]);
  await openWith(page, server, 'drop', [[now - 20000, 80], [now - 10000, 80]]);
  const rgb = await seriesColor(page, 'drop');
  await expect.poll(() => drawnNear(page, now - 15000, 80, rgb)).toMatchObject({ ok: true });
  const toggle = page.locator('.legend-item[data-series="drop"] .legend-toggle');
  await expect(toggle).toHaveAttribute('aria-pressed', 'true');
  await toggle.click();
  await expect(toggle).toHaveAttribute('aria-pressed', 'false');
  await expect(canvas(page)).toHaveAttribute('data-shown', '1');
  // The y axis now fits the series left, so 80 is off the chart.
  await expect.poll(async () => (await canvas(page).getAttribute('data-y-range')).split(',').map(Number)[1]).toBeLessThan(80);
  await toggle.click();
  await expect(canvas(page)).toHaveAttribute('data-shown', '2');
  await expect.poll(() => drawnNear(page, now - 15000, 80, rgb)).toMatchObject({ ok: true });
});

test('keys pan, zoom and return to live; double click resets', async ({ page, server }, testInfo) => {
  test.skip(isPhone(testInfo), 'keyboard and double click are the desktop gestures');
  const now = Date.now();
  await openWith(page, server, 'k', [[now - 5000, 1], [now - 1000, 2]]);
  await page.locator('.chart-box').focus();
  await page.keyboard.press('ArrowLeft');
  await expect(chart(page)).toHaveAttribute('data-mode', 'paused');
  // The mode flips before the frame that draws the pan: wait for that frame.
  const pressed = Date.now();
  await expect.poll(async () => (await xRange(page))[1]).toBeLessThan(pressed - 4000);
  await page.keyboard.press('+');
  await expect.poll(async () => { const [a, b] = await xRange(page); return b - a; }).toBeLessThan(60000);
  await page.keyboard.press('l');
  await expect(chart(page)).toHaveAttribute('data-mode', 'live');

  // Shift+drag selects a range to zoom to.
  const box = await plotBox(page);
  const y = (box.top + box.bottom) / 2;
  await page.keyboard.down('Shift');
  await page.mouse.move(box.left + 100, y);
  await page.mouse.down();
  await page.mouse.move(box.left + 300, y, { steps: 4 });
  await expect(page.locator('.selection')).toBeVisible();
  await page.mouse.up();
  await page.keyboard.up('Shift');
  await expect(page.locator('.selection')).toHaveCount(0);
  await expect(chart(page)).toHaveAttribute('data-mode', 'paused');
  const expected = (200 / (box.right - box.left)) * 60000;
  await expect.poll(async () => { const [a, b] = await xRange(page); return Math.abs(b - a - expected); }).toBeLessThan(expected * 0.1);

  await page.mouse.dblclick((box.left + box.right) / 2, y);
  await expect(chart(page)).toHaveAttribute('data-mode', 'live');
});

test('a vertical swipe on the chart scrolls the page instead of panning', async ({ page, server }, testInfo) => {
  test.skip(!isPhone(testInfo), 'touch scrolling is a phone matter');
  const now = Date.now();
  await openWith(page, server, 'v', [[now - 5000, 1], [now - 1000, 2]]);
  // Make the page taller than the screen so there is somewhere to scroll.
  await page.evaluate(() => { document.body.style.paddingBottom = '2000px'; });
  const box = await plotBox(page);
  const x = (box.left + box.right) / 2;
  await touchPath(page, lerpSteps([[x, box.bottom - 10]], [[x, box.top + 10]], 10));
  await expect.poll(() => page.evaluate(() => window.scrollY)).toBeGreaterThan(20);
  await expect(chart(page)).toHaveAttribute('data-mode', 'live');
});

test('the visible range downloads as CSV from the server and the chart as PNG', async ({ page, server }) => {
  const now = Date.now();
  await server.push('cpu', [[now - 20000, 1.5], [now - 10000, 2.5]]);
  await openWith(page, server, 'mem', [[now - 15000, 7]]);

  const [csvDownload] = await Promise.all([page.waitForEvent('download'), page.locator('.export-csv').click()]);
  expect(csvDownload.suggestedFilename()).toMatch(/^livechart-\d+-\d+\.csv$/);
  const csv = fs.readFileSync(await csvDownload.path(), 'utf8').trim().split('\n');
  expect(csv[0]).toBe('series,time,timestamp_ns,value');
  expect(csv).toContain(`cpu,${new Date(now - 20000).toISOString()},${BigInt(now - 20000) * 1000000n},1.5`);
  expect(csv).toContain(`mem,${new Date(now - 15000).toISOString()},${BigInt(now - 15000) * 1000000n},7`);
  expect(csv.length).toBe(4);

  const [pngDownload] = await Promise.all([page.waitForEvent('download'), page.locator('.export-png').click()]);
  expect(pngDownload.suggestedFilename()).toBe('livechart.png');
  const png = fs.readFileSync(await pngDownload.path());
  expect(png.subarray(1, 4).toString()).toBe('PNG');
  const size = await canvas(page).evaluate((c) => [c.width, c.height]);
  expect(png.readUInt32BE(16)).toBe(size[0]);
  expect(png.readUInt32BE(20)).toBe(size[1]);
});

test('a CSV export missing a series says so on the page, and the rest still downloads', async ({ page, server }) => {
  const now = Date.now();
  await server.push('cpu', [[now - 20000, 1.5]]);
  await openWith(page, server, 'mem', [[now - 15000, 7]]);
  await expect(page.locator('.legend-item[data-series="cpu"]')).toBeVisible();
  // The store fails for one series only.
  await page.route('**/api/history', (route) => {
    const body = route.request().postData() || '';
    if (body.includes('"mem"')) return route.fulfill({ status: 503, contentType: 'text/plain', body: 'the store is busy' });
    return route.continue();
  });
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('.export-csv').click()]);
  const csv = fs.readFileSync(await download.path(), 'utf8').trim().split('\n');
  expect(csv.length).toBe(2);
  expect(csv[1]).toMatch(/^cpu,/);
  const notice = page.locator('.chart-notice');
  await expect(notice).toBeVisible();
  await expect(notice).toHaveAttribute('role', 'status');
  await expect(notice).toContainText('CSV export incomplete');
  await expect(notice).toContainText('mem is missing');
  await notice.locator('.notice-close').click();
  await expect(notice).toHaveCount(0);
});

test('a series moved to the right-hand axis gets its own scale; units show with values', async ({ page, server }) => {
  const now = Date.now();
  await server.push('small', [[now - 20000, 1], [now - 10000, 2]]);
  const res = await fetch(`${server.url}/api/v1/points`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ series: 'big', labels: { unit: '°C' }, points: [[now - 20000, 1000], [now - 10000, 2000]] }),
  });
  expect(res.status).toBe(200);
  await openWith(page, server, 'small', [[now - 5000, 1.5]]);
  const big = 'big{unit=°C}';
  await expect(legendValue(page, big)).toHaveText('2000 °C');
  // Together on one axis the small series is a flat line at the bottom.
  await expect.poll(async () => (await canvas(page).getAttribute('data-y-range')).split(',').map(Number)[1]).toBeGreaterThan(1000);
  await page.locator(`.legend-item[data-series="${big}"] .axis-toggle`).click();
  await expect(page.locator(`.legend-item[data-series="${big}"] .axis-toggle`)).toHaveAttribute('aria-pressed', 'true');
  await expect.poll(async () => (await canvas(page).getAttribute('data-y-range')).split(',').map(Number)[1]).toBeLessThan(3);
  const y2 = (await canvas(page).getAttribute('data-y2-range')).split(',').map(Number);
  expect(y2[0]).toBeLessThan(1000);
  expect(y2[1]).toBeGreaterThan(2000);
  // The small series now spans the plot: its two points are drawn at different heights.
  const rgb = await seriesColor(page, 'small');
  await expect.poll(() => drawnNear(page, now - 20000, 1, rgb)).toMatchObject({ ok: true });
  await expect.poll(() => drawnNear(page, now - 10000, 2, rgb)).toMatchObject({ ok: true });
  await expect.poll(() => new URL(page.url()).searchParams.getAll('c0.right')).toEqual([big]);
});

test('a double tap returns a paused chart to live', async ({ page, server }, testInfo) => {
  test.skip(!isPhone(testInfo), 'double tap is the touch gesture');
  const now = Date.now();
  await openWith(page, server, 'dt', [[now - 5000, 1], [now - 1000, 2]]);
  const box = await plotBox(page);
  const [x, y] = [(box.left + box.right) / 2, (box.top + box.bottom) / 2];
  await touchPath(page, lerpSteps([[x - 30, y], [x + 30, y]], [[x - 100, y], [x + 100, y]], 6));
  await expect(chart(page)).toHaveAttribute('data-mode', 'paused');
  // Both taps within the double-tap window, through one CDP session. On a loaded machine the
  // window can still be missed: try again after a pause longer than the window, so a lone
  // tap of one try never pairs with the next (a broken double tap fails every try).
  await expect(async () => {
    const cdp = await page.context().newCDPSession(page);
    for (let i = 0; i < 2; i++) {
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x, y, id: 0 }] });
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    }
    await cdp.detach();
    await expect(chart(page)).toHaveAttribute('data-mode', 'live', { timeout: 1000 });
  }).toPass({ timeout: 15_000 });
});

test('a custom range pauses the chart on exactly that time; a backwards one is refused', async ({ page, server }) => {
  const now = Date.now();
  const pts = [];
  for (let i = 0; i < 30; i++) pts.push([now - 3 * 3600000 + i * 120000, i % 2 ? 5 : 15]);
  await openWith(page, server, 'cr', [...pts, [now - 1000, 10]]);
  const range = page.locator('.range');
  await range.locator('summary').click();
  // Prefilled with the view: the last minute, to the second (Chromium drops ":00").
  await expect(range.locator('.range-to')).toHaveValue(/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?$/);
  // Local wall-clock strings, as the inputs take them.
  const local = (ms) => {
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  };
  const from = Math.floor((now - 3 * 3600000) / 1000) * 1000;
  const to = Math.floor((now - 2 * 3600000) / 1000) * 1000;
  await range.locator('.range-from').fill(local(to));
  await range.locator('.range-to').fill(local(from));
  await range.locator('button[type="submit"]').click();
  await expect(range.locator('.range-error')).toHaveText('“From” must be before “To”.');
  await expect(chart(page)).toHaveAttribute('data-mode', 'live');
  await range.locator('.range-from').fill(local(from));
  await range.locator('.range-to').fill(local(to));
  await range.locator('button[type="submit"]').click();
  await expect(chart(page)).toHaveAttribute('data-mode', 'paused');
  await expect(canvas(page)).toHaveAttribute('data-x-range', `${from},${to}`);
  await expect(range).not.toHaveAttribute('open', '');
  const rgb = await seriesColor(page, 'cr');
  await expect.poll(() => drawnNear(page, pts[5][0], pts[5][1], rgb)).toMatchObject({ ok: true });
});

test('history still loads while data streams in fast', async ({ page, server }) => {
  const now = Date.now();
  const old = [];
  for (let t = now - 40 * 60000; t <= now - 30 * 60000; t += 10000) old.push([t, 80]);
  await openWith(page, server, 'busy', [...old, [now - 1000, 20]]);
  // 25 points a second for the rest of the test: the feed changes far faster than history
  // requests settle.
  let stop = false;
  const feeder = (async () => {
    while (!stop) {
      await server.post([{ series: 'busy', value: 20 }]);
      await new Promise((r) => setTimeout(r, 40));
    }
  })();
  try {
    await page.locator('.preset[data-span="1h"]').click();
    await expect.poll(async () => Number(await canvas(page).getAttribute('data-history-points'))).toBeGreaterThan(10);
    const rgb = await seriesColor(page, 'busy');
    await expect.poll(() => drawnNear(page, now - 35 * 60000, 80, rgb)).toMatchObject({ ok: true });
  } finally {
    stop = true;
    await feeder;
  }
});
