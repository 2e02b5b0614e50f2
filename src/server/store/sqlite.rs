//! The embedded durable store: SQLite (bundled) in WAL mode, one database under `--data-dir`.
//!
//! # Schema, and why
//! ```sql
//! series(id INTEGER PRIMARY KEY, name, labels /* JSON, sorted keys */, next_offset)
//! log(id INTEGER PRIMARY KEY, data)      -- one record per commit, all series in it
//! chunks(id INTEGER PRIMARY KEY, series_id, first_offset, end_offset, start_ns, end_ns,
//!        count, min, max, first_v, last_v, min_ns, max_ns, data)
//!        UNIQUE INDEX (series_id, first_offset),
//!        INDEX chunks_by_start (series_id, start_ns, end_ns, first_offset, count, extremes...)
//! meta(key PRIMARY KEY, value)         -- 'epoch': this database's name for live resumes
//! merges(series_id, hour, score)       -- hours left to merge, saved at a clean stop
//! ```
//! Two shapes, because writes and reads want different things. A commit must be cheap
//! whatever it holds: written per series, a commit of 1 000 series dirtied 2 000 b-tree
//! pages (8 MB of WAL) and ingest stalled at ~0.13 M points/s. So a commit appends *one*
//! `log` row, its points of every series encoded together, to the right edge of one b-tree.
//! Reads want a series' points together: a background compaction (in the writer thread,
//! every few seconds or million points) moves the log into per-series *chunks* and deletes
//! it, so each series gets one chunk row per compaction instead of one per commit. A row
//! per point would cost ~40 bytes of b-tree per 16-byte point; a chunk costs from under one
//! byte per point (a sensor) to about eight (full-precision noise), see [`super::chunk`]. Reads merge a series' chunks and its entries in the (short)
//! log in offset order, later writes winning per timestamp, inside one read transaction so
//! a compaction in between cannot hide or double anything.
//!
//! Chunks live in a rowid table, not `WITHOUT ROWID` keyed by series: a rowid table keeps
//! rows of up to about a page inside the page, while a `WITHOUT ROWID` row over about a
//! quarter page spills to an overflow page of its own, which made 100 M points take 3.2 GB
//! instead of ~0.9 GB (4 KiB pages then; new databases use 16 KiB, see `open`). New chunks
//! also land at the table's right edge; only the two small indexes see random inserts.
//!
//! A chunk row also keeps its extremes (first, last, lowest and highest point): a history
//! read at a given pixel width answers a chunk that fits inside one column from them, without
//! decoding it, and gets the same M4 answer. `chunks_by_start` covers every column a read needs
//! before deciding to decode, so scanning a range reads that small index, not the pages of
//! the chunks' data (which made the scan read every byte of the range). It is keyed by
//! start: a chunk never crosses an hour boundary, so the chunks reaching into a time range
//! start between the hour of its beginning and its end.
//!
//! Chunk extremes alone still make a read's cost grow with the range (a chunk row per
//! second at 1 kHz). Fast series therefore also keep [`super::rollup`]s, per-bucket extremes
//! at tiers from 1 s to 7 d, and an M4 read descends them (`read_m4`): a few rows per
//! column plus one frame of a chunk per column boundary ([`chunk::decode_pieces`]),
//! whatever the range holds (BENCHMARKS.md).
//! The rows a read takes are kept in memory for the next read ([`super::row_cache`]): the
//! row seeks, a level more per boundary for each tier the range is longer, were what still
//! grew with the range.
//!
//! Offsets: every point a series accepts takes the next offset of that series. The next
//! offset after a restart is one index probe per series plus the log (the series row keeps
//! it too, for series whose chunks retention removed), never a scan of the chunks.
//!
//! # Writes: group commit
//! One thread owns the write connection. Requests queue their batches; the thread takes
//! whatever is queued, appends it as one log row in one transaction and commits once, then
//! answers every request of the group. Concurrent requests share one fsync, so durability
//! costs latency (one commit) rather than throughput. A request is answered `Ok` only after
//! its commit returned: with `--durability fsync` (`synchronous=FULL`) the WAL is on disk;
//! with `relaxed` (`synchronous=NORMAL`) it is in the OS, surviving a killed process but not
//! a power cut.
//!
//! # The live window
//! Browsers are fed from an in-memory ring per series ([`MemoryStore`]) that is filled after
//! each commit and warmed from disk at start, so the live path never waits on a disk read.
//!
//! # Retention
//! The writer thread drops chunks that ended before `now - retention` between commits, a
//! series at a time, so neither ingest nor reads wait long on it; freed pages are reused, so
//! under steady ingest the file stops growing once retention is reached.

use super::mapped_vfs;
use super::memory::MemoryStore;
use super::read_work::{self, ReadWork};
use super::row_cache::{self, RowCache};
use super::{chunk, rollup, HistoryQuery, HistoryResult, SeriesInfo, Store, StoreError, Stored};
use crate::decimate::{column_of, column_start, Extremes, M4};
use crate::model::{self, Batch, Point, SeriesKey, SeriesMap, SeriesPoints};
use crate::server::hub::Hub;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// File name inside `--data-dir`.
pub const DB_FILE: &str = "livechart.db";
/// Concurrent history reads (see `SqliteStore::reading`).
const MAX_READERS: usize = 4;
/// Most requests one commit takes: bounds the transaction and the latency of the first one.
const MAX_GROUP: usize = 256;
/// An hour of more points than this is read in pieces of chunks that meet only one another
/// ([`HourReader::hour`]): a raw read of a 20 kHz hour held all its 72 M points (1.2 GB)
/// to answer ten. Below it, one piece per hour, as merging many small pieces costs more.
const SPLIT_HOUR_POINTS: usize = 65_536;
/// Compact once the log holds this many points: bounds what every history read decodes.
const COMPACT_POINTS: usize = 1_000_000;
/// ...or once its oldest record is this old, so quiet servers still get compact chunks.
const COMPACT_AFTER: Duration = Duration::from_secs(5);
/// Past this many points in the log (compaction failing, e.g. on a full disk) ingest is
/// refused with 503 rather than growing the log and the writer's memory without bound.
const MAX_LOG_POINTS: usize = 4 * COMPACT_POINTS;
/// Wait between attempts after a compaction failed.
const COMPACT_RETRY: Duration = Duration::from_secs(5);
/// Largest chunk compaction writes: a history read fetches a chunk (and decodes the frames
/// a column boundary falls in) unless it fits in one pixel column (then its stored extremes
/// answer for it), so smaller chunks let long ranges skip more; 1 024 points keep the row
/// overhead near 0.1 byte per point.
const MAX_CHUNK_POINTS: usize = 1_024;
/// Chunks never straddle an hour boundary, so retention (which drops whole chunks) frees
/// space within an hour of the horizon.
const CHUNK_SPAN_NS: i64 = 3_600 * crate::model::NANOS_PER_SEC;
/// An hour's small chunks are merged once the hour is this far behind the newest data the
/// clock allows, so late points rarely reopen a merged hour.
const MERGE_DELAY_NS: i64 = 5 * 60 * crate::model::NANOS_PER_SEC;
/// ...and once no compaction has written into it for this long: past data (a backfill, an
/// agent flushing its buffer after an outage) fills an old hour over many compactions, and
/// merging after each re-encoded the whole hour every time (an out-of-order backfill took
/// 2.3x as long, BENCHMARKS.md). Longer than the time between two compactions while data
/// flows.
const MERGE_QUIET: Duration = Duration::from_secs(2 * COMPACT_AFTER.as_secs());
/// Most time one pass spends merging hours before the writer goes back to commits: after a
/// backfill every series' hour turns quiet at once, and merging them all in one go held
/// commits back for up to 1.3 s (BENCHMARKS.md). The rest waits for the next pass.
const MERGE_BUDGET: Duration = Duration::from_millis(50);
/// An hour is merged once it holds three small chunks, or one that overlaps another (which
/// must go, so a read can trust the hour's rows again). Two small chunks are what a
/// compaction boundary leaves in an hour of a slow series: one row more to read, while
/// merging them rewrote about six pages and doubled the time of a bulk fill of 1000 such
/// series (BENCHMARKS.md).
const MERGE_AT: u32 = 3;
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
    /// Bytes of live database pages allowed before the oldest data goes; `None`: no cap.
    pub max_disk_bytes: Option<u64>,
    pub max_series: usize,
    pub ring_capacity: usize,
    /// How much of the newest history to load into memory at start (the live window).
    pub warm: Duration,
    /// Where committed points are shown live; the writer publishes in commit order.
    pub hub: Option<Hub>,
}

pub struct SqliteStore {
    live: Arc<MemoryStore>,
    retention: Duration,
    path: PathBuf,
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Joined on drop, so a stopping server has committed everything and marked the
    /// database as closed cleanly before the process ends.
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    /// At most [`MAX_READERS`] history reads at once: each holds a connection, its page
    /// cache and a WAL snapshot; more would only queue on the 2 cores anyway.
    reading: tokio::sync::Semaphore,
    /// Rollup rows read before, shared by all reads; the writer keeps it current.
    rows: Arc<RowCache>,
    /// Set by the writer while it refuses ingest because compaction keeps failing (a full
    /// disk); cleared once a compaction succeeds. `/readyz` answers 503 meanwhile.
    stuck: Arc<std::sync::atomic::AtomicBool>,
}

struct Job {
    batch: Batch,
    /// Answered once committed, with what the live window took.
    reply: oneshot::Sender<Result<Stored, StoreError>>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

use crate::server::now_ns;

fn open(path: &Path, durability: Durability) -> rusqlite::Result<Connection> {
    open_with_vfs(path, durability, None)
}

fn open_with_vfs(
    path: &Path,
    durability: Durability,
    vfs: Option<&str>,
) -> rusqlite::Result<Connection> {
    // Each connection is used by one thread at a time (the writer's, or a pooled reader
    // handed to one blocking task): SQLite's per-call mutex would only cost time.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match vfs {
        Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs)?,
        None => Connection::open_with_flags(path, flags)?,
    };
    // `rarray(?)`: rollup reads pass lists of buckets and chunks in one statement.
    rusqlite::vtab::array::load_module(&conn)?;
    // A new database's pages are 16 KiB (SQLite's default is 4): a chunk of full-precision
    // noise (about 8.5 KB) then sits on its leaf instead of spilling onto two overflow pages,
    // so a history read fetches one page per column boundary instead of three, and the
    // b-trees are a level shallower. 100 M-point reads ran about 15% faster and durable
    // ingest about 13%; reads of sparse series (small chunks of many series sharing pages)
    // about 1 ms slower (BENCHMARKS.md). Ignored for an existing database, which keeps its
    // size: changing it means rewriting the whole file.
    conn.pragma_update(None, "page_size", 16_384)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match durability {
        Durability::Fsync => "FULL",
        Durability::Relaxed => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    // Compaction touches a leaf page per series; 64 MiB of page cache keeps them between
    // compactions instead of re-reading them from the file.
    conn.pragma_update(None, "cache_size", -65_536)?;
    // After a checkpoint the WAL file is cut back to this, so it cannot keep a burst's size.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // Readers and the writer never block each other in WAL mode; a busy wait only covers
    // checkpoints.
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// The layout [`SCHEMA`] and [`chunk`] write; stored in SQLite's `user_version`. Version 1
/// lacked rollups; it is upgraded in place (its series get rollups at their next compaction).
/// Version 2 lacked the rollups' chunk listings; upgraded in place too (its rows keep none,
/// and are read as before). Version 3 wrote no framed chunks ([`chunk::encode_framed`]): its
/// chunks are read as they are, and the number changed so that an older livechart refuses
/// a database with framed chunks instead of skipping them as damaged.
const SCHEMA_VERSION: i64 = 4;

/// Refuses a database written in another layout instead of misreading it, and upgrades one
/// written by version 1.
fn check_schema_version(conn: &Connection) -> Result<(), String> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if tables > 0 && version == 1 {
        conn.execute_batch("ALTER TABLE series ADD COLUMN rollup_width INTEGER NOT NULL DEFAULT 0")
            .map_err(|e| e.to_string())?;
        return Ok(());
    }
    if tables > 0 && version == 2 {
        conn.execute_batch(rollup::UPGRADE_FROM_2)
            .map_err(|e| e.to_string())?;
        return Ok(());
    }
    if tables > 0 && version == 3 {
        return Ok(());
    }
    if tables > 0 && version != SCHEMA_VERSION {
        return Err(format!(
            "the database has layout version {version}, this livechart reads {SCHEMA_VERSION}; \
             start with another --data-dir (or move this one away)"
        ));
    }
    Ok(())
}

/// The read connections a wide read takes (one per part), opened with the store so the
/// first read after a start does not pay for opening them and reading the schema (0.5-1.7 ms
/// of a 2 000-column read, BENCHMARKS.md). One that fails to open is left to the first read,
/// which reports the error.
fn warm_readers(path: &Path) -> Vec<Connection> {
    (0..read_parts())
        .filter_map(|_| {
            let conn = open_reader(path).ok()?;
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
                .ok()?;
            Some(conn)
        })
        .collect()
}

/// A connection for history reads: a smaller page cache than the writer's, as there can be
/// several.
///
/// Pages come from a map of the file that outlives read transactions ([`mapped_vfs`]).
/// SQLite's own map is dropped whenever a read begins after a commit, so while points arrive
/// every read faulted its pages into a fresh map, which cost more than copying them
/// (`pread`: 21 ms against 36 ms for a 2 000-column read over 100 M points); copying in turn
/// cost a syscall and a 16 KiB copy per column boundary. Where the VFS cannot be registered,
/// pages are copied.
fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let mapped = mapped_vfs::register();
    let conn = open_with_vfs(
        path,
        Durability::Relaxed,
        mapped.then_some(mapped_vfs::NAME),
    )?;
    if mapped {
        // Any size turns SQLite's fetching of mapped pages on; the VFS sizes the map itself.
        conn.pragma_update(None, "mmap_size", 1_i64 << 30)?;
    }
    conn.pragma_update(None, "cache_size", -8_192)?;
    Ok(conn)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    next_offset INTEGER NOT NULL DEFAULT 0,
    rollup_width INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name, labels)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL,
    first_offset INTEGER NOT NULL,
    end_offset INTEGER NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    count INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    first_v REAL NOT NULL,
    last_v REAL NOT NULL,
    min_ns INTEGER NOT NULL,
    max_ns INTEGER NOT NULL,
    data BLOB NOT NULL
);
-- The hours waiting to be merged (`Writer::fragmented`), written at a clean stop and read
-- at start, so a restart does not leave their small chunks until retention.
CREATE TABLE IF NOT EXISTS merges (
    series_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    score INTEGER NOT NULL,
    PRIMARY KEY (series_id, hour)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS chunks_by_offset ON chunks (series_id, first_offset);
DROP INDEX IF EXISTS chunks_by_end;
DROP INDEX IF EXISTS chunks_meta;
CREATE INDEX IF NOT EXISTS chunks_by_start ON chunks
    (series_id, start_ns, end_ns, first_offset, count, first_v, min_ns, min, max_ns, max, last_v);
";

/// Per series, what the writer needs: its row id and next offset.
#[derive(Debug, Clone, Copy)]
struct SeriesState {
    id: i64,
    next_offset: i64,
}

impl SqliteStore {
    /// Opens (or creates) the database, loads the series and warms the live window. Costs
    /// one index probe per series, the (short) log and the chunks of the warm window, never
    /// a full scan.
    pub fn open(options: SqliteOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&options.dir).map_err(|e| {
            unavailable(format!(
                "cannot create data dir {}: {e}",
                options.dir.display()
            ))
        })?;
        let path = options.dir.join(DB_FILE);
        let mut conn = open(&path, options.durability)
            .map_err(|e| unavailable(format!("cannot open {}: {e}", path.display())))?;
        // One transaction: an upgrade cut short (killed while building an index) leaves the
        // old layout and version, and the next start upgrades again from scratch. Immediate:
        // it waits for the write lock (a previous instance's writer may still be finishing)
        // instead of failing when a read snapshot cannot become a write.
        let setup = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        check_schema_version(&setup).map_err(unavailable)?;
        setup.execute_batch(SCHEMA).map_err(unavailable)?;
        setup.execute_batch(rollup::SCHEMA).map_err(unavailable)?;
        setup
            .pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(unavailable)?;
        // The stream's name: live clients resume only from offsets of this database. With
        // `relaxed` durability a power loss can take the last commits, whose offsets live
        // pages may hold and the next commits would reuse for other points: after a start
        // that did not follow a clean stop, the stream gets a new name and pages reload.
        let clean: Option<String> = setup
            .query_row("SELECT value FROM meta WHERE key = 'clean'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(unavailable)?;
        if options.durability == Durability::Relaxed && clean.as_deref() != Some("1") {
            setup
                .execute("DELETE FROM meta WHERE key = 'epoch'", [])
                .map_err(unavailable)?;
        }
        setup
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('clean', '0')",
                [],
            )
            .map_err(unavailable)?;
        setup
            .execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?1)",
                [crate::server::hub::new_epoch()],
            )
            .map_err(unavailable)?;
        let epoch: String = setup
            .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
                r.get(0)
            })
            .map_err(unavailable)?;
        setup.commit().map_err(unavailable)?;

        let live = Arc::new(MemoryStore::new(
            options.ring_capacity,
            options.max_series.max(1),
        ));
        let log = read_log(&conn, None).map_err(unavailable)?;
        let log_points = log.values().map(Vec::len).sum();
        let series = load_series(&conn, &log).map_err(unavailable)?;
        let rollup_width = load_rollup_widths(&conn).map_err(unavailable)?;
        let fragmented = load_merges(&conn).map_err(unavailable)?;
        let horizon = now_ns().saturating_sub(duration_ns(options.retention));
        let since = now_ns()
            .saturating_sub(duration_ns(options.warm))
            .max(horizon);
        // One series at a time, and at most a ring's worth each: warming holds one series'
        // window in memory, never all of them.
        let mut warm_points = 0usize;
        for (key, state) in &series {
            let mut points = read_chunks(&conn, state.id, since, i64::MAX).map_err(unavailable)?;
            if let Some(logged) = log.get(&state.id) {
                points.extend(logged.iter().map(|(_, p)| *p).filter(|p| p.ts_ns >= since));
            }
            let points = last_write_wins(points);
            let keep = points.len().saturating_sub(options.ring_capacity);
            let mut warm = Batch::new();
            warm.extend(key.clone(), points.into_iter().skip(keep));
            warm_points += warm.point_count();
            // Loading what is already stored: nothing to publish, and the cap was checked
            // when the series were created.
            live.append_unchecked(&warm);
        }
        tracing::info!(path = %path.display(), series = series.len(), log_points, warm_points, "store opened");
        if let Some(hub) = &options.hub {
            hub.start(
                epoch,
                series.iter().map(|(k, st)| (k.clone(), st.next_offset)),
            );
        }

        let rows = Arc::new(RowCache::new(row_cache::BUDGET_BYTES));
        let writes = row_cache::Writes::new(&conn, rows.clone()).map_err(unavailable)?;
        let (tx, rx) = mpsc::channel();
        let stuck = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writer = Writer {
            conn,
            stuck: stuck.clone(),
            live: live.clone(),
            hub: options.hub.clone(),
            series,
            max_series: options.max_series,
            retention: options.retention,
            max_disk_bytes: options.max_disk_bytes,
            last_retention: None,
            log_points,
            log_since: (log_points > 0).then(Instant::now),
            pending: log,
            fragmented,
            compact_retry_at: None,
            merge_backlog: false,
            merge_budget: MERGE_BUDGET,
            rollup_width,
            rollup_min_points: rollup::MIN_POINTS_PER_BUCKET,
            writes,
        };
        let writer = std::thread::Builder::new()
            .name("livechart-store".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| unavailable(format!("cannot start the store thread: {e}")))?;
        let readers = warm_readers(&path);
        super::prefetch::in_background(path.clone());
        Ok(Self {
            live,
            retention: options.retention,
            path,
            jobs: Mutex::new(tx),
            writer: Mutex::new(Some(writer)),
            readers: Mutex::new(readers),
            reading: tokio::sync::Semaphore::new(MAX_READERS),
            rows,
            stuck,
        })
    }

    /// Runs `f` on a pooled read connection on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _permit = self
            .reading
            .acquire()
            .await
            .map_err(|_| unavailable("the store is shutting down"))?;
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.path).map_err(unavailable)?,
        };
        let (conn, out) = tokio::task::spawn_blocking(move || {
            let out = f(&conn);
            (conn, out)
        })
        .await
        .map_err(unavailable)?;
        let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < MAX_READERS {
            pool.push(conn);
        }
        out.map_err(unavailable)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Hang up first (the writer stops when the channel closes), then wait for it.
        let (hang_up, _) = mpsc::channel();
        *self.jobs.lock().unwrap_or_else(PoisonError::into_inner) = hang_up;
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }
}

fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Every series with its next offset: the larger of the series row's (kept by every
/// compaction, in the transaction that moves points out of the log) and the log's own.
fn load_series(
    conn: &Connection,
    log: &HashMap<i64, Vec<(i64, Point)>>,
) -> rusqlite::Result<SeriesMap<SeriesState>> {
    let mut stmt = conn.prepare("SELECT id, name, labels, next_offset FROM series")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = SeriesMap::default();
    for row in rows {
        let (id, name, labels, next_offset) = row?;
        let Some(key) = stored_key(name, &labels) else {
            tracing::warn!(id, "skipping a stored series whose key does not read back");
            continue;
        };
        let log_end = log
            .get(&id)
            .and_then(|pts| pts.iter().map(|(o, _)| o.saturating_add(1)).max());
        out.insert(
            key,
            SeriesState {
                id,
                next_offset: next_offset.max(log_end.unwrap_or(0)),
            },
        );
    }
    Ok(out)
}

/// A series key as the `series` table keeps it (labels as JSON).
fn stored_key(name: String, labels: &str) -> Option<SeriesKey> {
    serde_json::from_str::<BTreeMap<String, String>>(labels)
        .ok()
        .and_then(|labels| SeriesKey::with_labels(name, labels).ok())
}

/// What the database holds of a series: what `GET /api/v1/series` reports beyond the live
/// window, which keeps only the newest `--ring-capacity` points (and after a start only the
/// warm window's).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Held {
    points: usize,
    first_ns: i64,
    last: Point,
}

impl Held {
    fn add(self, o: Held) -> Held {
        Held {
            points: self.points + o.points,
            first_ns: self.first_ns.min(o.first_ns),
            // Of equal timestamps the one added last is the later write: the log is added
            // after the chunks, its records in order.
            last: if o.last.ts_ns >= self.last.ts_ns {
                o.last
            } else {
                self.last
            },
        }
    }
}

/// Per series with points, what the database holds, in one snapshot. Per series a few index
/// probes and, for the count, its coarsest rollup rows (a few per series) or, for a series
/// without rollups (a slow one: about a chunk an hour), its chunks' entries in the index;
/// then the log ([`add_logged`]). Never a scan of the chunks of a dense series. A timestamp
/// written again after its first write was compacted counts twice until the two chunks are
/// merged.
fn held_per_series(conn: &Connection) -> rusqlite::Result<Vec<(SeriesKey, Held)>> {
    let tx = conn.unchecked_transaction()?;
    let series: Vec<(i64, i64, String, String)> = tx
        .prepare_cached("SELECT id, rollup_width, name, labels FROM series")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let mut held: HashMap<i64, Held> = HashMap::new();
    {
        let mut from_rollups = tx.prepare_cached(
            "SELECT coalesce(sum(count), 0) FROM rollups WHERE series_id = ?1 AND width_ns = ?2",
        )?;
        let mut from_chunks =
            tx.prepare_cached("SELECT coalesce(sum(count), 0) FROM chunks WHERE series_id = ?1")?;
        // Apart: SQLite answers a lone min() or max() with one index probe, both together
        // with a scan of the series' entries.
        let mut first =
            tx.prepare_cached("SELECT min(start_ns) FROM chunks WHERE series_id = ?1")?;
        let mut last_start =
            tx.prepare_cached("SELECT max(start_ns) FROM chunks WHERE series_id = ?1")?;
        // Chunks never cross an hour: the last point is in a chunk starting in the hour of
        // the last start.
        let mut last = tx.prepare_cached(
            "SELECT end_ns, last_v FROM chunks WHERE series_id = ?1 AND start_ns >= ?2
             ORDER BY end_ns DESC LIMIT 1",
        )?;
        let coarsest = rollup::TIERS[rollup::TIERS.len() - 1];
        for &(id, rollup_width, ..) in &series {
            let first: Option<i64> = first.query_row([id], |r| r.get(0))?;
            let last_start: Option<i64> = last_start.query_row([id], |r| r.get(0))?;
            let (Some(first_ns), Some(last_start)) = (first, last_start) else {
                continue;
            };
            let points: i64 = if rollup_width > 0 {
                from_rollups.query_row(params![id, coarsest], |r| r.get(0))?
            } else {
                from_chunks.query_row([id], |r| r.get(0))?
            };
            let (end, value) = last
                .query_row(params![id, first_possible_start(last_start)], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            let Ok(last) = Point::new(end, value) else {
                continue;
            };
            let points = usize::try_from(points).unwrap_or(0);
            held.insert(
                id,
                Held {
                    points,
                    first_ns,
                    last,
                },
            );
        }
    }
    add_logged(&tx, &mut held)?;
    Ok(series
        .into_iter()
        .filter_map(|(id, _, name, labels)| Some((stored_key(name, &labels)?, *held.get(&id)?)))
        .collect())
}

/// Adds what the log holds to `held`, a record at a time (the log can hold millions of
/// points). An entry (a request's points of a series, in time order) counts one point per
/// timestamp; a timestamp another commit wrote again counts twice until compaction.
fn add_logged(conn: &Connection, held: &mut HashMap<i64, Held>) -> rusqlite::Result<()> {
    each_log_entry(conn, None, |e| {
        // Of equal timestamps the later write is last.
        let (Some(first), Some(&last)) = (e.points.first(), e.points.last()) else {
            return;
        };
        let repeated = e.points.windows(2).filter(|w| w[0].ts_ns == w[1].ts_ns);
        let h = Held {
            points: e.points.len() - repeated.count(),
            first_ns: first.ts_ns,
            last,
        };
        held.entry(e.series_id)
            .and_modify(|old| *old = old.add(h))
            .or_insert(h);
    })
}

/// Per series id, the finest rollup tier it keeps.
/// The hours the last clean stop left waiting to be merged ([`Writer::save_merges`]). Each
/// counts as written now, so it is merged once quiet as if the server had not stopped. After
/// an unclean stop the list is the one of the clean stop before (a merge it no longer needs
/// finds one chunk and leaves it); hours fragmented since are merged only if written again.
fn load_merges(conn: &Connection) -> rusqlite::Result<HashMap<(i64, i64), Fragments>> {
    let written = Instant::now();
    conn.prepare("SELECT series_id, hour, score FROM merges")?
        .query_map([], |r| {
            let score = u32::try_from(r.get::<_, i64>(2)?).unwrap_or(MERGE_AT);
            Ok(((r.get(0)?, r.get(1)?), Fragments { score, written }))
        })?
        .collect()
}

fn load_rollup_widths(conn: &Connection) -> rusqlite::Result<HashMap<i64, i64>> {
    let mut stmt = conn.prepare("SELECT id, rollup_width FROM series WHERE rollup_width > 0")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// The log's points per series (of one series when `only` is given), with their offsets, in
/// log order.
fn read_log(
    conn: &Connection,
    only: Option<i64>,
) -> rusqlite::Result<HashMap<i64, Vec<(i64, Point)>>> {
    let mut out: HashMap<i64, Vec<(i64, Point)>> = HashMap::new();
    each_log_entry(conn, only, |e| {
        let pts = out.entry(e.series_id).or_default();
        pts.extend((e.first_offset..).zip(e.points));
    })?;
    Ok(out)
}

/// Hands `f` the log's entries (of one series when `only` is given) in log order, a record at
/// a time; damaged records are reported and skipped.
fn each_log_entry(
    conn: &Connection,
    only: Option<i64>,
    mut f: impl FnMut(chunk::LogEntry),
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached("SELECT id, data FROM log ORDER BY id")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let entries = match chunk::decode_record_of(row.get_ref(1)?.as_blob().unwrap_or(&[]), only)
        {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(log_id = id, "skipping a damaged log record: {e}");
                continue;
            }
        };
        for e in entries {
            if only.is_none_or(|s| s == e.series_id) {
                f(e);
            }
        }
    }
    Ok(())
}

/// The earliest start of a chunk that can hold a point at `ts`: chunks never cross an hour
/// boundary, so one that started before `ts`'s hour ended before it. Bounds index scans.
fn first_possible_start(ts: i64) -> i64 {
    hour_of(ts).saturating_mul(CHUNK_SPAN_NS)
}

/// The chunked points of series `id` overlapping `[from, to]`, in offset order.
fn read_chunks(conn: &Connection, id: i64, from: i64, to: i64) -> rusqlite::Result<Vec<Point>> {
    let mut stmt = conn.prepare_cached(
        "SELECT start_ns, count, data FROM chunks
         WHERE series_id = ?1 AND start_ns >= ?4 AND start_ns <= ?3 AND end_ns >= ?2
         ORDER BY first_offset",
    )?;
    let mut rows = stmt.query(params![id, from, to, first_possible_start(from)])?;
    let mut points = Vec::new();
    while let Some(row) = rows.next()? {
        let start: i64 = row.get(0)?;
        let count = usize::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
        let data = row.get_ref(2)?.as_blob().unwrap_or(&[]);
        let before = points.len();
        if let Err(e) = chunk::decode(data, start, count, &mut points) {
            tracing::error!(series_id = id, start, "skipping a damaged chunk: {e}");
            points.truncate(before);
        }
    }
    Ok(points)
}

/// [`model::last_write_wins`], by value.
fn last_write_wins(mut points: Vec<Point>) -> Vec<Point> {
    model::last_write_wins(&mut points);
    points
}

/// The points of series `id` in `[from, to]` (later writes winning), an hour at a time and
/// in time order, to `visit` until it returns false. Chunks never span an hour, so each hour
/// is complete when visited, and memory holds one hour of one series, not the range. One
/// read transaction: a compaction in between cannot hide or double anything.
///
/// With `columns` (the range and width of an M4 answer), a chunk that lies inside one pixel
/// column, inside the range, and overlaps no other data of its hour is not decoded: its
/// stored extremes stand in for it, which gives the same M4 answer (see
/// [`crate::decimate::Extremes`]) for a fraction of the work on long ranges.
fn read_hours(
    conn: &Connection,
    id: i64,
    (from, to): (i64, i64),
    columns: Option<(i64, i64, usize)>,
    mut visit: impl FnMut(Vec<Point>, usize) -> bool,
) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    let logged = logged_points(&tx, id)?;
    visit_hours(&tx, id, (from, to), None, columns, &logged, &mut visit)?;
    tx.finish()
}

/// The M4 answer for series `id` over `range` at `columns` (from, to, width) into `m4`, with
/// the number of raw points it stands for. Dense series read their rollups (see
/// [`rollup::plan`]): the cost follows the width, not the points in the range. One read
/// transaction, as [`read_hours`].
fn read_m4(
    conn: &Connection,
    rows: Option<&RowCache>,
    id: i64,
    (from, to): (i64, i64),
    columns: (i64, i64, usize),
    m4: &mut M4,
) -> rusqlite::Result<usize> {
    read_work::take();
    let tx = conn.unchecked_transaction()?;
    let logged = logged_points(&tx, id)?;
    let finest = rollup::finest_of(&tx, id)?;
    let rows = rollup::RowSource {
        conn: &tx,
        cache: match rows {
            // The version this read's snapshot has (taken by the reads above).
            Some(cache) => Some((cache, row_cache::read_version(&tx)?)),
            None => None,
        },
    };
    let log_ts: Vec<i64> = logged.iter().map(|p| p.ts_ns).collect();
    let mut raw = 0usize;
    let mut visit = |points: Vec<Point>, n: usize| {
        raw += n;
        m4.push_all(&points)
    };
    match rollup::plan(&rows, id, finest, (from, to), columns, &log_ts)? {
        None => {
            visit_hours(
                &tx,
                id,
                (from, to),
                None,
                Some(columns),
                &logged,
                &mut visit,
            )?;
        }
        Some(pieces) => {
            // Reads of clean rows with no log point in them (at most one per column boundary)
            // are read together: two statements for all of them.
            let no_log = |a: i64, b: i64| {
                let i = log_ts.partition_point(|&x| x < a);
                log_ts.get(i).is_none_or(|&x| x > b)
            };
            let together: Vec<(i64, i64, &rollup::Chunks)> = pieces
                .iter()
                .filter_map(|p| match p {
                    rollup::Piece::Read(a, b, Some(chunks)) if no_log(*a, *b) => {
                        Some((*a, *b, chunks))
                    }
                    _ => None,
                })
                .collect();
            let mut read_together = read_clean_rows(&tx, id, &together, columns)?.into_iter();
            for piece in &pieces {
                let more = match piece {
                    rollup::Piece::Stand(s) => {
                        visit(s.extremes.points(), usize::try_from(s.count).unwrap_or(0))
                    }
                    rollup::Piece::Read(a, b, Some(_)) if no_log(*a, *b) => {
                        match read_together.next().flatten() {
                            Some((points, raw)) => visit(points, raw),
                            // Its listing was wrong: read the span through the index.
                            None => visit_hours(
                                &tx,
                                id,
                                (*a, *b),
                                None,
                                Some(columns),
                                &logged,
                                &mut visit,
                            )?,
                        }
                    }
                    rollup::Piece::Read(a, b, chunks) => {
                        let starts = chunks.as_ref().and_then(rollup::Chunks::starts);
                        visit_hours(
                            &tx,
                            id,
                            (*a, *b),
                            starts,
                            Some(columns),
                            &logged,
                            &mut visit,
                        )?
                    }
                };
                if !more {
                    break;
                }
            }
        }
    }
    tx.finish()?;
    Ok(raw)
}

/// A span's points as read, with the raw points they stand for.
type SpanRead = (Vec<Point>, usize);

/// For each `(from, to, chunks)`, in time order and not overlapping: the points of `chunks`
/// (the only chunks in the span: the caller read that from a clean rollup row) within the
/// span, in time order, with the raw points they stand for. A chunk inside one column of
/// `columns` is answered by its extremes; the others are fetched and decoded together.
/// `None` for a span whose listing disagrees with the chunks: the caller reads it another way.
fn read_clean_rows(
    tx: &Connection,
    id: i64,
    spans: &[(i64, i64, &rollup::Chunks)],
    (f, t, w): (i64, i64, usize),
) -> rusqlite::Result<Vec<Option<SpanRead>>> {
    let mut out: Vec<SpanRead> = vec![(Vec::new(), 0); spans.len()];
    let unlisted = chunks_starting_in(tx, id, spans)?;
    // Per span, its chunks in time order: what stands in for each (with the raw points it
    // counts), or the id of the chunk to decode.
    type Content = Result<SpanRead, i64>;
    let mut contents: Vec<Vec<Content>> = Vec::with_capacity(spans.len());
    let mut decode = Vec::new();
    // Per chunk to decode: its span, and its start and count as listed, to check them against
    // the chunk itself.
    let mut span_of_chunk: HashMap<i64, (usize, i64, i64)> = HashMap::new();
    // Spans whose listing disagrees with the chunks it names: a bug, never expected, but the
    // answer must stay right, so those spans are read again through the index.
    let mut stale = vec![false; spans.len()];
    for (i, &(from, to, chunks)) in spans.iter().enumerate() {
        let refs: &[rollup::ChunkRef] = match chunks {
            rollup::Chunks::Listed(refs) => refs,
            rollup::Chunks::StartingIn(..) => unlisted.get(&i).map_or(&[], Vec::as_slice),
        };
        let mut span = Vec::with_capacity(refs.len());
        for r in refs {
            let (start, end) = (r.start(), r.end());
            if start >= from && end <= to && column_of(start, f, t, w) == column_of(end, f, t, w) {
                let count = usize::try_from(r.count).unwrap_or(0);
                span.push(Ok((r.extremes.points(), count)));
            } else {
                span.push(Err(r.id));
                decode.push(r.id);
                // A chunk belongs to one row: named twice, at least one listing is wrong.
                if let Some((j, ..)) = span_of_chunk.insert(r.id, (i, r.start(), r.count)) {
                    tracing::error!(series_id = id, chunk_id = r.id, "rollup rows share a chunk");
                    stale[i] = true;
                    stale[j] = true;
                }
            }
        }
        contents.push(span);
    }
    let mut decoded: HashMap<i64, (usize, Vec<Point>)> = HashMap::with_capacity(decode.len());
    if !decode.is_empty() {
        let ids: rusqlite::vtab::array::Array = std::rc::Rc::new(
            decode
                .into_iter()
                .map(rusqlite::types::Value::from)
                .collect(),
        );
        let mut metas = tx.prepare_cached(
            "SELECT c.id, c.start_ns, c.count, c.end_ns
             FROM rarray(?1) AS i CROSS JOIN chunks AS c ON c.id = i.value",
        )?;
        let mut rows = metas.query([ids])?;
        let mut blobs = ChunkBlobs::new(tx);
        let mut scratch = Scratch::default();
        while let Some(r) = rows.next()? {
            let (chunk_id, start, stored): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let Some(&(i, listed_start, listed_count)) = span_of_chunk.get(&chunk_id) else {
                continue;
            };
            if (start, stored) != (listed_start, listed_count) {
                tracing::error!(
                    series_id = id,
                    chunk_id,
                    "a rollup row lists a chunk wrongly"
                );
                stale[i] = true;
                continue;
            }
            let count = usize::try_from(stored).unwrap_or(0);
            read_work::count(0, 1, 0);
            // The chunk is alone in its span: its M4 there stands for it.
            let (from, to, _) = spans[i];
            let span = (start, r.get(3)?, count);
            let mut data = blobs.open(chunk_id)?;
            match chunk_m4(&mut data, span, (from, to), (f, t, w), &mut scratch) {
                Ok(m4) => decoded.insert(chunk_id, m4),
                Err(ChunkReadError::Sql(e)) => return Err(e),
                Err(ChunkReadError::Corrupt(e)) => {
                    tracing::error!(series_id = id, start, "skipping a damaged chunk: {e}");
                    decoded.insert(chunk_id, (0, Vec::new()))
                }
            };
        }
    }
    for (&chunk_id, &(i, ..)) in &span_of_chunk {
        if !decoded.contains_key(&chunk_id) && !stale[i] {
            tracing::error!(
                series_id = id,
                chunk_id,
                "a rollup row lists a missing chunk"
            );
            stale[i] = true;
        }
    }
    for (span, (points, raw)) in contents.into_iter().zip(&mut out) {
        for content in span {
            match content {
                Ok((stand_ins, count)) => {
                    points.extend(stand_ins);
                    *raw += count;
                }
                Err(chunk_id) => {
                    let (inside, kept) = decoded.remove(&chunk_id).unwrap_or_default();
                    points.extend(kept);
                    *raw += inside;
                }
            }
        }
    }
    Ok(out
        .into_iter()
        .zip(stale)
        .map(|(read, stale)| (!stale).then_some(read))
        .collect())
}

