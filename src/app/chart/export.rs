//! Export: the visible range as CSV (raw points from the server, not the chart's decimated
//! copy) and the chart as PNG (the canvas as drawn, in device pixels).

use super::{ChartCtl, Mounted};
use crate::app::api::history;
use crate::app::live::{client_now_ns, LiveFeed};
use crate::history::{long_csv, HistoryQuery, MAX_RAW_POINTS};
use crate::model::NANOS_PER_MILLI;
use crate::view::live_window;
use futures::future::join_all;
use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// Downloads every shown series in the visible range as one long-format CSV:
/// `series,time,timestamp_ns,value`, times in UTC.
pub fn csv(feed: LiveFeed, ctl: ChartCtl, mounted: Mounted) {
    let (from, to, keys) = feed.data.with_untracked(|d| {
        let live_end = live_window(d.server_now(client_now_ns()), d.newest_ns(), 0).1;
        let (from, to) = ctl.view.get_untracked().range(live_end);
        let hidden = ctl.hidden.get_untracked();
        let keys: Vec<_> = d
            .series
            .keys()
            .filter(|k| {
                let name = k.to_string();
                ctl.shows(&name) && !hidden.contains(&name)
            })
            .cloned()
            .collect();
        (from, to, keys)
    });
    ctl.notice.set(None);
    leptos::task::spawn_local(async move {
        ctl.loading.update(|n| *n += 1);
        let answers = join_all(keys.iter().map(|series| {
            history(HistoryQuery {
                series: series.clone(),
                from_ns: from,
                to_ns: to,
                width: 1,
                raw_limit: Some(MAX_RAW_POINTS),
            })
        }))
        .await;
        if !mounted.is() {
            return;
        }
        ctl.loading.update(|n| *n = n.saturating_sub(1));
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        for (key, answer) in keys.iter().zip(answers) {
            match answer {
                Ok(r) => {
                    if r.truncated {
                        problems.push(format!(
                            "{key} has more than {MAX_RAW_POINTS} points in the range: \
                             the file holds its first {MAX_RAW_POINTS}"
                        ));
                    }
                    rows.push((key.to_string(), r.points));
                }
                Err(e) => problems.push(format!("{key} is missing: {e}")),
            }
        }
        if !problems.is_empty() {
            let text = format!("CSV export incomplete. {}.", problems.join("; "));
            leptos::logging::warn!("livechart: {text}");
            ctl.notice.set(Some(text));
        }
        let text = long_csv(&rows);
        let name = format!(
            "livechart-{}-{}.csv",
            from / NANOS_PER_MILLI,
            to / NANOS_PER_MILLI
        );
        if let Err(e) = download_text(&text, "text/csv", &name) {
            leptos::logging::warn!("livechart: could not start the download: {e:?}");
            ctl.notice.set(Some(
                "The CSV download could not start in this browser.".into(),
            ));
        }
    });
}

/// Downloads the canvas as drawn.
pub fn png(canvas: NodeRef<Canvas>) {
    let Some(el) = canvas.get_untracked() else {
        return;
    };
    match el.to_data_url_with_type("image/png") {
        Ok(url) => {
            if let Err(e) = click_link(&url, "livechart.png") {
                leptos::logging::warn!("livechart: could not start the download: {e:?}");
            }
        }
        Err(e) => leptos::logging::warn!("livechart: the canvas cannot be exported: {e:?}"),
    }
}

fn download_text(text: &str, mime: &str, name: &str) -> Result<(), wasm_bindgen::JsValue> {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let result = click_link(&url, name);
    // The download has its own reference by now.
    let _ = web_sys::Url::revoke_object_url(&url);
    result
}

fn click_link(href: &str, name: &str) -> Result<(), wasm_bindgen::JsValue> {
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = document.create_element("a")?.dyn_into()?;
    a.set_href(href);
    a.set_download(name);
    a.click();
    Ok(())
}
