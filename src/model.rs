//! Series, points and batches: the one internal shape every ingest format is turned into.
//!
//! Invariants kept here, so no later stage has to re-check them:
//! - a [`SeriesKey`] is non-empty, at most [`MAX_SERIES_NAME_BYTES`] bytes, without control
//!   characters;
//! - a [`Point`] has a finite value and a timestamp in nanoseconds since the Unix epoch (i64
//!   covers the years 1677 to 2262);
//! - a [`Batch`] holds each series once, with at least one point.
//!
//! Everything here is pure and compiles for both the server and the browser.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

/// Long enough for dotted metric names with a host or path in them, short enough that a
/// legend and a URL stay usable.
pub const MAX_SERIES_NAME_BYTES: usize = 256;
/// Hard ceiling on labels per series, whatever the configuration says (`--max-labels`,
/// default 32, is checked at ingest): keeps a series key small enough to compare and show.
pub const MAX_LABELS: usize = 64;
/// Label keys are identifiers (`host`, `core`, `interface`).
pub const MAX_LABEL_KEY_BYTES: usize = 128;
/// Label values are hostnames, paths, device names.
pub const MAX_LABEL_VALUE_BYTES: usize = 256;

pub const NANOS_PER_MILLI: i64 = 1_000_000;
pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Why a series name, a label or a point was refused. The text is shown to whoever sent it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValidationError {
    #[error("series name is empty")]
    EmptySeries,
    #[error("series name is {0} bytes long; the limit is {MAX_SERIES_NAME_BYTES}")]
    SeriesTooLong(usize),
    #[error("series name contains a control character at byte {0}")]
    SeriesControlChar(usize),
    #[error("{0} labels; the limit is {MAX_LABELS} per series")]
    TooManyLabels(usize),
    #[error("label key {0:?}: {1}")]
    LabelKey(String, &'static str),
    #[error("label {0:?} value {1:?}: {2}")]
    LabelValue(String, String, &'static str),
    #[error("value must be a finite number, got {0}")]
    NonFiniteValue(f64),
}

/// The identity of a series: a name plus labels (`cpu.usage{core=0,host=a}`). The same name
/// with other labels is another series. Labels are kept sorted by key, so the same set given in
/// any order is the same series.
///
/// Shared behind an `Arc` with its hash computed once: a key is cloned into and looked up in
/// every batch, store map and message that names its series, so a clone costs a counter and
/// a lookup hashes eight bytes, not a name and every label.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawSeriesKey", into = "RawSeriesKey")]
pub struct SeriesKey(Arc<KeyParts>);

#[derive(Debug, Clone)]
struct KeyParts {
    name: String,
    labels: BTreeMap<String, String>,
    hash: u64,
}

impl PartialEq for SeriesKey {
    /// Equal keys are one allocation ([`intern`]), so the pointer almost always decides; the
    /// text is compared only when two different keys' hashes are equal.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash
                && self.0.name == other.0.name
                && self.0.labels == other.0.labels)
    }
}

impl Eq for SeriesKey {}

impl Ord for SeriesKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.0.name, &self.0.labels).cmp(&(&other.0.name, &other.0.labels))
    }
}

impl PartialOrd for SeriesKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::hash::Hash for SeriesKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

/// A map keyed by series that uses each key's own hash (random-keyed SipHash, computed once
/// per key) instead of hashing it again: the maps on the ingest path are looked up once per
/// series per request, and hashing again cost about 5% of the server's time there.
pub type SeriesMap<V> = HashMap<SeriesKey, V, std::hash::BuildHasherDefault<KeyHashPassThrough>>;

/// The [`std::hash::Hasher`] behind [`SeriesMap`]: it keeps the one `u64` a [`SeriesKey`]
/// writes.
#[derive(Default)]
pub struct KeyHashPassThrough(u64);

impl std::hash::Hasher for KeyHashPassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }

    /// Only [`SeriesKey`] is hashed with this, and it writes one `u64`; anything else is
    /// folded in so a misuse still hashes, only slower.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(5) ^ u64::from(b);
        }
    }
}

