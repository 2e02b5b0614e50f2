//! The HTTP server: state, the router (assembled here and nowhere else) and [`run`].
//!
//! `run` takes an already-bound listener and a shutdown future, so tests start the real server
//! on `127.0.0.1:0` and stop it cleanly. Shutdown stops accepting connections, tells every
//! live session to close (code 1001, so browsers reconnect), finishes in-flight requests
//! (for at most [`config::Limits::drain_limit`]) and waits up to [`SHUTDOWN_GRACE`] for
//! sessions to end.

pub mod assets;
pub mod auth;
pub mod config;
pub mod config_file;
pub mod demo;
pub mod headers;
pub mod hub;
pub mod ingest;
pub mod metrics;
pub mod ops;
pub mod query;
pub mod series;
pub mod slow_client;
pub mod status;
pub mod store;
pub mod ws;

use crate::app::{shell, App};
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use config::Config;
use hub::Hub;
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use store::memory::MemoryStore;
use store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for live sessions to close before giving up on them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Everything a handler or server function needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub leptos: LeptosOptions,
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub hub: Hub,
    /// Cancelled when shutdown begins; long-lived tasks select on it.
    pub shutdown: CancellationToken,
    /// Live sessions and background tasks, awaited on shutdown.
    pub tasks: TaskTracker,
    /// Who may push points, decided from the listening address at start.
    pub ingest_auth: auth::IngestAuth,
    /// Line protocol series keys by their text, so repeated senders skip rebuilding them.
    pub series_keys: Arc<ingest::key_cache::KeyCache>,
    /// One permit per open live connection (`--max-connections`).
    pub connections: Arc<tokio::sync::Semaphore>,
    /// Whether the live feed is whole (see [`status`]); sessions and `/healthz` watch it.
    pub status: status::StatusTx,
    /// In Redis mode, the store whose feeder `run` starts.
    pub redis: Option<Arc<store::redis::RedisStore>>,
    /// Counters behind `/metrics` and the `livechart.*` series.
    pub metrics: Arc<metrics::Metrics>,
    /// The site's files (embedded or on disk) and the hashed names the page links.
    pub assets: Arc<assets::Assets>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// The server's clock in nanoseconds since the epoch: "now" for points sent without a
