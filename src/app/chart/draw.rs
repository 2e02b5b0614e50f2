//! Drawing the chart with plotters into the canvas, at most once per animation frame.
//!
//! Triggers (new data, a resize, the 250 ms tick that slides an idle window) only *schedule*
//! a frame; many triggers inside one frame still draw once. The canvas backing store is sized
//! in device pixels (CSS size × devicePixelRatio) so lines and text are crisp on a phone, and
//! every length drawn is scaled by the same ratio.
//!
//! After each frame the canvas carries its geometry as data attributes (`data-plot`,
//! `data-x-range`, `data-y-range`, `data-frames`, `data-points` held, `data-segments` drawn
//! lines and dots), which the end-to-end tests use to find the pixel where a point must appear.
//! A line breaks where its data has a hole ([`crate::gaps`]). Each series is held history
//! joined with the live feed ([`crate::history_cache`]), decimated to the canvas's pixel
//! columns (M4) before anything is drawn, so the cost follows the pixels, not the data.
//! While paused, nothing but a change of view, data shown or size redraws.

use super::super::live::{client_now_ns, LiveFeed};
use super::listeners::Listeners;
use super::{ChartCtl, Mounted};
use crate::decimate::{clip_to_range, M4};
use crate::gaps;
use crate::model::{Point, NANOS_PER_SEC};
use crate::ticks::{format_axis_value, format_time_tick, time_ticks, value_ticks};
use crate::view::{
    format_value, live_window, series_color, stroke_pieces, unit_of, y_range, WIDE_STROKE_SEGMENTS,
};
use leptos::html::Canvas;
use leptos::prelude::*;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::JsCast;
use web_sys::HtmlCanvasElement;

/// Slides the window when no data arrives; four steps a second look continuous at 60 s.
const IDLE_TICK: Duration = Duration::from_millis(250);
/// Axis label size in CSS pixels: readable on a 360 px phone without crowding.
const FONT_CSS_PX: f64 = 12.0;

#[derive(Default)]
struct Frames {
    pending: Cell<bool>,
    drawn: Cell<u64>,
}

/// What the last frame showed, for the crosshair and gestures: the plot area in CSS pixels
/// relative to the canvas, the time and value ranges, and each shown series decimated.
#[derive(Debug, Default, Clone)]
pub struct Drawn {
    pub plot: (f64, f64, f64, f64),
    pub from_ns: i64,
    pub to_ns: i64,
    pub series: Vec<DrawnSeries>,
}

#[derive(Debug, Clone)]
pub struct DrawnSeries {
    pub name: String,
    pub color: (u8, u8, u8),
    pub points: Vec<Point>,
    /// Points further apart than this are not joined by the line (a hole).
    pub max_gap_ns: i64,
    pub unit: Option<String>,
}

pub type SharedDrawn = Rc<RefCell<Drawn>>;

pub fn attach(
    canvas: NodeRef<Canvas>,
    feed: LiveFeed,
    ctl: ChartCtl,
    mounted: Mounted,
    listeners: Listeners,
) -> SharedDrawn {
    let frames = Rc::new(Frames::default());
    let drawn = SharedDrawn::default();
    let schedule = {
        let frames = frames.clone();
        let drawn = drawn.clone();
        move || {
            if !mounted.is() || frames.pending.replace(true) {
                return;
            }
            let frames = frames.clone();
            let drawn = drawn.clone();
            request_animation_frame(move || {
                frames.pending.set(false);
                if !mounted.is() {
                    return;
                }
                if let Some(el) = canvas.get_untracked() {
                    let n = frames.drawn.get() + 1;
                    frames.drawn.set(n);
                    match draw(&el, feed, ctl, n) {
                        Ok(Some(d)) => *drawn.borrow_mut() = d,
                        Ok(None) => {}
                        Err(e) => leptos::logging::warn!("livechart: drawing failed: {e}"),
                    }
                }
            });
        }
    };

    {
        let schedule = schedule.clone();
        // New data moves a live view; a paused one redraws only when its own range changes,
        // which the view effect below covers, or when held history arrives.
        Effect::new(move |_| {
            feed.data.track();
            if ctl.view.get_untracked().is_live() {
                schedule();
            }
        });
    }
    {
        let schedule = schedule.clone();
        Effect::new(move |_| {
            ctl.view.track();
            ctl.series.track();
            ctl.hidden.track();
            ctl.right.track();
            ctl.history.track();
            ctl.log_scale.track();
            schedule();
        });
    }
    {
        let schedule = schedule.clone();
        // Once: a second call would stack a second set of listeners.
        Effect::new(move |done: Option<bool>| {
            if done == Some(true) {
                return true;
            }
            let Some(el) = canvas.get() else {
                return false;
            };
            follow_size(&el, &listeners, schedule.clone());
            true
        });
    }
    let tick = move || {
        if ctl.view.get_untracked().is_live() {
            schedule();
        }
    };
    if let Ok(handle) = set_interval_with_handle(tick, IDLE_TICK) {
        on_cleanup(move || handle.clear());
    }
    drawn
}

