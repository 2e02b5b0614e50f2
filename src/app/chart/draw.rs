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
//! A line breaks where its data has a hole ([`crate::gaps`]).

use super::super::live::{client_now_ns, LiveFeed};
use crate::decimate::{clip_to_range, m4};
use crate::gaps;
use crate::model::NANOS_PER_SEC;
use crate::view::{format_clock, format_value, live_window, series_color, y_range};
use leptos::html::Canvas;
use leptos::prelude::*;
use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::closure::Closure;
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

pub fn attach(canvas: NodeRef<Canvas>, feed: LiveFeed) {
    let frames = Rc::new(Frames::default());
    let schedule = {
        let frames = frames.clone();
        move || {
            if frames.pending.replace(true) {
                return;
            }
            let frames = frames.clone();
            request_animation_frame(move || {
                frames.pending.set(false);
                if let Some(el) = canvas.get_untracked() {
                    let n = frames.drawn.get() + 1;
                    frames.drawn.set(n);
                    if let Err(e) = draw(&el, feed, n) {
                        leptos::logging::warn!("livechart: drawing failed: {e}");
                    }
                }
            });
        }
    };

    {
        let schedule = schedule.clone();
        Effect::new(move |_| {
            feed.data.track();
            schedule();
        });
    }
    {
        let schedule = schedule.clone();
        Effect::new(move |_| {
            if let Some(el) = canvas.get() {
                follow_size(&el, schedule.clone());
            }
        });
    }
    if let Ok(handle) = set_interval_with_handle(schedule, IDLE_TICK) {
        on_cleanup(move || handle.clear());
    }
}

/// Keeps the canvas backing store at CSS size × devicePixelRatio, on resize, rotation and
/// zoom (a DPR change resizes the CSS box in device pixels, which also fires the window's
/// resize event).
fn follow_size(el: &HtmlCanvasElement, schedule: impl Fn() + Clone + 'static) {
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
    let on_resize = Closure::<dyn Fn()>::new(fit.clone());
    if let Ok(observer) = web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref()) {
        observer.observe(el);
    }
    if let Some(w) = web_sys::window() {
        let _ = w.add_event_listener_with_callback("resize", on_resize.as_ref().unchecked_ref());
    }
    // The observer lives as long as the page; so must its callback.
    on_resize.forget();
}

fn prefers_dark() -> bool {
    web_sys::window()
        .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
        .is_some_and(|m| m.matches())
}

fn utc_offset_minutes() -> i32 {
    -(js_sys::Date::new_0().get_timezone_offset() as i32)
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

fn draw(el: &HtmlCanvasElement, feed: LiveFeed, frame: u64) -> Result<(), String> {
    let (w, h) = (el.width(), el.height());
    if w < 50 || h < 50 {
        return Ok(());
    }
    let dpr = web_sys::window()
        .map_or(1.0, |w| w.device_pixel_ratio())
        .max(1.0);
    let px = |css: f64| (css * dpr).round() as i32;
    let theme = theme();
    let backend = CanvasBackend::with_canvas_object(el.clone()).ok_or("no 2d context")?;
    let root = backend.into_drawing_area();
    root.fill(&theme.background).map_err(|e| e.to_string())?;

    let geometry = feed.data.with_untracked(|state| -> Result<_, String> {
        let (from, to) = live_window(
            state.server_now(client_now_ns()),
            state.newest_ns(),
            state.window_ns,
        );
        let span_s = (to - from) as f64 / NANOS_PER_SEC as f64;
        let secs = |t: i64| t as f64 / NANOS_PER_SEC as f64;

        // Decimate to the canvas width first (an upper bound of the plot width), then clip,
        // then break each line where its data has a hole.
        let column_ns = ((to - from) / i64::from(w)).max(1);
        let lines: Vec<Vec<Vec<(f64, f64)>>> = state
            .series
            .values()
            .map(|ring| {
                let usual = gaps::usual_step(ring.iter().map(|p| p.ts_ns));
                let pts = m4(ring.iter().copied(), from, to, w as usize);
                let ts: Vec<i64> = pts.iter().map(|p| p.ts_ns).collect();
                // Split first, then clip each run: a hole across the window's edge must not
                // be bridged by the point clipping puts on the edge.
                gaps::segments(&ts, gaps::threshold(usual, column_ns))
                    .into_iter()
                    .filter_map(|run| {
                        let mut part = pts[run].to_vec();
                        clip_to_range(&mut part, from, to);
                        (!part.is_empty())
                            .then(|| part.iter().map(|p| (secs(p.ts_ns), p.value)).collect())
                    })
                    .collect()
            })
            .collect();
        let segments: usize = lines.iter().map(Vec::len).sum();
        let (lo, hi) = lines
            .iter()
            .flatten()
            .flatten()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, v)| {
                (lo.min(v), hi.max(v))
            });
        let (y0, y1) = y_range(lo, hi);

        let label_font = ("sans-serif", FONT_CSS_PX * dpr)
            .into_font()
            .color(&theme.text);
        let mut chart = ChartBuilder::on(&root)
            .margin(px(10.0))
            .margin_left(px(4.0))
            // Room for half of the last time label, which is centred on the right edge.
            .margin_right(px(28.0))
            .x_label_area_size(px(26.0))
            .y_label_area_size(px(52.0))
            .build_cartesian_2d(secs(from)..secs(to), y0..y1)
            .map_err(|e| e.to_string())?;

        let tz = utc_offset_minutes();
        let css_w = f64::from(w) / dpr;
        let css_h = f64::from(h) / dpr;
        chart
            .configure_mesh()
            .x_labels(((css_w / 90.0) as usize).clamp(2, 12))
            .y_labels(((css_h / 45.0) as usize).clamp(3, 10))
            .x_label_formatter(&|x| format_clock(*x, tz, span_s))
            .y_label_formatter(&|y| format_value(*y))
            .label_style(label_font)
            .axis_style(ShapeStyle::from(theme.axis).stroke_width(px(1.0).max(1) as u32))
            .bold_line_style(ShapeStyle::from(theme.grid).stroke_width(px(1.0).max(1) as u32))
            .light_line_style(ShapeStyle::from(theme.background))
            .draw()
            .map_err(|e| e.to_string())?;

        let stroke = (1.75 * dpr).round().max(1.0) as u32;
        for (i, runs) in lines.into_iter().enumerate() {
            let (r, g, b) = series_color(i);
            let style = RGBColor(r, g, b).stroke_width(stroke);
            for line in runs {
                // A lone point between holes is a dot: a line needs two.
                if line.len() == 1 {
                    chart
                        .draw_series(std::iter::once(Circle::new(
                            line[0],
                            stroke * 2,
                            style.filled(),
                        )))
                        .map_err(|e| e.to_string())?;
                } else {
                    chart
                        .draw_series(LineSeries::new(line, style))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let held: usize = state.series.values().map(|r| r.len()).sum();
        Ok((xr, yr, (from, to), (y0, y1), held, segments))
    })?;
    root.present().map_err(|e| e.to_string())?;

    let (xr, yr, (from, to), (y0, y1), held, segments) = geometry;
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
        ("data-frames", frame.to_string()),
        ("data-points", held.to_string()),
        ("data-segments", segments.to_string()),
    ];
    for (name, value) in attrs {
        let _ = el.set_attribute(name, &value);
    }
    Ok(())
}
