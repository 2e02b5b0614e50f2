//! Mouse, touch and keyboard on the chart, turned into [`Viewport`] changes.
//!
//! - Desktop: wheel zooms about the cursor; drag pans; Shift+drag selects a range to zoom to;
//!   hovering shows the crosshair; double click returns to live.
//! - Touch: one finger swiped sideways pans, while a vertical swipe still scrolls the page
//!   (`touch-action: pan-y` leaves vertical panning to the browser, which then cancels our
//!   pointer); two fingers pinch-zoom about their middle; tap and hold inspects, with the
//!   tooltip above the finger; double tap returns to live.
//! - Keyboard (the chart box is focusable): arrows pan, `+`/`-` zoom, `L` live, `Escape`
//!   closes the tooltip.
//!
//! Every move starts from the view as it was when the gesture began, so a drag is exact
//! however many events arrive. Pointer events cover mouse, pen and touch alike.

use super::draw::SharedDrawn;
use super::listeners::Listeners;
use super::{ChartCtl, Inspect, InspectRow, Mounted};
use crate::app::live::{client_now_ns, LiveFeed};
use crate::history_cache::value_at;
use crate::ticks::format_instant;
use crate::view::{css_color, format_with_unit, live_window};
use crate::viewport::{Viewport, PAN_STEP, ZOOM_STEP};
use leptos::html::Div;
use leptos::prelude::*;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, KeyboardEvent, PointerEvent, WheelEvent};

/// A finger that moves less than this (CSS px) is holding still: a tap or a long press.
const TOUCH_SLOP_PX: f64 = 8.0;
/// A mouse that moves less than this (CSS px) between down and up clicked.
const MOUSE_SLOP_PX: f64 = 3.0;
/// Holding a finger still this long inspects (the platform's long-press feel).
const LONG_PRESS_MS: i32 = 450;
/// Two taps closer together than this are a double tap.
const DOUBLE_TAP_MS: f64 = 300.0;
/// A drag selection narrower than this is a click, not a zoom.
const MIN_SELECTION_PX: f64 = 6.0;
/// Pixels of wheel movement per zoom step (one notch of a mouse wheel).
const WHEEL_PX_PER_STEP: f64 = 100.0;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Idle,
    /// Mouse drag or one-finger swipe: panning from `start`.
    Pan,
    /// Shift+drag: selecting from `x0`.
    Select,
    /// Two fingers: pinching from `start`, with their distance and middle then.
    Pinch {
        dist: f64,
        mid: f64,
    },
    /// A finger down, not yet moved: may become a pan, a long press or a tap.
    Press,
    /// A finger held: inspecting where it is.
    Inspect,
}