/// Keeps the canvas backing store at CSS size × devicePixelRatio, on resize, rotation and
/// zoom (a DPR change resizes the CSS box in device pixels, which also fires the window's
/// resize event).
fn follow_size(
    el: &HtmlCanvasElement,
    listeners: &Listeners,
    schedule: impl Fn() + Clone + 'static,
) {
    let fit = {
        let el = el.clone();
        let schedule = schedule.clone();
        move || {
            let dpr = web_sys::window()
                .map_or(1.0, |w| w.device_pixel_ratio())
                .max(1.0);
            let rect = el.get_bounding_client_rect();
            let (w, h) = (
                (rect.width() * dpr).round() as u32,
                (rect.height() * dpr).round() as u32,
            );
            if w > 0 && h > 0 && (el.width() != w || el.height() != h) {
                el.set_width(w);
                el.set_height(h);
            }
            schedule();
        }
    };
    fit();
    listeners.on_resize(el, fit.clone());
    if let Some(w) = web_sys::window() {
        listeners.on(&w, "resize", true, move |_: web_sys::Event| fit());
    }
}

fn prefers_dark() -> bool {
    web_sys::window()
        .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
        .is_some_and(|m| m.matches())
}

/// The browser's time zone, asked for each moment: daylight saving then follows the date
/// shown, not today's (a summer day viewed in winter reads its own wall clock).
pub(super) struct BrowserZone;

impl crate::ticks::Zone for BrowserZone {
    fn offset_minutes(&self, ts_ns: i64) -> i32 {
        let ms = (ts_ns / crate::model::NANOS_PER_MILLI) as f64;
        -(js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms)).get_timezone_offset() as i32)
    }
}

struct Theme {
    background: RGBColor,
    text: RGBColor,
    axis: RGBColor,
    grid: RGBColor,
}

fn theme() -> Theme {
    if prefers_dark() {
        Theme {
            background: RGBColor(24, 26, 31),
            text: RGBColor(210, 214, 222),
            axis: RGBColor(120, 126, 138),
            grid: RGBColor(48, 52, 60),
        }
    } else {
        Theme {
            background: RGBColor(255, 255, 255),
            text: RGBColor(60, 64, 72),
            axis: RGBColor(150, 155, 165),
            grid: RGBColor(232, 234, 238),
        }
    }
}

/// The WASM module's linear memory: it only grows, so a page that keeps streaming without
/// this growing holds no buffers that grow with the stream (an end-to-end test watches it).
fn wasm_memory_bytes() -> u32 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map_or(0, |m| {
            m.buffer()
                .dyn_into::<js_sys::ArrayBuffer>()
                .map_or(0, |b| b.byte_length())
        })
}

fn context_2d(el: &HtmlCanvasElement) -> Option<web_sys::CanvasRenderingContext2d> {
    el.get_context("2d").ok()??.dyn_into().ok()
}

/// The device pixel ratio: how many canvas pixels one CSS pixel is.
pub fn device_pixel_ratio() -> f64 {
    web_sys::window()
        .map_or(1.0, |w| w.device_pixel_ratio())
        .max(1.0)
}

/// A linear axis with our ticks ([`crate::ticks`]) instead of plotters' own choice.
struct Ticked {
    inner: RangedCoordf64,
    keys: Vec<f64>,
}

