//! Operations: the health probe and the signals that stop the server.

use axum::Json;
use serde_json::{json, Value};

/// `GET /healthz`: answers while the server accepts requests; for load balancers and scripts
/// that wait for start-up.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, whichever comes first; graceful shutdown starts
/// then. If a handler cannot be installed, that signal simply never fires.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
