//! The shared store: Redis (or Valkey), so several livechart instances behind a load balancer
//! keep one history and show one live view (`--redis-url`).
//!
//! # Keys
//! ```text
//! {livechart}:meta        hash   epoch (this data's name for live resumes), seq (commits so far)
//! {livechart}:next        hash   series → its next offset (also the set of series)
//! {livechart}:last        hash   series → latest timestamp (text that sorts, see `ts_text`)
//! {livechart}:lastv       hash   series → value at the latest timestamp
//! {livechart}:log         stream one entry per commit: g (seq), o (first offsets), k (series), d (points)
//! {livechart}:s:<series>  stream one entry per commit of that series: o (first offset), p (points)
//! ```
//! A series' point count is its next offset less the first offset its stream still holds
//! (offsets number every point written, so this is exact after retention trimmed the
//! stream); its first timestamp is the earliest of that oldest entry. Both are exact for
//! series written in time order; a rewrite of a stored timestamp counts again.
//!
//! A series is named by its JSON key (`{"series":"cpu","labels":{"host":"a"}}`, labels in
//! order), which Redis keys and hash fields hold as is.
//!
//! Every key carries the hash tag `{livechart}`, so a Redis Cluster keeps them in one slot:
//! a request is atomic (all its points or none) and an atomic write over several keys needs
//! them in one slot (`--redis-cluster`, [`super::redis_conn`]). The price is that a cluster
//! serves livechart from one shard; one Redis takes the write rate `make bench` reports
//! (BENCHMARKS.md).
//!
//! # Writes
//! A request is one Lua script ([`APPEND`]), which Redis runs atomically: it checks the series
//! cap, takes each series' offsets, appends to the series' streams and to the log, and keeps
//! the per-series figures `/api/v1/series` shows. The request is answered 2xx only after the
//! script returned, that is after Redis applied it; what survives a Redis crash then depends
//! on its `appendfsync` (docs/GUARANTEES.md). A Redis that does not answer within
//! [`COMMAND_TIMEOUT`] gets the request a 503: nothing is acknowledged that was not stored.
//!
//! # Live
//! Each instance runs a feeder ([`RedisStore::feed`]) that reads the log from where it stopped
//! (`XREAD BLOCK`) and publishes every commit to its own hub with the offsets Redis gave
//! it, its own writes included. So every instance publishes the same commits in the same
//! order with the same offsets, and a viewer can resume on any instance from what another
//! one sent it. When Redis is away the feeder marks the feed degraded (viewers are told,
//! `/healthz` says so) and reconnects with backoff; it then continues from its place in the
//! log, so sessions get what they missed without a reload. Only when the stream cannot
//! continue (Redis came back empty, so the epoch changed, or the log was trimmed past this
//! instance's place, seen as a jump in `g`) does it restart the stream, and sessions reload.
//!
//! # Reads
//! The live window is an in-memory ring per series, warmed from the series' streams when the
//! feeder (re)starts the stream and filled from the log, so the live path never waits on
//! Redis. History reads a series' stream and decimates it; its cost grows with the points the
//! series holds (the embedded store keeps summaries for that, this backend does not yet).
//!
//! # Retention
//! Series streams are trimmed with `MINID` at every write, by the time points were written
//! (stream IDs are Redis's clock at the write); points older than retention are refused, as
//! by the embedded store. The log keeps the newest [`LOG_COMMITS`] commits: how far an
//! instance that lost Redis can fall behind and still continue without reloading viewers.

use super::memory::MemoryStore;
use super::redis_conn::{Conn, Connections, Timeouts};
use super::{HistoryQuery, HistoryResult, SeriesInfo, Store, StoreError, Stored};
use crate::chunk;
use crate::decimate::m4;
use crate::model::{last_write_wins, Batch, Point, SeriesKey, SeriesPoints};
use crate::server::hub::Hub;
use crate::server::now_ns;
use crate::server::status::{self, StatusTx};
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The hash tag and prefix of every key.
pub const PREFIX: &str = "{livechart}";
/// How long a command may take before the request gets a 503: long enough for a busy Redis,
/// short enough that a sender's retry comes while it still holds the data.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting may take (a dead host must not hold requests for the OS's minutes).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One `XREAD BLOCK` of the feeder: also how soon it notices a Redis that stopped answering.
const BLOCK: Duration = Duration::from_millis(1_000);
/// Most commits a feeder reads at once; fewer when they are large ([`page_after`]), so a
/// feeder behind the log does not take hundreds of megabytes in one reply (nor outlast the
/// reply's timeout and read the same ones again).
const READ_COUNT: usize = 512;
/// Commits the log keeps (about: trimmed with `~`). At a hundred commits a second, a minute
/// and a half an instance may lose Redis for and still continue without reloading viewers;
/// each commit's points are also in their series' streams, so this is the price of that.
pub const LOG_COMMITS: usize = 10_000;
/// Points a history read buffers before cutting them to what its answer needs (16 MB; a raw
/// read keeping a million points buffers up to twice that).
const REDUCE_AT: usize = 1_000_000;
/// Most stream entries read per round trip by history and warm-up.
const PAGE: usize = 1_000;
/// Bytes of entries a round trip aims at: an entry holds a commit's points of a series, from
/// one point to a whole request's (100 000 by default, about a megabyte), so a page counted
/// in entries alone could make Redis and this process each hold a gigabyte. The first page
/// is [`FIRST_PAGE`] entries; later ones are sized from the bytes per entry seen so far.
const PAGE_BYTES: usize = 4 * 1024 * 1024;
const FIRST_PAGE: usize = 32;