/// timestamp, and the reference for windows and retention.
pub fn now_ns() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl AppState {
    /// State for a server listening on `addr` (which decides the ingest policy).
    pub fn new(config: Config, addr: SocketAddr) -> Result<Self, store::StoreError> {
        let limits = &config.limits;
        let hub = Hub::new(limits.hub_capacity, limits.replay_points);
        let status = status::channel();
        let mut redis = None;
        let store: Arc<dyn Store> = match &config.storage {
            config::Storage::Memory => Arc::new(
                MemoryStore::new(limits.ring_capacity, limits.max_series).with_hub(hub.clone()),
            ),
            config::Storage::Sqlite {
                dir,
                durability,
                retention,
                max_disk_bytes,
            } => Arc::new(store::sqlite::SqliteStore::open(
                store::sqlite::SqliteOptions {
                    dir: dir.clone(),
                    durability: *durability,
                    retention: *retention,
                    max_disk_bytes: *max_disk_bytes,
                    max_series: limits.max_series,
                    ring_capacity: limits.ring_capacity,
                    warm: config.window,
                    hub: Some(hub.clone()),
                },
            )?),
            config::Storage::Redis {
                url,
                cluster,
                retention,
            } => {
                let store = Arc::new(store::redis::RedisStore::open(
                    store::redis::RedisOptions {
                        url: url.clone(),
                        cluster: *cluster,
                        retention: *retention,
                        max_series: limits.max_series,
                        ring_capacity: limits.ring_capacity,
                        warm: config.window,
                        hub: hub.clone(),
                        status: status.clone(),
                    },
                )?);
                redis = Some(store.clone());
                store
            }
        };
        Ok(Self {
            ingest_auth: auth::IngestAuth::decide(
                &config.ingest_tokens,
                config.allow_anonymous_ingest,
                addr,
            ),
            leptos: config.leptos.clone(),
            assets: Arc::new(assets::Assets::load(&config.leptos.site_root)),
            store,
            hub,
            series_keys: Arc::new(ingest::key_cache::KeyCache::new(limits.max_series)),
            connections: Arc::new(tokio::sync::Semaphore::new(limits.max_connections)),
            config: Arc::new(config),
            status,
            redis,
            metrics: Arc::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }
}

/// Any address that is neither a page, an endpoint nor a file: a 404 saying so, in the app's
/// style, rather than a dashboard that would look as if the address meant something. Served
/// as plain HTML (no client code): the app itself has one page.
fn not_found_page(state: &AppState) -> axum::response::Response {
    let css = state
        .assets
        .page(&state.leptos.site_pkg_dir, &state.leptos.output_name)
        .css;
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <link rel=\"stylesheet\" href=\"{css}\"><title>Page not found · livechart</title></head>\
         <body><main class=\"not-found\"><h1>Page not found</h1>\
         <p>livechart has one page, the dashboard.</p>\
         <p><a href=\"/\">Open the dashboard</a></p></main></body></html>"
    );
    (
        axum::http::StatusCode::NOT_FOUND,
        [(axum::http::header::CACHE_CONTROL, "no-cache")],
        axum::response::Html(html),
    )
        .into_response()
}

/// Every route of the app: the demo-compatible ingest, the live feed, health, server functions
/// and the server-rendered pages, with static files (the wasm bundle, CSS) as the fallback.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    // What every page render gets: who may frame it, and the client's hashed file names.
    let page_context = {
        let frame = headers::FrameAncestors(state.config.frame_ancestors.clone());
        let page = state
            .assets
            .page(&state.leptos.site_pkg_dir, &state.leptos.output_name);
        move || {
            leptos::prelude::provide_context(frame.clone());
            leptos::prelude::provide_context(page.clone());
        }
    };
    // Server functions read their bodies through axum's limit; /chart_data applies its own.
    let body_limit = DefaultBodyLimit::max(state.config.limits.max_body_bytes);
    Router::new()
        .route("/chart_data", post(ingest::chart_data::post))
        .route("/api/v1/points", post(ingest::points::post))
        .route("/api/v2/write", post(ingest::influx::write))
        .route("/write", post(ingest::influx::write_v1))
        .route("/api/v1/series", get(series::list))
        .route("/api/v1/query", get(query::get))
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(ops::health))
        .route("/readyz", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/ping", get(ops::influx_ping).head(ops::influx_ping))
        .route("/health", get(ops::influx_health))
        .route("/query", post(ops::influx_query).get(ops::influx_query))
        .leptos_routes_with_context(&state, routes, page_context.clone(), {
            let options = state.leptos.clone();
            move || shell(options.clone())
        })
        .fallback({
            // Files from disk when the site is not embedded (`cargo leptos watch`).
            let files = leptos_axum::file_and_error_handler_with_context::<AppState, _>(
                page_context,
                shell,
            );
            move |State(state): State<AppState>, req: axum::extract::Request| {
                let files = files.clone();
                async move {
                    if let Some(file) = state.assets.respond(&req) {
                        return file;
                    }
                    if !state.assets.on_disk(req.uri().path()) {
                        return not_found_page(&state);
                    }
                    files(req.uri().clone(), State(state), req).await
                }
            }
        })
        .layer(body_limit)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ingest::deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_ingest_token,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_viewer_token,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::common,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::observe,
        ))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then drains as described in the module doc.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let state = AppState::new(config, addr).map_err(std::io::Error::other)?;
    let c = &state.config;
    tracing::info!(
        demo = c.demo,
        window_secs = c.window.as_secs(),
        ring_capacity = c.limits.ring_capacity,
        max_series = c.limits.max_series,
        max_body_bytes = c.limits.max_body_bytes,
        site_root = %state.leptos.site_root,
        assets = %state.assets.source,
        ingest_auth = ?state.ingest_auth,
        "serving"
    );
    if let auth::IngestAuth::Closed { addr } = &state.ingest_auth {
        tracing::warn!(%addr, "ingest refuses every request: no --ingest-token on a non-loopback address (see --allow-anonymous-ingest)");
    }
    if let Some(redis) = &state.redis {
        state
            .tasks
            .spawn(redis.clone().feed(state.shutdown.clone()));
    }
    if state.config.self_metrics {
        // Instances often all listen on 0.0.0.0:3000: the host name tells them apart.
        let instance = state.redis.is_some().then(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .or_else(|| std::env::var("HOSTNAME").ok())
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| addr.ip().to_string());
            format!("{host}:{}", addr.port())
        });
        state
            .tasks
            .spawn(ops::self_metrics(state.clone(), instance));
    }
    if state.config.demo {
        state.tasks.spawn(demo::run(state.clone()));
    }
    let token = state.shutdown.clone();
    let tasks = state.tasks.clone();
    let header_timeout = state.config.limits.header_timeout;
    let drain_limit = state.config.limits.drain_limit;
    let app = router(state);

    let stop = {
        let token = token.clone();
        async move {
            tokio::select! {
                _ = shutdown => {}
                _ = token.cancelled() => {}
            }
            token.cancel();
        }
    };
    let listener = slow_client::Listener {
        inner: listener,
        deadline: header_timeout,
    };
    // Requests in flight get `--request-timeout` and more to finish, but no longer: a
    // client trickling a body to a route without a deadline must not keep the process up
    // (only SIGKILL would end it, and the database would not be marked closed cleanly).
    // Points already handed to the store are committed either way.
    let serve = std::future::IntoFuture::into_future(
        axum::serve(listener, app).with_graceful_shutdown(stop),
    );
    let overdue = async {
        token.cancelled().await;
        tokio::time::sleep(drain_limit).await;
    };
    tokio::select! {
        served = serve => served?,
        () = overdue => tracing::warn!(
            drain_secs = drain_limit.as_secs_f64(),
            "requests still open after the drain limit; closing them"
        ),
    }

    tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = SHUTDOWN_GRACE.as_secs(),
            "live sessions still open after the grace period; closing anyway"
        );
    }
    Ok(())
}