/// For the spans whose chunks are known as [`rollup::Chunks::StartingIn`] (rows without a
/// listing, all of one tier): those chunks, by start, per span index. One statement for all.
fn chunks_starting_in(
    tx: &Connection,
    id: i64,
    spans: &[(i64, i64, &rollup::Chunks)],
) -> rusqlite::Result<HashMap<usize, Vec<rollup::ChunkRef>>> {
    let bounds: Vec<(usize, i64, i64)> = spans
        .iter()
        .enumerate()
        .filter_map(|(i, (_, _, c))| match c {
            rollup::Chunks::StartingIn(a, b) => Some((i, *a, *b)),
            rollup::Chunks::Listed(_) => None,
        })
        .collect();
    let mut found: HashMap<usize, Vec<rollup::ChunkRef>> = HashMap::new();
    let Some(&(_, s0, s1)) = bounds.first() else {
        return Ok(found);
    };
    let starts: rusqlite::vtab::array::Array = std::rc::Rc::new(
        bounds
            .iter()
            .map(|&(_, s, _)| rusqlite::types::Value::from(s))
            .collect(),
    );
    let span_of: HashMap<i64, usize> = bounds.iter().map(|&(i, s, _)| (s, i)).collect();
    let mut metas = tx.prepare_cached(
        "SELECT b.value, c.id, c.start_ns, c.end_ns, c.count, c.first_v, c.min_ns, c.min,
                c.max_ns, c.max, c.last_v
         FROM rarray(?2) AS b
         CROSS JOIN chunks AS c ON c.series_id = ?1 AND c.start_ns >= b.value
                                AND c.start_ns <= b.value + ?3",
    )?;
    let mut rows = metas.query(params![id, starts, s1 - s0])?;
    while let Some(r) = rows.next()? {
        let Some(&i) = span_of.get(&r.get::<_, i64>(0)?) else {
            continue;
        };
        let point = |ts, v| rollup::row_point(r, ts, v);
        found.entry(i).or_default().push(rollup::ChunkRef {
            id: r.get(1)?,
            count: r.get(4)?,
            extremes: Extremes {
                first: point(2, 5)?,
                min: point(6, 7)?,
                max: point(8, 9)?,
                last: point(3, 10)?,
            },
        });
    }
    for refs in found.values_mut() {
        refs.sort_by_key(rollup::ChunkRef::start);
    }
    Ok(found)
}

/// The log's points of series `id`, by time; of equal timestamps in write order (the later
/// write last, so it wins).
fn logged_points(tx: &Connection, id: i64) -> rusqlite::Result<Vec<Point>> {
    let mut points: Vec<Point> = read_log(tx, Some(id))?
        .remove(&id)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    points.sort_by_key(|p| p.ts_ns);
    Ok(points)
}

/// What a history read needs of a chunk before deciding whether to decode it.
#[derive(Clone)]
struct ChunkMeta {
    id: i64,
    first_offset: i64,
    start: i64,
    end: i64,
    count: usize,
    extremes: Extremes,
}

/// [`read_hours`] inside a transaction, with the series' log points (from
/// [`logged_points`]); false when `visit` asked to stop. `starts` narrows the chunks read to
/// those starting there, when the caller knows no other chunk reaches into the range.
#[allow(clippy::too_many_arguments)]
fn visit_hours(
    tx: &Connection,
    id: i64,
    (from, to): (i64, i64),
    starts: Option<(i64, i64)>,
    columns: Option<(i64, i64, usize)>,
    logged: &[Point],
    visit: &mut impl FnMut(Vec<Point>, usize) -> bool,
) -> rusqlite::Result<bool> {
    // The log's points of this series in the range (bounded by MAX_LOG_POINTS), by time.
    let lo = logged.partition_point(|p| p.ts_ns < from);
    let hi = logged.partition_point(|p| p.ts_ns <= to).max(lo);
    let mut reader = HourReader {
        series_id: id,
        range: (from, to),
        columns,
        logged: logged[lo..hi].iter().copied().peekable(),
        blobs: ChunkBlobs::new(tx),
        scratch: Scratch::default(),
    };

    // In index order (by start), so grouped by hour without a sort; within the hour, offset
    // order is restored in memory.
    let mut metas = tx.prepare_cached(
        "SELECT id, start_ns, end_ns, count, first_v, min_ns, min, max_ns, max, last_v, first_offset
         FROM chunks
         WHERE series_id = ?1 AND start_ns >= ?2 AND start_ns <= ?3 AND end_ns >= ?4
         ORDER BY start_ns",
    )?;
    let (lo, hi) = match starts {
        Some((lo, hi)) => (lo, hi.min(to)),
        None => (first_possible_start(from), to),
    };
    let mut rows = metas.query(params![id, lo, hi, from])?;
    let mut current: Option<(i64, Vec<ChunkMeta>)> = None;
    loop {
        let meta = match rows.next()? {
            Some(r) => Some(ChunkMeta::read(r)?),
            None => None,
        };
        let next_hour = meta.as_ref().map(|m| hour_of(m.start));
        if current.as_ref().map(|(h, _)| *h) != next_hour {
            if let Some((h, mut chunks)) = current.take() {
                chunks.sort_by_key(|c| c.first_offset);
                if !reader.log_only_hours_before(Some(h), visit)? {
                    return Ok(false);
                }
                if !reader.hour(h, &chunks, visit)? {
                    return Ok(false);
                }
            }
        }
        let Some(meta) = meta else { break };
        match &mut current {
            Some((h, chunks)) if *h == hour_of(meta.start) => chunks.push(meta),
            _ => current = Some((hour_of(meta.start), vec![meta])),
        }
    }
    reader.log_only_hours_before(None, visit)
}

fn hour_of(ts: i64) -> i64 {
    ts.div_euclid(CHUNK_SPAN_NS)
}

impl ChunkMeta {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        read_work::count(0, 1, 0);
        let point = |ts, v| rollup::row_point(r, ts, v);
        Ok(Self {
            id: r.get(0)?,
            first_offset: r.get(10)?,
            start: r.get(1)?,
            end: r.get(2)?,
            count: usize::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
            extremes: Extremes {
                first: point(1, 4)?,
                min: point(5, 6)?,
                max: point(7, 8)?,
                last: point(2, 9)?,
            },
        })
    }
}

/// For each chunk, whether its time span meets no other chunk ([`rollup::alone`]) and no
/// log point of the hour: only then can its extremes stand in for it.
fn overlaps_nothing(chunks: &[ChunkMeta], log_points: &[Point]) -> Vec<bool> {
    let spans: Vec<(i64, i64)> = chunks.iter().map(|c| (c.start, c.end)).collect();
    let mut alone = rollup::alone(&spans);
    let mut log_ts: Vec<i64> = log_points.iter().map(|p| p.ts_ns).collect();
    log_ts.sort_unstable();
    for (c, alone) in chunks.iter().zip(alone.iter_mut()) {
        let first_at_or_after = log_ts.partition_point(|&t| t < c.start);
        if log_ts.get(first_at_or_after).is_some_and(|&t| t <= c.end) {
            *alone = false;
        }
    }
    alone
}

/// Turns an hour's chunks and log points into the points a history read visits.
struct HourReader<'c, 'l> {
    series_id: i64,
    range: (i64, i64),
    columns: Option<(i64, i64, usize)>,
    logged: std::iter::Peekable<std::iter::Copied<std::slice::Iter<'l, Point>>>,
    blobs: ChunkBlobs<'c>,
    /// Reused for decoding, so reading an hour allocates nothing per chunk.
    scratch: Scratch,
}

/// The points of a chunk (read from `source`, spanning `[start, end]` with `count` points)
/// in `[from, to]`, cut down to their M4 at `(f, t, w)`: the same answer when they share no
/// timestamp with other points (see [`Extremes`]). Returns how many were in the range and
/// what stands for them. Only the frames a column boundary or an end of the range falls in
/// are read and decoded ([`chunk::decode_pieces`]).
fn chunk_m4<S: chunk::ChunkSource>(
    source: &mut S,
    (start, end, count): (i64, i64, usize),
    (from, to): (i64, i64),
    (f, t, w): (i64, i64, usize),
    scratch: &mut Scratch,
) -> Result<(usize, Vec<Point>), S::Error> {
    if to < start || from > end {
        return Ok((0, Vec::new()));
    }
    let cut_here = |c: i64| c > start && c <= end;
    let Scratch {
        points,
        bytes,
        cuts,
        below,
    } = scratch;
    cuts.clear();
    if cut_here(from) {
        cuts.push(from);
    }
    for c in column_of(start.max(from), f, t, w) + 1..=column_of(end.min(to), f, t, w) {
        cuts.push(column_start(c, f, t, w));
    }
    let to_cut = to.checked_add(1).filter(|&c| cut_here(c));
    cuts.extend(to_cut);
    points.clear();
    below.clear();
    let decoded = chunk::decode_pieces(source, (start, count), cuts, points, below, bytes)?;
    read_work::count(0, 0, decoded);
    let before_from = match cut_here(from) {
        true => below.first().copied().unwrap_or(0),
        false => 0,
    };
    let before_to = match to_cut {
        Some(_) => below.last().copied().unwrap_or(count),
        None => count,
    };
    let lo = points.partition_point(|p| p.ts_ns < from);
    let hi = points.partition_point(|p| p.ts_ns <= to).max(lo);
    let mut m4 = M4::new(f, t, w);
    m4.push_all(&points[lo..hi]);
    Ok((before_to.saturating_sub(before_from), m4.finish()))
}

/// Buffers a read reuses from chunk to chunk.
#[derive(Default)]
struct Scratch {
    points: Vec<Point>,
    bytes: Vec<u8>,
    /// A chunk's cuts for [`chunk::decode_pieces`], and the points before each.
    cuts: Vec<i64>,
    below: Vec<usize>,
}

/// Chunk data read through SQLite's incremental blob I/O: only the bytes asked for are
/// copied out, where selecting the column copied a whole chunk (8 KB at 1 kHz) to decode
/// a frame of it. One handle moves from row to row.
struct ChunkBlobs<'c> {
    conn: &'c Connection,
    blob: Option<rusqlite::blob::Blob<'c>>,
}

/// Why a chunk could not be read: SQLite failed, or the bytes are damaged.
#[derive(Debug)]
enum ChunkReadError {
    Sql(rusqlite::Error),
    Corrupt(chunk::Corrupt),
}

impl From<chunk::Corrupt> for ChunkReadError {
    fn from(e: chunk::Corrupt) -> Self {
        Self::Corrupt(e)
    }
}

impl<'c> ChunkBlobs<'c> {
    fn new(conn: &'c Connection) -> Self {
        Self { conn, blob: None }
    }

    /// Chunk `id`'s data, to read from.
    fn open(&mut self, id: i64) -> rusqlite::Result<ChunkBlob<'_, 'c>> {
        let blob = match self.blob.take() {
            Some(mut blob) => {
                blob.reopen(id)?;
                blob
            }
            None => self
                .conn
                .blob_open(rusqlite::MAIN_DB, "chunks", "data", id, true)?,
        };
        Ok(ChunkBlob(self.blob.insert(blob)))
    }
}

struct ChunkBlob<'b, 'c>(&'b rusqlite::blob::Blob<'c>);

impl chunk::ChunkSource for ChunkBlob<'_, '_> {
    type Error = ChunkReadError;

    fn size(&self) -> usize {
        self.0.len()
    }

    fn read_at(&mut self, at: usize, out: &mut [u8]) -> Result<(), ChunkReadError> {
        self.0.read_at_exact(out, at).map_err(ChunkReadError::Sql)
    }
}

impl HourReader<'_, '_> {
    /// Whether a chunk spanning `[start, end]` sits inside the range and one pixel column.
    fn in_one_column(&self, start: i64, end: i64) -> bool {
        let (from, to) = self.range;
        self.columns.is_some_and(|(f, t, w)| {
            start >= from && end <= to && column_of(start, f, t, w) == column_of(end, f, t, w)
        })
    }