/// A history read's points, gathered entry by entry in write order within bounded memory:
/// past `reduce_at` points the buffer is cut to what the answer can use (the columns'
/// extremes, or the first points of a raw answer) and reading goes on.
struct Gather {
    /// Points kept: the query's range, from the retention horizon on.
    keep_from: i64,
    /// The query's columns, which any cut must share with the answer.
    from_ns: i64,
    to_ns: i64,
    width: usize,
    raw_limit: Option<usize>,
    /// Buffered points that trigger a cut: [`REDUCE_AT`], and after a raw cut twice what it
    /// keeps, so a cut that keeps a million points is not redone for every entry.
    reduce_at: usize,
    points: Vec<Point>,
    read: usize,
    /// After a raw answer was cut: the newest timestamp it keeps. Later points past it cannot
    /// be in the answer, so they are not buffered (re-sorting a full buffer for every entry
    /// made a long export take hours).
    raw_cutoff: Option<i64>,
}

impl Gather {
    fn new(q: &HistoryQuery, horizon: i64, reduce_at: usize) -> Self {
        let kept = q.raw_limit.map_or(0, |l| l.saturating_add(1));
        Self {
            keep_from: q.from_ns.max(horizon),
            from_ns: q.from_ns,
            to_ns: q.to_ns,
            width: q.width,
            raw_limit: q.raw_limit,
            reduce_at: reduce_at.max(kept.saturating_mul(2)),
            points: Vec::new(),
            read: 0,
            raw_cutoff: None,
        }
    }

    fn add(&mut self, points: Vec<Point>) {
        let (from, to) = (self.keep_from, self.to_ns);
        let before = self.points.len();
        self.points.extend(
            points
                .into_iter()
                .filter(|p| p.ts_ns >= from && p.ts_ns <= to),
        );
        self.read += self.points.len() - before;
        if let Some(cutoff) = self.raw_cutoff {
            // Counted above as read; kept only if it can still be in the answer, in write
            // order (of two writes of one timestamp the later must stay last).
            let mut kept = before;
            for i in before..self.points.len() {
                if self.points[i].ts_ns <= cutoff {
                    self.points.swap(kept, i);
                    kept += 1;
                }
            }
            self.points.truncate(kept);
        }
        if self.points.len() > self.reduce_at {
            // Stream order is write order: of two writes of one timestamp the later stays.
            last_write_wins(&mut self.points);
            match self.raw_limit {
                None => {
                    let all = std::mem::take(&mut self.points);
                    self.points = m4(all, self.from_ns, self.to_ns, self.width);
                }
                Some(limit) => {
                    self.points.truncate(limit.saturating_add(1));
                    self.raw_cutoff = self.points.last().map(|p| p.ts_ns);
                }
            }
        }
    }

    fn finish(mut self, q: &HistoryQuery) -> HistoryResult {
        last_write_wins(&mut self.points);
        let mut result = HistoryResult::from_points(q, self.points);
        result.raw_points = self.read;
        result
    }
}

