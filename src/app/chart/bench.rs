//! The frame-time benchmark's hook into the real drawing code (`make bench` calls it from the
//! page through `bench/browser`): one synthetic series of `points` points drawn into a canvas
//! exactly as the chart draws a frame, `frames` times. Before each frame `stream` new points
//! arrive and as many old ones leave, as in a live chart. A frame is timed from the data to
//! the pixels: `getImageData` forces the canvas to rasterize before the clock stops. The
//! clock is timed over `batch` frames at a time: a page's `performance.now()` moves in
//! 0.1 ms steps, too coarse for a 3 ms frame on its own.

use super::draw::draw;
use super::ChartCtl;
use crate::app::live::{ConnState, LiveFeed};
use crate::feed::FeedState;
use crate::layout::ChartSpec;
use crate::model::{Point, SeriesKey};
use crate::viewport::Viewport;
use leptos::prelude::*;
use std::collections::VecDeque;
use wasm_bindgen::prelude::*;
use web_sys::HtmlCanvasElement;

/// One point a millisecond: 1 M points are 17 minutes of a fast sensor.
const STEP_NS: i64 = 1_000_000;

fn value(i: u64) -> f64 {
    // A slow wave with fast noise: every column has a real minimum and maximum to find.
    let x = i as f64;
    50.0 + 30.0 * (x / 50_000.0).sin() + 10.0 * ((x * 12.9898).sin() * 43_758.545).fract()
}

/// Milliseconds per frame, one entry per `batch` frames (their mean).
#[wasm_bindgen]
pub fn livechart_bench_frames(
    canvas: HtmlCanvasElement,
    points: u32,
    frames: u32,
    stream: u32,
    batch: u32,
) -> Result<Vec<f64>, JsValue> {
    let performance = web_sys::window()
        .and_then(|w| w.performance())
        .ok_or("no performance clock")?;
    let ctx = canvas
        .get_context("2d")?
        .ok_or("no 2d context")?
        .dyn_into::<web_sys::CanvasRenderingContext2d>()?;
    // Signals made here belong to this owner and go with it.
    let owner = Owner::new();
    let result = owner.with(|| {
        run(
            &canvas,
            &performance,
            &ctx,
            (points, frames, stream, batch.max(1)),
        )
    });
    owner.cleanup();
    result
}

fn run(
    canvas: &HtmlCanvasElement,
    performance: &web_sys::Performance,
    ctx: &web_sys::CanvasRenderingContext2d,
    (points, frames, stream, batch): (u32, u32, u32, u32),
) -> Result<Vec<f64>, JsValue> {
    let key = SeriesKey::new("bench").map_err(|e| e.to_string())?;
    let t0 = 1_764_230_400_000_000_000i64;
    let mut next = u64::from(points);
    let ring: VecDeque<Point> = (0..u64::from(points))
        .map(|i| Point {
            ts_ns: t0 + i as i64 * STEP_NS,
            value: value(i),
        })
        .collect();
    let mut state = FeedState::default();
    state.series.insert(key.clone(), ring);
    let feed = LiveFeed {
        data: RwSignal::new(state),
        conn: RwSignal::new(ConnState::Live),
    };
    let span = i64::from(points.max(1)) * STEP_NS;
    let ctl = ChartCtl::new(&ChartSpec::default());
    let mut times = Vec::with_capacity(frames as usize);
    let mut start = performance.now();
    for frame in 0..u64::from(frames) * u64::from(batch) {
        feed.data.update_untracked(|s| {
            if let Some(ring) = s.series.get_mut(&key) {
                for _ in 0..stream {
                    ring.pop_front();
                    ring.push_back(Point {
                        ts_ns: t0 + next as i64 * STEP_NS,
                        value: value(next),
                    });
                    next += 1;
                }
            }
        });
        // The view follows the newest point, as a live chart does.
        let end = t0 + (next as i64 - 1) * STEP_NS;
        ctl.view.set(Viewport::paused(end - span, end));
        draw(canvas, feed, ctl, frame + 1).map_err(|e| JsValue::from_str(&e))?;
        ctx.get_image_data(0.0, 0.0, 1.0, 1.0)?;
        if (frame + 1) % u64::from(batch) == 0 {
            let now = performance.now();
            times.push((now - start) / f64::from(batch));
            start = now;
        }
    }
    Ok(times)
}
