//! The embedded durable store: SQLite (bundled) in WAL mode, one database under `--data-dir`.
//!
//! # Schema, and why
//! ```sql
//! series(id INTEGER PRIMARY KEY, name, labels /* JSON, sorted keys */, next_offset)
//! chunks(series_id, first_offset, end_offset, start_ns, end_ns, count, min, max, data)
//!        PRIMARY KEY (series_id, first_offset) WITHOUT ROWID
//!        INDEX (series_id, end_ns)
//! ```
//! A row per point would cost ~40 bytes of b-tree per 16-byte point and one insert each; a
//! *chunk* is the run of points one commit wrote for one series (see [`super::chunk`] for
//! the bytes), so a commit of 5 000 points over 1 000 series is 1 000 inserts of compact
//! blobs. Chunks are append-only: a write never reads or rewrites an earlier chunk, so
//! ingest costs the same whatever is stored. Reads merge the chunks overlapping a range in
//! offset order, later writes winning per timestamp (the rule everywhere in livechart).
//!
//! Offsets: every point a series accepts takes the next offset of that series; a chunk holds
//! `[first_offset, end_offset)`. The primary key is therefore append-ordered per series, and
//! the next offset after a restart is one index probe per series (the series row keeps it too,
//! for series whose chunks retention removed), never a scan.
//!
//! # Writes: group commit
//! One thread owns the write connection. Requests queue their batches; the thread takes
//! whatever is queued, writes it in one transaction and commits once, then answers every
//! request of the group. Concurrent requests share one fsync, so durability costs latency
//! (one commit) rather than throughput. A request is answered `Ok` only after its commit
//! returned: with `--durability fsync` (`synchronous=FULL`) the WAL is on disk; with
//! `relaxed` (`synchronous=NORMAL`) it is in the OS, surviving a killed process but not a
//! power cut.
//!
//! # The live window
//! Browsers are fed from an in-memory ring per series ([`MemoryStore`]) that is filled after
//! each commit and warmed from disk at start, so the live path never waits on a disk read.
//!
//! # Retention
//! The writer thread drops chunks that ended before `now - retention` between commits, a
//! series at a time, so neither ingest nor reads wait long on it; freed pages are reused, so
//! under steady ingest the file stops growing once retention is reached.

use super::memory::MemoryStore;
use super::{chunk, HistoryQuery, HistoryResult, SeriesInfo, Store, StoreError};
use crate::model::{Batch, Point, SeriesKey, SeriesPoints};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// File name inside `--data-dir`.
pub const DB_FILE: &str = "livechart.db";
/// Most requests one commit takes: bounds the transaction and the latency of the first one.
const MAX_GROUP: usize = 256;
/// How often the writer looks for expired chunks: a quarter of the retention, so nothing
/// outlives it by more than a quarter, between 100 ms and 30 s.
fn retention_every(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_millis(100), Duration::from_secs(30))
}

/// What a 2xx promises; see docs/GUARANTEES.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// `synchronous=FULL`: committed points survive a power loss.
    Fsync,
    /// `synchronous=NORMAL`: committed points survive a killed process, not a power loss.
    Relaxed,
}

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub dir: PathBuf,
    pub durability: Durability,
    pub retention: Duration,
    pub max_series: usize,
    pub ring_capacity: usize,
    /// How much of the newest history to load into memory at start (the live window).
    pub warm: Duration,
}

pub struct SqliteStore {
    live: MemoryStore,
    path: PathBuf,
    jobs: Mutex<mpsc::Sender<Job>>,
    readers: Mutex<Vec<Connection>>,
}