/// A request, atomically: see the module doc.
///
/// KEYS: meta, next, last, lastv, log, then each series' stream.
/// ARGV: max series, retention in ms, log MAXLEN, log `d`, log `k`, an epoch for a Redis
/// that has none yet, then per series six: its name, point count, lowest and highest
/// timestamp (as `ts_text`), the value at the highest, its points. Returns `{1, log id,
/// first offset per series}`, or `{0, series held, series the request adds}` past the cap
/// (nothing written). Everything is read and checked before the first write: a script that
/// fails half-way is not rolled back.
///
/// Retention's cut is taken from Redis's clock (`TIME`), which stream ids follow, so an
/// instance whose clock is off does not trim the wrong points.
const APPEND: &str = r"
local nseries = (#ARGV - 6) / 6
local adding = 0
for i = 0, nseries - 1 do
  if redis.call('HEXISTS', KEYS[2], ARGV[7 + i * 6]) == 0 then adding = adding + 1 end
end
if adding > 0 then
  local have = redis.call('HLEN', KEYS[2])
  if have + adding > tonumber(ARGV[1]) then return {0, have, adding} end
end
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[6])
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local now = redis.call('TIME')
local minid = string.format('%d', math.max(0, tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[2])))
local firsts = {}
for i = 0, nseries - 1 do
  local b = 7 + i * 6
  local name, n = ARGV[b], tonumber(ARGV[b + 1])
  local first = redis.call('HINCRBY', KEYS[2], name, n) - n
  firsts[#firsts + 1] = string.format('%d', first)
  local hi = redis.call('HGET', KEYS[3], name)
  if (not hi) or ARGV[b + 3] >= hi then
    redis.call('HSET', KEYS[3], name, ARGV[b + 3])
    redis.call('HSET', KEYS[4], name, ARGV[b + 4])
  end
  redis.call('XADD', KEYS[6 + i], 'MINID', '~', minid, '*', 'o', firsts[#firsts], 'p', ARGV[b + 5])
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local id = redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[3], '*',
  'g', seq, 'e', epoch, 'o', table.concat(firsts, ','), 'k', ARGV[5], 'd', ARGV[4])
local out = {1, id}
for _, f in ipairs(firsts) do out[#out + 1] = tonumber(f) end
return out
";

/// Where the stream stands, read atomically: the epoch, commits so far, the log's newest id
/// and every series' next offset. KEYS: meta, log, next. ARGV: an epoch for a Redis that has
/// none (fresh, or emptied), then the caller's place: its last log id (`0-0` when it saw
/// none), `g` and epoch (all empty on a first start).
///
/// It also tells whether Redis lost commits the caller saw (a crash under `appendfsync
/// everysec`, a failover): the caller's last entry is gone although the log was not trimmed
/// past it, or what follows does not continue its `g`. Then the offsets those commits took
/// are being given again to other points, so the script names the data anew (a new epoch):
/// every instance sees it on the next log entry and restarts, and no page resumes on top of
/// points that no longer exist.
const SYNC: &str = r"
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if ARGV[2] ~= '' and ARGV[2] ~= '0-0' and epoch == ARGV[4] then
  local function g_of(entry)
    local f = entry[2]
    for i = 1, #f, 2 do
      if f[i] == 'g' then return tonumber(f[i + 1]) end
    end
    return nil
  end
  local lost = false
  local at = redis.call('XRANGE', KEYS[2], ARGV[2], ARGV[2])
  if #at > 0 then
    lost = g_of(at[1]) ~= tonumber(ARGV[3])
  else
    local after = redis.call('XRANGE', KEYS[2], '(' .. ARGV[2], '+', 'COUNT', 1)
    lost = #after == 0 or (g_of(after[1]) or 0) <= tonumber(ARGV[3])
  end
  if lost then
    redis.call('HSET', KEYS[1], 'epoch', ARGV[1])
    epoch = ARGV[1]
  end
end
local seq = redis.call('HGET', KEYS[1], 'seq') or '0'
local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local last = '0-0'
if #newest > 0 then last = newest[1][1] end
return {epoch, seq, last, redis.call('HGETALL', KEYS[3])}
";

/// Per stream in KEYS, its oldest entry's offset (`o`) and the first bytes of its points
/// (`p`), enough for the entry's header ([`chunk::entry_start`]); an empty array for an
/// empty stream. The series list needs only where each series starts, and an entry can
/// hold a whole request's points (a megabyte): sending them all for a thousand series made
/// the list a gigabyte's reply, past the command timeout.
const OLDEST: &str = r"
local out = {}
for i, k in ipairs(KEYS) do
  local e = redis.call('XRANGE', k, '-', '+', 'COUNT', 1)
  out[i] = {}
  if #e > 0 then
    local f = e[1][2]
    local o, p = '', ''
    for j = 1, #f, 2 do
      if f[j] == 'o' then o = f[j + 1] elseif f[j] == 'p' then p = string.sub(f[j + 1], 1, 64) end
    end
    out[i] = {o, p}
  end
end
return out
";

fn key(part: &str) -> String {
    format!("{PREFIX}:{part}")
}

fn stream_key(name: &str) -> String {
    format!("{PREFIX}:s:{name}")
}

/// A series' name in Redis: its JSON key, labels in order (so one series has one name).
fn name_of(series: &SeriesKey) -> String {
    serde_json::to_string(series).unwrap_or_default()
}

/// A timestamp as text that sorts like the number (the script compares text: Lua's numbers
/// are doubles and lose nanoseconds): shifted to unsigned, zero-padded to 20 digits.
fn ts_text(ts_ns: i64) -> String {
    format!("{:020}", (ts_ns as u64) ^ (1 << 63))
}

fn ts_from_text(text: &str) -> Option<i64> {
    text.parse::<u64>().ok().map(|u| (u ^ (1 << 63)) as i64)
}

/// The failure every unreachable, slow or confused Redis becomes: a 503, nothing stored.
fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("redis holds data this version cannot read: {what}"))
}

pub struct RedisOptions {
    /// One server's URL, or with `cluster` seed nodes of a Redis Cluster, comma-separated.
    pub url: String,
    pub cluster: bool,
    pub retention: Duration,
    pub max_series: usize,
    pub ring_capacity: usize,
    /// Span of the live window warmed from Redis when the stream (re)starts.
    pub warm: Duration,
    pub hub: Hub,
    pub status: StatusTx,
}

pub struct RedisStore {
    connections: Connections,
    append: redis::Script,
    sync: redis::Script,
    oldest: redis::Script,
    retention: Duration,
    max_series: usize,
    warm: Duration,
    /// The live window: filled only by the feeder, in log order.
    live: MemoryStore,
    hub: Hub,
    status: StatusTx,
}

impl RedisStore {
    /// Checks the URL and prepares the connections; connecting waits for the first command,
    /// so the server starts (degraded) while Redis is still away, and the feeder says so.
    pub fn open(options: RedisOptions) -> Result<Self, StoreError> {
        let timeouts = Timeouts {
            connect: CONNECT_TIMEOUT,
            command: COMMAND_TIMEOUT,
            feed: BLOCK + COMMAND_TIMEOUT,
        };
        let connections = Connections::new(&options.url, options.cluster, timeouts)
            .map_err(|e| StoreError::Unavailable(format!("--redis-url: {e}")))?;
        // Degraded until the feeder has found its place in the log (quietly: that is start-up).
        options
            .status
            .send_modify(|s| s.degraded = Some("connecting to redis".into()));
        Ok(Self {
            connections,
            append: redis::Script::new(APPEND),
            sync: redis::Script::new(SYNC),
            oldest: redis::Script::new(OLDEST),
            retention: options.retention,
            max_series: options.max_series,
            warm: options.warm,
            live: MemoryStore::new(options.ring_capacity, usize::MAX),
            hub: options.hub,
            status: options.status,
        })
    }

    async fn con(&self) -> Result<Conn, StoreError> {
        self.connections.commands().await.map_err(unavailable)
    }

    /// Feeds this instance's hub and live window from Redis until `stop`: see the module doc.
    pub async fn feed(self: Arc<Self>, stop: CancellationToken) {
        let mut feeder = Feeder {
            store: self,
            place: None,
            synced: false,
            names: HashMap::new(),
        };
        let sweeper = feeder.store.clone().sweep(stop.clone());
        let feeding = async move {
            let mut attempt = 0u32;
            loop {
                let run = feeder.run_once();
                let why = tokio::select! {
                    why = run => why,
                    _ = stop.cancelled() => return,
                };
                status::degrade(&feeder.store.status, why);
                if std::mem::take(&mut feeder.synced) {
                    attempt = 0;
                }
                tokio::select! {
                    _ = tokio::time::sleep(retry_delay(attempt)) => {}
                    _ = stop.cancelled() => return,
                }
                attempt = attempt.saturating_add(1);
            }
        };
        tokio::join!(feeding, sweeper);
    }

    /// Drops what retention no longer keeps, exactly, every so often: the trimming each
    /// write does (`MINID ~`) frees only whole stream nodes, and a series nobody writes to
    /// any more is never trimmed by writes at all. Every instance sweeps; the work is
    /// idempotent, and a sweep that fails (Redis away) is simply tried again next time.
    async fn sweep(self: Arc<Self>, stop: CancellationToken) {
        let every = (self.retention / 4).clamp(Duration::from_millis(100), MAX_SWEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => return,
            }
            let Ok(mut con) = self.connections.commands().await else {
                continue;
            };
            // Redis's clock, which stream ids follow.
            let Ok((secs, micros)) = redis::cmd("TIME").query_async::<(u64, u64)>(&mut con).await
            else {
                continue;
            };
            let retention_ms = u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX);
            let min_id = (secs * 1_000 + micros / 1_000).saturating_sub(retention_ms);
            let names: Result<Vec<String>, _> = redis::cmd("HKEYS")
                .arg(key("next"))
                .query_async(&mut con)
                .await;
            let Ok(names) = names else { continue };
            for chunk in names.chunks(PAGE) {
                let mut pipe = redis::pipe();
                for name in chunk {
                    pipe.cmd("XTRIM")
                        .arg(stream_key(name))
                        .arg("MINID")
                        .arg(min_id)
                        .ignore();
                }
                if let Err(e) = pipe.query_async::<()>(&mut con).await {
                    tracing::debug!("retention sweep stopped: {e}");
                    break;
                }
            }
            // The commit log holds each commit's points too: without this it kept the last
            // [`LOG_COMMITS`] whatever their age, days of points under a short retention.
            if let Err(e) = trim_log(&mut con, min_id).await {
                tracing::debug!("retention sweep of the commit log stopped: {e}");
            }
        }
    }

    async fn read_stream(
        &self,
        name: &str,
        from: &str,
        mut each: impl FnMut(&StreamId) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let key = stream_key(name);
        let mut con = self.con().await?;
        let mut start = from.to_string();
        let (mut count, mut seen_entries, mut seen_bytes) = (FIRST_PAGE, 0usize, 0usize);
        loop {
            let page: StreamRangeReply = redis::cmd("XRANGE")
                .arg(&key)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut con)
                .await
                .map_err(unavailable)?;
            for entry in &page.ids {
                seen_bytes += entry_bytes(entry);
                each(entry)?;
            }
            seen_entries += page.ids.len();
            match page.ids.last() {
                Some(last) if page.ids.len() == count => {
                    start = format!("({}", last.id);
                    count = page_after(seen_entries, seen_bytes);
                }
                _ => return Ok(()),
            }
        }
    }
}