    /// Visits the hours that only the log holds, before hour `until` (all when `None`).
    fn log_only_hours_before(
        &mut self,
        until: Option<i64>,
        visit: &mut impl FnMut(Vec<Point>, usize) -> bool,
    ) -> rusqlite::Result<bool> {
        while let Some(h) = self.logged.peek().map(|p| hour_of(p.ts_ns)) {
            if until.is_some_and(|u| h >= u) {
                break;
            }
            if !self.hour(h, &[], visit)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Visits hour `h` from its chunks (in offset order) and its log points (newer than any
    /// chunk): merged, clipped, in time order, with the number of raw points they stand for;
    /// false when `visit` asked to stop. A dense hour goes in pieces of chunks that meet
    /// only one another, so a read holds a piece's points at a time, not the hour's.
    fn hour(
        &mut self,
        h: i64,
        chunks: &[ChunkMeta],
        visit: &mut impl FnMut(Vec<Point>, usize) -> bool,
    ) -> rusqlite::Result<bool> {
        let mut log_points = Vec::new();
        while let Some(p) = self.logged.next_if(|p| hour_of(p.ts_ns) == h) {
            log_points.push(p);
        }
        let held: usize = chunks.iter().map(|c| c.count).sum();
        if held <= SPLIT_HOUR_POINTS {
            let (points, raw) = self.merged(chunks, log_points)?;
            return Ok(visit(points, raw));
        }
        // Spans by start: each chunk's, and the log points' as one (`None`), which thus
        // go with every chunk they may share a timestamp with.
        let log_span = log_points.first().zip(log_points.last());
        let mut spans: Vec<(i64, i64, Option<&ChunkMeta>)> = chunks
            .iter()
            .map(|c| (c.start, c.end, Some(c)))
            .chain(log_span.map(|(a, b)| (a.ts_ns, b.ts_ns, None)))
            .collect();
        spans.sort_by_key(|&(start, ..)| start);
        let mut log_points = Some(log_points);
        let mut rest = &spans[..];
        while let Some(&(_, first_end, _)) = rest.first() {
            let mut end = first_end;
            let n = 1 + rest[1..]
                .iter()
                .take_while(|&&(start, span_end, _)| {
                    let meets = start <= end;
                    end = end.max(span_end);
                    meets
                })
                .count();
            let mut piece: Vec<ChunkMeta> = rest[..n].iter().filter_map(|s| s.2.cloned()).collect();
            piece.sort_by_key(|c| c.first_offset);
            let logged = if rest[..n].iter().any(|s| s.2.is_none()) {
                log_points.take().unwrap_or_default()
            } else {
                Vec::new()
            };
            let (points, raw) = self.merged(&piece, logged)?;
            if !visit(points, raw) {
                return Ok(false);
            }
            rest = &rest[n..];
        }
        Ok(true)
    }

    /// [`HourReader::hour`]'s points of `chunks` (in offset order) and `log_points`.
    fn merged(
        &mut self,
        chunks: &[ChunkMeta],
        log_points: Vec<Point>,
    ) -> rusqlite::Result<(Vec<Point>, usize)> {
        let alone = overlaps_nothing(chunks, &log_points);
        let mut points = Vec::new();
        let mut summarized = 0usize;
        for (c, alone) in chunks.iter().zip(alone) {
            if alone && self.in_one_column(c.start, c.end) {
                let stand_ins = c.extremes.points();
                summarized += c.count.saturating_sub(stand_ins.len());
                points.extend(stand_ins);
                continue;
            }
            // Nothing else shares its timestamps: its points can be cut down to their M4
            // per column right away, so an hour never holds every decoded point.
            let columns = self.columns.filter(|_| alone);
            let mut data = self.blobs.open(c.id)?;
            let scratch = &mut self.scratch;
            let read = match columns {
                Some(columns) => {
                    let span = (c.start, c.end, c.count);
                    chunk_m4(&mut data, span, self.range, columns, scratch).map(Some)
                }
                None => {
                    read_work::count(0, 0, c.count);
                    scratch.points.clear();
                    let (points, bytes) = (&mut scratch.points, &mut scratch.bytes);
                    chunk::decode_from(&mut data, (c.start, c.count), points, bytes).map(|()| None)
                }
            };
            match read {
                Ok(Some((inside, kept))) => {
                    summarized += inside.saturating_sub(kept.len());
                    points.extend(kept);
                }
                Ok(None) => points.extend_from_slice(&scratch.points),
                Err(ChunkReadError::Sql(e)) => return Err(e),
                Err(ChunkReadError::Corrupt(e)) => tracing::error!(
                    series_id = self.series_id,
                    start = c.start,
                    "skipping a damaged chunk: {e}"
                ),
            }
        }
        points.extend(log_points);
        let (from, to) = self.range;
        let mut points = last_write_wins(points);
        points.retain(|p| p.ts_ns >= from && p.ts_ns <= to);
        let raw = points.len() + summarized;
        Ok((points, raw))
    }
}

const INSERT_CHUNK: &str = "INSERT INTO chunks
    (series_id, first_offset, end_offset, start_ns, end_ns, count,
     min, max, first_v, last_v, min_ns, max_ns, data)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// Deletes the chunks of a series that ended before `cut` (retention, the disk cap) and
/// takes them out of its rollup rows (finest tier `finest`, 0: none); returns how many went.
fn drop_chunks_before(tx: &Connection, id: i64, finest: i64, cut: i64) -> rusqlite::Result<usize> {
    let dropped: Vec<(i64, i64)> = tx
        .prepare_cached(
            "DELETE FROM chunks WHERE series_id = ?1 AND start_ns < ?2 AND end_ns < ?2
             RETURNING start_ns, count",
        )?
        .query_map(params![id, cut], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if !dropped.is_empty() {
        rollup::forget_before(tx, id, rollup::tiers_from(finest), cut, &dropped)?;
    }
    Ok(dropped.len())
}

/// Writes time-sorted `points` (one per timestamp) as a chunk holding offsets `[first, end)`;
/// returns what the rollups count of it (clean: the caller knows about overlaps).
fn insert_chunk(
    insert: &mut rusqlite::CachedStatement<'_>,
    series_id: i64,
    (first_offset, end_offset): (i64, i64),
    points: &[Point],
) -> rusqlite::Result<Option<rollup::Counted>> {
    let Some(e) = Extremes::of(points) else {
        return Ok(None);
    };
    let chunk_id = insert.insert(params![
        series_id,
        first_offset,
        end_offset,
        e.first.ts_ns,
        e.last.ts_ns,
        points.len() as i64,
        e.min.value,
        e.max.value,
        e.first.value,
        e.last.value,
        e.min.ts_ns,
        e.max.ts_ns,
        chunk::encode_framed(points),
    ])?;
    Ok(Some(rollup::Counted {
        summary: rollup::Summary {
            count: points.len() as i64,
            clean: true,
            extremes: e,
        },
        chunk_id: Some(chunk_id),
    }))
}

struct Writer {
    conn: Connection,
    /// See [`SqliteStore::stuck`].
    stuck: Arc<std::sync::atomic::AtomicBool>,
    /// The live window and the hub, updated here in commit order before each answer: two
    /// writes of one timestamp in one group must show the later one, as the disk does.
    live: Arc<MemoryStore>,
    hub: Option<Hub>,
    series: SeriesMap<SeriesState>,
    max_series: usize,
    retention: Duration,
    max_disk_bytes: Option<u64>,
    last_retention: Option<Instant>,
    /// Points in the log, and since when it has any: when to compact.
    log_points: usize,
    log_since: Option<Instant>,
    /// The log's contents per series with their offsets, as committed: the writer is the
    /// only one writing, so compaction need not read back and decode what it just wrote.
    pending: HashMap<i64, Vec<(i64, Point)>>,
    /// Hours (series id, hour index) that compaction wrote small or overlapping chunks into:
    /// a slow series compacted every few seconds gets a chunk each time, and merging them
    /// once the hour is over ([`MERGE_AT`]) keeps rows per series per hour at one or two.
    fragmented: HashMap<(i64, i64), Fragments>,
    /// Set after a failed compaction: not before then.
    compact_retry_at: Option<Instant>,
    /// Hours left ready to merge when the last pass ran out of [`Writer::merge_budget`].
    merge_backlog: bool,
    /// [`MERGE_BUDGET`]; tests set zero for one merge per pass.
    merge_budget: Duration,
    /// Per series id, its finest rollup tier (absent: none yet); see [`rollup`].
    rollup_width: HashMap<i64, i64>,
    /// [`rollup::MIN_POINTS_PER_BUCKET`], lowered by tests to get rollups from few points.
    rollup_min_points: i128,
    /// Commits transactions that change rollup rows, keeping the readers' cache current.
    writes: row_cache::Writes,
}

/// How fragmented an hour of a series is (small chunks count 1, chunks overlapping stored
/// ones [`MERGE_AT`]; a merge once it reaches [`MERGE_AT`]), and when compaction last wrote
/// into it.
#[derive(Debug, Clone, Copy)]
struct Fragments {
    score: u32,
    written: Instant,
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Job>) {
        // Whatever expired while the server was down goes first.
        self.maybe_expire();
        loop {
            let wait = if self.merge_backlog {
                // More merges are ready: only a commit goes first.
                Duration::ZERO
            } else if self.log_points > 0 || !self.fragmented.is_empty() {
                COMPACT_AFTER
            } else {
                retention_every(self.retention)
            };
            let first = match rx.recv_timeout(wait) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.maintain(true);
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
            self.maintain(false);
        }
        if let Err(e) = self.save_merges() {
            tracing::warn!("could not save the hours waiting to be merged: {e}");
        }
        // Last, after every commit: if this survives a crash, so did everything before it.
        if let Err(e) = self
            .conn
            .execute("UPDATE meta SET value = '1' WHERE key = 'clean'", [])
        {
            tracing::warn!("could not mark the database as closed cleanly: {e}");
        }
        tracing::info!("store writer stopped; every acknowledged point is committed");
    }

    /// Writes [`Writer::fragmented`] for the next start ([`load_merges`]), replacing what
    /// the last stop wrote.
    fn save_merges(&mut self) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM merges", [])?;
        {
            let mut insert =
                tx.prepare("INSERT INTO merges (series_id, hour, score) VALUES (?1, ?2, ?3)")?;
            for (&(series_id, hour), f) in &self.fragmented {
                insert.execute(params![series_id, hour, f.score])?;
            }
        }
        tx.commit()
    }

    /// Compaction when due; merges of finished hours after it, or when `idle` (nothing came
    /// for a while, so hours written last become quiet without another compaction).
    fn maintain(&mut self, idle: bool) {
        let mut compacted = false;
        let due = self.log_points >= COMPACT_POINTS
            || self.log_since.is_some_and(|t| t.elapsed() >= COMPACT_AFTER);
        let backing_off = self.compact_retry_at.is_some_and(|t| Instant::now() < t);
        if due && !backing_off {
            match self.compact() {
                Ok(()) => {
                    self.log_points = 0;
                    self.log_since = None;
                    self.compact_retry_at = None;
                    self.stuck
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    compacted = true;
                }
                // The log stays; reads still see it and a later pass retries.
                Err(e) => {
                    tracing::error!("compaction failed: {e}");
                    self.compact_retry_at = Some(Instant::now() + COMPACT_RETRY);
                }
            }
        }
        if compacted || idle || self.merge_backlog {
            if let Err(e) = self.merge_finished_hours(Instant::now()) {
                tracing::warn!("merging small chunks stopped: {e}");
            }
        }
        // New chunks are what grows the file: check the cap right away.
        if let (true, Some(cap)) = (compacted, self.max_disk_bytes) {
            if let Err(e) = self.enforce_disk_cap(cap) {
                tracing::warn!("disk cap pass stopped: {e}");
            }
        }
        self.maybe_expire();
    }

    /// Writes every job of the group as one log record in one transaction. A job crossing
    /// the series cap is refused alone; a database error refuses the whole group (nothing of
    /// it is stored, and the writer's view of the series is rolled back with it).
    fn commit(&mut self, group: Vec<Job>) {
        if self.log_points >= MAX_LOG_POINTS {
            self.stuck.store(true, std::sync::atomic::Ordering::Relaxed);
            for job in group {
                let _ = job.reply.send(Err(unavailable(
                    "the store cannot compact its commit log (see the server log); retry later",
                )));
            }
            return;
        }
        // What the series map held before this group first touched each series, to roll back
        // on failure (at most one entry per series).
        let mut undo: HashMap<SeriesKey, Option<SeriesState>> = HashMap::new();
        // Per job: `None` when written, `Some(adding)` when refused at the series cap.
        let mut outcomes: Vec<(Job, Option<usize>)> = Vec::with_capacity(group.len());
        let points: usize = group.iter().map(|j| j.batch.point_count()).sum();
        let mut record = Vec::with_capacity(points * 10 + 64);
        let mut appended: Vec<(i64, SeriesKey, i64, Vec<Point>)> = Vec::new();
        let written = (|| -> rusqlite::Result<()> {
            let tx = self.conn.transaction()?;
            {
                let mut new_series = tx.prepare_cached(
                    "INSERT INTO series (name, labels) VALUES (?1, ?2) RETURNING id",
                )?;
                let mut sorted: Vec<Point> = Vec::new();
                for job in group {
                    // Counting new series costs a lookup each; skip it when even all-new fits.
                    let adding = if self.series.len() + job.batch.series_count() <= self.max_series
                    {
                        0
                    } else {
                        job.batch
                            .iter()
                            .filter(|(k, _)| !self.series.contains_key(*k))
                            .count()
                    };
                    if self.series.len() + adding > self.max_series {
                        outcomes.push((job, Some(adding)));
                        continue;
                    }
                    for (key, batch_points) in job.batch.iter() {
                        let state = match self.series.get_mut(key) {
                            Some(state) => state,
                            None => {
                                let labels = serde_json::to_string(key.labels())
                                    .unwrap_or_else(|_| "{}".into());
                                let id: i64 = new_series
                                    .query_row(params![key.name(), labels], |r| r.get(0))?;
                                undo.entry(key.clone()).or_insert(None);
                                self.series
                                    .entry(key.clone())
                                    .or_insert(SeriesState { id, next_offset: 0 })
                            }
                        };
                        if !undo.contains_key(key) {
                            undo.insert(key.clone(), Some(*state));
                        }
                        let in_order = batch_points.is_sorted_by_key(|p| p.ts_ns);
                        let points = if in_order {
                            batch_points
                        } else {
                            // Stable: of two equal timestamps in a request the later wins.
                            sorted.clear();
                            sorted.extend_from_slice(batch_points);
                            sorted.sort_by_key(|p| p.ts_ns);
                            &sorted
                        };
                        chunk::encode_entry(&mut record, state.id, state.next_offset, points);
                        appended.push((state.id, key.clone(), state.next_offset, points.to_vec()));
                        state.next_offset += points.len() as i64;
                    }
                    outcomes.push((job, None));
                }
            }
            if !record.is_empty() {
                tx.prepare_cached("INSERT INTO log (data) VALUES (?1)")?
                    .execute([&record])?;
            }
            tx.commit()
        })();
        match written {
            Ok(()) => {
                for (id, _, first_offset, pts) in &appended {
                    self.pending
                        .entry(*id)
                        .or_default()
                        .extend((*first_offset..).zip(pts.iter().copied()));
                }
                let written: usize = appended.iter().map(|(_, _, _, p)| p.len()).sum();
                self.log_points += written;
                if written > 0 && self.log_since.is_none() {
                    self.log_since = Some(Instant::now());
                }
                // The live window first, then the hub, then the answers: a session that
                // subscribes between the publish and its snapshot must find the points in the
                // window (the snapshot reads it), and a page never lags what its own push was
                // told.
                let stored: Vec<Option<Stored>> = outcomes
                    .iter()
                    .map(|(job, refused)| {
                        refused
                            .is_none()
                            .then(|| self.live.append_unchecked(&job.batch))
                    })
                    .collect();
                if let Some(hub) = &self.hub {
                    hub.publish(
                        appended
                            .into_iter()
                            .map(|(_, key, first, points)| (key, first, points))
                            .collect(),
                    );
                }
                for ((job, refused), stored) in outcomes.into_iter().zip(stored) {
                    let outcome = match (refused, stored) {
                        (_, Some(stored)) => Ok(stored),
                        (adding, None) => Err(StoreError::TooManySeries {
                            limit: self.max_series,
                            adding: adding.unwrap_or(0),
                        }),
                    };
                    let _ = job.reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::error!("commit failed, the group is refused: {e}");
                for (key, before) in undo {
                    match before {
                        Some(state) => {
                            self.series.insert(key, state);
                        }
                        None => {
                            self.series.remove(&key);
                        }
                    }
                }
                for (job, refused) in outcomes {
                    let error = match refused {
                        None => unavailable(&e),
                        Some(adding) => StoreError::TooManySeries {
                            limit: self.max_series,
                            adding,
                        },
                    };
                    let _ = job.reply.send(Err(error));
                }
            }
        }
    }

    /// Moves the whole log into per-series chunks and empties it, in one transaction: a
    /// reader sees either the log or the chunks, never both or neither.
    fn compact(&mut self) -> rusqlite::Result<()> {
        let mut log = std::mem::take(&mut self.pending);
        let result = self.write_chunks(&mut log);
        if result.is_err() {
            // Nothing was deleted from the log: keep its contents for the next attempt.
            self.pending = log;
        }
        result
    }

    fn write_chunks(&mut self, log: &mut HashMap<i64, Vec<(i64, Point)>>) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let last: Option<i64> = tx.query_row("SELECT max(id) FROM log", [], |r| r.get(0))?;
        let Some(last) = last else {
            return tx.commit();
        };
        // Points already past retention are not worth a chunk.
        let horizon = now_ns().saturating_sub(duration_ns(self.retention));
        // When this compaction wrote into an hour: once for all its chunks.
        let written = Instant::now();
        let mut chunks = 0usize;
        let mut switched_on = Vec::new();
        {
            let mut insert = tx.prepare_cached(INSERT_CHUNK)?;
            let mut next_offset = tx.prepare_cached(
                "UPDATE series SET next_offset = max(next_offset, ?2) WHERE id = ?1",
            )?;
            let mut overlapping = tx.prepare_cached(
                "SELECT start_ns FROM chunks
                 WHERE series_id = ?1 AND start_ns >= ?4 AND start_ns <= ?3 AND end_ns >= ?2",
            )?;
            let mut set_rollup_width =
                tx.prepare_cached("UPDATE series SET rollup_width = ?2 WHERE id = ?1")?;
            for (&series_id, points) in log.iter_mut() {
                // The offsets leave the log here: the series row keeps where they got to.
                if let Some(end) = points.iter().map(|(o, _)| o.saturating_add(1)).max() {
                    next_offset.execute(params![series_id, end])?;
                }
                // Time order, later offset last; then one point per timestamp, the later
                // write winning.
                if !points.is_sorted_by_key(|(offset, p)| (p.ts_ns, *offset)) {
                    points.sort_by_key(|(offset, p)| (p.ts_ns, *offset));
                }
                points.dedup_by(|later, kept| {
                    let same = later.1.ts_ns == kept.1.ts_ns;
                    if same {
                        *kept = *later;
                    }
                    same
                });
                // Expired points are skipped, not removed: if this transaction fails, the log
                // goes back for the next attempt with its newest offset still in it.
                let points = &points[points.partition_point(|(_, p)| p.ts_ns < horizon)..];
                let hours = points.chunk_by(|a, b| {
                    a.1.ts_ns.div_euclid(CHUNK_SPAN_NS) == b.1.ts_ns.div_euclid(CHUNK_SPAN_NS)
                });
                let mut summaries = Vec::new();
                let mut met = Vec::new();
                for part in hours.flat_map(|hour| hour.chunks(MAX_CHUNK_POINTS)) {
                    let first_offset = part.iter().map(|(o, _)| *o).min().unwrap_or(0);
                    let end_offset = part.iter().map(|(o, _)| *o + 1).max().unwrap_or(0);
                    let only: Vec<Point> = part.iter().map(|(_, p)| *p).collect();
                    let (Some(first), Some(last)) = (only.first(), only.last()) else {
                        continue;
                    };
                    let hour = first.ts_ns.div_euclid(CHUNK_SPAN_NS);
                    // Stored chunks this one meets (late points, retries): their rollups and
                    // this one's are no longer exact, and the hour gets merged.
                    let before = met.len();
                    let rows = overlapping.query_map(
                        params![
                            series_id,
                            first.ts_ns,
                            last.ts_ns,
                            first_possible_start(first.ts_ns)
                        ],
                        |r| r.get(0),
                    )?;
                    for start in rows {
                        met.push(start?);
                    }
                    if let Some(mut summary) =
                        insert_chunk(&mut insert, series_id, (first_offset, end_offset), &only)?
                    {
                        summary.summary.clean = met.len() == before;
                        summaries.push(summary);
                    }
                    chunks += 1;
                    let score = if met.len() > before {
                        MERGE_AT
                    } else {
                        u32::from(only.len() < MAX_CHUNK_POINTS / 2)
                    };
                    // A large clean chunk needs no entry, but refreshes one the hour has.
                    if let Some(f) = self.fragmented.get_mut(&(series_id, hour)) {
                        f.score += score;
                        f.written = written;
                    } else if score > 0 {
                        let f = Fragments { score, written };
                        self.fragmented.insert((series_id, hour), f);
                    }
                }
                let finest = self.rollup_width.get(&series_id).copied().unwrap_or(0);
                rollup::add(
                    &tx,
                    series_id,
                    rollup::tiers_from(finest),
                    finest,
                    &summaries,
                )?;
                rollup::mark_dirty(&tx, series_id, rollup::tiers_from(finest), &met)?;
                // Switch finer tiers on once the series' rate makes them worth it.
                let span = match (points.first(), points.last()) {
                    (Some(a), Some(b)) => b.1.ts_ns.saturating_sub(a.1.ts_ns),
                    _ => 0,
                };
                if let Some(worth) =
                    rollup::finest_worth(points.len(), span, self.rollup_min_points)
                {
                    if finest == 0 || worth < finest {
                        let new = rollup::TIERS
                            .into_iter()
                            .filter(|&w| w >= worth && (finest == 0 || w < finest));
                        rollup::backfill(&tx, series_id, new, worth)?;
                        if finest > 0 {
                            rollup::unlist_tier(&tx, series_id, finest)?;
                        }
                        set_rollup_width.execute(params![series_id, worth])?;
                        switched_on.push((series_id, worth));
                    }
                }
            }
        }
        tx.execute("DELETE FROM log WHERE id <= ?1", [last])?;
        self.writes.finish(tx)?;
        self.rollup_width.extend(switched_on);
        tracing::debug!(chunks, "compacted the log");
        Ok(())
    }

    /// Merges the small chunks of every fragmented hour that is over and quiet at `now` into
    /// as few chunks as [`MAX_CHUNK_POINTS`] allows, one hour per transaction, for at most
    /// the merge budget (at least one hour); the rest is left for the next pass.
    fn merge_finished_hours(&mut self, now: Instant) -> rusqlite::Result<()> {
        let done_before = now_ns()
            .saturating_sub(MERGE_DELAY_NS)
            .div_euclid(CHUNK_SPAN_NS);
        let quiet = |f: &Fragments| now.saturating_duration_since(f.written) >= MERGE_QUIET;
        let ready: Vec<(i64, i64)> = self
            .fragmented
            .iter()
            .filter(|(&(_, hour), f)| hour < done_before && f.score >= MERGE_AT && quiet(f))
            .map(|(&k, _)| k)
            .collect();
        let started = Instant::now();
        self.merge_backlog = false;
        for (i, key) in ready.into_iter().enumerate() {
            if i > 0 && started.elapsed() >= self.merge_budget {
                self.merge_backlog = true;
                break;
            }
            self.merge_hour(key.0, key.1)?;
            // The merged chunk is one more chunk to merge with if late points come.
            if let Some(f) = self.fragmented.get_mut(&key) {
                f.score = 1;
            }
        }
        // An hour short of [`MERGE_AT`] needs no merge unless late points add more; after two
        // more hours (and once quiet) that is rare enough to forget it (it is merged if
        // enough ever comes back).
        self.fragmented
            .retain(|&(_, hour), f| f.score >= MERGE_AT || hour >= done_before - 2 || !quiet(f));
        Ok(())
    }

    fn merge_hour(&mut self, series_id: i64, hour: i64) -> rusqlite::Result<()> {
        let from = hour.saturating_mul(CHUNK_SPAN_NS);
        let to = hour.saturating_add(1).saturating_mul(CHUNK_SPAN_NS);
        let tx = self.conn.transaction()?;
        let mut offsets = Vec::new();
        let mut end_offset = 0i64;
        let mut points = Vec::new();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT first_offset, end_offset, start_ns, count, data FROM chunks
                 WHERE series_id = ?1 AND start_ns >= ?2 AND start_ns < ?3
                 ORDER BY first_offset",
            )?;
            let mut rows = stmt.query(params![series_id, from, to])?;
            while let Some(row) = rows.next()? {
                let start: i64 = row.get(2)?;
                let count = usize::try_from(row.get::<_, i64>(3)?).unwrap_or(0);
                let data = row.get_ref(4)?.as_blob().unwrap_or(&[]);
                if chunk::decode(data, start, count, &mut points).is_err() {
                    // Leave a damaged hour as it is rather than lose its readable chunks.
                    tracing::error!(series_id, hour, "not merging an hour with a damaged chunk");
                    offsets.clear();
                    break;
                }
                offsets.push(row.get::<_, i64>(0)?);
                end_offset = end_offset.max(row.get(1)?);
            }
        }
        if offsets.len() < 2 {
            return tx.commit();
        }
        let points = last_write_wins(points);
        let parts: Vec<&[Point]> = points.chunks(MAX_CHUNK_POINTS).collect();
        if parts.len() > offsets.len() {
            // Only when a stored chunk was larger than this version writes: leave it be.
            return tx.commit();
        }
        {
            let mut delete =
                tx.prepare_cached("DELETE FROM chunks WHERE series_id = ?1 AND first_offset = ?2")?;
            for offset in &offsets {
                delete.execute(params![series_id, offset])?;
            }
            let mut insert = tx.prepare_cached(INSERT_CHUNK)?;
            // Each part reuses a freed key: chunks never hold more than MAX_CHUNK_POINTS, so
            // there are never more parts than merged chunks. Within an hour the merged points
            // have one value per timestamp, so their order among chunks no longer matters.
            let mut summaries = Vec::new();
            for (part, &first_offset) in parts.iter().zip(&offsets) {
                summaries.extend(insert_chunk(
                    &mut insert,
                    series_id,
                    (first_offset, end_offset),
                    part,
                )?);
            }
            // The hour's rows (tiers up to an hour) are counted again from the merged chunks,
            // which overlap nothing, and the wider rows holding the hour from those.
            let finest = self.rollup_width.get(&series_id).copied().unwrap_or(0);
            let within_hour = rollup::tiers_from(finest).filter(|&w| w <= CHUNK_SPAN_NS);
            rollup::forget_span(&tx, series_id, within_hour.clone(), (from, to))?;
            rollup::add(&tx, series_id, within_hour, finest, &summaries)?;
            rollup::recount_above_hour(&tx, series_id, finest, from)?;
        }
        self.writes.finish(tx)
    }