/// Live keys by hash, so that equal keys share one allocation: maps then find a key by
/// pointer ([`SeriesKey`]'s `eq`) instead of comparing its name and labels. Keys are built
/// apart for one series all the time (concurrent requests, a key cache refilled after it was
/// cleared, JSON bodies, Redis messages), and a store map that kept one copy while the
/// requests brought another compared text on every lookup: up to 17% of the server's time
/// under ingest. Entries are weak, so a key nobody holds is freed as before.
struct Interned {
    keys: HashMap<
        u64,
        Vec<std::sync::Weak<KeyParts>>,
        std::hash::BuildHasherDefault<KeyHashPassThrough>,
    >,
    /// The table's size after the last sweep of dead entries; the next comes at twice this.
    swept_at: usize,
}

/// Smallest table swept for dead entries: below this the sweep would cost more than it frees.
const INTERNED_MIN_SWEEP: usize = 1024;

fn intern(parts: KeyParts) -> Arc<KeyParts> {
    static INTERNED: std::sync::Mutex<Interned> = std::sync::Mutex::new(Interned {
        keys: HashMap::with_hasher(std::hash::BuildHasherDefault::new()),
        swept_at: INTERNED_MIN_SWEEP,
    });
    let mut interned = INTERNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let same = interned.keys.entry(parts.hash).or_default();
    same.retain(|k| k.strong_count() > 0);
    if let Some(found) = same
        .iter()
        .filter_map(std::sync::Weak::upgrade)
        .find(|k| k.name == parts.name && k.labels == parts.labels)
    {
        return found;
    }
    let key = Arc::new(parts);
    same.push(Arc::downgrade(&key));
    if interned.keys.len() >= 2 * interned.swept_at {
        interned.keys.retain(|_, same| {
            same.retain(|k| k.strong_count() > 0);
            !same.is_empty()
        });
        interned.swept_at = interned.keys.len().max(INTERNED_MIN_SWEEP);
    }
    key
}

/// The wire form: `{"series": "cpu.usage", "labels": {"host": "a"}}`, labels omitted when
/// there are none.
#[derive(Serialize, Deserialize)]
struct RawSeriesKey {
    series: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

impl TryFrom<RawSeriesKey> for SeriesKey {
    type Error = ValidationError;
    fn try_from(raw: RawSeriesKey) -> Result<Self, Self::Error> {
        Self::with_labels(raw.series, raw.labels)
    }
}

impl From<SeriesKey> for RawSeriesKey {
    fn from(key: SeriesKey) -> Self {
        let KeyParts { name, labels, .. } = Arc::unwrap_or_clone(key.0);
        Self {
            series: name,
            labels,
        }
    }
}

fn check_text(s: &str, max: usize) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > max {
        return Err("is too long");
    }
    if s.chars().any(char::is_control) {
        return Err("contains a control character");
    }
    Ok(())
}

impl SeriesKey {
    /// A series without labels.
    pub fn new(name: impl Into<String>) -> Result<Self, ValidationError> {
        Self::with_labels(name, BTreeMap::<String, String>::new())
    }

    pub fn with_labels<K, V>(
        name: impl Into<String>,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ValidationError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let name = name.into();
        if name.is_empty() {
            return Err(ValidationError::EmptySeries);
        }
        if name.len() > MAX_SERIES_NAME_BYTES {
            return Err(ValidationError::SeriesTooLong(name.len()));
        }
        if let Some((at, _)) = name.char_indices().find(|(_, c)| c.is_control()) {
            return Err(ValidationError::SeriesControlChar(at));
        }
        let mut map = BTreeMap::new();
        for (k, v) in labels {
            let (k, v) = (k.into(), v.into());
            check_text(&k, MAX_LABEL_KEY_BYTES)
                .map_err(|why| ValidationError::LabelKey(k.clone(), why))?;
            check_text(&v, MAX_LABEL_VALUE_BYTES)
                .map_err(|why| ValidationError::LabelValue(k.clone(), v.clone(), why))?;
            map.insert(k, v);
            if map.len() > MAX_LABELS {
                return Err(ValidationError::TooManyLabels(map.len()));
            }
        }
        // Keyed at random once per process, so that maps can use this value as their hash
        // as is ([`SeriesMap`]) and crafted names still cannot crowd a bucket.
        static KEYS: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
        let hash = std::hash::BuildHasher::hash_one(
            KEYS.get_or_init(std::hash::RandomState::new),
            (&name, &map),
        );
        Ok(Self(intern(KeyParts {
            name,
            labels: map,
            hash,
        })))
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.0.labels
    }

