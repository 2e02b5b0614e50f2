// Reading the chart back: the canvas publishes its plot geometry after each frame, so a test
// can compute the pixel where a point must be drawn and look at it.

/** Waits two animation frames: any frame already scheduled has drawn. */
async function nextFrames(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

/** Waits until the chart has drawn at least `frames` frames. */
async function waitForFrames(page, frames = 1) {
  await page.waitForFunction(
    (n) => Number(document.querySelector('canvas.chart-canvas')?.dataset.frames || 0) >= n,
    frames,
  );
}

/**
 * True when a pixel near (ts, value) has the colour `rgb` (within `tolerance` per channel).
 * Geometry and pixels are read in one synchronous step, so they belong to the same frame.
 */
async function drawnNear(page, ts, value, rgb, radius = 4, tolerance = 60) {
  return page.evaluate(({ ts, value, rgb, radius, tolerance }) => {
    const c = document.querySelector('canvas.chart-canvas');
    const [px0, py0, px1, py1] = c.dataset.plot.split(',').map(Number);
    const [from, to] = c.dataset.xRange.split(',').map(Number);
    const [ylo, yhi] = c.dataset.yRange.split(',').map(Number);
    if (ts < from || ts > to) return { ok: false, why: `ts ${ts} outside [${from}, ${to}]` };
    const x = Math.round(px0 + ((ts - from) / (to - from)) * (px1 - px0));
    const y = Math.round(py1 - ((value - ylo) / (yhi - ylo)) * (py1 - py0));
    const ctx = c.getContext('2d');
    const img = ctx.getImageData(x - radius, y - radius, 2 * radius + 1, 2 * radius + 1).data;
    // The background, read where nothing is drawn (the plot's top-left corner inside).
    const bg = ctx.getImageData(px0 + 1, py0 + 1, 1, 1).data;
    for (let i = 0; i < img.length; i += 4) {
      const px = [img[i], img[i + 1], img[i + 2]];
      if (px.every((c, k) => Math.abs(c - rgb[k]) <= tolerance)) return { ok: true, x, y };
      // A thin anti-aliased line blends with the background: accept a pixel at least 60 % of
      // the way from the background to the series colour on every channel that differs.
      const coverage = [0, 1, 2]
        .filter((k) => Math.abs(rgb[k] - bg[k]) >= 40)
        .map((k) => (px[k] - bg[k]) / (rgb[k] - bg[k]));
      if (coverage.length && coverage.every((a) => a >= 0.6 && a <= 1.2)) return { ok: true, x, y };
    }
    return { ok: false, why: `no pixel of rgb(${rgb}) near (${x}, ${y})` };
  }, { ts, value, rgb, radius, tolerance });
}

/** The colour of a series' legend swatch as [r, g, b]. */
async function seriesColor(page, name) {
  const css = await page.locator(`.legend-item[data-series="${name}"] .swatch`).evaluate((el) => getComputedStyle(el).backgroundColor);
  return css.match(/\d+/g).slice(0, 3).map(Number);
}

module.exports = { waitForFrames, nextFrames, drawnNear, seriesColor };