struct Job {
    batch: Batch,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn open(path: &Path, durability: Durability) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match durability {
        Durability::Fsync => "FULL",
        Durability::Relaxed => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    // A commit dirties about one leaf page per series it touches; a 64 MiB page cache keeps
    // those pages in memory between commits instead of re-reading them from the file.
    conn.pragma_update(None, "cache_size", -65_536)?;
    // Readers and the writer never block each other in WAL mode; a busy wait only covers
    // checkpoints.
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    next_offset INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name, labels)
);
CREATE TABLE IF NOT EXISTS chunks (
    series_id INTEGER NOT NULL,
    first_offset INTEGER NOT NULL,
    end_offset INTEGER NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    count INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (series_id, first_offset)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_by_end ON chunks (series_id, end_ns);
";

/// Per series, what the writer needs: its row id and next offset.
#[derive(Debug, Clone, Copy)]
struct SeriesState {
    id: i64,
    next_offset: i64,
}

impl SqliteStore {
    /// Opens (or creates) the database, loads the series and warms the live window. Costs
    /// one index probe per series and the chunks of the warm window, never a full scan.
    pub fn open(options: SqliteOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&options.dir).map_err(|e| {
            unavailable(format!(
                "cannot create data dir {}: {e}",
                options.dir.display()
            ))
        })?;
        let path = options.dir.join(DB_FILE);
        let conn = open(&path, options.durability)
            .map_err(|e| unavailable(format!("cannot open {}: {e}", path.display())))?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;

        let live = MemoryStore::new(options.ring_capacity, options.max_series.max(1));
        let series = load_series(&conn).map_err(unavailable)?;
        let since = now_ns().saturating_sub(duration_ns(options.warm));
        let mut warm = Batch::new();
        for (key, state) in &series {
            let points = read_range(&conn, state.id, since, i64::MAX).map_err(unavailable)?;
            warm.extend(key.clone(), points);
        }
        if !warm.is_empty() {
            // Loading what is already stored: nothing to publish, and the cap was checked
            // when the series were created.
            live.append_unchecked(&warm);
        }
        tracing::info!(path = %path.display(), series = series.len(), warm_points = warm.point_count(), "store opened");

        let (tx, rx) = mpsc::channel();
        let mut writer = Writer {
            conn,
            series,
            max_series: options.max_series,
            retention: options.retention,
            last_retention: None,
        };
        std::thread::Builder::new()
            .name("livechart-store".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| unavailable(format!("cannot start the store thread: {e}")))?;
        Ok(Self {
            live,
            path,
            jobs: Mutex::new(tx),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` on a pooled read connection on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => open(&self.path, Durability::Relaxed).map_err(unavailable)?,
        };
        let (conn, out) = tokio::task::spawn_blocking(move || {
            let out = f(&conn);
            (conn, out)
        })
        .await
        .map_err(unavailable)?;
        let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < 4 {
            pool.push(conn);
        }
        out.map_err(unavailable)
    }
}

fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn load_series(conn: &Connection) -> rusqlite::Result<HashMap<SeriesKey, SeriesState>> {
    let mut stmt = conn.prepare("SELECT id, name, labels, next_offset FROM series")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut last = conn.prepare(
        "SELECT end_offset FROM chunks WHERE series_id = ? ORDER BY first_offset DESC LIMIT 1",
    )?;
    let mut out = HashMap::new();
    for row in rows {
        let (id, name, labels, next_offset) = row?;
        let labels: BTreeMap<String, String> = serde_json::from_str(&labels).unwrap_or_default();
        let Ok(key) = SeriesKey::with_labels(name, labels) else {
            tracing::warn!(id, "skipping a stored series whose key no longer validates");
            continue;
        };
        let end: Option<i64> = last.query_row([id], |r| r.get(0)).optional()?;
        out.insert(
            key,
            SeriesState {
                id,
                next_offset: next_offset.max(end.unwrap_or(0)),
            },
        );
    }
    Ok(out)
}

/// The points of series `id` in `[from, to]`, later writes winning per timestamp.
fn read_range(conn: &Connection, id: i64, from: i64, to: i64) -> rusqlite::Result<Vec<Point>> {
    let mut stmt = conn.prepare_cached(
        "SELECT start_ns, count, data FROM chunks
         WHERE series_id = ?1 AND end_ns >= ?2 AND start_ns <= ?3
         ORDER BY first_offset",
    )?;
    let mut rows = stmt.query(params![id, from, to])?;
    let mut points = Vec::new();
    while let Some(row) = rows.next()? {
        let start: i64 = row.get(0)?;
        let count: i64 = row.get(1)?;
        let data = row.get_ref(2)?.as_blob()?;
        let before = points.len();
        if let Err(e) = chunk::decode(
            data,
            start,
            usize::try_from(count).unwrap_or(0),
            &mut points,
        ) {
            tracing::error!(series_id = id, start, "skipping a damaged chunk: {e}");
            points.truncate(before);
        }
    }
    // Stable: of equal timestamps the later chunk (higher offset) stays last, and wins.
    points.sort_by_key(|p| p.ts_ns);
    points.dedup_by(|later, kept| {
        let same = later.ts_ns == kept.ts_ns;
        if same {
            *kept = *later;
        }
        same
    });
    points.retain(|p| p.ts_ns >= from && p.ts_ns <= to);
    Ok(points)
}

struct Writer {
    conn: Connection,
    series: HashMap<SeriesKey, SeriesState>,
    max_series: usize,
    retention: Duration,
    last_retention: Option<Instant>,
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Job>) {
        loop {
            let first = match rx.recv_timeout(retention_every(self.retention)) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.maybe_expire();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            self.commit(group);
            self.maybe_expire();
        }
        tracing::info!("store writer stopped; every acknowledged point is committed");
    }

    /// Writes every job of the group in one transaction. A job crossing the series cap is
    /// refused alone; a database error refuses the whole group (nothing of it is stored).
    fn commit(&mut self, group: Vec<Job>) {
        let mut staged: HashMap<SeriesKey, SeriesState> = HashMap::new();
        let mut outcomes: Vec<(Job, Result<(), StoreError>)> = Vec::with_capacity(group.len());
        let written = (|| -> rusqlite::Result<()> {
            let tx = self.conn.transaction()?;
            {
                let mut new_series = tx.prepare_cached(
                    "INSERT INTO series (name, labels) VALUES (?1, ?2) RETURNING id",
                )?;
                let mut insert = tx.prepare_cached(
                    "INSERT INTO chunks (series_id, first_offset, end_offset, start_ns, end_ns, count, min, max, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                for job in group {
                    let known =
                        |k: &SeriesKey| self.series.contains_key(k) || staged.contains_key(k);
                    let adding = job.batch.iter().filter(|(k, _)| !known(k)).count();
                    let total = self.series.len()
                        + staged
                            .keys()
                            .filter(|k| !self.series.contains_key(*k))
                            .count();
                    if total + adding > self.max_series {
                        outcomes.push((
                            job,
                            Err(StoreError::TooManySeries {
                                limit: self.max_series,
                                adding,
                            }),
                        ));
                        continue;
                    }
                    for (key, points) in job.batch.iter() {
                        let state = match staged.get(key).or_else(|| self.series.get(key)) {
                            Some(s) => *s,
                            None => {
                                let labels = serde_json::to_string(key.labels())
                                    .unwrap_or_else(|_| "{}".into());
                                let id: i64 = new_series
                                    .query_row(params![key.name(), labels], |r| r.get(0))?;
                                SeriesState { id, next_offset: 0 }
                            }
                        };
                        let mut sorted = points.to_vec();
                        sorted.sort_by_key(|p| p.ts_ns);
                        let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
                            continue;
                        };
                        let count = sorted.len() as i64;
                        let (min, max) = sorted
                            .iter()
                            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                                (lo.min(p.value), hi.max(p.value))
                            });
                        insert.execute(params![
                            state.id,
                            state.next_offset,
                            state.next_offset + count,
                            first.ts_ns,
                            last.ts_ns,
                            count,
                            min,
                            max,
                            chunk::encode(&sorted),
                        ])?;
                        staged.insert(
                            key.clone(),
                            SeriesState {
                                id: state.id,
                                next_offset: state.next_offset + count,
                            },
                        );
                    }
                    outcomes.push((job, Ok(())));
                }
            }
            tx.commit()
        })();
        match written {
            Ok(()) => {
                self.series.extend(staged);
                for (job, outcome) in outcomes {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::error!("commit failed, the group is refused: {e}");
                for (job, outcome) in outcomes {
                    let refused = match outcome {
                        Ok(()) => Err(unavailable(&e)),
                        Err(limit) => Err(limit),
                    };
                    let _ = job.reply.send(refused);
                }
            }
        }
    }

    /// Drops chunks that ended before the retention horizon, a series per transaction.
    fn maybe_expire(&mut self) {
        let every = retention_every(self.retention);
        if self.last_retention.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last_retention = Some(Instant::now());
        let horizon = now_ns().saturating_sub(duration_ns(self.retention));
        let mut dropped = 0usize;
        for state in self.series.values() {
            let result = (|| -> rusqlite::Result<usize> {
                let tx = self.conn.transaction()?;
                // Keep the series' next offset even when all its chunks go.
                tx.execute(
                    "UPDATE series SET next_offset = max(next_offset, ?2) WHERE id = ?1",
                    params![state.id, state.next_offset],
                )?;
                let n = tx.execute(
                    "DELETE FROM chunks WHERE series_id = ?1 AND end_ns < ?2",
                    params![state.id, horizon],
                )?;
                tx.commit()?;
                Ok(n)
            })();
            match result {
                Ok(n) => dropped += n,
                Err(e) => tracing::warn!("retention pass stopped: {e}"),
            }
        }
        if dropped > 0 {
            tracing::info!(chunks = dropped, "retention dropped expired chunks");
        }
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn append(&self, batch: &Batch) -> Result<Batch, StoreError> {
        let (reply, done) = oneshot::channel();
        let job = Job {
            batch: batch.clone(),
            reply,
        };
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| unavailable("the store is shutting down"))?;
        done.await
            .map_err(|_| unavailable("the store stopped before committing"))??;
        // Committed: now the live window shows it. The cap was enforced by the writer.
        Ok(self.live.append_unchecked(batch))
    }

    async fn recent(&self, since_ns: i64, columns: usize) -> Result<Vec<SeriesPoints>, StoreError> {
        self.live.recent(since_ns, columns).await
    }

    async fn list(&self, now_ns: i64) -> Result<Vec<SeriesInfo>, StoreError> {
        self.live.list(now_ns).await
    }

    async fn history(&self, q: HistoryQuery) -> Result<HistoryResult, StoreError> {
        let key = q.series.clone();
        let id = self
            .read(move |conn| {
                conn.query_row(
                    "SELECT id FROM series WHERE name = ?1 AND labels = ?2",
                    params![
                        key.name(),
                        serde_json::to_string(key.labels()).unwrap_or_default()
                    ],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
            })
            .await?;
        let Some(id) = id else {
            return Err(StoreError::UnknownSeries(q.series.to_string()));
        };
        let (from, to) = (q.from_ns, q.to_ns);
        let points = self
            .read(move |conn| read_range(conn, id, from, to))
            .await?;
        Ok(HistoryResult::from_points(&q, points))
    }
}
