//! Where a line protocol line's separators are, found 64 bytes at a time.
//!
//! A typical Telegraf line is ~150 bytes with ~25 separators (`,`, ` `, `=`). Looking at each
//! byte in turn, with a branch per byte, was the parser's largest single cost; comparing 16
//! bytes per instruction and walking the set bits of a 64-bit mask leaves a few instructions
//! per token (the benchmark's lines: 34.8 ms → 27.1 ms, BENCHMARKS.md). Backslashes and quotes
//! are found in the same pass, so a line holding one is handed to the byte-by-byte parser,
//! which knows escapes and strings.

/// Bytes that separate tokens: `,`, ` ` and `=`.
const SEPARATORS: [u8; 3] = [b',', b' ', b'='];
/// Bytes that change what the separators mean: `\` (escape) and `"` (string field value).
const SPECIAL: [u8; 2] = [b'\\', b'"'];

/// The separators of `body[start..end]` in order, and whether any of its bytes is special.
pub struct Separators<'a> {
    body: &'a [u8],
    start: usize,
    len: usize,
    /// Offset in the line of the 64-byte block `mask` describes.
    base: usize,
    /// Separators of that block not yet returned, one bit per byte.
    mask: u64,
    special: bool,
}

impl<'a> Separators<'a> {
    /// The separators of `body[start..end]`. Blocks are read from `body` past `end` when it
    /// goes on (those bits are dropped), so only a body's last line is copied to be padded.
    #[inline(always)]
    pub fn new(body: &'a [u8], start: usize, end: usize) -> Self {
        let mut me = Self {
            body,
            start,
            len: end.saturating_sub(start),
            base: 0,
            mask: 0,
            special: false,
        };
        me.load(0);
        me
    }

    /// The next separator's offset in the line, or the line's length when there is none.
    #[inline(always)]
    pub fn next_offset(&mut self) -> usize {
        loop {
            if self.mask != 0 {
                let i = self.base + self.mask.trailing_zeros() as usize;
                self.mask &= self.mask - 1;
                return i;
            }
            if self.base + 64 >= self.len {
                self.base = self.len;
                return self.len;
            }
            self.load(self.base + 64);
        }
    }

    /// Whether a backslash or quote was seen in the blocks read so far; once [`Self::next_offset`]
    /// has returned the line's length, that is the whole line.
    #[inline(always)]
    pub fn special(&self) -> bool {
        self.special
    }

    #[inline(always)]
    fn load(&mut self, base: usize) {
        self.base = base;
        let at = self.start + base;
        let (sep, special) = match self.body.get(at..).and_then(<[u8]>::first_chunk::<64>) {
            Some(block) => masks(block),
            None => {
                let mut block = [0u8; 64];
                let rest = self.body.get(at..).unwrap_or(&[]);
                block[..rest.len()].copy_from_slice(rest);
                masks(&block)
            }
        };
        let left = self.len - base;
        let keep = if left >= 64 {
            u64::MAX
        } else {
            (1u64 << left) - 1
        };
        self.mask = sep & keep;
        self.special |= special & keep != 0;
    }
}

/// One bit per byte of `block`: which are separators, which are special.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn masks(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, so every x86_64 CPU has these
    // instructions; each load reads 16 bytes that lie inside `block`.
    unsafe {
        let splat = |b: u8| _mm_set1_epi8(b as i8);
        let (sep, special) = (SEPARATORS.map(splat), SPECIAL.map(splat));
        let (mut sep_mask, mut special_mask) = (0u64, 0u64);
        for k in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k).cast::<__m128i>());
            let s = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, sep[0]), _mm_cmpeq_epi8(v, sep[1])),
                _mm_cmpeq_epi8(v, sep[2]),
            );
            let x = _mm_or_si128(_mm_cmpeq_epi8(v, special[0]), _mm_cmpeq_epi8(v, special[1]));
            sep_mask |= u64::from(_mm_movemask_epi8(s) as u16) << (16 * k);
            special_mask |= u64::from(_mm_movemask_epi8(x) as u16) << (16 * k);
        }
        (sep_mask, special_mask)
    }
}

/// The same, a byte at a time, where there is no SIMD path (and as the tests' reference).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline]
fn masks_portable(block: &[u8; 64]) -> (u64, u64) {
    block
        .iter()
        .enumerate()
        .fold((0, 0), |(sep, special), (i, b)| {
            (
                sep | u64::from(SEPARATORS.contains(b)) << i,
                special | u64::from(SPECIAL.contains(b)) << i,
            )
        })
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn masks(block: &[u8; 64]) -> (u64, u64) {
    masks_portable(block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(line: &[u8], body: &[u8], start: usize) -> (Vec<usize>, bool) {
        let mut s = Separators::new(body, start, start + line.len());
        let mut out = Vec::new();
        loop {
            let i = s.next_offset();
            if i == line.len() {
                return (out, s.special());
            }
            out.push(i);
        }
    }

    #[test]
    fn finds_separators_across_blocks_and_ignores_bytes_past_the_end() {
        let line = format!("{},x=1 {}", "m".repeat(70), "9".repeat(60));
        let body = format!("{line}\nnext,a=b c=\"d\"");
        let (seps, special) = all(line.as_bytes(), body.as_bytes(), 0);
        assert_eq!(seps, vec![70, 72, 74]);
        assert!(!special, "the quote is on the next line");
        let (seps, special) = all(
            &body.as_bytes()[line.len() + 1..],
            body.as_bytes(),
            line.len() + 1,
        );
        assert_eq!(seps, vec![4, 6, 8, 10]);
        assert!(special);
    }

    proptest! {
        #[test]
        fn simd_masks_match_the_portable_ones(block in proptest::array::uniform32(
            proptest::sample::select(b", =\\\"ab\n\x00\xff".to_vec())
        ), other in proptest::array::uniform32(any::<u8>())) {
            let mut b = [0u8; 64];
            b[..32].copy_from_slice(&block);
            b[32..].copy_from_slice(&other);
            prop_assert_eq!(masks(&b), masks_portable(&b));
        }

        #[test]
        fn walks_every_separator_of_any_line(
            line in proptest::collection::vec(proptest::sample::select(b", =\\\"ab9".to_vec()), 0..200),
            before in 0usize..70,
            after in 0usize..70,
        ) {
            let mut body = vec![b'x'; before];
            body.extend_from_slice(&line);
            body.extend(std::iter::repeat_n(b',', after));
            let (seps, special) = all(&line, &body, before);
            let want: Vec<usize> = line.iter().enumerate()
                .filter(|(_, b)| SEPARATORS.contains(b)).map(|(i, _)| i).collect();
            prop_assert_eq!(seps, want);
            prop_assert_eq!(special, line.iter().any(|b| SPECIAL.contains(b)));
        }
    }
}
