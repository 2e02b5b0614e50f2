// The dashboard: several charts, each with its own series and window, all of it in the
// address so a link reproduces the view.
const { test, expect } = require('./fixtures');
const { waitForFrames } = require('./chart');

const charts = (page) => page.locator('figure.chart');
const legendNames = (chart) => chart.locator('.legend-item').evaluateAll((els) => els.map((e) => e.dataset.series));

async function seed(server) {
  const now = Date.now();
  for (const s of ['alpha', 'beta', 'gamma']) {
    await server.push(s, [[now - 20000, 1], [now - 10000, 10], [now - 2000, 100]]);
  }
}

test('the address holds the charts, their series and settings, and survives a reload', async ({ page, server }) => {
  await seed(server);
  await page.goto(`${server.url}/?c0.s=alpha&c0.span=5m&c1.s=beta&c1.s=gamma&c1.span=1h&c1.log=1&c1.hide=gamma`);
  await expect(page.locator('.conn')).toHaveAttribute('data-state', 'live');
  await waitForFrames(page);
  await expect(charts(page)).toHaveCount(2);
  const [first, second] = [charts(page).nth(0), charts(page).nth(1)];
  await expect.poll(() => legendNames(first)).toEqual(['alpha']);
  await expect.poll(() => legendNames(second)).toEqual(['beta', 'gamma']);
  await expect(first.locator('.preset[data-span="5m"]')).toHaveAttribute('aria-pressed', 'true');
  await expect(second.locator('.preset[data-span="1h"]')).toHaveAttribute('aria-pressed', 'true');
  await expect(second.locator('.log-toggle')).toHaveAttribute('aria-pressed', 'true');
  await expect(second.locator('.legend-item[data-series="gamma"] .legend-toggle')).toHaveAttribute('aria-pressed', 'false');
  await expect(second.locator('canvas')).toHaveAttribute('data-y-scale', 'log');
  await expect(second.locator('canvas')).toHaveAttribute('data-shown', '1');

  // A change is written back to the address, in place.
  await second.locator('.preset[data-span="15m"]').click();
  await second.locator('.log-toggle').click();
  await expect.poll(() => new URL(page.url()).searchParams.getAll('c1.span')).toEqual(['15m']);
  await expect.poll(() => new URL(page.url()).searchParams.get('c1.log')).toBe(null);
  await page.reload();
  await expect(charts(page)).toHaveCount(2);
  await expect(charts(page).nth(1).locator('.preset[data-span="15m"]')).toHaveAttribute('aria-pressed', 'true');
  await expect(charts(page).nth(1).locator('.log-toggle')).toHaveAttribute('aria-pressed', 'false');
  await expect.poll(() => legendNames(charts(page).nth(0))).toEqual(['alpha']);

  // A paused view is in the address too, to the millisecond.
  await charts(page).nth(0).locator('.chart-box').focus();
  await page.keyboard.press('ArrowLeft');
  await expect(charts(page).nth(0)).toHaveAttribute('data-mode', 'paused');
  await expect.poll(() => new URL(page.url()).searchParams.get('c0.end')).toMatch(/^\d{13}$/);
  // The address can change before the frame that draws the pan: wait for that frame.
  const end = Number(new URL(page.url()).searchParams.get('c0.end'));
  const drawnEnd = async () => Number((await charts(page).nth(0).locator('canvas').getAttribute('data-x-range')).split(',')[1]);
  await expect.poll(drawnEnd).toBe(end);
  const range = await charts(page).nth(0).locator('canvas').getAttribute('data-x-range');
  await page.reload();
  await expect(charts(page).nth(0)).toHaveAttribute('data-mode', 'paused');
  await expect(charts(page).nth(0).locator('canvas')).toHaveAttribute('data-x-range', range);
});

test('the series picker lists what the server holds, filters, and puts series on a chart', async ({ page, server }) => {
  await seed(server);
  await page.goto(`${server.url}/?c0.s=alpha`);
  await expect(page.locator('.conn')).toHaveAttribute('data-state', 'live');
  const chart = charts(page).first();
  await expect.poll(() => legendNames(chart)).toEqual(['alpha']);
  await chart.locator('.picker > summary').click();
  await expect(chart.locator('.picker-row[data-series]')).toHaveCount(3);
  // The server's figures are shown beside each name.
  await expect(chart.locator('.picker-row[data-series="beta"] .picker-detail')).toHaveText('100 · 3 pts');
  await chart.locator('.picker-filter').fill('GAM');
  await expect(chart.locator('.picker-row[data-series]')).toHaveCount(1);
  await chart.locator('.picker-row[data-series="gamma"] input').check();
  await expect.poll(() => legendNames(chart)).toEqual(['alpha', 'gamma']);
  await expect(chart.locator('.chart-title')).toHaveText('alpha, gamma');
  await expect.poll(() => new URL(page.url()).searchParams.getAll('c0.s')).toEqual(['alpha', 'gamma']);
  // "All series" clears the choice.
  await chart.locator('.picker-all input').check();
  await expect.poll(() => legendNames(chart)).toEqual(['alpha', 'beta', 'gamma']);
});

test('charts are added and removed; on a phone they stack in one column', async ({ page, server }, testInfo) => {
  await seed(server);
  await page.goto(server.url);
  await expect(page.locator('.conn')).toHaveAttribute('data-state', 'live');
  await expect(charts(page)).toHaveCount(1);
  await page.locator('.add-chart').click();
  await page.locator('.add-chart').click();
  await expect(charts(page)).toHaveCount(3);
  await expect.poll(() => new URL(page.url()).searchParams.getAll('c2.span')).toEqual(['1m']);
  const boxes = [];
  for (let i = 0; i < 3; i++) boxes.push(await charts(page).nth(i).boundingBox());
  if (testInfo.project.name === 'phone') {
    expect(new Set(boxes.map((b) => Math.round(b.x))).size).toBe(1);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(width).toBeLessThanOrEqual(390);
  } else {
    // Side by side on a desktop.
    expect(Math.round(boxes[1].y)).toBe(Math.round(boxes[0].y));
  }
  for (let i = 0; i < 3; i++) await waitForFrames(page);
  // Each chart listens to the window's resizes; a removed chart must stop (and free its
  // handler), or every chart added and removed would leak one.
  const cdp = await page.context().newCDPSession(page);
  const windowListeners = async (type) => {
    const { result } = await cdp.send('Runtime.evaluate', { expression: 'window' });
    const { listeners } = await cdp.send('DOMDebugger.getEventListeners', { objectId: result.objectId });
    return listeners.filter((l) => l.type === type).length;
  };
  const withThree = await windowListeners('resize');
  await charts(page).nth(1).locator('.remove-chart').click();
  await expect(charts(page)).toHaveCount(2);
  await expect.poll(() => new URL(page.url()).searchParams.getAll('c2.span')).toEqual([]);
  expect(await windowListeners('resize')).toBe(withThree - 1);
  // The charts left still follow their size: backing store = CSS size × DPR after a resize.
  const size = page.viewportSize();
  await page.setViewportSize({ width: size.width - 40, height: size.height });
  const fits = (c) => c.width === Math.round(c.getBoundingClientRect().width * devicePixelRatio);
  await expect.poll(() => charts(page).first().locator('canvas').evaluate(fits)).toBe(true);
});