/// What an entry weighs in a reply, about: its fields' bytes.
fn entry_bytes(entry: &StreamId) -> usize {
    entry
        .map
        .values()
        .map(|v| bulk(Some(v)).map_or(8, <[u8]>::len))
        .sum()
}

/// Entries the next page asks for, from the bytes per entry read so far: about
/// [`PAGE_BYTES`], at least one and at most [`PAGE`].
fn page_after(entries: usize, bytes: usize) -> usize {
    (PAGE_BYTES.saturating_mul(entries) / bytes.max(1)).clamp(1, PAGE)
}

/// Drops the commits older than `min_id` (milliseconds, Redis's clock) from the commit log,
/// but never its newest: an instance finds its place in the log by its last entry, and an
/// empty log would read as commits lost (a new epoch, every page reloading).
async fn trim_log(
    con: &mut impl redis::aio::ConnectionLike,
    min_id: u64,
) -> redis::RedisResult<()> {
    let newest: StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(key("log"))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(con)
        .await?;
    let newest_ms = newest
        .ids
        .first()
        .and_then(|e| e.id.split('-').next()?.parse::<u64>().ok());
    let Some(newest_ms) = newest_ms else {
        return Ok(());
    };
    let mut trim = redis::cmd("XTRIM");
    trim.arg(key("log"));
    if newest_ms >= min_id {
        trim.arg("MINID").arg(min_id);
    } else {
        trim.arg("MAXLEN").arg(1);
    }
    trim.query_async(con).await
}