    /// Drops chunks that ended before the retention horizon: one transaction, which writes
    /// (and syncs) nothing when nothing expired.
    fn maybe_expire(&mut self) {
        let every = retention_every(self.retention);
        if self.last_retention.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last_retention = Some(Instant::now());
        let horizon = now_ns().saturating_sub(duration_ns(self.retention));
        let ids: Vec<i64> = self.series.values().map(|s| s.id).collect();
        let result = (|| -> rusqlite::Result<usize> {
            let tx = self.conn.transaction()?;
            let mut dropped = 0;
            for id in ids {
                let finest = self.rollup_width.get(&id).copied().unwrap_or(0);
                dropped += drop_chunks_before(&tx, id, finest, horizon)?;
            }
            self.writes.finish(tx)?;
            Ok(dropped)
        })();
        match result {
            Ok(0) => {}
            Ok(n) => tracing::info!(chunks = n, "retention dropped expired chunks"),
            Err(e) => tracing::warn!("retention pass stopped: {e}"),
        }
        if let Some(cap) = self.max_disk_bytes {
            if let Err(e) = self.enforce_disk_cap(cap) {
                tracing::warn!("disk cap pass stopped: {e}");
            }
        }
    }

    /// Bytes of database pages in use (freed pages are reused, so the file stays near this).
    fn used_bytes(&self) -> rusqlite::Result<u64> {
        let pragma = |name: &str| -> rusqlite::Result<u64> {
            self.conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
                .map(|v| u64::try_from(v).unwrap_or(0))
        };
        Ok(pragma("page_count")?.saturating_sub(pragma("freelist_count")?) * pragma("page_size")?)
    }

    /// Drops the oldest hour of chunks, across all series, until the pages in use fit `cap`.
    fn enforce_disk_cap(&mut self, cap: u64) -> rusqlite::Result<()> {
        let mut dropped = 0usize;
        while self.used_bytes()? > cap {
            match self.drop_oldest_hour()? {
                Some((_, n)) => dropped += n,
                // Nothing left to drop: the log and the series alone exceed the cap.
                None => break,
            }
        }
        if dropped > 0 {
            tracing::warn!(
                chunks = dropped,
                cap,
                "disk cap reached: dropped the oldest data"
            );
        }
        Ok(())
    }

    /// Drops every chunk of the oldest hour that has any, across all series, in one
    /// transaction; returns where it cut and how many chunks went, or `None` if there were
    /// none.
    fn drop_oldest_hour(&mut self) -> rusqlite::Result<Option<(i64, usize)>> {
        let mut oldest: Option<i64> = None;
        {
            let mut first = self
                .conn
                .prepare_cached("SELECT min(start_ns) FROM chunks WHERE series_id = ?1")?;
            for state in self.series.values() {
                let start: Option<i64> = first.query_row([state.id], |r| r.get(0))?;
                oldest = match (oldest, start) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        let Some(oldest) = oldest else {
            return Ok(None);
        };
        // The whole oldest hour: no chunk of it ends after the hour does.
        let cut = first_possible_start(oldest).saturating_add(CHUNK_SPAN_NS);
        let tx = self.conn.transaction()?;
        let mut dropped = 0;
        for state in self.series.values() {
            let finest = self.rollup_width.get(&state.id).copied().unwrap_or(0);
            dropped += drop_chunks_before(&tx, state.id, finest, cut)?;
        }
        self.writes.finish(tx)?;
        Ok(Some((cut, dropped)))
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn append(&self, batch: Batch) -> Result<Stored, StoreError> {
        super::check_retention(&batch, self.retention)?;
        let (reply, done) = oneshot::channel();
        let job = Job { batch, reply };
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| unavailable("the store is shutting down"))?;
        // Committed, in the live window and published by the writer, in commit order.
        done.await
            .map_err(|_| unavailable("the store stopped before committing"))?
    }

    async fn recent(&self, since_ns: i64, columns: usize) -> Result<Vec<SeriesPoints>, StoreError> {
        self.live.recent(since_ns, columns).await
    }

    /// Counts and first points from the database, the newest point and the rate from the live
    /// window (which has every point of the last minute).
    async fn list(&self, now_ns: i64) -> Result<Vec<SeriesInfo>, StoreError> {
        let held = self.read(held_per_series).await?;
        let mut live: HashMap<SeriesKey, SeriesInfo> = self
            .live
            .list(now_ns)
            .await?
            .into_iter()
            .map(|info| (info.series.clone(), info))
            .collect();
        let mut out: Vec<SeriesInfo> = held
            .into_iter()
            .map(|(key, h)| match live.remove(&key) {
                Some(info) => SeriesInfo {
                    points: info.points.max(h.points),
                    first_ns: info.first_ns.min(h.first_ns),
                    ..info
                },
                None => SeriesInfo {
                    series: key,
                    points: h.points,
                    first_ns: h.first_ns,
                    last_ns: h.last.ts_ns,
                    last_value: h.last.value,
                    rate: 0.0,
                },
            })
            .collect();
        // Committed after the snapshot was taken.
        out.extend(live.into_values());
        out.sort_by(|a, b| a.series.cmp(&b.series));
        Ok(out)
    }

    async fn history(&self, q: HistoryQuery) -> Result<HistoryResult, StoreError> {
        Ok(self.history_with_work(q).await?.0)
    }

    fn read_cache_bytes(&self) -> usize {
        self.rows.bytes()
    }

    /// Not ready while ingest would be refused whatever comes: the writer has stopped, or
    /// compaction keeps failing. (A failed commit alone is not counted: without traffic it
    /// would never be retried, and an instance marked not ready gets none.)
    async fn ready(&self) -> Result<(), StoreError> {
        let stopped = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_none_or(std::thread::JoinHandle::is_finished);
        if stopped {
            return Err(unavailable(
                "the store's writer has stopped (see the server log)",
            ));
        }
        if self.stuck.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(unavailable(
                "the store cannot compact its commit log (see the server log); ingest is \
                 refused until it can",
            ));
        }
        Ok(())
    }
}

impl SqliteStore {
    /// Forgets the rollup rows kept in memory: the next reads take them from SQLite, as the
    /// first read of a range does (the store bench measures that read).
    pub fn clear_row_cache(&self) {
        self.rows.clear();
    }

    /// [`Store::history`], and what the read did (only decimated reads are counted; a raw
    /// read gives zeros).
    pub async fn history_with_work(
        &self,
        q: HistoryQuery,
    ) -> Result<(HistoryResult, ReadWork), StoreError> {
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
        // Points past retention are never answered, even before their chunk is dropped.
        let horizon = now_ns().saturating_sub(duration_ns(self.retention));
        let (from, to) = (q.from_ns.max(horizon), q.to_ns);
        if from > to {
            // All of it past retention: nothing to read (and an empty range to no reader).
            return Ok((
                HistoryResult::from_points(&q, Vec::new()),
                ReadWork::default(),
            ));
        }
        let query = q.clone();
        let Some(limit) = query.raw_limit else {
            let columns = (q.from_ns, q.to_ns, q.width);
            let parts = read_parts().min(q.width / MIN_PART_COLUMNS);
            let reads = column_parts((from, to), columns, parts).map(|part| {
                let rows = self.rows.clone();
                self.read(move |conn| {
                    let mut m4 = M4::new(columns.0, columns.1, columns.2);
                    let raw = read_m4(conn, Some(&rows), id, part, columns, &mut m4)?;
                    Ok((m4.finish(), raw, read_work::take()))
                })
            });
            let mut points = Vec::new();
            let mut raw_points = 0;
            let mut work = ReadWork::default();
            for (part, raw, part_work) in futures::future::try_join_all(reads).await? {
                points.extend(part);
                raw_points += raw;
                work += part_work;
            }
            let answer = HistoryResult {
                raw_points,
                ..HistoryResult::decimated(&q, points)
            };
            return Ok((answer, work));
        };
        self.read(move |conn| {
            let mut raw_points = 0usize;
            // One past the limit tells whether the answer was cut.
            let mut points = Vec::new();
            read_hours(conn, id, (from, to), None, |hour, raw| {
                raw_points += raw;
                points.extend(hour.into_iter().take(limit + 1 - points.len()));
                points.len() <= limit
            })?;
            Ok(HistoryResult {
                raw_points,
                ..HistoryResult::from_points(&query, points)
            })
        })
        .await
        .map(|answer| (answer, ReadWork::default()))
    }
}

/// Fewest columns worth a part of their own: each part plans and opens its own read.
const MIN_PART_COLUMNS: usize = 256;

/// How many parts a wide history read is split into: one per core, as a read over a long
/// range is CPU-bound (index descents and a frame decoded per column boundary) and parts
/// share nothing; at most [`MAX_READERS`], so one read cannot hold every connection.
fn read_parts() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_READERS / 2)
}