    /// Whether every `(key, value)` in `wanted` is among this series' labels.
    pub fn has_labels<'a>(&self, wanted: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        wanted
            .into_iter()
            .all(|(k, v)| self.labels().get(k).is_some_and(|have| have == v))
    }
}

/// `name` alone, or `name{key=value,…}` with keys in order: how a person reads a series.
/// A name, key or value holding a character of that syntax (`{`, `}`, `,`, `=`, `"`, `\`)
/// is written quoted (`"a,b"`, with `"` and `\` escaped), so two series never
/// read alike: the chart keys its legend and toggles by this text.
impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_part(f, self.name())?;
        if !self.labels().is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.labels().iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write_part(f, k)?;
                f.write_str("=")?;
                write_part(f, v)?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// `text` as it is, or quoted when it holds a character the display syntax uses.
fn write_part(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    let special = |c: char| matches!(c, '{' | '}' | ',' | '=' | '"' | '\\');
    if !text.contains(special) {
        return f.write_str(text);
    }
    f.write_str("\"")?;
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

/// One sample. On the wire it is the pair `[timestamp_ns, value]`, the most compact JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "(i64, f64)", into = "(i64, f64)")]
pub struct Point {
    pub ts_ns: i64,
    pub value: f64,
}

impl Point {
    /// The only way input becomes a point: refuses NaN and infinities, which would poison
    /// every min/max and auto-scale downstream.
    pub fn new(ts_ns: i64, value: f64) -> Result<Self, ValidationError> {
        if !value.is_finite() {
            return Err(ValidationError::NonFiniteValue(value));
        }
        Ok(Self { ts_ns, value })
    }
}

impl From<(i64, f64)> for Point {
    fn from((ts_ns, value): (i64, f64)) -> Self {
        Self { ts_ns, value }
    }
}

impl From<Point> for (i64, f64) {
    fn from(p: Point) -> Self {
        (p.ts_ns, p.value)
    }
}

/// The points of one series inside a batch or a message:
/// `{"series": "cpu", "labels": {"host": "a"}, "points": [[ts_ns, value], …]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoints {
    #[serde(flatten)]
    pub series: SeriesKey,
    pub points: Vec<Point>,
}

