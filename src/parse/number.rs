//! Fast paths for the decimal numbers ingest reads millions of times per second.
//!
//! Telegraf-style values (`12.5`, `-3`, `421i`, `17u`) are short; the general parsers in
//! `core` are correct for every input but pay for that generality on each call. Here one pass
//! reads digits into an integer and, for floats, finishes with Clinger's fast path: when the
//! decimal mantissa fits in 53 bits and the power of ten is at most 10^22, both are exact
//! doubles and one IEEE multiplication or division rounds correctly, so the result is the
//! same bits `str::parse::<f64>` gives. Anything else returns `None` and the caller takes the
//! general path, which also produces the error messages.

/// A number read on the fast path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Float(f64),
    Int(i64),
    UInt(u64),
}

/// Powers of ten that are exact doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Most decimal digits read into a `u64` without overflow.
const MAX_DIGITS: usize = 19;

/// Reads a line protocol field value at the start of `bytes` that ends at `,`, ` ` or the end
/// of `bytes`. Returns the number and its length in bytes, or `None` when the value is not a
/// plain decimal this path can read exactly (the caller then parses it in full).
#[inline]
pub fn field_value(bytes: &[u8]) -> Option<(Number, usize)> {
    let neg = bytes.first() == Some(&b'-');
    let mut i = usize::from(neg);
    let (mut mantissa, int_digits) = digits(bytes, &mut i);
    match bytes.get(i) {
        Some(&suffix @ (b'i' | b'u')) if int_digits > 0 && ends_value(bytes.get(i + 1)) => {
            if int_digits > MAX_DIGITS {
                return None;
            }
            let n = match (suffix, neg) {
                (b'i', false) => Number::Int(i64::try_from(mantissa).ok()?),
                (b'i', true) => Number::Int(0i64.checked_sub_unsigned(mantissa)?),
                (_, false) => Number::UInt(mantissa),
                (_, true) => return None,
            };
            return Some((n, i + 1));
        }
        _ => {}
    }
    let mut frac_digits = 0;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(d) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            i += 1;
        }
        frac_digits = i - start;
    }
    if int_digits + frac_digits == 0 || int_digits + frac_digits > MAX_DIGITS {
        return None;
    }
    let mut exp: i64 = 0;
    if let Some(b'e' | b'E') = bytes.get(i) {
        i += 1;
        let exp_neg = match bytes.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let (e, n) = digits(bytes, &mut i);
        if n == 0 || n > 4 {
            return None;
        }
        exp = if exp_neg { -(e as i64) } else { e as i64 };
    }
    if !ends_value(bytes.get(i)) || mantissa > 1 << 53 {
        return None;
    }
    let e10 = exp - frac_digits as i64;
    let m = mantissa as f64;
    let v = match usize::try_from(e10.unsigned_abs()).ok()? {
        p if p >= POW10.len() => return None,
        p if e10 >= 0 => m * POW10[p],
        p => m / POW10[p],
    };
    Some((Number::Float(if neg { -v } else { v }), i))
}

/// Reads a whole timestamp (`-?digits`, in `i64` range); `None` sends anything else to the
/// general parser.
#[inline]
pub fn timestamp(bytes: &[u8]) -> Option<i64> {
    if let Some(t) = <&[u8; 19]>::try_from(bytes)
        .ok()
        .and_then(nanosecond_timestamp)
    {
        return Some(t);
    }
    let neg = bytes.first() == Some(&b'-');
    let mut i = usize::from(neg);
    let (v, n) = digits(bytes, &mut i);
    if n == 0 || n > MAX_DIGITS || i != bytes.len() {
        return None;
    }
    if neg {
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    }
}