struct Gesture {
    mode: Mode,
    pointers: BTreeMap<i32, (f64, f64)>,
    start: Viewport,
    live_end: i64,
    x0: f64,
    y0: f64,
    down_at: f64,
    last_tap: Option<(f64, f64)>,
    long_press: Option<i32>,
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

pub fn attach(
    chart_box: NodeRef<Div>,
    feed: LiveFeed,
    ctl: ChartCtl,
    drawn: SharedDrawn,
    mounted: Mounted,
    listeners: Listeners,
) {
    Effect::new(move |prev: Option<bool>| {
        if prev == Some(true) {
            return true;
        }
        let Some(el) = chart_box.get() else {
            return false;
        };
        listen(el.into(), feed, ctl, drawn.clone(), mounted, &listeners);
        true
    });
}

fn live_end(feed: LiveFeed) -> i64 {
    feed.data
        .with_untracked(|d| live_window(d.server_now(client_now_ns()), d.newest_ns(), 0).1)
}

/// The pointer's position in CSS pixels inside the element.
fn local(el: &HtmlElement, x: f64, y: f64) -> (f64, f64) {
    let r = el.get_bounding_client_rect();
    (x - r.left(), y - r.top())
}

/// Where `x` falls across the plot, 0 at its left edge and 1 at its right.
fn fraction(drawn: &SharedDrawn, x: f64) -> f64 {
    let d = drawn.borrow();
    let (left, _, right, _) = d.plot;
    if right > left {
        (x - left) / (right - left)
    } else {
        0.5
    }
}

fn plot_width(drawn: &SharedDrawn) -> f64 {
    let d = drawn.borrow();
    (d.plot.2 - d.plot.0).max(1.0)
}

/// The crosshair at `x` with every shown series' nearest value; the tooltip beside the cursor
/// or, for a finger, above it.
fn inspect_at(drawn: &SharedDrawn, x: f64, y: f64, finger: bool) -> Option<Inspect> {
    let d = drawn.borrow();
    let (left, top, right, bottom) = d.plot;
    if right <= left || x < left || x > right {
        return None;
    }
    let f = (x - left) / (right - left);
    let t = d.from_ns + ((d.to_ns - d.from_ns) as f64 * f) as i64;
    // Within two pixel columns of a point counts as on it.
    let slack = ((d.to_ns - d.from_ns) as f64 / (right - left) * 2.0) as i64;
    let rows = d
        .series
        .iter()
        .map(|s| InspectRow {
            name: s.name.clone(),
            color: css_color(s.color),
            value: value_at(&s.points, t, s.max_gap_ns, slack).map_or_else(
                || "–".to_string(),
                |p| format_with_unit(p.value, s.unit.as_deref()),
            ),
        })
        .collect();
    let (tip_left, tip_top) = if finger {
        // Centred above the finger, so the hand does not cover it.
        (x, (y - 56.0).max(0.0))
    } else if x > (left + right) / 2.0 {
        (x - 12.0, y + 12.0)
    } else {
        (x + 12.0, y + 12.0)
    };
    Some(Inspect {
        x,
        top,
        bottom,
        tip_left,
        tip_top,
        time: format_instant(t, &super::draw::BrowserZone),
        rows,
        placement: if finger {
            "above"
        } else if x > (left + right) / 2.0 {
            "left"
        } else {
            "right"
        },
    })
}

fn listen(
    el: HtmlElement,
    feed: LiveFeed,
    ctl: ChartCtl,
    drawn: SharedDrawn,
    mounted: Mounted,
    listeners: &Listeners,
) {
    let g = Rc::new(RefCell::new(Gesture {
        mode: Mode::Idle,
        pointers: BTreeMap::new(),
        start: Viewport::default(),
        live_end: 0,
        x0: 0.0,
        y0: 0.0,
        down_at: 0.0,
        last_tap: None,
        long_press: None,
    }));

    let cancel_long_press = {
        let g = g.clone();
        move || {
            if let Some(id) = g.borrow_mut().long_press.take() {
                if let Some(w) = web_sys::window() {
                    w.clear_timeout_with_handle(id);
                }
            }
        }
    };

    // Pointer down: start a pan, a selection, a pinch or a press.
    {
        let (g, el2, drawn, cancel_long_press) = (
            g.clone(),
            el.clone(),
            drawn.clone(),
            cancel_long_press.clone(),
        );
        on(
            listeners,
            &el,
            "pointerdown",
            mounted,
            move |ev: PointerEvent| {
                let (x, y) = local(&el2, f64::from(ev.client_x()), f64::from(ev.client_y()));
                let touch = ev.pointer_type() == "touch";
                if !touch && ev.button() != 0 {
                    return;
                }
                let _ = el2.set_pointer_capture(ev.pointer_id());
                let end = live_end(feed);
                let mut s = g.borrow_mut();
                s.pointers.insert(ev.pointer_id(), (x, y));
                // A third finger joins nothing: the pinch goes on with the first two.
                if s.pointers.len() > 2 {
                    return;
                }
                s.live_end = end;
                // The gesture works on the view as it stands now, frozen.
                let (from, to) = ctl.view.get_untracked().range(end);
                s.start = Viewport::paused(from, to);
                if s.pointers.len() == 2 {
                    drop(s);
                    cancel_long_press();
                    let mut s = g.borrow_mut();
                    let pts: Vec<(f64, f64)> = s.pointers.values().copied().collect();
                    let dist = distance(pts[0], pts[1]);
                    let mid = (pts[0].0 + pts[1].0) / 2.0;
                    s.mode = Mode::Pinch { dist, mid };
                    ctl.inspect.set(None);
                    return;
                }
                s.x0 = x;
                s.y0 = y;
                s.down_at = now_ms();
                if touch {
                    s.mode = Mode::Press;
                    let g2 = g.clone();
                    let drawn2 = drawn.clone();
                    let cb = Closure::once_into_js(move || {
                        if !mounted.is() {
                            return;
                        }
                        let mut s = g2.borrow_mut();
                        s.long_press = None;
                        if s.mode == Mode::Press {
                            s.mode = Mode::Inspect;
                            let (x, y) = (s.x0, s.y0);
                            let start = s.start;
                            drop(s);
                            // Inspecting stops the chart where it is, so the values stay put.
                            ctl.view.set(start);
                            ctl.inspect.set(inspect_at(&drawn2, x, y, true));
                        }
                    });
                    s.long_press = web_sys::window().and_then(|w| {
                        w.set_timeout_with_callback_and_timeout_and_arguments_0(
                            cb.unchecked_ref(),
                            LONG_PRESS_MS,
                        )
                        .ok()
                    });
                } else if ev.shift_key() {
                    s.mode = Mode::Select;
                    ctl.selection.set(Some((x, x)));
                } else {
                    // A click is not a pan: the drag starts once the mouse has moved.
                    s.mode = Mode::Press;
                }
            },
        );
    }

    // Pointer move: carry the gesture on, or hover.
    {
        let (g, el2, drawn, cancel_long_press) = (
            g.clone(),
            el.clone(),
            drawn.clone(),
            cancel_long_press.clone(),
        );
        on(
            listeners,
            &el,
            "pointermove",
            mounted,
            move |ev: PointerEvent| {
                let (x, y) = local(&el2, f64::from(ev.client_x()), f64::from(ev.client_y()));
                let touch = ev.pointer_type() == "touch";
                let mut s = g.borrow_mut();
                if s.pointers.contains_key(&ev.pointer_id()) {
                    s.pointers.insert(ev.pointer_id(), (x, y));
                }
                let width = plot_width(&drawn);
                match s.mode {
                    Mode::Idle if !touch => {
                        drop(s);
                        ctl.inspect.set(inspect_at(&drawn, x, y, false));
                    }
                    Mode::Idle => {}
                    Mode::Press => {
                        let slop = if touch { TOUCH_SLOP_PX } else { MOUSE_SLOP_PX };
                        let (dx, dy) = ((x - s.x0).abs(), (y - s.y0).abs());
                        if dx > slop && dx >= dy {
                            s.mode = Mode::Pan;
                            let v = s.start.pan(-(x - s.x0) / width, s.live_end);
                            drop(s);
                            cancel_long_press();
                            el2.class_list().add_1("dragging").ok();
                            ctl.view.set(v);
                            ctl.inspect.set(None);
                        } else if dy > slop {
                            // Vertical: the page scrolls (touch) or nothing happens (mouse).
                            s.mode = Mode::Idle;
                            drop(s);
                            cancel_long_press();
                        }
                    }
                    Mode::Pan => {
                        let v = s.start.pan(-(x - s.x0) / width, s.live_end);
                        drop(s);
                        ctl.view.set(v);
                        if !touch {
                            ctl.inspect.set(None);
                        }
                    }
                    Mode::Select => {
                        let x0 = s.x0;
                        drop(s);
                        ctl.selection.set(Some((x0, x)));
                    }
                    Mode::Pinch { dist, mid } => {
                        if s.pointers.len() < 2 {
                            return;
                        }
                        let pts: Vec<(f64, f64)> = s.pointers.values().copied().collect();
                        let now_dist = distance(pts[0], pts[1]).max(1.0);
                        let now_mid = (pts[0].0 + pts[1].0) / 2.0;
                        let anchor = fraction(&drawn, mid);
                        let v = s
                            .start
                            .zoom(dist.max(1.0) / now_dist, anchor, s.live_end)
                            .pan(-(now_mid - mid) / width, s.live_end);
                        drop(s);
                        ctl.view.set(v);
                    }
                    Mode::Inspect => {
                        drop(s);
                        ctl.inspect.set(inspect_at(&drawn, x, y, true));
                    }
                }
            },
        );
    }

    // Pointer up or cancelled: finish what was going on.
    for kind in ["pointerup", "pointercancel"] {
        let (g, el2, drawn, cancel_long_press) = (
            g.clone(),
            el.clone(),
            drawn.clone(),
            cancel_long_press.clone(),
        );
        on(listeners, &el, kind, mounted, move |ev: PointerEvent| {
            let (x, y) = local(&el2, f64::from(ev.client_x()), f64::from(ev.client_y()));
            let cancelled = ev.type_() == "pointercancel";
            cancel_long_press();
            el2.class_list().remove_1("dragging").ok();
            let mut s = g.borrow_mut();
            s.pointers.remove(&ev.pointer_id());
            let mode = s.mode;
            match mode {
                Mode::Select => {
                    ctl.selection.set(None);
                    if !cancelled && (x - s.x0).abs() >= MIN_SELECTION_PX {
                        let (a, b) = (fraction(&drawn, s.x0), fraction(&drawn, x));
                        let v = s.start.select(a, b, s.live_end);
                        ctl.view.set(v);
                    }
                }
                Mode::Press if !cancelled && ev.pointer_type() == "touch" => {
                    // A tap: a second one soon after at about the same place returns to live.
                    let now = now_ms();
                    let double = s.last_tap.is_some_and(|(at, tx)| {
                        now - at < DOUBLE_TAP_MS && (tx - x).abs() < 4.0 * TOUCH_SLOP_PX
                    });
                    s.last_tap = if double { None } else { Some((now, x)) };
                    if double {
                        drop(s);
                        ctl.go_live();
                        let mut s = g.borrow_mut();
                        s.mode = Mode::Idle;
                        return;
                    }
                    // A tap elsewhere closes an open tooltip.
                    ctl.inspect.set(None);
                }
                Mode::Pinch { .. } if s.pointers.len() == 2 => {
                    // One of three fingers lifted: pinch on from here with the two left.
                    let pts: Vec<(f64, f64)> = s.pointers.values().copied().collect();
                    s.start = ctl.view.get_untracked();
                    s.mode = Mode::Pinch {
                        dist: distance(pts[0], pts[1]),
                        mid: (pts[0].0 + pts[1].0) / 2.0,
                    };
                    return;
                }
                Mode::Pinch { .. } if s.pointers.len() == 1 => {
                    // One finger lifted: the other pans on from here.
                    let (px, py) = s.pointers.values().next().copied().unwrap_or((x, y));
                    s.start = ctl.view.get_untracked();
                    s.x0 = px;
                    s.y0 = py;
                    s.mode = Mode::Pan;
                    return;
                }
                _ => {}
            }
            if s.pointers.is_empty() {
                s.mode = Mode::Idle;
            }
        });
    }

    {
        let g = g.clone();
        on(
            listeners,
            &el,
            "pointerleave",
            mounted,
            move |ev: PointerEvent| {
                if ev.pointer_type() != "touch" && g.borrow().mode == Mode::Idle {
                    ctl.inspect.set(None);
                }
            },
        );
    }

    // Double click: back to live, as in Grafana and uPlot.
    on(
        listeners,
        &el,
        "dblclick",
        mounted,
        move |_: web_sys::MouseEvent| ctl.go_live(),
    );

    // Wheel: zoom about the cursor; sideways (or Shift+wheel) pans.
    {
        let (el2, drawn) = (el.clone(), drawn.clone());
        on(listeners, &el, "wheel", mounted, move |ev: WheelEvent| {
            ev.prevent_default();
            let (x, _) = local(&el2, f64::from(ev.client_x()), f64::from(ev.client_y()));
            // deltaMode 1 counts lines, 2 pages: make both pixels.
            let unit = match ev.delta_mode() {
                1 => 33.0,
                2 => 400.0,
                _ => 1.0,
            };
            let (dx, dy) = (ev.delta_x() * unit, ev.delta_y() * unit);
            let end = live_end(feed);
            let view = ctl.view.get_untracked();
            let v = if ev.shift_key() || dx.abs() > dy.abs() {
                let shift = if ev.shift_key() && dx == 0.0 { dy } else { dx };
                view.pan(shift / plot_width(&drawn), end)
            } else {
                let factor = ZOOM_STEP.powf(dy / WHEEL_PX_PER_STEP);
                view.zoom(factor, fraction(&drawn, x), end)
            };
            ctl.view.set(v);
        });
    }

    // Keys, when the chart has focus.
    on(
        listeners,
        &el,
        "keydown",
        mounted,
        move |ev: KeyboardEvent| {
            // Ctrl/Cmd + and - zoom the page, Ctrl/Cmd+L is the address bar: not ours.
            if ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
                return;
            }
            let end = live_end(feed);
            let view = ctl.view.get_untracked();
            // Zooming a live view keeps the newest data in sight.
            let anchor = if view.is_live() { 1.0 } else { 0.5 };
            let v = match ev.key().as_str() {
                "ArrowLeft" => view.pan(-PAN_STEP, end),
                "ArrowRight" => view.pan(PAN_STEP, end),
                "+" | "=" => view.zoom(1.0 / ZOOM_STEP, anchor, end),
                "-" | "_" => view.zoom(ZOOM_STEP, anchor, end),
                "l" | "L" => {
                    ev.prevent_default();
                    ctl.go_live();
                    return;
                }
                "Escape" => {
                    ctl.inspect.set(None);
                    return;
                }
                _ => return,
            };
            ev.prevent_default();
            ctl.view.set(v);
        },
    );
}

fn distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

/// Adds a listener until the chart goes. Not passive, so wheel and touch can keep the page
/// from scrolling while they zoom the chart.
fn on<E: wasm_bindgen::convert::FromWasmAbi + 'static>(
    listeners: &Listeners,
    el: &HtmlElement,
    kind: &'static str,
    mounted: Mounted,
    mut f: impl FnMut(E) + 'static,
) {
    listeners.on(el, kind, false, move |e: E| {
        if mounted.is() {
            f(e)
        }
    });
}
