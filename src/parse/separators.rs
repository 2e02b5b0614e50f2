//! Where a line protocol body's separators and line ends are, found 64 bytes at a time.
//!
//! A typical Telegraf line is ~150 bytes with ~25 separators (`,`, ` `, `=`). Looking at each
//! byte in turn, with a branch per byte, was the parser's largest single cost; comparing 16
//! bytes per instruction and walking the set bits of a 64-bit mask leaves a few instructions
//! per token (BENCHMARKS.md). Newlines are found in the same pass, so one scan over the body
//! finds both the lines and their tokens: each byte is loaded once, and no separate search
//! for the line end runs per line. Backslashes and quotes, which change what separators mean,
//! are rare: one forward `memchr2` finds them (cheaper than two more compares per 16 bytes in
//! the scan, as measured), and a line holding one goes to the byte-by-byte parser, which
//! knows escapes and strings.

/// Bytes the scan stops at: the separators `,`, ` `, `=` and the line end `\n`.
const STOPS: [u8; 4] = [b',', b' ', b'=', b'\n'];
/// Bytes that change what the separators mean: `\` (escape) and `"` (string field value).
const SPECIAL: [u8; 2] = [b'\\', b'"'];

/// The separators and newlines of a body in order, from a position the caller chooses.
pub struct Separators<'a> {
    body: &'a [u8],
    /// Offset in the body of the 64-byte block `stops` describes.
    base: usize,
    /// Stops of that block not yet returned, one bit per byte.
    stops: u64,
    /// The first special byte at or after where it was last searched from, or the body's length.
    next_special: usize,
}

impl<'a> Separators<'a> {
    /// A scan from the start of `body`.
    #[inline]
    pub fn new(body: &'a [u8]) -> Self {
        let mut me = Self {
            body,
            base: 0,
            stops: 0,
            next_special: 0,
        };
        me.seek(0);
        me.find_special(0);
        me
    }

    /// Goes on from `at`, as after a line the caller parsed some other way.
    #[inline]
    pub fn seek(&mut self, at: usize) {
        self.base = at;
        self.stops = match self.body.get(at..).and_then(<[u8]>::first_chunk::<64>) {
            Some(block) => stops(block),
            None => {
                // The body's tail, padded with zeros (not a stop) to a whole block.
                let mut block = [0u8; 64];
                let rest = self.body.get(at..).unwrap_or(&[]);
                block[..rest.len()].copy_from_slice(rest);
                stops(&block)
            }
        };
    }

    /// The offset of the next `,`, ` `, `=` or `\n`, or the body's length when there is none.
    #[inline(always)]
    pub fn next_stop(&mut self) -> usize {
        loop {
            if self.stops != 0 {
                let i = self.base + self.stops.trailing_zeros() as usize;
                self.stops &= self.stops - 1;
                return i;
            }
            if self.base + 64 >= self.body.len() {
                self.base = self.body.len();
                return self.body.len();
            }
            self.seek(self.base + 64);
        }
    }

    /// Whether `body[from..to]` holds a backslash or quote. Calls must come in order of
    /// `from` (one line after another), so the whole body is searched once.
    #[inline(always)]
    pub fn special_in(&mut self, from: usize, to: usize) -> bool {
        if self.next_special < from {
            self.find_special(from);
        }
        self.next_special < to
    }

    #[cold]
    fn find_special(&mut self, from: usize) {
        self.next_special = self.body.get(from..).map_or(self.body.len(), |rest| {
            memchr::memchr2(SPECIAL[0], SPECIAL[1], rest).map_or(self.body.len(), |p| from + p)
        });
    }
}

/// One bit per byte of `block`: which are stops.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn stops(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, so every x86_64 CPU has these
    // instructions; each load reads 16 bytes that lie inside `block`.
    unsafe {
        let stop = STOPS.map(|b| _mm_set1_epi8(b as i8));
        let mut mask = 0u64;
        for k in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k).cast::<__m128i>());
            let s = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, stop[0]), _mm_cmpeq_epi8(v, stop[1])),
                _mm_or_si128(_mm_cmpeq_epi8(v, stop[2]), _mm_cmpeq_epi8(v, stop[3])),
            );
            mask |= u64::from(_mm_movemask_epi8(s) as u16) << (16 * k);
        }
        mask
    }
}

/// The same, a byte at a time, where there is no SIMD path (and as the tests' reference).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline]
fn stops_portable(block: &[u8; 64]) -> u64 {
    block
        .iter()
        .enumerate()
        .fold(0, |mask, (i, b)| mask | u64::from(STOPS.contains(b)) << i)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn stops(block: &[u8; 64]) -> u64 {
    stops_portable(block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every stop from `from` on, as the scan returns them.
    fn all(body: &[u8], from: usize) -> Vec<usize> {
        let mut s = Separators::new(body);
        s.seek(from);
        let mut out = Vec::new();
        loop {
            let i = s.next_stop();
            if i == body.len() {
                return out;
            }
            out.push(i);
        }
    }

    #[test]
    fn finds_stops_across_blocks_and_lines() {
        let line = format!("{},x=1 {}", "m".repeat(70), "9".repeat(60));
        let body = format!("{line}\nnext,a=b c=\"d\"");
        let n = line.len();
        assert_eq!(
            all(body.as_bytes(), 0),
            vec![70, 72, 74, n, n + 5, n + 7, n + 9, n + 11]
        );
        assert_eq!(all(body.as_bytes(), n + 6), vec![n + 7, n + 9, n + 11]);
        let mut s = Separators::new(body.as_bytes());
        while s.next_stop() != n {}
        assert!(!s.special_in(0, n), "the quote is on the next line");
        while s.next_stop() != body.len() {}
        assert!(s.special_in(n + 1, body.len()));
    }

    proptest! {
        #[test]
        fn simd_stops_match_the_portable_ones(block in proptest::array::uniform32(
            proptest::sample::select(b", =\\\"ab\n\x00\xff".to_vec())
        ), other in proptest::array::uniform32(any::<u8>())) {
            let mut b = [0u8; 64];
            b[..32].copy_from_slice(&block);
            b[32..].copy_from_slice(&other);
            prop_assert_eq!(stops(&b), stops_portable(&b));
        }

        #[test]
        fn walks_every_stop_and_special_byte_of_any_body(
            body in proptest::collection::vec(proptest::sample::select(b", =\\\"ab9\n".to_vec()), 0..300),
            from in 0usize..300,
            skips in proptest::collection::vec(any::<bool>(), 1..6),
        ) {
            let from = from.min(body.len());
            let want: Vec<usize> = (from..body.len()).filter(|&i| STOPS.contains(&body[i])).collect();
            prop_assert_eq!(all(&body, from), want);
            // Lines one after another, some scanned to their end and some skipped by a seek,
            // as the parser does when it hands a line to the byte-by-byte parser.
            let mut s = Separators::new(&body);
            let mut start = 0;
            for (line, skip) in body.split(|&b| b == b'\n').zip(skips.iter().cycle()) {
                let end = start + line.len();
                if *skip {
                    s.seek(end + 1);
                } else {
                    while s.next_stop() < end {}
                    let want = line.iter().any(|b| SPECIAL.contains(b));
                    prop_assert_eq!(s.special_in(start, end), want);
                }
                start = end + 1;
            }
        }
    }
}
