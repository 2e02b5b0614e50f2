//! Where a line protocol body's separators and line ends are, found 64 bytes at a time.
//!
//! A typical Telegraf line is ~150 bytes with ~25 separators (`,`, ` `, `=`). Looking at each
//! byte in turn, with a branch per byte, was the parser's largest single cost; comparing 16
//! bytes per instruction and walking the set bits of a 64-bit mask leaves a few instructions
//! per token (BENCHMARKS.md). Newlines are found in the same pass, so one scan over the body
//! finds both the lines and their tokens: no separate search for the line end runs per line.
//! Backslashes and quotes, which change what separators mean, are rare and found apart
//! ([`super::lookahead`]: cheaper than two more compares per 16 bytes here, as measured).

use super::lookahead::PIECE;

/// Bytes the scan stops at: the separators `,`, ` `, `=` and the line end `\n`.
const STOPS: [u8; 4] = [b',', b' ', b'=', b'\n'];

/// The separators and newlines of a body in order, from a position the caller chooses.
pub struct Separators<'a> {
    body: &'a [u8],
    /// Offset in the body of the 64-byte block `stops` describes.
    base: usize,
    /// Stops of that block not yet returned, one bit per byte.
    stops: u64,
}

impl<'a> Separators<'a> {
    /// A scan from the start of `body`.
    #[inline]
    pub fn new(body: &'a [u8]) -> Self {
        let mut me = Self {
            body,
            base: 0,
            stops: 0,
        };
        me.seek(0);
        me
    }

    /// Goes on from `at`, as after a line the caller parsed some other way.
    #[inline]
    pub fn seek(&mut self, at: usize) {
        self.base = at;
        prefetch(self.body, at + PIECE);
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
}

/// Asks the CPU to load the bytes at `at` while the parser works on those before them. A
/// scan asks for the block one [`PIECE`] ahead of itself, so each piece is in the cache by
/// the time [`super::lookahead`] checks it, just before the parser reaches it; that check
/// otherwise waited on memory (about 2.5% of a 29 MB body's parse, BENCHMARKS.md). The
/// scan's own loads then find their block in the cache too.
#[inline(always)]
fn prefetch(body: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86_64 baseline. A prefetch never faults, even past the
    // end of `body` (the address is only computed, never dereferenced).
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(body.as_ptr().wrapping_add(at).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (body, at);
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
        fn walks_every_stop_of_any_body(
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
                    let want: Vec<usize> = (start..=end).filter(|&i| i == body.len() || STOPS.contains(&body[i])).collect();
                    let got: Vec<usize> = std::iter::from_fn(|| Some(s.next_stop())).take(want.len()).collect();
                    prop_assert_eq!(got, want);
                }
                start = end + 1;
            }
        }
    }
}
