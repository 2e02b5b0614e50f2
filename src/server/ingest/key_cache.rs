//! Series keys built from line protocol text, kept across requests.
//!
//! A Telegraf agent sends the same measurement and tag text every interval; validating it and
//! building its keys (name, label map, hash) each time was the largest cost of ingest after
//! parsing. The cache maps the raw `measurement,tags` text to the keys of the fields seen with
//! it. It only ever holds keys that passed validation, so a hit skips nothing a miss checks.
//!
//! Bounded: past `capacity` texts it is cleared and refills from the traffic, which costs one
//! rebuild per series, never a wrong key.

use crate::model::SeriesKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The keys of one series text, by field name.
pub type FieldKeys = Arc<[(Box<str>, SeriesKey)]>;

pub struct KeyCache {
    capacity: usize,
    texts: Mutex<HashMap<Box<str>, FieldKeys>>,
}

impl KeyCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            texts: Mutex::new(HashMap::new()),
        }
    }

    /// The keys known for `series_text`, if any.
    pub fn get(&self, series_text: &str) -> Option<FieldKeys> {
        let texts = self.texts.lock().unwrap_or_else(PoisonError::into_inner);
        texts.get(series_text).cloned()
    }

    /// Records keys built for `series_text` next to those already known.
    pub fn add(&self, series_text: &str, built: impl IntoIterator<Item = (Box<str>, SeriesKey)>) {
        let mut texts = self.texts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut keys: Vec<(Box<str>, SeriesKey)> = texts
            .get(series_text)
            .map(|k| k.to_vec())
            .unwrap_or_default();
        for (field, key) in built {
            if !keys.iter().any(|(f, _)| *f == field) {
                keys.push((field, key));
            }
        }
        if texts.len() >= self.capacity && !texts.contains_key(series_text) {
            texts.clear();
        }
        texts.insert(series_text.into(), keys.into());
    }
}

/// Looks `field` up among cached keys.
pub fn find<'k>(keys: Option<&'k FieldKeys>, field: &str) -> Option<&'k SeriesKey> {
    keys?.iter().find(|(f, _)| &**f == field).map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_fields_per_text_and_clears_past_capacity() {
        let cache = KeyCache::new(2);
        let k = |s: &str| SeriesKey::new(s).unwrap();
        cache.add("cpu,host=a", [("user".into(), k("cpu.user"))]);
        cache.add("cpu,host=a", [("idle".into(), k("cpu.idle"))]);
        let keys = cache.get("cpu,host=a");
        assert_eq!(find(keys.as_ref(), "user"), Some(&k("cpu.user")));
        assert_eq!(find(keys.as_ref(), "idle"), Some(&k("cpu.idle")));
        assert_eq!(find(keys.as_ref(), "sys"), None);
        cache.add("mem", [("used".into(), k("mem.used"))]);
        cache.add("disk", [("free".into(), k("disk.free"))]);
        assert!(cache.get("cpu,host=a").is_none(), "cleared when full");
        assert!(cache.get("disk").is_some());
    }
}