/// Nineteen digits, the length of every nanosecond timestamp since 2001: three conversions
/// of eight digits that do not wait on each other, instead of a chain of eight, eight and
/// three single steps. The parse takes about 3% less time (BENCHMARKS.md). The last
/// conversion overlaps the second; its first five digits, which the second already read and
/// checked, are replaced by zeros (cheaper than the `% 1000` this took before). `None` (a
/// sign, a non-digit, past `i64::MAX`) leaves the text to the general loop.
#[inline]
fn nanosecond_timestamp(b: &[u8; 19]) -> Option<i64> {
    /// The last three of the eight bytes at 11, little-endian.
    const LAST_THREE: u64 = 0xFFFF_FF00_0000_0000;
    /// Five ASCII zeros in the bytes before them.
    const ZEROS: u64 = 0x0000_0030_3030_3030;
    let load = |at: usize| b[at..at + 8].try_into().ok().map(u64::from_le_bytes);
    let high = eight_digits(load(0)?)?;
    let mid = eight_digits(load(8)?)?;
    let low = eight_digits(load(11)? & LAST_THREE | ZEROS)?;
    i64::try_from(high * 100_000_000_000 + mid * 1_000 + low).ok()
}

/// Accumulates ASCII digits from `*i` (wrapping past 19 digits; callers check the count).
/// Eight at a time while eight digits follow (timestamps are 19 digits, counters often 9 or
/// more), then one at a time.
#[inline]
fn digits(bytes: &[u8], i: &mut usize) -> (u64, usize) {
    let start = *i;
    let mut v: u64 = 0;
    while let Some(eight) = bytes
        .get(*i..*i + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .and_then(|b| eight_digits(u64::from_le_bytes(b)))
    {
        v = v.wrapping_mul(100_000_000).wrapping_add(eight);
        *i += 8;
    }
    while let Some(d) = bytes.get(*i).filter(|b| b.is_ascii_digit()) {
        v = v.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
        *i += 1;
    }
    (v, *i - start)
}

/// The value of eight ASCII digits loaded little-endian (the first digit in the low byte),
/// or `None` if any byte is not a digit: a few multiplications instead of eight steps.
#[inline(always)]
fn eight_digits(chunk: u64) -> Option<u64> {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    // Every byte is 0x30..=0x39: its high nibble is 3, and adding 6 does not carry into it.
    let all_digits = (chunk & HIGH) | ((chunk.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4)
        == 0x3333_3333_3333_3333;
    if !all_digits {
        return None;
    }
    // Pairs, then quads, then the eight: each step multiplies the higher-order half by its
    // weight and adds the lower-order half.
    let v = chunk & 0x0F0F_0F0F_0F0F_0F0F;
    let v = (v.wrapping_mul(10 << 8 | 1) >> 8) & 0x00FF_00FF_00FF_00FF;
    let v = (v.wrapping_mul(100 << 16 | 1) >> 16) & 0x0000_FFFF_0000_FFFF;
    Some(v.wrapping_mul(10_000 << 32 | 1) >> 32)
}

#[inline]
fn ends_value(b: Option<&u8>) -> bool {
    matches!(b, None | Some(b',' | b' '))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_plain_numbers_and_stops_at_the_separator() {
        assert_eq!(field_value(b"12.5,x=1"), Some((Number::Float(12.5), 4)));
        assert_eq!(field_value(b"-3 123"), Some((Number::Float(-3.0), 2)));
        assert_eq!(field_value(b"421i"), Some((Number::Int(421), 4)));
        assert_eq!(field_value(b"-421i,"), Some((Number::Int(-421), 5)));
        assert_eq!(field_value(b"17u"), Some((Number::UInt(17), 3)));
        assert_eq!(field_value(b".5"), Some((Number::Float(0.5), 2)));
        assert_eq!(field_value(b"1."), Some((Number::Float(1.0), 2)));
        assert_eq!(field_value(b"-1.5e3"), Some((Number::Float(-1500.0), 6)));
        assert_eq!(field_value(b"2E-2"), Some((Number::Float(0.02), 4)));
        assert_eq!(
            field_value(b"-9223372036854775808i"),
            Some((Number::Int(i64::MIN), 21))
        );
        let neg_zero = field_value(b"-0").unwrap().0;
        assert!(matches!(neg_zero, Number::Float(z) if z == 0.0 && z.is_sign_negative()));
    }

    #[test]
    fn leaves_everything_unusual_to_the_general_parser() {
        for s in [
            "",
            "-",
            ".",
            "+1",
            "1e",
            "1e+",
            "1.5i",
            "-1u",
            "1x",
            "1\t",
            "inf",
            "NaN",
            "t",
            "9223372036854775808i",
            "18446744073709551616u",
            "12345678901234567890",
            "1e400",
            "1e23",
            "9007199254740993",
        ] {
            assert_eq!(field_value(s.as_bytes()), None, "{s:?}");
        }
        assert_eq!(
            timestamp(b"1700000000000000000"),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(timestamp(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(timestamp(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(
            timestamp(b"9223372036854775808"),
            None,
            "out of range: general path"
        );
        assert_eq!(
            timestamp(b"99999999999999999999"),
            None,
            "20 digits: general path"
        );
        assert_eq!(timestamp(b"-5"), Some(-5));
        for s in ["", "-", "+5", "1.5", "12x"] {
            assert_eq!(timestamp(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn eight_digits_read_at_once_or_not_at_all() {
        let at = |s: &[u8; 8]| eight_digits(u64::from_le_bytes(*s));
        assert_eq!(at(b"12345678"), Some(12_345_678));
        assert_eq!(at(b"00000000"), Some(0));
        assert_eq!(at(b"99999999"), Some(99_999_999));
        for bad in [
            b"1234567a",
            b"/2345678",
            b":2345678",
            b"1234 678",
            b"1234\xb5678",
        ] {
            assert_eq!(at(bad), None, "{bad:?}");
        }
    }

    proptest! {
        /// Whatever the fast path accepts, it reads to exactly the bits the general parser does.
        #[test]
        fn agrees_with_the_general_parser(
            int in "-?[0-9]{0,12}",
            frac in proptest::option::of("[0-9]{0,10}"),
            exp in proptest::option::of(-30i32..30),
            v in any::<f64>(),
        ) {
            let mut s = int;
            if let Some(f) = frac { s.push('.'); s.push_str(&f); }
            if let Some(e) = exp { s.push_str(&format!("e{e}")); }
            for text in [s, format!("{v}"), format!("{v:e}"), format!("{v:?}")] {
                if let Some((Number::Float(got), len)) = field_value(text.as_bytes()) {
                    prop_assert_eq!(len, text.len());
                    let want: f64 = text.parse().unwrap();
                    prop_assert_eq!(got.to_bits(), want.to_bits(), "{}", text);
                }
            }
        }

        /// Any text of digits (and a bad byte anywhere) is read as `i64::from_str` reads it,
        /// or left to it.
        #[test]
        fn timestamps_agree_with_the_general_parser(
            digits in "-?[0-9]{0,21}",
            bad in proptest::option::of((any::<prop::sample::Index>(), proptest::sample::select(b"x/:. \xb5".to_vec()))),
            v in any::<i64>(),
        ) {
            let mut text = digits.into_bytes();
            if let Some((at, b)) = bad {
                let at = at.index(text.len() + 1);
                text.insert(at, b);
            }
            let want = std::str::from_utf8(&text).ok().and_then(|t| t.parse::<i64>().ok());
            match timestamp(&text) {
                Some(got) => prop_assert_eq!(Some(got), want),
                // Only a leading '+' or more than 19 digits may be left to the general path.
                None => prop_assert!(want.is_none() || text.len() - usize::from(text[0] == b'-') > MAX_DIGITS),
            }
            prop_assert_eq!(timestamp(v.to_string().as_bytes()), Some(v));
        }

        #[test]
        fn integers_agree_with_the_general_parser(v in any::<i64>(), u in any::<u64>()) {
            prop_assert_eq!(field_value(format!("{v}i").as_bytes()).map(|x| x.0), Some(Number::Int(v)));
            let got = field_value(format!("{u}u").as_bytes()).map(|x| x.0);
            prop_assert!(got == Some(Number::UInt(u)) || (got.is_none() && u.to_string().len() > 19));
        }
    }
}
