//! Whether the live feed is whole: what viewers are told when the shared store (Redis) is
//! away, and the signal that makes every session reload after the stream had to restart.
//!
//! One `watch` channel per server: the Redis feeder writes it, sessions and `/healthz` read
//! it. With the embedded store it never changes.

/// The live feed's state, as sessions and the health probe see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveStatus {
    /// `Some(why)` while the store cannot be reached: ingest answers 503 and no new points
    /// arrive, so viewers are shown why instead of a chart that silently froze.
    pub degraded: Option<String>,
    /// Raised each time the stream restarts from a new position (Redis lost its data, or
    /// this instance missed commits Redis no longer holds): what sessions hold no longer
    /// continues, so each of them sends its client a reload and a fresh snapshot.
    pub generation: u64,
}

pub type StatusTx = tokio::sync::watch::Sender<LiveStatus>;

/// A channel that starts healthy.
pub fn channel() -> StatusTx {
    tokio::sync::watch::Sender::new(LiveStatus::default())
}

/// Marks the feed degraded for `why` (the newest reason replaces an older one, so an
/// operator sees why Redis is unreachable rather than "connecting"), telling watchers only
/// when something changed.
pub fn degrade(tx: &StatusTx, why: String) {
    tx.send_if_modified(|s| {
        if s.degraded.as_ref() == Some(&why) {
            return false;
        }
        tracing::warn!(reason = %why, "live feed degraded");
        s.degraded = Some(why);
        true
    });
}

/// Marks the feed healthy again; with `restarted`, sessions reload.
pub fn recover(tx: &StatusTx, restarted: bool) {
    tx.send_if_modified(|s| {
        let was = s.degraded.take();
        if was.is_some() {
            tracing::info!("live feed recovered");
        }
        if restarted {
            s.generation += 1;
        }
        was.is_some() || restarted
    });
}