/// Everything one request carries, grouped by series, in the order series first appear.
/// Built only from validated parts, so it is stored whole or not at all.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    series: Vec<(SeriesKey, Vec<Point>)>,
    index: SeriesMap<usize>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    fn slot(&mut self, series: SeriesKey) -> &mut Vec<Point> {
        let next = self.series.len();
        let i = *self.index.entry(series.clone()).or_insert(next);
        if i == next {
            self.series.push((series, Vec::new()));
        }
        &mut self.series[i].1
    }

    pub fn push(&mut self, series: SeriesKey, point: Point) {
        self.slot(series).push(point);
    }

    pub fn extend(&mut self, series: SeriesKey, points: impl IntoIterator<Item = Point>) {
        let mut points = points.into_iter().peekable();
        // Keep the invariant "each series holds at least one point" even for empty input.
        if points.peek().is_some() {
            self.slot(series).extend(points);
        }
    }

    /// [`Self::extend`] for points already in a `Vec`: a series new to the batch takes the
    /// `Vec` itself, so a request's points are not copied again (one allocation per series
    /// per request saved; parsers hand their points over this way).
    pub fn extend_vec(&mut self, series: SeriesKey, points: Vec<Point>) {
        if points.is_empty() {
            return;
        }
        let slot = self.slot(series);
        if slot.is_empty() {
            *slot = points;
        } else {
            slot.extend(points);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn point_count(&self) -> usize {
        self.series.iter().map(|(_, p)| p.len()).sum()
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SeriesKey, &[Point])> {
        self.series.iter().map(|(k, v)| (k, v.as_slice()))
    }
}

/// Two batches are equal when they hold the same points per series, in whatever series order.
impl PartialEq for Batch {
    fn eq(&self, other: &Self) -> bool {
        self.series.len() == other.series.len()
            && self
                .series
                .iter()
                .all(|(k, v)| other.index.get(k).is_some_and(|&i| other.series[i].1 == *v))
    }
}

/// Puts points given in write order into time order, one per timestamp, the later write
/// winning: the rule for every store and every client.
pub fn last_write_wins(points: &mut Vec<Point>) {
    points.sort_by_key(|p| p.ts_ns); // stable: of equal timestamps the later write stays last
    points.dedup_by(|later, kept| {
        let same = later.ts_ns == kept.ts_ns;
        if same {
            *kept = *later;
        }
        same
    });
}

/// Merges `incoming` (in any order) into the time-sorted `ring` and trims the oldest points
/// beyond `capacity`. One timestamp holds one value per series: on equal timestamps the later
/// write wins, as in InfluxDB, which also makes a retried or repeated point harmless.
///
/// Returns the incoming points still in the ring afterwards, in time order: what live viewers
/// should be shown. A point older than everything in a full ring is not among them.
///
/// Cost: O(incoming log incoming) for the common newest-last case and for rewrites of stored
/// timestamps (a retried batch); otherwise the ring is merged only from the first incoming
/// timestamp on, O(that tail + incoming). Never a per-point shift of the ring, and places in
/// the ring are found by interpolation ([`find_ts`]), not halving: a batch that arrives just
/// after a later one (concurrent senders) touches only the ring's newest cache lines.
pub fn merge_points(ring: &mut VecDeque<Point>, incoming: &[Point], capacity: usize) -> Vec<Point> {
    let mut batch = incoming.to_vec();
    // A sender's points usually come in time order: no sort then.
    if !batch.windows(2).all(|w| w[0].ts_ns < w[1].ts_ns) {
        last_write_wins(&mut batch);
    }
    let Some(first) = batch.first() else {
        return Vec::new();
    };

    if ring.back().is_none_or(|last| last.ts_ns < first.ts_ns) {
        ring.extend(batch.iter().copied());
        let excess = ring.len().saturating_sub(capacity);
        ring.drain(..excess);
        let kept_from_batch = batch.len().min(ring.len());
        // In place: usually nothing is cut, and the batch is returned as it is.
        batch.drain(..batch.len() - kept_from_batch);
        return batch;
    }

    // Every timestamp already stored (a retried batch): overwrite in place, the ring's length
    // is unchanged. The batch is sorted, so each point is looked for right after the previous
    // one first. The ring is searched where it lies, never made contiguous: once it is full
    // and wraps, that would move all of it for each late batch.
    let (Ok(head) | Err(head)) = find_in_ring(ring, first.ts_ns);
    let mut slots = Vec::with_capacity(batch.len());
    let mut from = head;
    for p in &batch {
        // Retried points are usually adjacent in the ring: try the next slot before searching.
        match ring.get(from) {
            Some(q) if q.ts_ns == p.ts_ns => {}
            // The first point's place is `head`: not there, not stored (a late batch).
            _ if slots.is_empty() => break,
            _ => match find_in_ring(ring, p.ts_ns) {
                Ok(i) if i >= from => from = i,
                _ => break,
            },
        }
        slots.push(from);
        from += 1;
    }
    if slots.len() == batch.len() {
        for (slot, p) in slots.into_iter().zip(&batch) {
            ring[slot] = *p;
        }
        return batch;
    }

    let tail: Vec<Point> = ring.drain(head..).collect();
    let mut merged: Vec<(Point, bool)> = Vec::with_capacity(tail.len() + batch.len());
    let mut old = tail.into_iter().peekable();
    let mut new = batch.into_iter().peekable();
    loop {
        match (old.peek(), new.peek()) {
            (Some(o), Some(n)) if o.ts_ns < n.ts_ns => merged.push((*o, false)),
            (Some(o), Some(n)) if o.ts_ns == n.ts_ns => {
                merged.push((*n, true));
                old.next();
                new.next();
                continue;
            }
            (_, Some(n)) => {
                merged.push((*n, true));
                new.next();
                continue;
            }
            (Some(o), None) => merged.push((*o, false)),
            (None, None) => break,
        }
        old.next();
    }
    let excess = (head + merged.len()).saturating_sub(capacity);
    ring.drain(..excess.min(head));
    let mut stored = Vec::new();
    for (p, from_batch) in merged.into_iter().skip(excess.saturating_sub(head)) {
        if from_batch {
            stored.push(p);
        }
        ring.push_back(p);
    }
    stored
}

/// [`find_ts`] over a ring that may wrap around its buffer: only the half that can hold `ts`
/// is searched.
fn find_in_ring(ring: &VecDeque<Point>, ts: i64) -> Result<usize, usize> {
    let (older, newer) = ring.as_slices();
    match newer.first() {
        Some(q) if q.ts_ns <= ts => find_ts(newer, ts)
            .map(|i| older.len() + i)
            .map_err(|i| older.len() + i),
        _ => find_ts(older, ts),
    }
}

/// Binary search for `ts` in time-sorted points, started from where an evenly sampled series
/// would hold it and widened by galloping: regular series are found in a cache line or two
/// instead of a miss per halving, and irregular ones cost at most about twice a plain search.
fn find_ts(points: &[Point], ts: i64) -> Result<usize, usize> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Err(0);
    };
    if ts <= first.ts_ns || ts >= last.ts_ns || points.len() < 8 {
        return points.binary_search_by_key(&ts, |q| q.ts_ns);
    }
    let span = (last.ts_ns - first.ts_ns) as f64;
    let guess = ((ts - first.ts_ns) as f64 / span * (points.len() - 1) as f64) as usize;
    let guess = guess.min(points.len() - 1);
    let (mut lo, mut hi) = (guess, guess + 1);
    let mut step = 1;
    if points[guess].ts_ns < ts {
        while hi < points.len() && points[hi].ts_ns < ts {
            lo = hi;
            hi = (hi + step).min(points.len());
            step *= 2;
        }
        hi = (hi + 1).min(points.len());
    } else {
        while lo > 0 && points[lo].ts_ns > ts {
            hi = lo + 1;
            lo = lo.saturating_sub(step);
            step *= 2;
        }
    }
    points[lo..hi]
        .binary_search_by_key(&ts, |q| q.ts_ns)
        .map(|i| lo + i)
        .map_err(|i| lo + i)
}