/// The longest pause between two retention sweeps.
const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Quick first retries (a restarted Redis is back within a second), then every
/// [`MAX_RETRY_DELAY`]: the feed should resume soon after Redis does.
fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(50u64 << attempt.min(6)).min(MAX_RETRY_DELAY)
}

/// The longest wait between attempts to reach Redis again.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);

/// The points of a series stream entry, or of one series in a log entry.
fn entry_points(entry: &StreamId, field: &str) -> Result<Vec<chunk::LogEntry>, StoreError> {
    let bytes =
        bulk(entry.map.get(field)).ok_or_else(|| corrupt("a stream entry without points"))?;
    chunk::decode_record(bytes).map_err(|e| corrupt(&e.to_string()))
}

fn bulk(v: Option<&Value>) -> Option<&[u8]> {
    match v? {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<&str> {
    std::str::from_utf8(bulk(v)?).ok()
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(Some(other))?.parse().ok(),
    }
}

/// Where this instance's stream stands in the log.
#[derive(Debug, Clone)]
struct Place {
    epoch: String,
    /// The last log entry published, and its `g`.
    last_id: String,
    seq: i64,
}

struct Feeder {
    store: Arc<RedisStore>,
    place: Option<Place>,
    /// Whether the last connection got as far as following the log.
    synced: bool,
    /// Series by their Redis name, parsed once.
    names: HashMap<String, SeriesKey>,
}

impl Feeder {
    fn series(&mut self, name: &str) -> Result<SeriesKey, StoreError> {
        if let Some(k) = self.names.get(name) {
            return Ok(k.clone());
        }
        let key: SeriesKey =
            serde_json::from_str(name).map_err(|_| corrupt("a series name that is not a key"))?;
        self.names.insert(name.to_string(), key.clone());
        Ok(key)
    }

    /// Connects, finds its place (or restarts the stream) and follows the log; returns why it
    /// stopped.
    async fn run_once(&mut self) -> String {
        let mut con = match self.store.connections.feed().await {
            Ok(c) => c,
            Err(e) => return format!("redis unreachable: {e}"),
        };
        if let Err(e) = self.sync(&mut con, false).await {
            return e.to_string();
        }
        self.synced = true;
        let mut count = FIRST_PAGE;
        loop {
            let Some(place) = self.place.clone() else {
                return "lost the place in the log".into();
            };
            let reply: Option<StreamReadReply> = match redis::cmd("XREAD")
                .arg("COUNT")
                .arg(count)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(key("log"))
                .arg(&place.last_id)
                .query_async(&mut con)
                .await
            {
                Ok(r) => r,
                Err(e) => return format!("redis stopped answering: {e}"),
            };
            let entries: Vec<StreamId> = reply
                .into_iter()
                .flat_map(|r| r.keys)
                .flat_map(|k| k.ids)
                .collect();
            if !entries.is_empty() {
                let bytes = entries.iter().map(entry_bytes).sum();
                count = page_after(entries.len(), bytes).min(READ_COUNT);
            }
            for entry in entries {
                if let Err(e) = self.publish(&entry, &mut con).await {
                    return e.to_string();
                }
            }
        }
    }

    /// Reads where the stream stands. The same data (epoch) and no `restart` asked: continue
    /// from this instance's place. Otherwise (first start, another epoch, a place the log
    /// cannot continue): restart the hub at the log's newest entry and warm the live window.
    async fn sync(&mut self, con: &mut Conn, restart: bool) -> Result<(), StoreError> {
        let (last_id, seq, epoch) = match &self.place {
            Some(p) => (p.last_id.clone(), p.seq.to_string(), p.epoch.clone()),
            None => Default::default(),
        };
        let reply: Vec<Value> = self
            .store
            .sync
            .key(key("meta"))
            .key(key("log"))
            .key(key("next"))
            .arg(crate::server::hub::new_epoch())
            .arg(last_id)
            .arg(seq)
            .arg(epoch)
            .invoke_async(con)
            .await
            .map_err(unavailable)?;
        let [epoch, seq, last, next] = reply.as_slice() else {
            return Err(corrupt("an unexpected answer to the sync script"));
        };
        let epoch = text(Some(epoch))
            .ok_or_else(|| corrupt("epoch"))?
            .to_string();
        let seq = int(seq).ok_or_else(|| corrupt("seq"))?;
        let last_id = text(Some(last))
            .ok_or_else(|| corrupt("log id"))?
            .to_string();
        if let Some(place) = &self.place {
            if !restart && place.epoch == epoch {
                // Same data: the log continues where this instance stopped.
                status::recover(&self.store.status, false);
                return Ok(());
            }
        }
        let Value::Array(pairs) = next else {
            return Err(corrupt("series offsets"));
        };
        let mut heads = Vec::with_capacity(pairs.len() / 2);
        for pair in pairs.chunks(2) {
            let [name, offset] = pair else { continue };
            let name = text(Some(name)).ok_or_else(|| corrupt("series name"))?;
            let offset = int(offset).ok_or_else(|| corrupt("series offset"))?;
            heads.push((self.series(name)?, name.to_string(), offset));
        }
        // What the window held may be gone from Redis (it came back empty): start it over.
        self.store.live.clear();
        self.warm(&heads).await?;
        self.store.hub.restart(
            epoch.clone(),
            heads.iter().map(|(k, _, next)| (k.clone(), *next)),
        );
        tracing::info!(%epoch, seq, series = heads.len(), "live stream started from redis");
        self.place = Some(Place {
            epoch,
            last_id,
            seq,
        });
        // Sessions reload, also ones that connected before the first start: they hold a
        // snapshot of a window not yet warmed.
        status::recover(&self.store.status, true);
        Ok(())
    }

    /// Fills the live window with each series' recent writes.
    async fn warm(&mut self, heads: &[(SeriesKey, String, i64)]) -> Result<(), StoreError> {
        let since_ms = now_ns()
            .saturating_sub(i64::try_from(self.store.warm.as_nanos()).unwrap_or(i64::MAX))
            .max(0)
            / 1_000_000;
        for (series, name, _) in heads {
            let mut points = Vec::new();
            self.store
                .read_stream(name, &since_ms.to_string(), |entry| {
                    for e in entry_points(entry, "p")? {
                        points.extend(e.points);
                    }
                    Ok(())
                })
                .await?;
            let mut batch = Batch::new();
            batch.extend(series.clone(), points);
            self.store.live.append_unchecked(&batch);
        }
        Ok(())
    }

    /// One log entry into the live window and the hub; restarts the stream when the entry
    /// does not continue it.
    async fn publish(&mut self, entry: &StreamId, con: &mut Conn) -> Result<(), StoreError> {
        let Some(place) = self.place.as_ref() else {
            return Ok(());
        };
        if stream_id(&entry.id) <= stream_id(&place.last_id) {
            // At or before the place: published already (the rest of a read that restarted).
            return Ok(());
        }
        let seq = text(entry.map.get("g")).and_then(|g| g.parse::<i64>().ok());
        let epoch = text(entry.map.get("e"));
        let why = if epoch != Some(place.epoch.as_str()) {
            Some("the redis data was named anew (it lost commits, or came back empty)")
        } else if seq != Some(place.seq + 1) {
            Some("the redis log does not continue this instance's place (trimmed or lost)")
        } else {
            None
        };
        if let Some(why) = why {
            tracing::warn!(reason = why, "restarting the live stream; pages reload");
            return self.sync(con, true).await;
        }
        match self.decode(entry) {
            Ok((batch, commit)) => {
                if let Some(place) = self.place.as_mut() {
                    place.seq += 1;
                    place.last_id = entry.id.clone();
                }
                self.store.live.append_unchecked(&batch);
                self.store.hub.publish(commit);
                Ok(())
            }
            Err(e) => {
                // Skipping it would leave a hole in offsets that pages would trip over for as
                // long as the replay buffer holds them: start after it instead.
                tracing::error!(id = %entry.id, "unreadable redis log entry ({e}); restarting the live stream");
                self.sync(con, true).await
            }
        }
    }

    /// A log entry's points, as the live window and the hub take them.
    #[allow(clippy::type_complexity)]
    fn decode(
        &mut self,
        entry: &StreamId,
    ) -> Result<(Batch, Vec<(SeriesKey, i64, Vec<crate::model::Point>)>), StoreError> {
        let offsets: Vec<i64> = text(entry.map.get("o"))
            .ok_or_else(|| corrupt("a log entry without offsets"))?
            .split(',')
            .map(|o| o.parse().map_err(|_| corrupt("an offset")))
            .collect::<Result<_, _>>()?;
        let names =
            text(entry.map.get("k")).ok_or_else(|| corrupt("a log entry without series"))?;
        let names: Vec<&str> = names.split('\n').collect();
        let mut batch = Batch::new();
        let mut commit = Vec::with_capacity(names.len());
        for e in entry_points(entry, "d")? {
            let i = usize::try_from(e.series_id).map_err(|_| corrupt("series index"))?;
            let (Some(name), Some(&first)) = (names.get(i), offsets.get(i)) else {
                return Err(corrupt("series index"));
            };
            let series = self.series(name)?;
            batch.extend(series.clone(), e.points.iter().copied());
            commit.push((series, first, e.points));
        }
        Ok((batch, commit))
    }
}

/// A stream id (`ms-seq`) as a pair that orders like Redis orders ids.
fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn append(&self, batch: Batch) -> Result<Stored, StoreError> {
        super::check_retention(&batch, self.retention)?;
        if batch.is_empty() {
            return Ok(Stored::default());
        }
        let mut invocation = self.append.prepare_invoke();
        for k in ["meta", "next", "last", "lastv", "log"] {
            invocation.key(key(k));
        }
        let mut record = Vec::new();
        let mut names = Vec::with_capacity(batch.series_count());
        let mut per_series = Vec::with_capacity(batch.series_count());
        let mut stored = Stored::default();
        for (series, points) in batch.iter() {
            let mut points = points.to_vec();
            last_write_wins(&mut points);
            let (Some(lo), Some(hi)) = (points.first().copied(), points.last().copied()) else {
                continue;
            };
            let name = name_of(series);
            let start = record.len();
            // Indexed like `k` and `o`: by the series that are written.
            chunk::encode_entry(&mut record, names.len() as i64, 0, &points);
            invocation.key(stream_key(&name));
            stored.points += points.len();
            stored.series += 1;
            per_series.push((name.clone(), points.len(), lo, hi, start..record.len()));
            names.push(name);
        }
        invocation
            .arg(self.max_series)
            .arg(u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX))
            .arg(LOG_COMMITS)
            .arg(record.as_slice())
            .arg(names.join("\n"))
            .arg(crate::server::hub::new_epoch());
        for (name, n, lo, hi, bytes) in &per_series {
            invocation
                .arg(name)
                .arg(*n)
                .arg(ts_text(lo.ts_ns))
                .arg(ts_text(hi.ts_ns))
                .arg(hi.value)
                .arg(&record[bytes.clone()]);
        }
        let mut con = self.con().await?;
        let reply: Vec<Value> = match invocation.invoke_async(&mut con).await {
            // The connection broke (Redis restarted since the last command): the manager
            // reconnects, so try once more. Safe to repeat: every point carries its
            // timestamp by now, and a second write of a timestamp changes nothing.
            Err(e) if e.is_connection_dropped() || e.is_connection_refusal() => {
                tracing::debug!("redis connection lost ({e}); retrying the write once");
                invocation
                    .invoke_async(&mut con)
                    .await
                    .map_err(unavailable)?
            }
            other => other.map_err(unavailable)?,
        };
        match reply.first().and_then(int) {
            Some(1) => Ok(stored),
            Some(0) => Err(StoreError::TooManySeries {
                limit: self.max_series,
                adding: reply.get(2).and_then(int).unwrap_or(0).max(0) as usize,
            }),
            _ => Err(corrupt("an unexpected answer to the append script")),
        }
    }

    async fn recent(&self, since_ns: i64, columns: usize) -> Result<Vec<SeriesPoints>, StoreError> {
        self.live.recent(since_ns, columns).await
    }

    /// Redis answers and this instance follows its log (a store that takes writes but
    /// cannot show them live is not ready).
    async fn ready(&self) -> Result<(), StoreError> {
        if let Some(why) = self.status.borrow().degraded.clone() {
            return Err(StoreError::Unavailable(why));
        }
        let mut con = self.con().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut con)
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn list(&self, now_ns: i64) -> Result<Vec<SeriesInfo>, StoreError> {
        let mut con = self.con().await?;
        let mut pipe = redis::pipe();
        for k in ["next", "last", "lastv"] {
            pipe.cmd("HGETALL").arg(key(k));
        }
        let (next, last, lastv): (
            HashMap<String, i64>,
            HashMap<String, String>,
            HashMap<String, f64>,
        ) = pipe.query_async(&mut con).await.map_err(unavailable)?;
        // Each series' oldest stream entry: where its stored points start.
        let names: Vec<&String> = next.keys().collect();
        if names.is_empty() {
            // (An empty pipeline is an error to the client.)
            return Ok(Vec::new());
        }
        let mut oldest: Vec<Vec<Value>> = Vec::with_capacity(names.len());
        for group in names.chunks(PAGE) {
            let mut invocation = self.oldest.prepare_invoke();
            for name in group {
                invocation.key(stream_key(name));
            }
            let reply: Vec<Vec<Value>> = invocation
                .invoke_async(&mut con)
                .await
                .map_err(unavailable)?;
            oldest.extend(reply);
        }
        // Rates from the live window, which sees every instance's writes.
        let rates: HashMap<SeriesKey, f64> = self
            .live
            .list(now_ns)
            .await?
            .into_iter()
            .map(|s| (s.series, s.rate))
            .collect();
        let mut out = Vec::with_capacity(names.len());
        for (name, oldest) in names.into_iter().zip(oldest) {
            let (Ok(series), [o, p]) = (serde_json::from_str::<SeriesKey>(name), &oldest[..])
            else {
                // An empty stream: retention took every point.
                continue;
            };
            let first_offset = text(Some(o))
                .and_then(|o| o.parse::<i64>().ok())
                .ok_or_else(|| corrupt("a stream entry without its offset"))?;
            let first_ns = bulk(Some(p))
                .filter(|p| !p.is_empty())
                .ok_or_else(|| corrupt("a stream entry without points"))
                .and_then(|p| chunk::entry_start(p).map_err(|e| corrupt(&e.to_string())))?;
            let Some(last_ns) = last.get(name).and_then(|t| ts_from_text(t)) else {
                continue;
            };
            out.push(SeriesInfo {
                rate: rates.get(&series).copied().unwrap_or(0.0),
                points: usize::try_from(next[name] - first_offset).unwrap_or(0),
                first_ns,
                last_ns,
                last_value: lastv.get(name).copied().unwrap_or(f64::NAN),
                series,
            });
        }
        out.sort_by(|a, b| a.series.cmp(&b.series));
        Ok(out)
    }

    async fn history(&self, q: HistoryQuery) -> Result<HistoryResult, StoreError> {
        let name = name_of(&q.series);
        let mut con = self.con().await?;
        let known: bool = redis::cmd("HEXISTS")
            .arg(key("next"))
            .arg(&name)
            .query_async(&mut con)
            .await
            .map_err(unavailable)?;
        if !known {
            return Err(StoreError::UnknownSeries(q.series.to_string()));
        }
        // Streams are trimmed by write time, up to a sweep late: points past the horizon
        // are never answered, as with the embedded store.
        let horizon =
            now_ns().saturating_sub(i64::try_from(self.retention.as_nanos()).unwrap_or(i64::MAX));
        let mut gather = Gather::new(&q, horizon, REDUCE_AT);
        self.read_stream(&name, "-", |entry| {
            for e in entry_points(entry, "p")? {
                gather.add(e.points);
            }
            Ok(())
        })
        .await?;
        Ok(gather.finish(&q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Point;

    /// Pages follow the entries' size: big entries (a whole request's points each) come a
    /// few at a time, small ones a thousand at a time, and an entry over the budget alone.
    #[test]
    fn pages_hold_about_a_budget_of_bytes() {
        assert_eq!(page_after(32, 32 * 1_000_000), 4);
        assert_eq!(page_after(32, 32 * 100), PAGE);
        assert_eq!(page_after(1, 64 * 1024 * 1024), 1);
        assert_eq!(page_after(0, 0), 1);
    }

    fn query(raw_limit: Option<usize>) -> HistoryQuery {
        HistoryQuery {
            series: SeriesKey::new("g").unwrap(),
            from_ns: 0,
            to_ns: 10_000,
            width: 7,
            raw_limit,
        }
    }

    /// What a read of every entry at once answers: the reference a bounded read must give.
    fn at_once(q: &HistoryQuery, horizon: i64, entries: &[Vec<Point>]) -> HistoryResult {
        let mut g = Gather::new(q, horizon, usize::MAX);
        for e in entries {
            g.add(e.clone());
        }
        g.finish(q)
    }

    proptest::proptest! {
        #[test]
        fn a_bounded_read_answers_like_reading_everything(
            entries in proptest::collection::vec(
                proptest::collection::vec((-100i64..10_100, -50i32..50), 0..20),
                1..40,
            ),
            limit in 1usize..30,
            reduce_at in 1usize..40,
            horizon in -200i64..3_000,
        ) {
            let entries: Vec<Vec<Point>> = entries
                .iter()
                .map(|e| e.iter().map(|&(t, v)| Point::new(t, f64::from(v)).unwrap()).collect())
                .collect();
            // Raw answers: any writes, rewrites and backfills included.
            let q = query(Some(limit));
            let mut g = Gather::new(&q, horizon, reduce_at);
            for e in &entries {
                g.add(e.clone());
                // Memory stays bounded, whatever the entries hold.
                proptest::prop_assert!(g.points.len() <= g.reduce_at.max(limit + 1) + 20);
            }
            proptest::prop_assert_eq!(g.finish(&q), at_once(&q, horizon, &entries));
            // M4 answers: exact while no write repeats a timestamp (see GUARANTEES.md).
            let mut seen = std::collections::HashSet::new();
            let unique: Vec<Vec<Point>> = entries
                .iter()
                .map(|e| e.iter().copied().filter(|p| seen.insert(p.ts_ns)).collect())
                .collect();
            let q = query(None);
            let mut g = Gather::new(&q, horizon, reduce_at);
            for e in &unique {
                g.add(e.clone());
            }
            proptest::prop_assert_eq!(g.finish(&q), at_once(&q, horizon, &unique));
        }
    }

    #[test]
    fn points_past_the_retention_horizon_are_not_answered() {
        let q = query(Some(100));
        let mut g = Gather::new(&q, 50, 1_000);
        g.add(vec![
            Point::new(10, 1.0).unwrap(),
            Point::new(60, 2.0).unwrap(),
        ]);
        assert_eq!(g.finish(&q).points, vec![Point::new(60, 2.0).unwrap()]);
    }

    #[test]
    fn timestamp_text_sorts_like_the_number_and_comes_back() {
        let samples = [
            i64::MIN,
            -1_000_000_000_000_000_000,
            -1,
            0,
            1,
            999,
            1_000,
            1_700_000_000_000_000_000,
            i64::MAX,
        ];
        for w in samples.windows(2) {
            assert!(ts_text(w[0]) < ts_text(w[1]), "{} < {}", w[0], w[1]);
        }
        for s in samples {
            assert_eq!(ts_text(s).len(), 20);
            assert_eq!(ts_from_text(&ts_text(s)), Some(s));
        }
    }

    #[test]
    fn a_series_has_one_name_whatever_the_label_order() {
        let a = SeriesKey::with_labels("cpu", [("b", "2"), ("a", "1")]).unwrap();
        let b = SeriesKey::with_labels("cpu", [("a", "1"), ("b", "2")]).unwrap();
        assert_eq!(name_of(&a), name_of(&b));
        let back: SeriesKey = serde_json::from_str(&name_of(&a)).unwrap();
        assert_eq!(back, a);
        assert!(
            !name_of(&a).contains('\n'),
            "names are joined by newlines in the log"
        );
    }

    #[test]
    fn every_key_shares_one_cluster_slot() {
        for k in [key("meta"), key("log"), stream_key("{\"series\":\"a}b\"}")] {
            assert!(k.starts_with("{livechart}:"), "{k}");
        }
    }

    #[test]
    fn points_round_trip_through_a_log_record() {
        let pts = vec![Point::new(5, 1.5).unwrap(), Point::new(9, -2.0).unwrap()];
        let mut record = Vec::new();
        chunk::encode_entry(&mut record, 3, 0, &pts);
        let back = chunk::decode_record(&record).unwrap();
        assert_eq!(back[0].series_id, 3);
        assert_eq!(back[0].points, pts);
    }
}
