//! What the line protocol fast path may trust about a body, checked a piece at a time just
//! ahead of the parser: that it is UTF-8, and where its backslashes and quotes are.
//!
//! Checking the whole body first (UTF-8, then one search for backslashes and quotes) read
//! it from memory twice before the parser read it a third time; a 29 MB body costs about
//! 1.7 ms per pass that way on this machine. Checking a piece of [`PIECE`] bytes just before
//! the parser reaches it reads each byte from memory once, and the later passes find it in
//! the cache (BENCHMARKS.md).

/// How far the check runs ahead of the parser: small enough that the piece is still in the
/// core's cache (512 KiB of L2 here) when the parser gets to it, large enough that the
/// per-piece cost (a call and a newline search) is noise.
#[cfg(not(any(test, fuzzing)))]
pub(super) const PIECE: usize = 64 * 1024;
/// Tests and the fuzzer use pieces of a few lines, so their short bodies cross pieces.
#[cfg(any(test, fuzzing))]
pub(super) const PIECE: usize = 64;

/// Bytes that change what the separators mean: `\` (escape) and `"` (string field value).
const SPECIAL: [u8; 2] = [b'\\', b'"'];

/// The checked prefix of a body and where its special bytes are.
pub struct Lookahead<'a> {
    body: &'a [u8],
    /// `body[..checked]` is valid UTF-8 and ends just after a `\n` or at the body's end, so
    /// every line that starts inside it ends inside it.
    checked: usize,
    /// False once a piece failed the UTF-8 check: nothing past `checked` is trusted then,
    /// and every later line takes the byte-by-byte parser (which names the bad line).
    valid: bool,
    /// The first special byte at or after where it was last searched from, or `checked`
    /// when there is none before it.
    next_special: usize,
}

impl<'a> Lookahead<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        Self {
            body,
            checked: 0,
            valid: true,
            next_special: 0,
        }
    }

    /// The body from its start to past the end of the line starting at `start`, known to be
    /// UTF-8, or `None` when the line is not known to be (it may or may not be; the caller
    /// checks it on its own).
    #[inline(always)]
    pub fn text_through_line(&mut self, start: usize) -> Option<&'a str> {
        if start >= self.checked && !self.check_past(start) {
            return None;
        }
        // SAFETY: `body[..checked]` passed `from_utf8` piece by piece, each piece starting
        // after a `\n` (or at 0) and ending after one (or at the end): a valid sequence.
        Some(unsafe { std::str::from_utf8_unchecked(&self.body[..self.checked]) })
    }

    /// Whether `body[from..to]` holds a backslash or quote. `to` must be within the checked
    /// prefix ([`Self::text_through_line`] of a line at or before `from`), and calls must come
    /// in order of `from`, so each byte is searched once.
    #[inline(always)]
    pub fn special_in(&mut self, from: usize, to: usize) -> bool {
        debug_assert!(to <= self.checked);
        if self.next_special < from {
            self.next_special = self.find_special(from);
        }
        self.next_special < to
    }

    /// Checks pieces until the checked prefix holds the line at `start`; false if a piece is
    /// not UTF-8.
    #[cold]
    fn check_past(&mut self, start: usize) -> bool {
        let len = self.body.len();
        while self.valid && start >= self.checked {
            if self.checked == len {
                // Only the empty line after a final `\n` starts here: nothing to check.
                return start == len;
            }
            let from = self.checked;
            let piece_end = (from + PIECE).min(len);
            let end =
                memchr::memchr(b'\n', &self.body[piece_end..]).map_or(len, |p| piece_end + p + 1);
            if std::str::from_utf8(&self.body[from..end]).is_err() {
                self.valid = false;
                break;
            }
            self.checked = end;
            if self.next_special == from {
                self.next_special = self.find_special(from);
            }
        }
        start < self.checked
    }

    /// The first special byte in the checked prefix at or after `from`, or the prefix's end.
    fn find_special(&self, from: usize) -> usize {
        let rest = self.body.get(from..self.checked).unwrap_or(&[]);
        memchr::memchr2(SPECIAL[0], SPECIAL[1], rest).map_or(self.checked, |p| from + p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_piece_ends_after_a_line_end() {
        let line = "m v=1\n";
        let body = line.repeat(PIECE / line.len() + 10);
        let mut l = Lookahead::new(body.as_bytes());
        let text = l.text_through_line(0).unwrap();
        assert!(text.len() >= PIECE && text.len() < PIECE + line.len() && text.ends_with('\n'));
        assert!(!l.special_in(0, text.len()));
        let next = text.len();
        assert_eq!(l.text_through_line(next).unwrap().len(), body.len());
        assert_eq!(l.text_through_line(body.len()).unwrap().len(), body.len());
    }

    #[test]
    fn stops_trusting_at_the_first_bad_piece() {
        let mut body = "m v=1\n".repeat(PIECE / 3).into_bytes();
        let good = body.len();
        body.extend_from_slice(b"m,t=\xff v=1\n");
        body.extend("m v=1\n".repeat(10).bytes());
        let mut l = Lookahead::new(&body);
        // The first piece is trusted; the bad line's piece and every one after it are not.
        assert!(l.text_through_line(0).is_some_and(|t| t.len() < good));
        assert_eq!(l.text_through_line(good), None);
        assert_eq!(l.text_through_line(body.len() - 6), None);
    }

    proptest! {
        #[test]
        fn finds_every_special_byte_and_covers_every_line(
            body in proptest::collection::vec(proptest::sample::select(b"ab=\\\"\n\xc3\xa9".to_vec()), 0..400),
        ) {
            let valid = std::str::from_utf8(&body).is_ok();
            let mut l = Lookahead::new(&body);
            let mut start = 0;
            for line in body.split(|&b| b == b'\n') {
                let end = start + line.len();
                match l.text_through_line(start) {
                    Some(text) => {
                        prop_assert!(text.len() >= end);
                        // What `from_utf8_unchecked` was given must really be UTF-8.
                        prop_assert!(std::str::from_utf8(text.as_bytes()).is_ok());
                        prop_assert_eq!(text.as_bytes(), &body[..text.len()]);
                        let want = line.iter().any(|b| SPECIAL.contains(b));
                        prop_assert_eq!(l.special_in(start, end), want);
                    }
                    None => prop_assert!(!valid),
                }
                start = end + 1;
            }
        }
    }
}