/// What `GET /api/v1/series` reports per series; the chart's series picker reads it too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesInfo {
    #[serde(flatten)]
    pub series: SeriesKey,
    /// Points held for this series.
    pub points: usize,
    pub first_ns: i64,
    pub last_ns: i64,
    pub last_value: f64,
    /// Points per second over the last minute of the server's clock.
    pub rate: f64,
}

/// The body of `GET /api/v1/series`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesList {
    pub series: Vec<SeriesInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Two series never read alike: every series of up to two labels made of pieces of the
    /// display syntax gives its own text. Unquoted, `a{k=v,w=x}` and `a{k="v,w=x"}` read the
    /// same, and the chart showed both in one legend row.
    #[test]
    fn series_display_is_one_to_one() {
        let names = ["a", "a{k=v}", "a\"", "\"a\""];
        let keys = ["k", "w", "k,w", "w=x", "\\"];
        let values = ["v", "x", "v,w=x", "v}", "\"", "\\", "\\\"", "v\\"];
        let mut labels: Vec<Vec<(&str, &str)>> = vec![vec![]];
        for k in keys {
            for v in values {
                labels.push(vec![(k, v)]);
                for k2 in keys.iter().filter(|&&k2| k2 > k) {
                    for v2 in values {
                        labels.push(vec![(k, v), (k2, v2)]);
                    }
                }
            }
        }
        let mut seen: HashMap<String, SeriesKey> = HashMap::new();
        for name in names {
            for set in &labels {
                let key = SeriesKey::with_labels(name, set.iter().copied()).unwrap();
                if let Some(other) = seen.insert(key.to_string(), key.clone()) {
                    panic!("{other:?} and {key:?} both read {key}");
                }
            }
        }
    }

    #[test]
    fn plain_series_read_as_before_and_others_are_quoted() {
        let plain = SeriesKey::with_labels("cpu.usage", [("host", "a b"), ("core", "0")]);
        assert_eq!(plain.unwrap().to_string(), "cpu.usage{core=0,host=a b}");
        let odd = SeriesKey::with_labels("m", [("k", r#"v,w="x\"#)]).unwrap();
        assert_eq!(odd.to_string(), r#"m{k="v,w=\"x\\"}"#);
        let one = SeriesKey::with_labels("a", [("k", "v"), ("w", "x")]).unwrap();
        let other = SeriesKey::with_labels("a", [("k", "v,w=x")]).unwrap();
        assert_ne!(one.to_string(), other.to_string());
    }

    proptest::proptest! {
        #[test]
        fn find_ts_agrees_with_binary_search(
            mut ts in proptest::collection::vec(-1000i64..1000, 0..200),
            probe in -1100i64..1100,
        ) {
            ts.sort();
            ts.dedup();
            let points: Vec<Point> = ts.iter().map(|&t| Point::new(t, 0.0).unwrap()).collect();
            let want = points.binary_search_by_key(&probe, |q| q.ts_ns);
            proptest::prop_assert_eq!(find_ts(&points, probe), want);
        }
    }

    #[test]
    fn series_names_are_validated() {
        assert!(SeriesKey::new("cpu.usage").is_ok());
        assert!(SeriesKey::new("température °C").is_ok());
        assert_eq!(SeriesKey::new(""), Err(ValidationError::EmptySeries));
        assert_eq!(
            SeriesKey::new("a".repeat(MAX_SERIES_NAME_BYTES + 1)),
            Err(ValidationError::SeriesTooLong(MAX_SERIES_NAME_BYTES + 1))
        );
        assert!(SeriesKey::new("a".repeat(MAX_SERIES_NAME_BYTES)).is_ok());
        assert_eq!(
            SeriesKey::new("ab\ncd"),
            Err(ValidationError::SeriesControlChar(2))
        );
    }

    #[test]
    fn points_must_be_finite() {
        assert!(Point::new(0, 1.5).is_ok());
        assert!(Point::new(0, f64::NAN).is_err());
        assert!(Point::new(0, f64::INFINITY).is_err());
        assert!(Point::new(0, f64::NEG_INFINITY).is_err());
    }

    #[test]
    fn point_wire_form_is_a_pair() {
        let json =
            serde_json::to_string(&Point::new(1_764_230_400_000_000_000, 2.5).unwrap()).unwrap();
        assert_eq!(json, "[1764230400000000000,2.5]");
        let back: Point = serde_json::from_str(&json).unwrap();
        assert_eq!(back.ts_ns, 1_764_230_400_000_000_000);
    }

    #[test]
    fn series_key_deserialization_validates() {
        assert!(serde_json::from_str::<SeriesKey>(r#"{"series": ""}"#).is_err());
        assert!(serde_json::from_str::<SeriesKey>(r#"{"series": "ok"}"#).is_ok());
        let k: SeriesKey =
            serde_json::from_str(r#"{"series": "cpu", "labels": {"host": "a", "core": "0"}}"#)
                .unwrap();
        assert_eq!(k.to_string(), "cpu{core=0,host=a}");
        assert!(
            serde_json::from_str::<SeriesKey>(r#"{"series": "cpu", "labels": {"host": ""}}"#)
                .is_err()
        );
    }

    #[test]
    fn labels_make_distinct_series_in_any_order() {
        let a = SeriesKey::with_labels("cpu", [("host", "a"), ("core", "0")]).unwrap();
        let b = SeriesKey::with_labels("cpu", [("core", "0"), ("host", "a")]).unwrap();
        let c = SeriesKey::with_labels("cpu", [("host", "b"), ("core", "0")]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, SeriesKey::new("cpu").unwrap());
        assert!(a.has_labels([("host", "a")]));
        assert!(!a.has_labels([("host", "b")]));
        let json = serde_json::to_string(&SeriesPoints {
            series: a.clone(),
            points: vec![],
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"series":"cpu","labels":{"core":"0","host":"a"},"points":[]}"#
        );
        let plain = serde_json::to_string(&SeriesPoints {
            series: SeriesKey::new("x").unwrap(),
            points: vec![],
        })
        .unwrap();
        assert_eq!(plain, r#"{"series":"x","points":[]}"#);
    }

    #[test]
    fn label_limits() {
        let many: Vec<(String, String)> = (0..=MAX_LABELS)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        assert_eq!(
            SeriesKey::with_labels("m", many.clone()),
            Err(ValidationError::TooManyLabels(MAX_LABELS + 1))
        );
        assert!(SeriesKey::with_labels("m", many[..MAX_LABELS].to_vec()).is_ok());
        assert!(matches!(
            SeriesKey::with_labels("m", [("", "v")]),
            Err(ValidationError::LabelKey(..))
        ));
        assert!(matches!(
            SeriesKey::with_labels("m", [("k", "a\u{7}")]),
            Err(ValidationError::LabelValue(..))
        ));
        assert!(
            SeriesKey::with_labels("m", [("k", "v".repeat(MAX_LABEL_VALUE_BYTES + 1))]).is_err()
        );
    }

    #[test]
    fn equal_keys_share_one_allocation_while_any_lives() {
        let build = |host: &str| SeriesKey::with_labels("interned", [("host", host)]).unwrap();
        let a = build("a");
        assert!(Arc::ptr_eq(&a.0, &build("a").0));
        assert!(!Arc::ptr_eq(&a.0, &build("b").0));
        // Many keys built and dropped: the table is swept, and live keys stay shared.
        for i in 0..5 * INTERNED_MIN_SWEEP {
            drop(build(&i.to_string()));
        }
        assert!(Arc::ptr_eq(&a.0, &build("a").0));
        drop(a);
        assert_eq!(build("a"), build("a"));
    }

    #[test]
    fn series_maps_find_equal_keys_built_apart() {
        let mut map = SeriesMap::default();
        let a = SeriesKey::with_labels("cpu", [("host", "a"), ("core", "0")]).unwrap();
        map.insert(a, 1);
        let again = SeriesKey::with_labels("cpu", [("core", "0"), ("host", "a")]).unwrap();
        assert_eq!(map.get(&again), Some(&1));
        let other = SeriesKey::with_labels("cpu", [("core", "1"), ("host", "a")]).unwrap();
        assert_eq!(map.get(&other), None);
    }

    #[test]
    fn batch_groups_by_series() {
        let mut b = Batch::new();
        let a = SeriesKey::new("a").unwrap();
        b.push(a.clone(), Point::new(1, 1.0).unwrap());
        b.push(SeriesKey::new("b").unwrap(), Point::new(1, 2.0).unwrap());
        b.push(a, Point::new(2, 3.0).unwrap());
        assert_eq!(b.series_count(), 2);
        assert_eq!(b.point_count(), 3);
        b.extend(SeriesKey::new("c").unwrap(), []);
        b.extend_vec(SeriesKey::new("c").unwrap(), Vec::new());
        assert_eq!(b.series_count(), 2, "empty series never enter a batch");
        b.extend_vec(
            SeriesKey::new("b").unwrap(),
            vec![Point::new(2, 4.0).unwrap()],
        );
        b.extend_vec(
            SeriesKey::new("d").unwrap(),
            vec![Point::new(1, 5.0).unwrap()],
        );
        assert_eq!(
            (b.series_count(), b.point_count()),
            (3, 5),
            "added to b, d taken whole"
        );
    }

    fn pts(v: &[(i64, f64)]) -> Vec<Point> {
        v.iter().map(|&(t, x)| Point::new(t, x).unwrap()).collect()
    }

    fn ring_of(v: &VecDeque<Point>) -> Vec<(i64, f64)> {
        v.iter().map(|p| (p.ts_ns, p.value)).collect()
    }

    #[test]
    fn merge_appends_in_order_and_trims_the_oldest() {
        let mut ring = VecDeque::new();
        let stored = merge_points(&mut ring, &pts(&[(1, 0.1), (2, 0.2)]), 3);
        assert_eq!(stored.len(), 2);
        let stored = merge_points(&mut ring, &pts(&[(4, 0.4), (3, 0.3)]), 3);
        assert_eq!(stored, pts(&[(3, 0.3), (4, 0.4)]));
        assert_eq!(ring_of(&ring), vec![(2, 0.2), (3, 0.3), (4, 0.4)]);
        // A batch larger than the ring keeps its newest points.
        let stored = merge_points(
            &mut ring,
            &pts(&[(10, 1.0), (11, 1.1), (12, 1.2), (13, 1.3)]),
            3,
        );
        assert_eq!(stored, pts(&[(11, 1.1), (12, 1.2), (13, 1.3)]));
        assert_eq!(ring.len(), 3);
    }

    #[test]
    fn merge_interleaves_and_last_write_wins() {
        let mut ring: VecDeque<Point> = pts(&[(1, 0.1), (3, 0.3), (5, 0.5)]).into();
        let stored = merge_points(
            &mut ring,
            &pts(&[(4, 0.4), (3, 9.0), (3, 0.33), (0, 0.0)]),
            10,
        );
        assert_eq!(stored, pts(&[(0, 0.0), (3, 0.33), (4, 0.4)]));
        assert_eq!(
            ring_of(&ring),
            vec![(0, 0.0), (1, 0.1), (3, 0.33), (4, 0.4), (5, 0.5)]
        );
    }

    #[test]
    fn merge_into_a_full_ring_reports_only_what_stayed() {
        let mut ring: VecDeque<Point> = pts(&[(10, 1.0), (11, 1.1), (12, 1.2)]).into();
        let stored = merge_points(&mut ring, &pts(&[(5, 0.5), (13, 1.3)]), 3);
        assert_eq!(
            stored,
            pts(&[(13, 1.3)]),
            "the point older than a full ring is not stored"
        );
        assert_eq!(ring_of(&ring), vec![(11, 1.1), (12, 1.2), (13, 1.3)]);
        assert!(merge_points(&mut ring, &[], 3).is_empty());
    }

    proptest::proptest! {
        /// Against a reference model (a sorted map, later write wins, newest `capacity` kept):
        /// same ring, and `stored` is exactly the incoming timestamps that survived.
        #[test]
        fn merge_matches_a_sorted_map(
            capacity in 1usize..12,
            writes in proptest::collection::vec(
                proptest::collection::vec((0i64..20, -5i32..5), 0..8), 1..6),
        ) {
            let mut ring = VecDeque::new();
            let mut model = std::collections::BTreeMap::new();
            for write in writes {
                let incoming: Vec<Point> = write
                    .iter()
                    .map(|&(t, v)| Point::new(t, f64::from(v)).unwrap())
                    .collect();
                let stored = merge_points(&mut ring, &incoming, capacity);
                for p in &incoming {
                    model.insert(p.ts_ns, p.value);
                }
                while model.len() > capacity {
                    model.pop_first();
                }
                let want_ring: Vec<(i64, f64)> = model.iter().map(|(t, v)| (*t, *v)).collect();
                proptest::prop_assert_eq!(ring_of(&ring), want_ring);
                let mut want_stored: Vec<(i64, f64)> = model
                    .iter()
                    .filter(|(t, _)| incoming.iter().any(|p| p.ts_ns == **t))
                    .map(|(t, v)| (*t, *v))
                    .collect();
                want_stored.dedup();
                let got: Vec<(i64, f64)> = stored.iter().map(|p| (p.ts_ns, p.value)).collect();
                proptest::prop_assert_eq!(got, want_stored);
            }
        }
    }
}
