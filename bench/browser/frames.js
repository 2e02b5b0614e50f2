// Frame time, data to pixels, in headless Chromium: livechart's WASM drawing (the chart's own
// draw function, through livechart_bench_frames) against uPlot drawing the same points into a
// canvas of the same size, in the same page and run. Also the size of what the browser
// downloads. Prints a Markdown section for BENCHMARKS.md.
//
// Usage: node frames.js [path/to/livechart], after scripts/bench.sh has built the shipped
// client (copied to target/bench-pkg, or LIVECHART_BUNDLE_DIR) and then one with its hook.
const { chromium } = require('@playwright/test');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.argv[2] || path.join(ROOT, 'target', 'release', 'livechart');
const WIDTH = 1000;
const HEIGHT = 400;

async function startServer() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'livechart-bench-frames-'));
  const proc = spawn(BIN, ['--addr', '127.0.0.1:0', '--data-dir', dataDir], {
    cwd: ROOT,
    env: { ...process.env, LEPTOS_SITE_ROOT: path.join(ROOT, 'target', 'site'), RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+)/);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (c) => reject(new Error(`server exited with ${c}`)));
  });
  return { url, stop: () => { proc.kill('SIGTERM'); fs.rmSync(dataDir, { recursive: true, force: true }); } };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function main() {
  const server = await startServer();
  try {
    await run(server);
  } finally {
    server.stop();
  }
}