/// The read `range` (inclusive) cut at column starts into at most `parts` pieces of about
/// equal width, so each column falls in exactly one piece and the pieces' M4 answers, in
/// order, are the whole range's. Each piece reads its own snapshot: a column is always
/// answered from one, and a commit landing in between shows in the later pieces only, as if
/// it had arrived a moment earlier.
fn column_parts(
    (from, to): (i64, i64),
    (cf, ct, w): (i64, i64, usize),
    parts: usize,
) -> impl Iterator<Item = (i64, i64)> {
    let parts = parts.clamp(1, w.max(1));
    let mut cuts: Vec<i64> = (1..parts)
        .map(|i| crate::decimate::column_start(w * i / parts, cf, ct, w))
        .filter(|&c| c > from && c <= to)
        .collect();
    cuts.dedup();
    let starts = std::iter::once(from).chain(cuts.clone());
    let ends = cuts.into_iter().map(|c| c - 1).chain(std::iter::once(to));
    starts.zip(ends)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A database holding `writes` (in write order, offsets = positions) of series 1: the
    /// first `compacted` as per-hour chunks, the rest as log entries.
    fn db_with(writes: &[Point], compacted: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        rusqlite::vtab::array::load_module(&conn).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let mut hours: BTreeMap<i64, Vec<(i64, Point)>> = BTreeMap::new();
        for (o, p) in writes[..compacted].iter().enumerate() {
            hours
                .entry(p.ts_ns.div_euclid(CHUNK_SPAN_NS))
                .or_default()
                .push((o as i64, *p));
        }
        for (_, mut pts) in hours {
            pts.sort_by_key(|(o, p)| (p.ts_ns, *o));
            pts.dedup_by(|later, kept| {
                let same = later.1.ts_ns == kept.1.ts_ns;
                if same {
                    *kept = *later;
                }
                same
            });
            let only: Vec<Point> = pts.iter().map(|(_, p)| *p).collect();
            let first = pts.iter().map(|(o, _)| *o).min().unwrap();
            let mut insert = conn.prepare_cached(INSERT_CHUNK).unwrap();
            insert_chunk(&mut insert, 1, (first, first + 1), &only).unwrap();
        }
        let mut record = Vec::new();
        for (o, p) in writes.iter().enumerate().skip(compacted) {
            chunk::encode_entry(&mut record, 1, o as i64, &[*p]);
        }
        if !record.is_empty() {
            conn.execute("INSERT INTO log (data) VALUES (?1)", [&record])
                .unwrap();
        }
        conn
    }

    proptest! {
        /// The sweep agrees with comparing every pair.
        #[test]
        fn overlaps_nothing_agrees_with_brute_force(
            spans in proptest::collection::vec((0i64..100, 0i64..20), 0..30),
            log in proptest::collection::vec(0i64..120, 0..5),
        ) {
            let p = |t| Point::new(t, 0.0).unwrap();
            let chunks: Vec<ChunkMeta> = spans
                .iter()
                .enumerate()
                .map(|(i, &(start, len))| ChunkMeta {
                    id: i as i64,
                    first_offset: i as i64,
                    start,
                    end: start + len,
                    count: 1,
                    extremes: Extremes { first: p(start), min: p(start), max: p(start), last: p(start + len) },
                })
                .collect();
            let log_points: Vec<Point> = log.iter().map(|&t| p(t)).collect();
            let want: Vec<bool> = chunks
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    chunks.iter().enumerate().all(|(j, o)| j == i || o.end < c.start || o.start > c.end)
                        && log_points.iter().all(|q| q.ts_ns < c.start || q.ts_ns > c.end)
                })
                .collect();
            prop_assert_eq!(overlaps_nothing(&chunks, &log_points), want);
        }

        /// Reading hour by hour gives exactly the last write per timestamp in the range, in
        /// time order, wherever the points sit (chunks, log, both), and stops when asked.
        #[test]
        fn read_hours_is_last_write_wins_in_time_order(
            raw in proptest::collection::vec((0i64..5 * 60, -50i32..50), 1..80),
            split in 0usize..80,
            from_min in 0i64..300,
            len_min in 1i64..300,
        ) {
            let minute = 60 * crate::model::NANOS_PER_SEC;
            // Minutes from 2.5 hours before the epoch: hours on both sides of zero, where SQL's
            // truncating division and Rust's flooring one differ.
            let base = -150 * minute;
            let writes: Vec<Point> = raw
                .iter()
                .map(|&(m, v)| Point::new(base + m * minute, f64::from(v)).unwrap())
                .collect();
            let compacted = split.min(writes.len());
            let conn = db_with(&writes, compacted);
            let (from, to) = (base + from_min * minute, base + (from_min + len_min) * minute);
            let mut want = last_write_wins(writes.clone());
            want.retain(|p| p.ts_ns >= from && p.ts_ns <= to);

            let mut got = Vec::new();
            read_hours(&conn, 1, (from, to), None, |hour, raw| {
                assert_eq!(raw, hour.len());
                got.extend(hour);
                true
            })
            .unwrap();
            prop_assert_eq!(&got, &want);

            // With columns, chunks inside one may be replaced by their extremes: the M4
            // answer must not change, point for point.
            for width in [1usize, 3, 17, 400] {
                let mut m4 = M4::new(from, to, width);
                let mut raw_points = 0;
                read_hours(&conn, 1, (from, to), Some((from, to, width)), |hour, raw| {
                    raw_points += raw;
                    hour.into_iter().all(|p| m4.push(p))
                })
                .unwrap();
                // Summarized chunks still count every point they stand for.
                prop_assert_eq!(raw_points, want.len());
                prop_assert_eq!(m4.finish(), crate::decimate::m4(want.iter().copied(), from, to, width));
            }

            let mut first_hour = Vec::new();
            read_hours(&conn, 1, (from, to), None, |hour, _| {
                first_hour = hour;
                false
            })
            .unwrap();
            let h = want.first().map(|p| p.ts_ns.div_euclid(CHUNK_SPAN_NS));
            let want_first: Vec<Point> = want
                .iter()
                .copied()
                .filter(|p| Some(p.ts_ns.div_euclid(CHUNK_SPAN_NS)) == h)
                .collect();
            // An hour can be visited empty when all its points fall outside the range.
            if !first_hour.is_empty() {
                prop_assert_eq!(first_hour, want_first);
            }
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_024))]

        /// Through the writer's own paths in any order (commits, compactions, late and
        /// repeated timestamps, hour merges, retention passes, the disk cap), an M4 read that uses rollups
        /// gives exactly the M4 of every surviving point, whatever the range and width, with
        /// the columns starting before the range as they do when retention clips it. The
        /// points sit before 1970, where flooring and truncating division differ, and queries
        /// reach days so the tiers above an hour are read too.
        #[test]
        fn rollup_reads_equal_m4_of_every_point(
            ops in proptest::collection::vec(
                prop_oneof![
                    // Starts on a 10-minute grid, so batches often rewrite each other's seconds.
                    4 => (0i64..24, proptest::collection::vec((0i64..300, -20i32..20), 1..80))
                        .prop_map(|(at, points)| Op::Commit(at * 600, points)),
                    1 => (0i64..4 * 3_600 - 70).prop_map(Op::Dense),
                    2 => Just(Op::Compact),
                    1 => (0i64..5).prop_map(Op::Merge),
                    1 => (0i64..4 * 3_600).prop_map(Op::Expire),
                    1 => Just(Op::DropOldestHour),
                ],
                1..16,
            ),
            queries in proptest::collection::vec(
                (0i64..4 * 3_600, 1i64..60 * 3_600, prop_oneof![1usize..4, 1usize..60]),
                4,
            ),
        ) {
            let mut writer = test_writer();
            let key = SeriesKey::new("p").unwrap();
            let s = crate::model::NANOS_PER_SEC;
            let base = -10 * CHUNK_SPAN_NS;
            let mut writes = Vec::new();
            let mut horizon = i64::MIN;
            // Reads between the writes fill the row cache with rows the writes then change:
            // the reads at the end must not see any of them.
            let fill_cache = |writer: &Writer| {
                let Some(id) = writer.series.get(&key).map(|st| st.id) else {
                    return;
                };
                for &(from_s, len_s, width) in &queries {
                    let (from, to) = (base + from_s * s, base + (from_s + len_s) * s);
                    let mut m4 = M4::new(from, to, width);
                    let cache = Some(writer.writes.cache());
                    read_m4(&writer.conn, cache, id, (from, to), (from, to, width), &mut m4)
                        .unwrap();
                }
            };
            for op in &ops {
                fill_cache(&writer);
                match op {
                    Op::Commit(..) | Op::Dense(_) => {
                        let points = op.points(base).unwrap_or_default();
                        writes.extend(points.iter().copied());
                        let mut batch = Batch::new();
                        batch.extend(key.clone(), points);
                        let (reply, _answer) = oneshot::channel();
                        writer.commit(vec![Job { batch, reply }]);
                    }
                    Op::Compact => writer.compact().unwrap(),
                    Op::Merge(h) => {
                        writer.compact().unwrap();
                        if let Some(state) = writer.series.get(&key) {
                            let id = state.id;
                            writer.merge_hour(id, base.div_euclid(CHUNK_SPAN_NS) + h).unwrap();
                        }
                    }
                    Op::DropOldestHour => {
                        // What the disk cap does. Unlike retention, reads are not clipped
                        // at the cut: rows that lost points must stop standing in.
                        writer.compact().unwrap();
                        if let Some((cut, _)) = writer.drop_oldest_hour().unwrap() {
                            writes.retain(|p| p.ts_ns >= cut);
                        }
                    }
                    Op::Expire(e) => {
                        // Half a second past a whole one: points sit on whole seconds, so the
                        // writer's own clock reading a moment later cuts at the same place.
                        horizon = horizon.max(base + e * s + s / 2);
                        let keep = u64::try_from(now_ns() - horizon).unwrap();
                        writer.retention = Duration::from_nanos(keep);
                        writer.last_retention = None;
                        writer.maybe_expire();
                    }
                }
            }
            fill_cache(&writer);
            // Before the last compaction the newest writes may still be in the log, which
            // reads merge with the chunks and rows (later writes winning).
            if let Some(id) = writer.series.get(&key).map(|st| st.id) {
                let mut want = last_write_wins(writes.clone());
                want.retain(|p| p.ts_ns >= horizon);
                for &(from_s, len_s, width) in &queries {
                    let (columns_from, to) = (base + from_s * s, base + (from_s + len_s) * s);
                    let from = columns_from.max(horizon);
                    if to <= from {
                        continue;
                    }
                    let in_range = want.iter().copied().filter(|p| p.ts_ns >= from && p.ts_ns <= to);
                    let mut m4 = M4::new(columns_from, to, width);
                    let cache = Some(writer.writes.cache());
                    read_m4(&writer.conn, cache, id, (from, to), (columns_from, to, width), &mut m4)
                        .unwrap();
                    prop_assert_eq!(
                        m4.finish(),
                        crate::decimate::m4(in_range, columns_from, to, width),
                        "with the log holding {} points", writer.log_points
                    );
                }
            }
            writer.compact().unwrap();
            let Some(id) = writer.series.get(&key).map(|st| st.id) else {
                return Ok(());
            };
            let finest = rollup::finest_of(&writer.conn, id).unwrap();
            let used_rollups = finest > 0;
            // Every listing is exact: only on clean rows, naming on the finest tier just the
            // chunks that start in the row's bucket, above it just the child rows in it.
            let listings: Vec<(i64, i64, bool, Vec<u8>)> = writer
                .conn
                .prepare(
                    "SELECT width_ns, start_ns, clean, chunks FROM rollups
                     WHERE series_id = ?1 AND chunks IS NOT NULL",
                )
                .unwrap()
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let by_start = |mut refs: Vec<rollup::ChunkRef>| {
                refs.sort_by_key(|r| (r.start(), r.id));
                refs
            };
            for (width, start, clean, bytes) in listings {
                prop_assert!(clean, "a listing on row {}/{}, not clean", width, start);
                if width != finest {
                    let child = rollup::child_tier(width, finest).unwrap();
                    let children: Vec<rollup::ChunkRef> = writer
                        .conn
                        .prepare(
                            "SELECT start_ns, count, extremes FROM rollups
                             WHERE series_id = ?1 AND width_ns = ?2
                               AND start_ns >= ?3 AND start_ns <= ?4",
                        )
                        .unwrap()
                        .query_map(params![id, child, start, start + width - 1], |r| {
                            let bytes: Vec<u8> = r.get(2)?;
                            Ok(rollup::ChunkRef {
                                id: r.get(0)?,
                                count: r.get(1)?,
                                extremes: rollup::unpack(&bytes).unwrap(),
                            })
                        })
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    prop_assert_eq!(
                        rollup::unpack_refs(&bytes).map(by_start),
                        Some(by_start(children)),
                        "the child listing of row {}/{}", width, start
                    );
                    continue;
                }
                let bucket = rollup::Chunks::StartingIn(start, start + width - 1);
                let mut found =
                    chunks_starting_in(&writer.conn, id, &[(start, start + width - 1, &bucket)])
                        .unwrap();
                prop_assert_eq!(
                    rollup::unpack_refs(&bytes).map(by_start),
                    Some(by_start(found.remove(&0).unwrap_or_default())),
                    "the listing of row {}/{}", width, start
                );
            }
            let mut want = last_write_wins(writes);
            want.retain(|p| p.ts_ns >= horizon);
            // With the rows' chunk listings, then without (as rows written by version 2).
            for listed in [true, false] {
                if !listed {
                    writer.conn.execute("UPDATE rollups SET chunks = NULL", []).unwrap();
                    // Not a write the cache hears of.
                    let version = row_cache::read_version(&writer.conn).unwrap();
                    writer.writes.cache().reset(version);
                }
                for &(from_s, len_s, width) in &queries {
                    let (columns_from, to) = (base + from_s * s, base + (from_s + len_s) * s);
                    let from = columns_from.max(horizon);
                    if to <= from {
                        continue;
                    }
                    let in_range: Vec<Point> = want
                        .iter()
                        .copied()
                        .filter(|p| p.ts_ns >= from && p.ts_ns <= to)
                        .collect();
                    // Read whole, and cut into parts as wide reads are; without the row
                    // cache, then through it twice (filling it, then from it).
                    let cache = Some(writer.writes.cache());
                    for (parts, cache) in [(1, None), (3, None), (1, cache), (3, cache), (1, cache)] {
                        let columns = (columns_from, to, width);
                        let (mut points, mut raw) = (Vec::new(), 0);
                        for part in column_parts((from, to), columns, parts) {
                            let mut m4 = M4::new(columns_from, to, width);
                            raw += read_m4(&writer.conn, cache, id, part, columns, &mut m4)
                                .unwrap();
                            points.extend(m4.finish());
                        }
                        prop_assert_eq!(
                            raw, in_range.len(),
                            "raw points, rollups on: {}, listed: {}", used_rollups, listed
                        );
                        prop_assert_eq!(
                            points,
                            crate::decimate::m4(in_range.iter().copied(), columns_from, to, width),
                            "rollups on: {}, parts: {}, listed: {}, cached: {}",
                            used_rollups, parts, listed, cache.is_some()
                        );
                    }
                }
            }
        }
    }

    /// A past hour filled over several compactions (a backfill) is merged once, after the
    /// compactions stop writing into it, not after each of them.
    #[test]
    fn an_hour_is_merged_once_no_compaction_writes_into_it() {
        let mut writer = test_writer();
        let key = SeriesKey::new("backfill").unwrap();
        let hour = (now_ns() - 5 * CHUNK_SPAN_NS).div_euclid(CHUNK_SPAN_NS);
        let base = hour * CHUNK_SPAN_NS;
        // Small pieces, each compacted on its own, every one overlapping the one before.
        for piece in 0..4i64 {
            compact_piece(&mut writer, &key, base, piece * 10..piece * 10 + 15);
            assert_eq!(
                chunk_count(&writer),
                piece + 1,
                "not merged while being written"
            );
        }
        let later = Instant::now() + MERGE_QUIET;
        writer.merge_finished_hours(later).unwrap();
        assert_eq!(chunk_count(&writer), 1, "merged once quiet");
        assert_eq!(hour_points(&writer, &key, base), numbered(base, 0..45));
    }

    /// Two small chunks in an hour, as a compaction boundary leaves in a slow series, are
    /// left as they are; three get the hour merged once it is quiet.
    #[test]
    fn an_hour_is_merged_at_three_small_chunks_not_two() {
        let base = (now_ns() - 5 * CHUNK_SPAN_NS).div_euclid(CHUNK_SPAN_NS) * CHUNK_SPAN_NS;
        for (pieces, chunks_after) in [(2i64, 2i64), (3, 1)] {
            let mut writer = test_writer();
            let key = SeriesKey::new("slow").unwrap();
            // In order, none overlapping another, each compacted on its own.
            for piece in 0..pieces {
                compact_piece(&mut writer, &key, base, piece * 10..piece * 10 + 10);
            }
            assert_eq!(
                chunk_count(&writer),
                pieces,
                "not merged while being written"
            );
            writer
                .merge_finished_hours(Instant::now() + MERGE_QUIET)
                .unwrap();
            assert_eq!(chunk_count(&writer), chunks_after, "{pieces} pieces, quiet");
            let want = numbered(base, 0..pieces * 10);
            assert_eq!(hour_points(&writer, &key, base), want);
        }
    }

    /// The hours waiting to be merged outlive a clean stop: before, a restart forgot them and
    /// their small chunks stayed until retention. It fails without [`Writer::save_merges`]
    /// at the end of [`Writer::run`] (and without [`load_merges`]).
    #[test]
    fn hours_waiting_to_be_merged_outlive_a_clean_stop() {
        let dir = std::env::temp_dir().join(format!("livechart-merges-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(DB_FILE);
        let connect = || {
            let conn = open(&path, Durability::Relaxed).unwrap();
            (conn, Arc::new(RowCache::new(row_cache::BUDGET_BYTES)))
        };
        let base = (now_ns() - 5 * CHUNK_SPAN_NS).div_euclid(CHUNK_SPAN_NS) * CHUNK_SPAN_NS;
        let key = SeriesKey::new("slow").unwrap();
        {
            let (conn, rows) = connect();
            let mut writer = test_writer_on(conn, rows);
            for piece in 0..3 {
                compact_piece(&mut writer, &key, base, piece * 10..piece * 10 + 10);
            }
            assert_eq!(chunk_count(&writer), 3, "written last: not quiet yet");
            // A clean stop: the queue closes and the writer's loop ends.
            let (jobs, queue) = mpsc::channel();
            drop(jobs);
            writer.run(queue);
        }
        let (conn, rows) = connect();
        let fragmented = load_merges(&conn).unwrap();
        let mut writer = test_writer_on(conn, rows);
        writer.series = load_series(&writer.conn, &HashMap::new()).unwrap();
        writer.rollup_width = load_rollup_widths(&writer.conn).unwrap();
        writer.fragmented = fragmented;
        writer
            .merge_finished_hours(Instant::now() + MERGE_QUIET)
            .unwrap();
        assert_eq!(chunk_count(&writer), 1, "merged after the restart");
        assert_eq!(hour_points(&writer, &key, base), numbered(base, 0..30));
        drop(writer);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Hours ready at once are merged a budget at a time (at least one per pass), so commits
    /// get in between; the pass says when some are left.
    #[test]
    fn merges_beyond_the_budget_wait_for_the_next_pass() {
        let mut writer = test_writer();
        writer.merge_budget = Duration::ZERO;
        let s = crate::model::NANOS_PER_SEC;
        let base = (now_ns() - 5 * CHUNK_SPAN_NS).div_euclid(CHUNK_SPAN_NS) * CHUNK_SPAN_NS;
        // Two series, each with two overlapping pieces in one past hour: two hours to merge.
        for name in ["a", "b"] {
            let key = SeriesKey::new(name).unwrap();
            for from in [0i64, 5] {
                let points = (from..from + 10)
                    .map(|i| Point::new(base + i * s, i as f64).unwrap())
                    .collect();
                commit_and_compact(&mut writer, &key, points);
            }
        }
        assert_eq!(chunk_count(&writer), 4);
        let later = Instant::now() + MERGE_QUIET;
        writer.merge_finished_hours(later).unwrap();
        assert_eq!(chunk_count(&writer), 3, "one hour merged in the first pass");
        assert!(writer.merge_backlog, "the pass says one is left");
        writer.merge_finished_hours(later).unwrap();
        assert_eq!(chunk_count(&writer), 2, "the other in the next");
        assert!(!writer.merge_backlog);
    }

    /// Rewrites make the rows above an hour inexact; merging one hour recounts them but keeps
    /// them inexact while another hour still overlaps, and merging that one makes them exact
    /// (and used) again.
    #[test]
    fn merges_recount_the_rows_above_an_hour() {
        let mut writer = test_writer();
        let key = SeriesKey::new("r").unwrap();
        let s = crate::model::NANOS_PER_SEC;
        // On a day boundary three days back, so both hours share their 6-hour and day buckets
        // and the whole queried range is in the past whatever the time of day (it reached
        // past now when the test ran just after midnight, and failed).
        let day = 24 * CHUNK_SPAN_NS;
        let base = (now_ns() - 3 * day).div_euclid(day) * day;
        let p = |sec: i64, v: f64| Point::new(base + sec * s, v).unwrap();
        let mut commit = |points: Vec<Point>| commit_and_compact(&mut writer, &key, points);
        // Two hours, a point a second; then a rewrite in each hour takes the peak away.
        commit(
            (0..7_200)
                .map(|i| p(i, if i == 100 || i == 3_700 { 1_000.0 } else { 1.0 }))
                .collect(),
        );
        commit(vec![p(100, 2.0), p(3_700, 3.0)]);
        let id = writer.series[&key].id;
        let hour = base.div_euclid(CHUNK_SPAN_NS);
        let (from, to) = (base - 12 * CHUNK_SPAN_NS, base + 36 * CHUNK_SPAN_NS);
        let read = |conn: &Connection| {
            let mut m4 = M4::new(from, to, 1);
            read_m4(conn, None, id, (from, to), (from, to, 1), &mut m4).unwrap();
            m4.finish()
        };
        let max = |points: Vec<Point>| points.iter().map(|p| p.value).fold(f64::MIN, f64::max);
        assert_eq!(max(read(&writer.conn)), 3.0);
        writer.merge_hour(id, hour).unwrap();
        assert_eq!(
            max(read(&writer.conn)),
            3.0,
            "hour 1 still overlaps: no stand-in yet"
        );
        writer.merge_hour(id, hour + 1).unwrap();
        assert_eq!(max(read(&writer.conn)), 3.0);
        let finest = rollup::finest_of(&writer.conn, id).unwrap();
        let plan = rollup::plan(
            &rollup::RowSource::uncached(&writer.conn),
            id,
            finest,
            (from, to),
            (from, to, 1),
            &[],
        )
        .unwrap()
        .unwrap();
        assert!(
            plan.iter()
                .any(|p| matches!(p, rollup::Piece::Stand(s) if s.count == 7_200 && s.clean)),
            "the recounted day row stands in for both hours again: {plan:?}"
        );
    }

    /// `GET /api/v1/series` reports what the database holds, not what the live window keeps:
    /// every point (the window keeps 10), the first one, and after a restart the series whose
    /// points all lie before the warm window (the window then has none of them). One series
    /// is dense enough for rollups (counted from them), one is counted from its chunks, and
    /// both from the log before their compaction.
    #[tokio::test]
    async fn the_series_list_counts_what_the_database_holds() {
        let dir = std::env::temp_dir().join(format!("livechart-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let options = SqliteOptions {
            ring_capacity: 10,
            ..upgrade_options(&dir)
        };
        let s = crate::model::NANOS_PER_SEC;
        let end = now_ns() / s * s - 600 * s;
        // Every 10 minutes: too slow for rollups.
        let slow: Vec<Point> = (0..100i64)
            .map(|i| Point::new(end - (99 - i) * 600 * s, i as f64).unwrap())
            .collect();
        // As many points as start a compaction, at 1 kHz: the series gets rollups.
        let dense: Vec<Point> = (0..COMPACT_POINTS as i64)
            .map(|i| Point::new(end - 2_000 * s + i * 1_000_000, (i % 7) as f64).unwrap())
            .collect();
        let want = |name: &str, points: &[Point]| SeriesInfo {
            series: SeriesKey::new(name).unwrap(),
            points: points.len(),
            first_ns: points[0].ts_ns,
            last_ns: points[points.len() - 1].ts_ns,
            last_value: points[points.len() - 1].value,
            rate: 0.0,
        };
        let expected = vec![want("dense", &dense), want("slow", &slow)];

        let store = SqliteStore::open(options.clone()).unwrap();
        let mut batch = Batch::new();
        batch.extend(SeriesKey::new("slow").unwrap(), slow.clone());
        store.append(batch).await.unwrap();
        let listed = store.list(now_ns()).await.unwrap();
        assert_eq!(listed, vec![want("slow", &slow)], "from the log");
        let mut batch = Batch::new();
        batch.extend(SeriesKey::new("dense").unwrap(), dense.clone());
        store.append(batch).await.unwrap();
        // The dense batch filled the log: compacted, into chunks and rollups.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            store.list(now_ns()).await.unwrap(),
            expected,
            "from the chunks"
        );
        drop(store);
        tokio::time::sleep(Duration::from_millis(300)).await;
        {
            let conn = Connection::open(dir.join(DB_FILE)).unwrap();
            let widths: Vec<(String, i64)> = conn
                .prepare("SELECT name, rollup_width FROM series ORDER BY name")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(widths[0].1 > 0 && widths[1].1 == 0, "{widths:?}");
        }
        let store = SqliteStore::open(options).unwrap();
        assert_eq!(
            store.list(now_ns()).await.unwrap(),
            expected,
            "after a restart"
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A small relaxed store in `dir`, as the upgrade tests open it.
    fn upgrade_options(dir: &Path) -> SqliteOptions {
        SqliteOptions {
            dir: dir.to_path_buf(),
            durability: Durability::Relaxed,
            retention: Duration::from_secs(86_400),
            max_disk_bytes: None,
            max_series: 10,
            ring_capacity: 100,
            warm: Duration::from_secs(60),
            hub: None,
        }
    }

    /// The database in `dir` is at this version's layout; then `dir` goes.
    fn assert_upgraded_and_remove(dir: &Path) {
        let conn = Connection::open(dir.join(DB_FILE)).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Writes a dense series in `name`'s directory and reads it at 5 columns; turns the
    /// database into an older layout (its chunks unframed, as versions before 4 wrote them,
    /// then `downgrade`); checks that it opens, upgrades (once, and again harmlessly) and
    /// gives the same answer.
    async fn an_older_database_answers_the_same(name: &str, downgrade: &str) {
        let dir = std::env::temp_dir().join(format!("livechart-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let options = upgrade_options(&dir);
        let key = SeriesKey::new("dense").unwrap();
        // 1 000 s at 1 kHz: as many points as start a compaction, which gives the series
        // rollups; read at 5 columns of 200 s.
        let to = now_ns() / 1_000_000_000 * 1_000_000_000 - 10_000_000_000;
        let from = to - 1_000_000_000_000;
        let q = || HistoryQuery {
            series: key.clone(),
            from_ns: from,
            to_ns: to,
            width: 5,
            raw_limit: None,
        };
        let store = SqliteStore::open(options.clone()).unwrap();
        // Sevenths are no short decimals: chunks large enough to be framed.
        let points: Vec<Point> = (0..COMPACT_POINTS as i64)
            .map(|i| Point::new(from + i * 1_000_000, (i % 1_009) as f64 / 7.0).unwrap())
            .collect();
        let mut batch = Batch::new();
        batch.extend(key.clone(), points);
        store.append(batch).await.unwrap();
        drop(store);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let store = SqliteStore::open(options.clone()).unwrap();
        let want = store.history(q()).await.unwrap();
        assert_eq!(want.raw_points, COMPACT_POINTS);
        drop(store);
        tokio::time::sleep(Duration::from_millis(300)).await;
        {
            let conn = Connection::open(dir.join(DB_FILE)).unwrap();
            let chunks: Vec<(i64, i64, i64, Vec<u8>)> = conn
                .prepare("SELECT id, start_ns, count, data FROM chunks")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                chunks.iter().any(|c| c.3[0] == 3),
                "no framed chunk written"
            );
            let listed: i64 = conn
                .query_row(
                    "SELECT count(*) FROM rollups WHERE chunks IS NOT NULL",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(listed > 0, "rows list their chunks");
            for (id, start, count, data) in chunks {
                let mut points = Vec::new();
                chunk::decode(&data, start, count as usize, &mut points).unwrap();
                conn.execute(
                    "UPDATE chunks SET data = ?2 WHERE id = ?1",
                    params![id, chunk::encode(&points)],
                )
                .unwrap();
            }
            conn.execute_batch(downgrade).unwrap();
        }
        for _ in 0..2 {
            let store = SqliteStore::open(options.clone()).unwrap();
            let got = store.history(q()).await.unwrap();
            assert_eq!(
                (got.raw_points, got.points),
                (want.raw_points, want.points.clone())
            );
            drop(store);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert_upgraded_and_remove(&dir);
    }

    /// Version 2 rows had no chunk listings: the upgrade adds the column, and those rows are
    /// read as before, with the same answer.
    #[tokio::test]
    async fn a_version_2_database_is_upgraded_in_place() {
        an_older_database_answers_the_same(
            "v2",
            "ALTER TABLE rollups DROP COLUMN chunks; PRAGMA user_version = 2;",
        )
        .await;
    }

    /// Version 3 wrote no framed chunks: its chunks are read as they are.
    #[tokio::test]
    async fn a_version_3_database_is_upgraded_in_place() {
        an_older_database_answers_the_same("v3", "PRAGMA user_version = 3;").await;
    }

    /// A database in the first release's layout opens, upgrades in place (once, and again
    /// harmlessly) and answers what it held.
    #[tokio::test]
    async fn a_version_1_database_is_upgraded_in_place() {
        let dir = std::env::temp_dir().join(format!("livechart-v1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let now = now_ns();
        let points: Vec<Point> = (0..10)
            .map(|i| Point::new(now - 10_000_000_000 + i * 1_000_000_000, i as f64).unwrap())
            .collect();
        {
            let conn = Connection::open(dir.join(DB_FILE)).unwrap();
            conn.execute_batch(
                "CREATE TABLE series (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
                     labels TEXT NOT NULL, next_offset INTEGER NOT NULL DEFAULT 0,
                     UNIQUE (name, labels));
                 CREATE TABLE log (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
                 CREATE TABLE chunks (id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL,
                     first_offset INTEGER NOT NULL, end_offset INTEGER NOT NULL,
                     start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, count INTEGER NOT NULL,
                     min REAL NOT NULL, max REAL NOT NULL, first_v REAL NOT NULL,
                     last_v REAL NOT NULL, min_ns INTEGER NOT NULL, max_ns INTEGER NOT NULL,
                     data BLOB NOT NULL);
                 CREATE UNIQUE INDEX chunks_by_offset ON chunks (series_id, first_offset);
                 CREATE INDEX chunks_by_end ON chunks (series_id, end_ns);
                 INSERT INTO series (name, labels, next_offset) VALUES ('old', '{}', 10);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
            let mut insert = conn.prepare_cached(INSERT_CHUNK).unwrap();
            insert_chunk(&mut insert, 1, (0, 10), &points).unwrap();
        }
        let options = upgrade_options(&dir);
        for _ in 0..2 {
            let store = SqliteStore::open(options.clone()).unwrap();
            let q = HistoryQuery {
                series: SeriesKey::new("old").unwrap(),
                from_ns: now - 60_000_000_000,
                to_ns: now,
                width: 100,
                raw_limit: Some(100),
            };
            assert_eq!(store.history(q).await.unwrap().points, points);
            drop(store);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_upgraded_and_remove(&dir);
    }

    /// The stream's name survives a clean stop; after an unclean one it changes with
    /// `relaxed` durability (its last commits, which live pages saw, may be gone) and not
    /// with `fsync` (what pages saw was on disk).
    #[tokio::test]
    async fn the_stream_is_renamed_after_an_unclean_stop_only_when_relaxed() {
        let dir = std::env::temp_dir().join(format!("livechart-epoch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let open = |durability| {
            let hub = crate::server::hub::Hub::new(4, 100);
            let store = SqliteStore::open(SqliteOptions {
                dir: dir.clone(),
                durability,
                retention: Duration::from_secs(86_400),
                max_disk_bytes: None,
                max_series: 10,
                ring_capacity: 100,
                warm: Duration::from_secs(60),
                hub: Some(hub.clone()),
            })
            .unwrap();
            (store, hub.epoch())
        };
        let crash = || {
            let conn = Connection::open(dir.join(DB_FILE)).unwrap();
            conn.execute("UPDATE meta SET value = '0' WHERE key = 'clean'", [])
                .unwrap();
        };
        let (store, first) = open(Durability::Relaxed);
        drop(store);
        let (store, again) = open(Durability::Relaxed);
        assert_eq!(first, again, "a clean stop keeps the name");
        drop(store);
        crash();
        let (store, renamed) = open(Durability::Relaxed);
        assert_ne!(renamed, again, "relaxed: renamed after a crash");
        drop(store);
        crash();
        let (store, kept) = open(Durability::Fsync);
        assert_eq!(kept, renamed, "fsync: what pages saw is on disk");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Points at these seconds past a start second, with these values.
        Commit(i64, Vec<(i64, i32)>),
        /// 700 points 100 ms apart from 50 ms past this second on (never on the half second
        /// where retention cuts), values no short decimals: a chunk large enough to be framed.
        Dense(i64),
        Compact,
        /// Merge this hour (of the five the points can fall in).
        Merge(i64),
        /// Retention up to this second.
        Expire(i64),
        /// The disk cap's step.
        DropOldestHour,
    }

    impl Op {
        /// What a commit writes, from `base` on.
        fn points(&self, base: i64) -> Option<Vec<Point>> {
            let s = crate::model::NANOS_PER_SEC;
            let point = |t: i64, v: f64| Point::new(base + t, v).unwrap();
            match self {
                Op::Commit(at, points) => Some(
                    points
                        .iter()
                        .map(|&(t, v)| point((at + t) * s, f64::from(v)))
                        .collect(),
                ),
                Op::Dense(at) => Some(
                    (0..700i64)
                        .map(|i| {
                            point(
                                at * s + s / 20 + i * s / 10,
                                ((i * 7_919) % 1_009 - 500) as f64 / 7.0,
                            )
                        })
                        .collect(),
                ),
                _ => None,
            }
        }
    }

    /// A writer on an in-memory database that gives every series rollups from its first
    /// compaction on (a bucket needs one point, not thousands).
    fn test_writer() -> Writer {
        let conn = Connection::open_in_memory().unwrap();
        rusqlite::vtab::array::load_module(&conn).unwrap();
        test_writer_on(conn, Arc::new(RowCache::new(row_cache::BUDGET_BYTES)))
    }

    /// [`test_writer`] on `conn`, keeping `rows` current.
    fn test_writer_on(conn: Connection, rows: Arc<RowCache>) -> Writer {
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch(rollup::SCHEMA).unwrap();
        let writes = row_cache::Writes::new(&conn, rows).unwrap();
        Writer {
            conn,
            stuck: Arc::default(),
            live: Arc::new(MemoryStore::new(1_000, 10)),
            hub: None,
            series: SeriesMap::default(),
            max_series: 10,
            // Two centuries: the tests write before 1970.
            retention: Duration::from_secs(200 * 365 * 86_400),
            max_disk_bytes: None,
            last_retention: None,
            log_points: 0,
            log_since: None,
            pending: HashMap::new(),
            fragmented: HashMap::new(),
            compact_retry_at: None,
            merge_backlog: false,
            merge_budget: MERGE_BUDGET,
            rollup_width: HashMap::new(),
            rollup_min_points: 1,
            writes,
        }
    }

    /// Reads on other connections, racing the writer's commits, compactions and merges
    /// through the row cache, each see one moment: every round rewrites the whole series with
    /// one value, so an answer mixing values took a row the writer had changed. Columns are
    /// wider than chunks, so rows stand in for their points. It fails when the writer's
    /// changes are not dropped from the cache, and when reads ignore the version (a read that
    /// began before a commit then fills the cache with rows from before it).
    #[test]
    fn reads_racing_the_writer_through_the_row_cache_see_one_moment() {
        const RACE_ROUNDS: u32 = 100;
        let dir = std::env::temp_dir().join(format!("livechart-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(DB_FILE);
        let rows = Arc::new(RowCache::new(row_cache::BUDGET_BYTES));
        let mut writer = test_writer_on(open(&path, Durability::Relaxed).unwrap(), rows.clone());
        let key = SeriesKey::new("race").unwrap();
        let base = (now_ns() - 5 * CHUNK_SPAN_NS).div_euclid(CHUNK_SPAN_NS) * CHUNK_SPAN_NS;
        let round = |v: f64| -> Vec<Point> {
            (0..10_000i64)
                .map(|i| Point::new(base + i * crate::model::NANOS_PER_SEC / 50, v).unwrap())
                .collect()
        };
        commit_and_compact(&mut writer, &key, round(0.0));
        let id = writer.series[&key].id;
        let hour = base.div_euclid(CHUNK_SPAN_NS);
        let (from, to) = (base, base + 200 * crate::model::NANOS_PER_SEC);
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = |_| {
            let (done, rows) = (done.clone(), rows.clone());
            let path = path.clone();
            std::thread::spawn(move || {
                let conn = open_reader(&path).unwrap();
                let (mut reads, mut cached) = (0, 0);
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut m4 = M4::new(from, to, 4);
                    read_m4(&conn, Some(&rows), id, (from, to), (from, to, 4), &mut m4).unwrap();
                    cached += usize::from(read_work::take().cached_rows > 0);
                    let answer = m4.finish();
                    let first = answer[0].value;
                    assert!(
                        answer.iter().all(|p| p.value == first),
                        "read {reads} mixed two moments: {answer:?}"
                    );
                    reads += 1;
                }
                (reads, cached)
            })
        };
        let readers: Vec<_> = (0..2).map(reader).collect();
        for v in 1..RACE_ROUNDS {
            // Rewritten, the rows stop standing in; merged, they stand in again, new.
            commit_and_compact(&mut writer, &key, round(f64::from(v)));
            writer.merge_hour(id, hour).unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for reader in readers {
            let (reads, cached) = reader.join().unwrap();
            assert!(cached > 0, "no read of {reads} used the cache");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Retention and the disk cap take the chunks they drop out of the rollup rows' counts:
    /// every tier still adds up to what the chunks hold, and so does the series list. Before,
    /// the oldest rows of each tier kept counting dropped points, and the list over-counted a
    /// dense series by up to a week of them. It fails without the subtraction in
    /// `rollup::forget_before`.
    #[test]
    fn dropping_old_chunks_keeps_every_count_true() {
        fn check(writer: &Writer, when: &str) -> i64 {
            let conn = &writer.conn;
            let held: i64 = conn
                .query_row("SELECT coalesce(sum(count), 0) FROM chunks", [], |r| {
                    r.get(0)
                })
                .unwrap();
            let tiers: Vec<(i64, i64)> = conn
                .prepare("SELECT width_ns, sum(count) FROM rollups GROUP BY width_ns")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                tiers.len() >= 5,
                "{when}: the series has rollups: {tiers:?}"
            );
            for (width, count) in tiers {
                assert_eq!(count, held, "{when}: tier {width}");
            }
            let listed = held_per_series(conn).unwrap();
            assert_eq!(listed[0].1.points as i64, held, "{when}: the series list");
            held
        }
        let mut writer = test_writer();
        let key = SeriesKey::new("dense").unwrap();
        let s = crate::model::NANOS_PER_SEC;
        let end = now_ns() / s * s - 600 * s;
        // Three hours at a point every 2 s, ending ten minutes ago.
        let points: Vec<Point> = (0..5_400i64)
            .map(|i| Point::new(end - (5_399 - i) * 2 * s, (i % 13) as f64).unwrap())
            .collect();
        commit_and_compact(&mut writer, &key, points);
        assert_eq!(check(&writer, "written"), 5_400);
        writer.retention = Duration::from_secs(2 * 3_600);
        writer.last_retention = None;
        writer.maybe_expire();
        let kept = check(&writer, "after retention");
        assert!(
            kept > 3_000 && kept < 5_400,
            "retention dropped some: {kept}"
        );
        writer.drop_oldest_hour().unwrap();
        let left = check(&writer, "after the disk cap");
        assert!(left > 0 && left < kept, "the disk cap dropped some: {left}");
    }

    /// Commits `points` of `key` as one request and compacts them into chunks.
    #[test]
    fn a_writer_that_cannot_compact_says_so_until_it_can() {
        use std::sync::atomic::Ordering::Relaxed;
        let mut writer = test_writer();
        let commit = |writer: &mut Writer| {
            let mut batch = Batch::new();
            batch.extend(
                SeriesKey::new("s").unwrap(),
                vec![Point::new(1, 1.0).unwrap()],
            );
            let (reply, mut answer) = oneshot::channel();
            writer.commit(vec![Job { batch, reply }]);
            answer.try_recv().unwrap()
        };
        assert!(commit(&mut writer).is_ok());
        assert!(!writer.stuck.load(Relaxed));
        // As after compactions failed while ingest went on (a full disk).
        writer.log_points = MAX_LOG_POINTS;
        let refused = commit(&mut writer).unwrap_err();
        assert!(refused.to_string().contains("cannot compact"), "{refused}");
        assert!(writer.stuck.load(Relaxed), "readiness must say so");
        writer.maintain(false);
        assert!(!writer.stuck.load(Relaxed), "compacted: ready again");
        assert!(commit(&mut writer).is_ok());
    }

    /// A failed compaction gives the log back with every offset it had: before, it came back
    /// without the points that had expired meanwhile, the retry recorded a lower next offset
    /// for a series whose newest points those were, and after a restart the series handed
    /// out offsets it had already given. It fails when expired points are removed from the
    /// log in place.
    #[test]
    fn a_failed_compaction_keeps_the_next_offset() {
        let mut writer = test_writer();
        let key = SeriesKey::new("late").unwrap();
        let s = crate::model::NANOS_PER_SEC;
        let points: Vec<Point> = (0..3)
            .map(|i| Point::new(now_ns() - 1_800 * s + i, 1.0).unwrap())
            .collect();
        let mut batch = Batch::new();
        batch.extend(key.clone(), points);
        let (reply, _answer) = oneshot::channel();
        writer.commit(vec![Job { batch, reply }]);
        // The points are past retention by the time compaction runs, and its transaction
        // fails at the end (as on a full disk).
        writer.retention = Duration::from_secs(600);
        writer
            .conn
            .execute_batch(
                "CREATE TEMP TRIGGER full BEFORE DELETE ON log
                 BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
            )
            .unwrap();
        assert!(writer.compact().is_err());
        writer.conn.execute_batch("DROP TRIGGER full").unwrap();
        writer.compact().unwrap();
        let stored: i64 = writer
            .conn
            .query_row("SELECT next_offset FROM series", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, 3, "the series row keeps where its offsets got to");
        assert_eq!(writer.series[&key].next_offset, 3);
    }

    fn commit_and_compact(writer: &mut Writer, key: &SeriesKey, points: Vec<Point>) {
        let mut batch = Batch::new();
        batch.extend(key.clone(), points);
        let (reply, _answer) = oneshot::channel();
        writer.commit(vec![Job { batch, reply }]);
        writer.compact().unwrap();
    }

    /// Points `numbers` a second apart from `base`, each valued its number.
    fn numbered(base: i64, numbers: std::ops::Range<i64>) -> Vec<(i64, f64)> {
        let s = crate::model::NANOS_PER_SEC;
        numbers.map(|i| (base + i * s, i as f64)).collect()
    }

    /// Commits and compacts [`numbered`] points as one piece, then runs a merge pass while
    /// the hour is still being written (not quiet).
    fn compact_piece(
        writer: &mut Writer,
        key: &SeriesKey,
        base: i64,
        numbers: std::ops::Range<i64>,
    ) {
        let points = numbered(base, numbers)
            .into_iter()
            .map(|(ts, v)| Point::new(ts, v).unwrap())
            .collect();
        commit_and_compact(writer, key, points);
        writer.merge_finished_hours(Instant::now()).unwrap();
    }

    /// The stored points of `key` in the hour starting at `base`.
    fn hour_points(writer: &Writer, key: &SeriesKey, base: i64) -> Vec<(i64, f64)> {
        let id = writer.series[key].id;
        let points = read_chunks(&writer.conn, id, base, base + CHUNK_SPAN_NS).unwrap();
        points.iter().map(|p| (p.ts_ns, p.value)).collect()
    }

    fn chunk_count(writer: &Writer) -> i64 {
        writer
            .conn
            .query_row("SELECT count(*) FROM chunks", [], |r| r.get(0))
            .unwrap()
    }

    /// A compacted store holding `hours` of one series, a point every 20 ms from an hour
    /// boundary five hours ago: its writer, the series id, the first timestamp and the points.
    fn dense_series(hours: i64) -> (Writer, i64, i64, Vec<Point>) {
        let mut writer = test_writer();
        let key = SeriesKey::new("dense").unwrap();
        let base = (now_ns() - 5 * CHUNK_SPAN_NS).div_euclid(CHUNK_SPAN_NS) * CHUNK_SPAN_NS;
        let points: Vec<Point> = (0..hours * 180_000)
            .map(|i| {
                Point::new(
                    base + i * crate::model::NANOS_PER_SEC / 50,
                    (i % 977) as f64,
                )
                .unwrap()
            })
            .collect();
        commit_and_compact(&mut writer, &key, points.clone());
        let id = writer.series[&key].id;
        (writer, id, base, points)
    }

    /// A compacted store holding an hour of 50 Hz noise at full precision (values as XORs,
    /// chunks large enough to be framed), every 40th point a whole number (ties for the
    /// extremes), from an hour boundary three hours ago: its writer, the series id, the first
    /// timestamp and the points.
    fn noise_series() -> (Writer, i64, i64, Vec<Point>) {
        let mut writer = test_writer();
        let key = SeriesKey::new("noise").unwrap();
        let base = (now_ns() - 3 * CHUNK_SPAN_NS).div_euclid(CHUNK_SPAN_NS) * CHUNK_SPAN_NS;
        let points: Vec<Point> = (0..180_000i64)
            .map(|i| {
                let h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11;
                let v = if i % 40 == 0 {
                    (i % 7) as f64
                } else {
                    h as f64 / (1u64 << 50) as f64
                };
                Point::new(base + i * crate::model::NANOS_PER_SEC / 50, v).unwrap()
            })
            .collect();
        commit_and_compact(&mut writer, &key, points.clone());
        let id = writer.series[&key].id;
        (writer, id, base, points)
    }

    /// A damaged framed chunk is skipped (and logged) while the rest of the range is
    /// answered, through rollups and through the index, whole and at a width; an SQL error
    /// would fail the read instead.
    #[test]
    fn a_damaged_framed_chunk_is_skipped_and_the_rest_answered() {
        let (writer, id, base, points) = noise_series();
        let (chunk_id, count, data): (i64, i64, Vec<u8>) = writer
            .conn
            .query_row(
                "SELECT id, count, data FROM chunks WHERE series_id = ?1
                 ORDER BY start_ns LIMIT 1 OFFSET 17",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(data[0], 3, "the chunk is framed");
        writer
            .conn
            .execute(
                "UPDATE chunks SET data = ?2 WHERE id = ?1",
                params![chunk_id, &data[..data.len() - 1]],
            )
            .unwrap();
        let (from, to) = (base, base + CHUNK_SPAN_NS - 1);
        let left = points.len() - count as usize;
        let mut raw = 0;
        read_hours(&writer.conn, id, (from, to), None, |hour, n| {
            assert_eq!(hour.len(), n);
            raw += n;
            true
        })
        .unwrap();
        assert_eq!(raw, left, "read whole");
        // Chunks are 20.48 s: the 18th (348.16 s on) holds the boundary at 360 s of columns
        // of 6 minutes, so reads at that width read it, through rollup listings or the index.
        read_work::take();
        assert_eq!(
            stored_m4(&writer.conn, id, (from, to), 10).0,
            left,
            "rollups"
        );
        assert!(read_work::take().rollup_rows > 0, "rollups unused");
        let mut raw = 0;
        read_hours(
            &writer.conn,
            id,
            (from, to),
            Some((from, to, 10)),
            |_, n| {
                raw += n;
                true
            },
        )
        .unwrap();
        assert_eq!(raw, left, "index");
    }

    /// Chunks written in frames give the M4 of every point, through rollups and through the
    /// index, at widths whose columns hold part of a frame to many chunks, while a boundary
    /// decodes a frame or two of its chunk, not all of it.
    #[test]
    fn framed_chunks_give_the_m4_of_every_point_decoding_frames() {
        let (writer, id, base, points) = noise_series();
        let s = crate::model::NANOS_PER_SEC;
        for (from, to, width) in [
            (base, base + CHUNK_SPAN_NS - 1, 50),
            (base + 7 * s + 3, base + 2_400 * s + 11, 37),
            (base + 100 * s, base + 160 * s, 2_000),
            (base - 5 * s, base + CHUNK_SPAN_NS + 5 * s, 1),
            (base + 1_000 * s + 1, base + 1_000 * s + 1, 3),
        ] {
            // Reads stop at the range's ends (the query adds the neighbours outside).
            let inside: Vec<Point> = points
                .iter()
                .copied()
                .filter(|p| (from..=to).contains(&p.ts_ns))
                .collect();
            let want = crate::decimate::m4(inside.iter().copied(), from, to, width);
            let inside = inside.len();
            read_work::take();
            let read = stored_m4(&writer.conn, id, (from, to), width);
            assert_eq!(read, (inside, want.clone()), "{width} rollups");
            let work = read_work::take();
            let mut m4 = M4::new(from, to, width);
            let mut raw = 0;
            read_hours(
                &writer.conn,
                id,
                (from, to),
                Some((from, to, width)),
                |hour, n| {
                    raw += n;
                    hour.into_iter().all(|p| m4.push(p))
                },
            )
            .unwrap();
            assert_eq!((raw, m4.finish()), (inside, want), "{width} index");
            if width == 50 {
                // About 51 boundaries, each in one chunk of 1 024 points.
                assert!(
                    work.points_decoded <= (width + 1) * 2 * chunk::FRAME,
                    "whole chunks decoded: {work:?}"
                );
            }
        }
    }

    /// An hour denser than [`SPLIT_HOUR_POINTS`] is read in pieces of chunks that meet, each
    /// merged on its own: raw reads get every point once, later writes winning, in time
    /// order; a raw read that stops early stops within a piece, not after the whole hour;
    /// M4 reads equal the M4 of every point.
    #[test]
    fn a_dense_hour_is_read_in_pieces_with_the_same_answers() {
        let mut writer = test_writer();
        let key = SeriesKey::new("dense").unwrap();
        let base = (now_ns() - 3 * CHUNK_SPAN_NS).div_euclid(CHUNK_SPAN_NS) * CHUNK_SPAN_NS;
        let n = SPLIT_HOUR_POINTS as i64 + 10_000;
        let at = |i: i64| base + i * 1_000_000;
        let first: Vec<Point> = (0..n)
            .map(|i| Point::new(at(i), i as f64).unwrap())
            .collect();
        commit_and_compact(&mut writer, &key, first);
        // A rewrite of a stretch in the middle: chunks that overlap stored ones.
        let rewrite: Vec<Point> = (30_000..32_500)
            .map(|i| Point::new(at(i), -(i as f64)).unwrap())
            .collect();
        commit_and_compact(&mut writer, &key, rewrite);
        // Still in the log: a rewrite of another stretch, and points after the chunks.
        let logged: Vec<Point> = (60_000..60_100)
            .chain(n..n + 50)
            .map(|i| Point::new(at(i), 0.5).unwrap())
            .collect();
        let mut batch = Batch::new();
        batch.extend(key.clone(), logged);
        let (reply, _answer) = oneshot::channel();
        writer.commit(vec![Job { batch, reply }]);
        let want: Vec<Point> = (0..n + 50)
            .map(|i| {
                let v = match i {
                    30_000..32_500 => -(i as f64),
                    60_000..60_100 => 0.5,
                    i if i >= n => 0.5,
                    i => i as f64,
                };
                Point::new(at(i), v).unwrap()
            })
            .collect();
        let id = writer.series[&key].id;
        let (from, to) = (base, base + CHUNK_SPAN_NS - 1);
        let (mut got, mut visits) = (Vec::new(), 0);
        read_hours(&writer.conn, id, (from, to), None, |piece, raw| {
            assert_eq!(piece.len(), raw);
            got.extend(piece);
            visits += 1;
            true
        })
        .unwrap();
        let differ = got.iter().zip(&want).position(|(a, b)| a != b);
        assert!(
            got.len() == want.len() && differ.is_none(),
            "raw: every point once, the later write winning: {} points for {}, first \
             difference at {differ:?}",
            got.len(),
            want.len()
        );
        assert!(visits > 2, "read in pieces: {visits}");
        let mut first_piece = 0;
        read_hours(&writer.conn, id, (from, to), None, |piece, _| {
            first_piece = piece.len();
            false
        })
        .unwrap();
        assert!(
            first_piece <= MAX_CHUNK_POINTS,
            "{first_piece} points before stopping"
        );
        for width in [7, 100, 1_000] {
            let mut m4 = M4::new(from, to, width);
            read_hours(
                &writer.conn,
                id,
                (from, to),
                Some((from, to, width)),
                |piece, _| {
                    m4.push_all(&piece);
                    true
                },
            )
            .unwrap();
            let mut all = M4::new(from, to, width);
            all.push_all(&want);
            assert_eq!(m4.finish(), all.finish(), "M4 at width {width}");
        }
    }

    /// The M4 answer of series `id` over `[from, to]` at `width` through rollups, without
    /// the row cache, with the raw points it stands for.
    fn stored_m4(
        conn: &Connection,
        id: i64,
        (from, to): (i64, i64),
        width: usize,
    ) -> (usize, Vec<Point>) {
        let mut m4 = M4::new(from, to, width);
        let raw = read_m4(conn, None, id, (from, to), (from, to, width), &mut m4).unwrap();
        (raw, m4.finish())
    }

    /// The issue's "cost depends on the width": at a fixed width, a range twice as long reads
    /// about as many rollup rows and decodes no more than a chunk per column boundary.
    #[test]
    fn a_history_read_does_work_by_width_not_by_points() {
        let (writer, id, base, _) = dense_series(4);
        let width = 50;
        let work = |hours: i64| {
            let (from, to) = (base, base + hours * CHUNK_SPAN_NS - 1);
            let (raw, _) = stored_m4(&writer.conn, id, (from, to), width);
            assert_eq!(raw, hours as usize * 180_000);
            read_work::take()
        };
        let (two, four) = (work(2), work(4));
        for w in [two, four] {
            assert!(
                w.points_decoded <= (width + 1) * MAX_CHUNK_POINTS,
                "more than a chunk per column boundary decoded: {w:?}"
            );
            assert!(w.rollup_rows > 0, "rollups unused: {w:?}");
            assert!(
                w.rollup_rows <= 30 * width,
                "rows not bounded by width: {w:?}"
            );
        }
        assert!(
            2 * (four.rollup_rows + four.chunk_rows) <= 3 * (two.rollup_rows + two.chunk_rows),
            "twice the points, over twice the rows: {two:?} then {four:?}"
        );
    }

    /// Rollups answer a long range from a few rows, and a wrong row shows in the answer: the
    /// property test above can fail.
    #[test]
    fn rollups_stand_in_and_a_wrong_one_is_caught() {
        let (writer, id, base, points) = dense_series(2);
        assert!(rollup::finest_of(&writer.conn, id).unwrap() > 0);
        let (from, to, width) = (base, base + 2 * CHUNK_SPAN_NS, 20);
        let plan = rollup::plan(
            &rollup::RowSource::uncached(&writer.conn),
            id,
            rollup::TIERS[0],
            (from, to),
            (from, to, width),
            &[],
        )
        .unwrap()
        .unwrap();
        let stands = plan
            .iter()
            .filter(|p| matches!(p, rollup::Piece::Stand(_)))
            .count();
        assert!(
            stands >= width,
            "{stands} stand-ins for {width} columns: {plan:?}"
        );
        let want = crate::decimate::m4(points.iter().copied(), from, to, width);
        let read = |conn: &Connection| stored_m4(conn, id, (from, to), width);
        assert_eq!(read(&writer.conn), (points.len(), want.clone()));
        // Reads looking into the finest rows take those rows' chunk listings (here every
        // listed chunk reaches over a column boundary and is decoded). Listings naming the
        // wrong chunks (before the check, this changed the answer), or counts that do not
        // add up, are caught and those spans read through the index.
        let listed = plan
            .iter()
            .filter(|p| {
                matches!(
                    p,
                    rollup::Piece::Read(_, _, Some(rollup::Chunks::Listed(_)))
                )
            })
            .count();
        assert!(listed > 0, "no listed chunks read: {plan:?}");
        let first_chunk: i64 = writer
            .conn
            .query_row("SELECT min(id) FROM chunks", [], |r| r.get(0))
            .unwrap();
        let listings: Vec<(i64, i64, Vec<u8>)> = writer
            .conn
            .prepare("SELECT width_ns, start_ns, chunks FROM rollups WHERE chunks IS NOT NULL")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let original = listings.clone();
        let relist = |conn: &Connection, listings: &[(i64, i64, Vec<u8>)]| {
            for (width, start, bytes) in listings {
                conn.execute(
                    "UPDATE rollups SET chunks = ?3 WHERE width_ns = ?1 AND start_ns = ?2",
                    params![width, start, bytes],
                )
                .unwrap();
            }
        };
        let altered = |change: fn(&mut rollup::ChunkRef, i64)| -> Vec<(i64, i64, Vec<u8>)> {
            original
                .iter()
                .map(|(width, start, bytes)| {
                    let mut refs = rollup::unpack_refs(bytes).unwrap();
                    refs.iter_mut().for_each(|r| change(r, first_chunk));
                    (*width, *start, rollup::pack_refs(&refs))
                })
                .collect()
        };
        relist(&writer.conn, &altered(|r, first| r.id = first));
        assert_eq!(read(&writer.conn), (points.len(), want.clone()));
        relist(&writer.conn, &altered(|r, _| r.count += 1));
        assert_eq!(read(&writer.conn), (points.len(), want.clone()));
        relist(&writer.conn, &listings);
        assert_eq!(read(&writer.conn).1, want);
        // Child listings of coarser rows: one whose counts do not add up is not used.
        let coarse: Vec<(i64, i64, Vec<u8>)> = writer
            .conn
            .prepare(
                "SELECT width_ns, start_ns, chunks FROM rollups
                 WHERE series_id = ?1 AND width_ns > ?2 AND chunks IS NOT NULL",
            )
            .unwrap()
            .query_map(params![id, rollup::TIERS[0]], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!coarse.is_empty(), "no coarse row lists its children");
        for (width, start, bytes) in &coarse {
            let mut refs = rollup::unpack_refs(bytes).unwrap();
            refs[0].count += 1;
            writer
                .conn
                .execute(
                    "UPDATE rollups SET chunks = ?4
                     WHERE series_id = ?1 AND width_ns = ?2 AND start_ns = ?3",
                    params![id, width, start, rollup::pack_refs(&refs)],
                )
                .unwrap();
        }
        assert_eq!(read(&writer.conn), (points.len(), want.clone()));
        // A row of the tier the read takes (5 min, for columns of 6 min) inside column 0.
        let (width, start) = (rollup::TIERS[4], base);
        let (mut row, _) = rollup::get_row(&writer.conn, id, width, start)
            .unwrap()
            .unwrap();
        assert!(row.clean);
        row.extremes.max.value = 5_000.0;
        rollup::put_row(&writer.conn, id, (width, start), &row, None).unwrap();
        assert_ne!(
            read(&writer.conn).1,
            want,
            "a wrong rollup row changes the answer"
        );
    }
}
