//! Loads history for the part of the view the live feed cannot draw, at the chart's pixel
//! width, through the `history` server function (M4 on the server, so peaks survive).
//!
//! Requests wait until the view has been still for [`SETTLE_MS`] (a wheel spin asks once, for
//! where it stopped), one batch is in flight at a time, and an answer for a view that has
//! moved on is still kept: [`HistoryCache::plan`] decides afresh whether it is enough.

use super::{ChartCtl, Mounted};
use crate::app::api::{history, ApiError};
use crate::app::live::{client_now_ns, LiveFeed};
use crate::history::{HistoryQuery, MAX_QUERY_WIDTH};
use crate::history_cache::{FetchPlan, HistoryCache};
use crate::view::live_window;
use futures::future::join_all;
use gloo_timers::callback::Timeout;
use leptos::html::Canvas;
use leptos::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

/// Quiet time after the last view change before asking the server.
const SETTLE_MS: u32 = 120;
/// After a failed request, wait this long before trying again rather than hammering.
const RETRY_MS: u32 = 3_000;

pub fn attach(canvas: NodeRef<Canvas>, feed: LiveFeed, ctl: ChartCtl, mounted: Mounted) {
    let busy = Rc::new(Cell::new(false));
    let timer: Rc<RefCell<Option<Timeout>>> = Rc::default();
    // Bumped when the choice of series changes: an answer for the old choice is dropped.
    let generation = Rc::new(Cell::new(0u64));
    {
        let generation = generation.clone();
        Effect::new(move |_| {
            ctl.series.track();
            generation.set(generation.get() + 1);
            ctl.history.set(HistoryCache::default());
        });
    }
    Effect::new(move |_| {
        ctl.view.track();
        ctl.series.track();
        feed.data.track();
        ctl.history.track();
        // A pending timer stays: it plans afresh when it fires. Replacing it on every feed
        // update would starve it while data streams faster than it waits.
        if busy.get() || timer.borrow().is_some() || plan(canvas, feed, ctl).is_none() {
            return;
        }
        let (busy, timer2, generation) = (busy.clone(), timer.clone(), generation.clone());
        *timer.borrow_mut() = Some(Timeout::new(SETTLE_MS, move || {
            timer2.borrow_mut().take();
            if !mounted.is() {
                return;
            }
            // The view may have moved while waiting: plan for where it is now.
            let Some(plan) = plan(canvas, feed, ctl) else {
                return;
            };
            busy.set(true);
            let asked = generation.get();
            leptos::task::spawn_local(async move {
                let ok = fetch(feed, ctl, plan, mounted, move || generation.get() == asked).await;
                if !ok {
                    gloo_timers::future::TimeoutFuture::new(RETRY_MS).await;
                }
                busy.set(false);
                if !mounted.is() {
                    return;
                }
                // Look again: the view may have moved on while this was loading.
                ctl.history.update(|_| {});
            });
        }));
    });
}

/// What to fetch for the view as it is, if anything.
fn plan(canvas: NodeRef<Canvas>, feed: LiveFeed, ctl: ChartCtl) -> Option<FetchPlan> {
    let width = canvas.get_untracked().map_or(0, |c| c.width() as usize);
    if width == 0 {
        return None;
    }
    let view = ctl.view.get_untracked();
    let (now, coverage, live_end, any) = feed.data.with_untracked(|d| {
        let now = d.server_now(client_now_ns());
        (
            now,
            d.coverage(),
            live_window(now, d.newest_ns(), 0).1,
            !d.series.is_empty(),
        )
    });
    if !any {
        return None;
    }
    let (from, to) = view.range(live_end);
    let plan = ctl
        .history
        .with_untracked(|h| h.plan(from, to, width, coverage, now))?;
    Some(FetchPlan {
        width: plan.width.clamp(1, MAX_QUERY_WIDTH),
        ..plan
    })
}

/// Asks for every series of the feed over the plan's range; true when all answered.
async fn fetch(
    feed: LiveFeed,
    ctl: ChartCtl,
    plan: FetchPlan,
    mounted: Mounted,
    still_wanted: impl Fn() -> bool,
) -> bool {
    let keys: Vec<_> = feed.data.with_untracked(|d| {
        d.series
            .keys()
            .filter(|k| ctl.shows(&k.to_string()))
            .cloned()
            .collect()
    });
    ctl.loading.update(|n| *n += 1);
    let answers = join_all(keys.iter().map(|series| {
        history(HistoryQuery {
            series: series.clone(),
            from_ns: plan.from_ns,
            to_ns: plan.to_ns,
            width: plan.width,
            raw_limit: None,
        })
    }))
    .await;
    if !mounted.is() {
        return true;
    }
    ctl.loading.update(|n| *n = n.saturating_sub(1));
    let mut series = BTreeMap::new();
    let mut ok = true;
    for (key, answer) in keys.into_iter().zip(answers) {
        match answer {
            Ok(r) => {
                series.insert(key, r.points);
            }
            // Refused (say, a series removed since): it has no history to show.
            Err(ApiError::BadRequest(e)) => {
                leptos::logging::warn!("livechart: history of {key}: {e}");
                series.insert(key, Vec::new());
            }
            Err(e) => {
                ok = false;
                leptos::logging::warn!("livechart: history request failed: {e}");
            }
        }
    }
    if ok && still_wanted() {
        let span = (plan.to_ns - plan.from_ns).max(1);
        ctl.history.set(HistoryCache {
            from_ns: plan.from_ns,
            to_ns: plan.to_ns,
            column_ns: (span / plan.width.max(1) as i64).max(1),
            series,
        });
    }
    ok
}