async function run(server) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--js-flags=--max-old-space-size=4096'],
  });
  const cases = [
    // frames: timed samples, each the mean of `batch` frames (the page's clock moves in 0.1 ms).
    { name: '10 k points', points: 10_000, frames: 31, batch: 10, stream: 0, dpr: 1 },
    { name: '1 M points', points: 1_000_000, frames: 21, batch: 3, stream: 0, dpr: 1 },
    { name: '10 M points', points: 10_000_000, frames: 9, batch: 1, stream: 0, dpr: 1 },
    { name: '1 M points, streaming 100 per frame', points: 1_000_000, frames: 21, batch: 3, stream: 100, dpr: 1 },
    // A phone or a HiDPI screen: the same CSS size, twice the device pixels each way.
    { name: '10 k points, DPR 2', points: 10_000, frames: 21, batch: 3, stream: 0, dpr: 2 },
    { name: '1 M points, DPR 2', points: 1_000_000, frames: 21, batch: 3, stream: 0, dpr: 2 },
  ];
  const pages = {};
  const pageFor = async (dpr) => {
    if (!pages[dpr]) {
      // One page at a time, and each warmed up before it is measured (a new page's first
      // draws pay for compiling and for allocating its canvases).
      for (const p of Object.values(pages)) await p.close();
      // bypassCSP: uPlot is injected into our page, which the page's own policy rightly refuses.
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: dpr, bypassCSP: true });
      await page.goto(server.url);
      await page.waitForFunction(() => document.querySelector('canvas.chart-canvas')?.dataset.frames);
      await page.addScriptTag({ path: require.resolve('uplot/dist/uPlot.iife.min.js') });
      await page.addStyleTag({ path: require.resolve('uplot/dist/uPlot.min.css') });
      pages[dpr] = page;
      page.warm = true;
    }
    return pages[dpr];
  };
  const rows = [];
  for (const c of cases) {
    const page = await pageFor(c.dpr);
    const runs = page.warm ? [{ ...c, points: 10_000, frames: 11, batch: 1 }, c] : [c];
    page.warm = false;
    let r;
    for (const run of runs) r = await page.evaluate(async ({ points, frames, batch, stream, W, H, dpr }) => {
      const js = document.querySelector('link[rel=modulepreload]')?.getAttribute('href') || '/pkg/livechart.js';
      const m = await import(js);
      const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
      // livechart: the chart's draw on a canvas of W×H device pixels.
      const canvas = document.createElement('canvas');
      canvas.width = W * dpr; canvas.height = H * dpr;
      canvas.style.width = `${W}px`; canvas.style.height = `${H}px`;
      document.body.appendChild(canvas);
      const ours = Array.from(m.livechart_bench_frames(canvas, points, frames, stream, batch)).slice(1);
      canvas.remove();

      // uPlot: the same points (one a millisecond, same values) into a plot of the same size.
      const value = (i) => 50 + 30 * Math.sin(i / 50000) + 10 * (((Math.sin(i * 12.9898) * 43758.545) % 1));
      const total = points + stream * frames * batch;
      const xs = new Float64Array(total);
      const ys = new Float64Array(total);
      const t0 = 1764230400;
      for (let i = 0; i < total; i++) { xs[i] = t0 + i / 1000; ys[i] = value(i); }
      const el = document.createElement('div');
      document.body.appendChild(el);
      const u = new uPlot({
        width: W, height: H, pxAlign: 0,
        legend: { show: false }, cursor: { show: false },
        scales: { x: { time: true } },
        series: [{}, { stroke: '#0072b2', width: 1 }],
      }, [xs.subarray(0, points), ys.subarray(0, points)], el);
      const theirs = [];
      let start = performance.now();
      for (let f = 0; f < frames * batch; f++) {
        const a = f * stream;
        u.batch(() => u.setData([xs.subarray(a, a + points), ys.subarray(a, a + points)]));
        u.ctx.getImageData(0, 0, 1, 1);
        if ((f + 1) % batch === 0) {
          const now = performance.now();
          theirs.push((now - start) / batch);
          start = now;
        }
      }
      u.destroy();
      el.remove();
      return { ours: median(ours), theirs: median(theirs.slice(1)) };
    }, { ...run, W: WIDTH, H: HEIGHT });
    rows.push({ ...c, ...r });
  }
  await browser.close();

  // What a browser downloads: the wasm, JS and CSS, raw and as served (brotli).
  // The shipped build's files (scripts/bench.sh copies them aside before building the hook).
  const pkg = process.env.LIVECHART_BUNDLE_DIR || path.join(ROOT, 'target', 'bench-pkg');
  const files = ['livechart.wasm', 'livechart.js', 'livechart.css'];
  const sizes = files.map((f) => {
    const raw = fs.readFileSync(path.join(pkg, f));
    const br = fs.existsSync(path.join(pkg, `${f}.br`))
      ? fs.statSync(path.join(pkg, `${f}.br`)).size
      : zlib.brotliCompressSync(raw).length;
    return { f, raw: raw.length, br };
  });

  const ms = (x) => x.toFixed(2);
  const kb = (x) => (x / 1024).toFixed(1);
  console.log('## Chart frame time (issue 6)');
  console.log();
  console.log(`\`node bench/browser/frames.js\`: headless Chromium (${'software canvas, --disable-gpu'}), a`);
  console.log(`${WIDTH}×${HEIGHT} px canvas at DPR 1 (DPR 2 where named: the same CSS size, twice the device pixels each way), one series, one point a millisecond. livechart: the chart's`);
  console.log('draw function from the release WASM built with its bench hook (M4 to the pixel columns,');
  console.log('gap split, plotters); uPlot 1.6.32 from npm in the same page and run, `batch(setData)`;');
  console.log('both draw 1 px lines. Both timed from data to pixels (`getImageData` forces');
  console.log('rasterization). Each sample is the mean of a few frames in a row (the page clock moves in');
  console.log('0.1 ms steps); medians of the samples, the first left out.');
  console.log();
  console.log('| window | livechart ms/frame | uPlot ms/frame | uPlot ÷ livechart |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.name} | ${ms(r.ours)} | ${ms(r.theirs)} | ${(r.theirs / r.ours).toFixed(2)}× |`);
  console.log();
  console.log('Targets: ≤ 8 ms per frame at 1 M points; faster than uPlot for the same pixels.');
  console.log();
  console.log('| download | raw KB | brotli KB |');
  console.log('| --- | ---: | ---: |');
  for (const s of sizes) console.log(`| ${s.f} | ${kb(s.raw)} | ${kb(s.br)} |`);
  const tot = sizes.reduce((a, s) => ({ raw: a.raw + s.raw, br: a.br + s.br }), { raw: 0, br: 0 });
  console.log(`| total | ${kb(tot.raw)} | ${kb(tot.br)} |`);
  console.log();
  console.log('Target: ≤ 250 KB brotli in total.');
}

main().catch((e) => { console.error(e); process.exit(1); });