impl Ticked {
    fn new(range: std::ops::Range<f64>, keys: Vec<f64>) -> Self {
        Self {
            inner: range.into(),
            keys,
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // Grid lines and labels at our ticks only; no minor lines.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// One series' line, ready to draw: runs between holes, in plot coordinates.
struct Line {
    name: String,
    index: usize,
    /// Drawn against the right-hand value axis.
    right: bool,
    unit: Option<String>,
    runs: Vec<Vec<(f64, f64)>>,
    decimated: Vec<Point>,
    max_gap_ns: i64,
}

pub(super) fn draw(
    el: &HtmlCanvasElement,
    feed: LiveFeed,
    ctl: ChartCtl,
    frame: u64,
) -> Result<Option<Drawn>, String> {
    let (w, h) = (el.width(), el.height());
    if w < 50 || h < 50 {
        return Ok(None);
    }
    let dpr = device_pixel_ratio();
    let px = |css: f64| (css * dpr).round() as i32;
    let theme = theme();
    let view = ctl.view.get_untracked();
    let log = ctl.log_scale.get_untracked();
    let backend = CanvasBackend::with_canvas_object(el.clone()).ok_or("no 2d context")?;
    let root = backend.into_drawing_area();
    root.fill(&theme.background).map_err(|e| e.to_string())?;

    let right_set = ctl.right.get_untracked();
    let result = ctl.history.with_untracked(|history| {
        ctl.hidden.with_untracked(|hidden| {
            feed.data.with_untracked(|state| -> Result<_, String> {
                let live_end =
                    live_window(state.server_now(client_now_ns()), state.newest_ns(), 0).1;
                let (from, to) = view.range(live_end);
                let span_ns = (to - from).max(1);
                let secs = |t: i64| (t - from) as f64 / NANOS_PER_SEC as f64;
                // Values as drawn: log10 on a log axis (points at or below zero cannot be
                // shown there and are left out).
                let y_of = |v: f64| if log { v.log10() } else { v };

                // Decimate to the canvas width first (an upper bound of the plot width), then
                // clip, then break each line where its data has a hole.
                let column_ns = (span_ns / i64::from(w)).max(1);
                // From here on the feed holds every point at this resolution.
                let live_from = state.coverage().map(|c| c.from_at(column_ns));
                let mut history_points = 0usize;
                let lines: Vec<Line> = state
                    .series
                    .iter()
                    .enumerate()
                    .filter(|(_, (key, _))| {
                        let name = key.to_string();
                        ctl.shows(&name) && !hidden.contains(&name)
                    })
                    .map(|(index, (key, ring))| {
                        history_points += history.series.get(key).map_or(0, Vec::len);
                        let parts = history.joined_slices(key, ring, from, live_from);
                        let usual =
                            gaps::usual_step(ring.iter().map(|p| p.ts_ns).filter(|&t| t >= from))
                                .or_else(|| {
                                    history
                                        .series
                                        .get(key)
                                        .and_then(|h| gaps::usual_step(h.iter().map(|p| p.ts_ns)))
                                });
                        let mut acc = M4::new(from, to, w as usize);
                        for part in parts {
                            if !acc.push_all(part) {
                                break;
                            }
                        }
                        let mut pts = acc.finish();
                        if log {
                            pts.retain(|p| p.value > 0.0);
                        }
                        let ts: Vec<i64> = pts.iter().map(|p| p.ts_ns).collect();
                        let max_gap_ns = gaps::threshold(usual, column_ns);
                        // Split first, then clip each run: a hole across the window's edge
                        // must not be bridged by the point clipping puts on the edge.
                        let runs = gaps::segments(&ts, max_gap_ns)
                            .into_iter()
                            .filter_map(|run| {
                                let mut part = pts[run].to_vec();
                                clip_to_range(&mut part, from, to);
                                (!part.is_empty()).then(|| {
                                    part.iter()
                                        .map(|p| (secs(p.ts_ns), y_of(p.value)))
                                        .collect()
                                })
                            })
                            .collect();
                        Line {
                            name: key.to_string(),
                            right: right_set.contains(&key.to_string()),
                            unit: unit_of(key).map(str::to_string),
                            index,
                            runs,
                            decimated: pts,
                            max_gap_ns,
                        }
                    })
                    .collect();
                let segments: usize = lines.iter().map(|l| l.runs.len()).sum();
                // Each value axis fits the series drawn against it.
                let extent = |right: bool| {
                    lines
                        .iter()
                        .filter(|l| l.right == right)
                        .flat_map(|l| l.runs.iter().flatten())
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, v)| {
                            (lo.min(v), hi.max(v))
                        })
                };
                let fit = |(lo, hi): (f64, f64)| {
                    if log && lo.is_finite() {
                        // Whole decades around the data read best on a log axis.
                        (lo.floor().min(hi.ceil() - 1.0), hi.ceil())
                    } else {
                        y_range(lo, hi)
                    }
                };
                let has_right = lines.iter().any(|l| l.right);
                let (y0, y1) = fit(extent(false));
                let (r0, r1) = fit(extent(true));

                let css_w = f64::from(w) / dpr;
                let css_h = f64::from(h) / dpr;
                let tz = BrowserZone;
                let (x_ticks, step) =
                    time_ticks(from, to, ((css_w / 90.0) as usize).clamp(2, 12), &tz);
                let x_keys: Vec<f64> = x_ticks.iter().map(|&t| secs(t)).collect();
                let max_y_ticks = ((css_h / 45.0) as usize).clamp(3, 10);
                let y_keys = |lo: f64, hi: f64| -> Vec<f64> {
                    if log {
                        crate::ticks::log_ticks(10f64.powf(lo), 10f64.powf(hi), max_y_ticks)
                            .into_iter()
                            .map(f64::log10)
                            .collect()
                    } else {
                        value_ticks(lo, hi, max_y_ticks)
                    }
                };
                let (left_keys, right_keys) = (y_keys(y0, y1), y_keys(r0, r1));
                // The axes' captions: the unit when every series on that side shares one.
                let unit = |right: bool| {
                    let mut units = lines
                        .iter()
                        .filter(|l| l.right == right)
                        .map(|l| l.unit.as_deref());
                    let first = units.next().flatten();
                    units
                        .all(|u| u == first)
                        .then_some(first)
                        .flatten()
                        .map(str::to_string)
                };
                let (left_unit, right_unit) = (unit(false), unit(true));

                let label_font = ("sans-serif", FONT_CSS_PX * dpr)
                    .into_font()
                    .color(&theme.text);
                let mut chart = ChartBuilder::on(&root)
                    .margin(px(10.0))
                    .margin_left(px(4.0))
                    // Room for half of the last time label, which is centred on the right edge.
                    .margin_right(px(if has_right { 4.0 } else { 28.0 }))
                    .x_label_area_size(px(26.0))
                    .y_label_area_size(px(if left_unit.is_some() { 64.0 } else { 52.0 }))
                    .right_y_label_area_size(if has_right {
                        px(if right_unit.is_some() { 64.0 } else { 52.0 })
                    } else {
                        0
                    })
                    .build_cartesian_2d(
                        Ticked::new(0.0..secs(to), x_keys.clone()),
                        Ticked::new(y0..y1, left_keys.clone()),
                    )
                    .map_err(|e| e.to_string())?
                    .set_secondary_coord(
                        Ticked::new(0.0..secs(to), x_keys),
                        Ticked::new(r0..r1, right_keys.clone()),
                    );

                // The tick itself, not the time rebuilt from its float position: over a year
                // that loses nanoseconds and a midnight would be named by the day before.
                let x_label = |x: &f64| {
                    let approx = from + (x * NANOS_PER_SEC as f64).round() as i64;
                    let t = x_ticks
                        .iter()
                        .copied()
                        .min_by_key(|t| t.abs_diff(approx))
                        .unwrap_or(approx);
                    format_time_tick(t, step, &tz)
                };
                // Linear ticks carry the decimals their step needs; log ticks are decades.
                let step_of = |keys: &[f64], lo: f64, hi: f64| match keys {
                    [a, b, ..] => b - a,
                    _ => hi - lo,
                };
                let (left_step, right_step) =
                    (step_of(&left_keys, y0, y1), step_of(&right_keys, r0, r1));
                let y_label_with = |step: f64| {
                    move |y: &f64| {
                        if log {
                            format_value(10f64.powf(*y))
                        } else {
                            format_axis_value(*y, step)
                        }
                    }
                };
                let y_label = y_label_with(left_step);
                let right_label = y_label_with(right_step);
                let axis_style = ShapeStyle::from(theme.axis).stroke_width(px(1.0).max(1) as u32);
                chart
                    .configure_mesh()
                    .x_label_formatter(&x_label)
                    .y_label_formatter(&y_label)
                    .y_desc(left_unit.clone().unwrap_or_default())
                    .label_style(label_font.clone())
                    .axis_desc_style(label_font.clone())
                    .axis_style(axis_style)
                    .bold_line_style(
                        ShapeStyle::from(theme.grid).stroke_width(px(1.0).max(1) as u32),
                    )
                    .light_line_style(ShapeStyle::from(theme.background))
                    .draw()
                    .map_err(|e| e.to_string())?;
                if has_right {
                    chart
                        .configure_secondary_axes()
                        .y_label_formatter(&right_label)
                        .y_desc(right_unit.clone().unwrap_or_default())
                        .label_style(label_font.clone())
                        .axis_desc_style(label_font)
                        .axis_style(axis_style)
                        .draw()
                        .map_err(|e| e.to_string())?;
                }

                // One CSS pixel, as Grafana and uPlot draw by default. At one device pixel the
                // canvas strokes a hairline, about ten times faster than a 2 px line through
                // a thousand columns of min/max zigzag (measured: 1.3 ms against 15 ms).
                let stroke = dpr.round().max(1.0) as u32;
                // Plotters draws on whole pixels; an odd-width line centred there covers two
                // half pixels. Shifting by half a pixel puts it on one, crisp, as uPlot does.
                let ctx = context_2d(el);
                let half = if stroke % 2 == 1 { 0.5 } else { 0.0 };
                if let Some(ctx) = &ctx {
                    let _ = ctx.translate(half, half);
                }
                for line in &lines {
                    let (r, g, b) = series_color(line.index);
                    let solid = RGBColor(r, g, b).stroke_width(stroke);
                    for run in &line.runs {
                        // A lone point between holes is a dot: a line needs two.
                        let drawn = if run.len() == 1 {
                            let dot =
                                std::iter::once(Circle::new(run[0], stroke * 2, solid.filled()));
                            if line.right {
                                chart.draw_secondary_series(dot).map(|_| ())
                            } else {
                                chart.draw_series(dot).map(|_| ())
                            }
                        } else {
                            // Hairlines stroke fastest whole; wider lines in pieces.
                            let segments = if stroke > 1 {
                                WIDE_STROKE_SEGMENTS
                            } else {
                                usize::MAX
                            };
                            stroke_pieces(run.len(), segments).try_for_each(|piece| {
                                let path = LineSeries::new(run[piece].iter().copied(), solid);
                                if line.right {
                                    chart.draw_secondary_series(path).map(|_| ())
                                } else {
                                    chart.draw_series(path).map(|_| ())
                                }
                            })
                        };
                        drawn.map_err(|e| e.to_string())?;
                    }
                }
                if let Some(ctx) = &ctx {
                    let _ = ctx.translate(-half, -half);
                }
                let (xr, yr) = chart.plotting_area().get_pixel_range();
                let held: usize = state.series.values().map(|r| r.len()).sum();
                let drawn = Drawn {
                    plot: (
                        f64::from(xr.start) / dpr,
                        f64::from(yr.start) / dpr,
                        f64::from(xr.end) / dpr,
                        f64::from(yr.end) / dpr,
                    ),
                    from_ns: from,
                    to_ns: to,
                    series: lines
                        .into_iter()
                        .map(|l| DrawnSeries {
                            name: l.name,
                            color: series_color(l.index),
                            points: l.decimated,
                            max_gap_ns: l.max_gap_ns,
                            unit: l.unit,
                        })
                        .collect(),
                };
                let attrs = [
                    (
                        "data-plot",
                        format!("{},{},{},{}", xr.start, yr.start, xr.end, yr.end),
                    ),
                    (
                        "data-x-range",
                        format!("{},{}", from / 1_000_000, to / 1_000_000),
                    ),
                    ("data-y-range", format!("{y0},{y1}")),
                    (
                        "data-y2-range",
                        if has_right {
                            format!("{r0},{r1}")
                        } else {
                            String::new()
                        },
                    ),
                    (
                        "data-y-scale",
                        if log { "log" } else { "linear" }.to_string(),
                    ),
                    ("data-frames", frame.to_string()),
                    ("data-points", held.to_string()),
                    ("data-history-points", history_points.to_string()),
                    ("data-segments", segments.to_string()),
                    ("data-shown", drawn.series.len().to_string()),
                    ("data-wasm-bytes", wasm_memory_bytes().to_string()),
                ];
                Ok((drawn, attrs))
            })
        })
    })?;
    root.present().map_err(|e| e.to_string())?;
    let (drawn, attrs) = result;
    for (name, value) in attrs {
        let _ = el.set_attribute(name, &value);
    }
    Ok(Some(drawn))
}
