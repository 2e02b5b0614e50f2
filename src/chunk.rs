//! The compact form of a run of points of one series, lossless, used on disk (chunks and the
//! commit log) and on the live wire (binary deltas, [`crate::protocol::Delta`]):
//!
//! - a format byte ([`FORMAT`]), so the encoding can change without guessing later (format 1,
//!   byte-granular, is still read);
//! - timestamps as the *delta of deltas* from the chunk's start, zigzagged and bit-packed in
//!   blocks of [`BLOCK`] with one width per block: a regular series (every second, every
//!   10 ms) costs no bits per timestamp at all, jitter a few;
//! - values, when every one of them is a decimal with at most [`MAX_DECIMALS`] digits after
//!   the point that comes back bit for bit (what sensors, counters and text protocols send),
//!   as the deltas of those integers, bit-packed the same way: a temperature moving by a few
//!   hundredths costs 2–4 bits. Otherwise as the XOR with the previous value's IEEE bits
//!   (Gorilla's idea at byte granularity), in blocks of [`BLOCK`]: a header byte with the
//!   leading and trailing zero bytes all the block's XORs share, then each XOR in the bytes
//!   between. Full-precision noise costs ~7–8 bytes, which no lossless scheme avoids by much;
//!   a fixed width per block decodes in a tight loop (reads decode a chunk per pixel column
//!   boundary, so decoding speed is read speed);
//! - on disk, a chunk larger than a page is written *framed* (format 3, [`encode_framed`]):
//!   frames of [`FRAME`] points, each encoded as above, behind a table of where each frame
//!   starts and its first lowest and highest point. A history read cut at a column boundary
//!   decodes the one frame the boundary falls in and takes the others' extremes from the
//!   table ([`decode_pieces`]): a quarter of a full chunk, for about 2% more bytes. The wire
//!   and the commit log keep the plain form.
//!
//! `make bench` reports bytes per point for a slowly varying sensor and for noise.

use crate::model::Point;

/// The encoding written by [`encode`].
const FORMAT: u8 = 2;
/// The byte-granular encoding of earlier versions, still read.
const FORMAT_V1: u8 = 1;
/// A chunk on disk of [`FRAME`]s, each a format-2 body, behind a table of where each
/// starts and its extremes ([`encode_framed`]).
const FORMAT_FRAMED: u8 = 3;
/// Points per frame: a history read decodes one frame per pixel column boundary instead
/// of a whole chunk; the table costs about 40 bytes a frame.
pub(crate) const FRAME: usize = 256;
/// Chunks are framed from this size on (more than a page): below it the table would add
/// over 5% to the chunk (a sensor's thousand points take ~430 bytes, and would take half
/// as much again), and decoding it whole costs little.
const FRAMED_FROM_BYTES: usize = 4_096;
/// Header byte of a value equal to the previous one (XOR values).
const SAME: u8 = 0xff;
/// Values stored as scaled integers / as XORs.
const VALUES_DECIMAL: u8 = 0;
const VALUES_XOR: u8 = 1;
/// Points per bit-packed block: small enough that one outlier widens few neighbours, large
/// enough that the width byte costs under 0.02 bytes per point.
const BLOCK: usize = 64;
/// Most digits after the decimal point tried: beyond that a value is rarely a decimal
/// someone wrote, and 10^k·v must stay below 2^53 to be exact.
const MAX_DECIMALS: usize = 9;
const POW10: [f64; MAX_DECIMALS + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
/// Largest integer an f64 holds exactly.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Encodes time-sorted `points` relative to `points[0].ts_ns`.
pub fn encode(points: &[Point]) -> Vec<u8> {
    let mut out = Vec::with_capacity(points.len() * 2 + 16);
    out.push(FORMAT);
    encode_body(&mut out, points);
    out
}

/// [`encode`] for a chunk on disk: a large one (from [`FRAMED_FROM_BYTES`] and `2 * FRAME`
/// points) in frames a history read can decode one at a time ([`decode_pieces`]). Without
/// them a read decoded a whole chunk (a thousand points, 8 KB of noise at 1 kHz) at every
/// pixel column boundary, which was a third of its time.
pub fn encode_framed(points: &[Point]) -> Vec<u8> {
    let plain = encode(points);
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return plain;
    };
    if points.len() < 2 * FRAME || plain.len() < FRAMED_FROM_BYTES {
        return plain;
    }
    let start = first.ts_ns;
    let bodies: Vec<Vec<u8>> = points
        .chunks(FRAME)
        .map(|frame| {
            let mut body = Vec::with_capacity(frame.len() * 2 + 16);
            encode_body(&mut body, frame);
            body
        })
        .collect();
    let mut out = Vec::with_capacity(bodies.iter().map(Vec::len).sum::<usize>() + 64);
    out.push(FORMAT_FRAMED);
    put_varint(&mut out, points.len() as u64);
    out.extend_from_slice(&first.value.to_bits().to_le_bytes());
    put_varint(&mut out, last.ts_ns.wrapping_sub(start) as u64);
    out.extend_from_slice(&last.value.to_bits().to_le_bytes());
    for (frame, body) in points.chunks(FRAME).zip(&bodies) {
        let frame_start = frame[0].ts_ns;
        put_varint(&mut out, frame_start.wrapping_sub(start) as u64);
        put_varint(&mut out, body.len() as u64);
        let (mut lo, mut hi) = (0, 0);
        for (i, p) in frame.iter().enumerate() {
            if p.value < frame[lo].value {
                lo = i;
            }
            if p.value > frame[hi].value {
                hi = i;
            }
        }
        for i in [lo, hi] {
            put_varint(&mut out, i as u64);
            put_varint(&mut out, frame[i].ts_ns.wrapping_sub(frame_start) as u64);
            out.extend_from_slice(&frame[i].value.to_bits().to_le_bytes());
        }
    }
    for body in bodies {
        out.extend_from_slice(&body);
    }
    out
}

/// A chunk after its format byte: count, timestamps, values.
fn encode_body(out: &mut Vec<u8>, points: &[Point]) {
    // The count again, so a chunk read with the wrong one is noticed even where bit-packed
    // zeros would decode to any length.
    put_varint(out, points.len() as u64);
    // The first delta goes in the header, so a regular series' block of deltas of deltas is
    // all zeros from the first point on.
    let first_delta = match points {
        [a, b, ..] => b.ts_ns.wrapping_sub(a.ts_ns),
        _ => 0,
    };
    put_varint(out, zigzag(first_delta));
    let mut prev_delta = first_delta;
    let dods = points.windows(2).map(|w| {
        let delta = w[1].ts_ns.wrapping_sub(w[0].ts_ns);
        let dod = delta.wrapping_sub(prev_delta);
        prev_delta = delta;
        zigzag(dod)
    });
    pack_blocks(out, dods);
    match decimals(points) {
        Some(k) => {
            out.push(VALUES_DECIMAL);
            out.push(k as u8);
            let scaled = |p: &Point| (p.value * POW10[k]).round() as i64;
            put_varint(out, zigzag(points.first().map_or(0, scaled)));
            let deltas = points
                .windows(2)
                .map(|w| zigzag(scaled(&w[1]).wrapping_sub(scaled(&w[0]))));
            pack_blocks(out, deltas);
        }
        None => {
            out.push(VALUES_XOR);
            put_xor_blocks(out, points);
        }
    }
}

/// The fewest digits after the point that give every value back exactly, if at most
/// [`MAX_DECIMALS`] do. A value needing more digits raises the count and the pass starts
/// over (a larger scale can push an earlier value past exact integers), so at most
/// `MAX_DECIMALS + 1` passes.
fn decimals(points: &[Point]) -> Option<usize> {
    let mut k = 0;
    'pass: loop {
        for p in points {
            if !is_decimal(p.value, k) {
                loop {
                    k += 1;
                    if k > MAX_DECIMALS {
                        return None;
                    }
                    if is_decimal(p.value, k) {
                        continue 'pass;
                    }
                }
            }
        }
        return Some(k);
    }
}

/// Whether `v` is `m / 10^k` for an integer `m` that an f64 holds exactly, bit for bit
/// (so -0.0, which would come back as 0.0, is not).
fn is_decimal(v: f64, k: usize) -> bool {
    let scaled = (v * POW10[k]).round();
    scaled.abs() < EXACT_INT && ((scaled as i64) as f64 / POW10[k]).to_bits() == v.to_bits()
}

/// Writes `values` in blocks of [`BLOCK`]: a width byte, then each value in that many bits,
/// least significant first, the block padded to a whole byte.
fn pack_blocks(out: &mut Vec<u8>, values: impl Iterator<Item = u64>) {
    let mut block = [0u64; BLOCK];
    let mut n = 0;
    let flush = |out: &mut Vec<u8>, block: &[u64]| {
        let width = 64 - block.iter().fold(0, |a, &v| a | v).leading_zeros();
        out.push(width as u8);
        let (mut acc, mut bits) = (0u128, 0u32);
        for &v in block {
            acc |= u128::from(v) << bits;
            bits += width;
            while bits >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                bits -= 8;
            }
        }
        if bits > 0 {
            out.push(acc as u8);
        }
    };
    for v in values {
        block[n] = v;
        n += 1;
        if n == BLOCK {
            flush(out, &block);
            n = 0;
        }
    }
    if n > 0 {
        flush(out, &block[..n]);
    }
}

/// Reads `out.len()` values written by [`pack_blocks`] from `bytes[*pos..]`.
fn unpack_blocks(bytes: &[u8], pos: &mut usize, out: &mut [u64]) -> Result<(), Corrupt> {
    for block in out.chunks_mut(BLOCK) {
        let width = u32::from(*bytes.get(*pos).ok_or(Corrupt("truncated block"))?);
        *pos += 1;
        if width > 64 {
            return Err(Corrupt("bad block width"));
        }
        if width == 0 {
            // A regular series' timestamps, a constant's values: nothing stored.
            block.fill(0);
            continue;
        }
        let len = (block.len() * width as usize).div_ceil(8);
        let mut data = bytes
            .get(*pos..*pos + len)
            .ok_or(Corrupt("truncated block"))?
            .iter();
        *pos += len;
        let mask = if width == 64 {
            u64::MAX
        } else {
            (1u64 << width) - 1
        };
        let (mut acc, mut bits) = (0u128, 0u32);
        for v in block.iter_mut() {
            while bits < width {
                acc |= u128::from(*data.next().unwrap_or(&0)) << bits;
                bits += 8;
            }
            *v = acc as u64 & mask;
            acc >>= width;
            bits -= width;
        }
    }
    Ok(())
}

/// Values as XORs with the previous value's bits, a byte width per block of [`BLOCK`].
fn put_xor_blocks(out: &mut Vec<u8>, points: &[Point]) {
    let mut prev = 0u64;
    for block in points.chunks(BLOCK) {
        let mut xors = [0u64; BLOCK];
        let mut all = 0u64;
        for (x, p) in xors.iter_mut().zip(block) {
            let bits = p.value.to_bits();
            *x = bits ^ prev;
            all |= *x;
            prev = bits;
        }
        if all == 0 {
            out.push(SAME);
            continue;
        }
        let (lead, trail) = (all.leading_zeros() / 8, all.trailing_zeros() / 8);
        out.push((lead << 4 | trail) as u8);
        for x in &xors[..block.len()] {
            out.extend_from_slice(&x.to_le_bytes()[trail as usize..8 - lead as usize]);
        }
    }
}

/// Reads `out.len()` values written by [`put_xor_blocks`] as IEEE bits.
/// `prev`: the bits of the value before `out[0]` (0 at a chunk's start), left at the last.
fn get_xor_blocks(
    bytes: &[u8],
    pos: &mut usize,
    out: &mut [u64],
    prev: &mut u64,
) -> Result<(), Corrupt> {
    let mut bits = *prev;
    for block in out.chunks_mut(BLOCK) {
        let header = *bytes.get(*pos).ok_or(Corrupt("truncated values"))?;
        *pos += 1;
        if header == SAME {
            block.fill(bits);
            continue;
        }
        let (lead, trail) = (usize::from(header >> 4), usize::from(header & 0x0f));
        if lead + trail >= 8 {
            return Err(Corrupt("bad value header"));
        }
        let n = 8 - lead - trail;
        let data = bytes
            .get(*pos..*pos + n * block.len())
            .ok_or(Corrupt("truncated values"))?;
        *pos += n * block.len();
        let mask = u64::MAX >> (64 - 8 * n);
        let shift = 8 * trail;
        // All but the last few values can load a whole word past their own bytes.
        let fast = if data.len() >= 8 {
            (data.len() - 8) / n + 1
        } else {
            0
        };
        for (i, v) in block.iter_mut().enumerate() {
            let at = i * n;
            let word = if i < fast {
                u64::from_le_bytes(data[at..at + 8].try_into().unwrap_or([0; 8]))
            } else {
                let mut le = [0u8; 8];
                le[..n].copy_from_slice(&data[at..at + n]);
                u64::from_le_bytes(le)
            };
            bits ^= (word & mask) << shift;
            *v = bits;
        }
    }
    *prev = bits;
    Ok(())
}

/// The next XOR-coded value after `bits` (format 1).
#[inline(always)]
fn get_xor_value(bytes: &[u8], pos: &mut usize, bits: u64) -> Result<u64, Corrupt> {
    let header = *bytes.get(*pos).ok_or(Corrupt("truncated value"))?;
    *pos += 1;
    if header == SAME {
        return Ok(bits);
    }
    let (lead, trail) = (usize::from(header >> 4), usize::from(header & 0x0f));
    if lead + trail >= 8 {
        return Err(Corrupt("bad value header"));
    }
    let n = 8 - lead - trail;
    // Fast path: one unaligned 8-byte load, masked to the n bytes that belong to this value.
    if let Some(word) = bytes.get(*pos..*pos + 8) {
        let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        let mask = u64::MAX >> (64 - 8 * n);
        *pos += n;
        return Ok(bits ^ ((word & mask) << (8 * trail)));
    }
    let mid = bytes
        .get(*pos..*pos + n)
        .ok_or(Corrupt("truncated value"))?;
    *pos += n;
    let mut le = [0u8; 8];
    le[trail..trail + n].copy_from_slice(mid);
    Ok(bits ^ u64::from_le_bytes(le))
}

/// Why stored bytes could not be read back: the file was damaged or written by something else.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("damaged chunk: {0}")]
pub struct Corrupt(&'static str);

/// Most points a byte of chunk can stand for (two width bytes per block of [`BLOCK`]): a
/// damaged count is refused before anything is allocated for it.
const MAX_POINTS_PER_BYTE: usize = BLOCK / 2;

/// Decodes `count` points of a chunk that starts at `start_ns`, appending them to `out`.
pub fn decode(
    bytes: &[u8],
    start_ns: i64,
    count: usize,
    out: &mut Vec<Point>,
) -> Result<(), Corrupt> {
    let start = out.len();
    let decoded =
        match bytes.split_first() {
            Some((&FORMAT, body)) => decode_body(body, start_ns, count, out),
            Some((&FORMAT_FRAMED, _)) => Framed::read(bytes, bytes.len(), start_ns, count)
                .and_then(|framed| {
                    framed.frames.iter().try_for_each(|f| {
                        decode_body(&bytes[f.body.clone()], f.start, f.count, out)
                    })
                }),
            Some((&FORMAT_V1, _)) => decode_v1(bytes, start_ns, count, out),
            Some(_) => Err(Corrupt("unknown chunk format")),
            None => Err(Corrupt("empty chunk")),
        };
    if decoded.is_err() {
        out.truncate(start);
    }
    decoded
}

/// A format-2 chunk after its format byte (or a frame of a framed one).
fn decode_body(
    bytes: &[u8],
    start_ns: i64,
    count: usize,
    out: &mut Vec<Point>,
) -> Result<(), Corrupt> {
    if count > bytes.len().saturating_mul(MAX_POINTS_PER_BYTE) {
        return Err(Corrupt("count larger than its bytes"));
    }
    let mut pos = 0;
    if get_varint(bytes, &mut pos)? != count as u64 {
        return Err(Corrupt("count does not match the chunk"));
    }
    let first_delta = unzigzag(get_varint(bytes, &mut pos)?);
    decode_points(bytes, pos, (start_ns, first_delta), count, out)
}

/// The table of a framed chunk ([`encode_framed`]).
struct Framed {
    first: Point,
    last: Point,
    frames: Vec<Frame>,
}

struct Frame {
    start: i64,
    /// Index of its first point in the chunk.
    first_index: usize,
    count: usize,
    /// Where its body lies in the chunk's bytes.
    body: std::ops::Range<usize>,
    /// Its first lowest and first highest point, by index within the frame.
    min: (usize, Point),
    max: (usize, Point),
}

impl Framed {
    /// The table, from the chunk's first bytes (`bytes`, all of it or a prefix) and its
    /// length.
    fn read(bytes: &[u8], len: usize, start_ns: i64, count: usize) -> Result<Self, Corrupt> {
        let mut pos = 1;
        if get_varint(bytes, &mut pos)? != count as u64 || count < 2 * FRAME {
            return Err(Corrupt("count does not match the chunk"));
        }
        if count > len.saturating_mul(MAX_POINTS_PER_BYTE) {
            return Err(Corrupt("count larger than its bytes"));
        }
        let value = |pos: &mut usize| -> Result<f64, Corrupt> {
            let word = bytes
                .get(*pos..*pos + 8)
                .ok_or(Corrupt("truncated table"))?;
            *pos += 8;
            let v = f64::from_bits(u64::from_le_bytes(word.try_into().unwrap_or([0; 8])));
            v.is_finite()
                .then_some(v)
                .ok_or(Corrupt("non-finite value"))
        };
        let offset = |pos: &mut usize, from: i64| -> Result<i64, Corrupt> {
            Ok(from.wrapping_add(get_varint(bytes, pos)? as i64))
        };
        let first = Point {
            ts_ns: start_ns,
            value: value(&mut pos)?,
        };
        let last = Point {
            ts_ns: offset(&mut pos, start_ns)?,
            value: value(&mut pos)?,
        };
        let n = count.div_ceil(FRAME);
        let mut frames = Vec::with_capacity(n);
        let mut body_len = 0usize;
        for k in 0..n {
            let start = offset(&mut pos, start_ns)?;
            let len = usize::try_from(get_varint(bytes, &mut pos)?)
                .map_err(|_| Corrupt("bad frame length"))?;
            let frame_count = FRAME.min(count - k * FRAME);
            let mut extreme = || -> Result<(usize, Point), Corrupt> {
                let i = usize::try_from(get_varint(bytes, &mut pos)?).unwrap_or(usize::MAX);
                if i >= frame_count {
                    return Err(Corrupt("bad frame extreme"));
                }
                let ts_ns = offset(&mut pos, start)?;
                Ok((
                    i,
                    Point {
                        ts_ns,
                        value: value(&mut pos)?,
                    },
                ))
            };
            let (min, max) = (extreme()?, extreme()?);
            frames.push(Frame {
                start,
                first_index: k * FRAME,
                count: frame_count,
                body: body_len..body_len.saturating_add(len),
                min,
                max,
            });
            body_len = body_len.saturating_add(len);
        }
        if len.checked_sub(pos) != Some(body_len)
            || frames.first().map(|f| f.start) != Some(start_ns)
            || frames.windows(2).any(|w| w[0].start >= w[1].start)
        {
            return Err(Corrupt("frames do not match the chunk"));
        }
        for f in &mut frames {
            f.body = f.body.start + pos..f.body.end + pos;
        }
        Ok(Self {
            first,
            last,
            frames,
        })
    }

    /// What stands for frame `k` when it is not decoded: its first lowest and highest point,
    /// with the chunk's first (last) point in the first (last) frame, in time order, each
    /// point once.
    fn push_extremes(&self, k: usize, out: &mut Vec<Point>) {
        let f = &self.frames[k];
        let mut picks = [(0, self.first), f.min, f.max, (f.count - 1, self.last)];
        let last_frame = self.frames.len() - 1;
        let picks = match k {
            0 if k == last_frame => &mut picks[..],
            0 => &mut picks[..3],
            _ if k == last_frame => &mut picks[1..],
            _ => &mut picks[1..3],
        };
        picks.sort_by_key(|(i, _)| *i);
        let mut prev = None;
        for &(i, p) in picks.iter() {
            if prev != Some(i) {
                out.push(p);
                prev = Some(i);
            }
        }
    }
}

/// A stored chunk read in parts: a history read needs the table and a frame or two of a
/// framed chunk, not all of its pages copied out.
pub trait ChunkSource {
    /// What reading can fail with besides damage.
    type Error: From<Corrupt>;
    /// Its length in bytes.
    fn size(&self) -> usize;
    /// Fills `out` from byte `at` on.
    fn read_at(&mut self, at: usize, out: &mut [u8]) -> Result<(), Self::Error>;
}

impl ChunkSource for &[u8] {
    type Error = Corrupt;

    fn size(&self) -> usize {
        self.len()
    }

    fn read_at(&mut self, at: usize, out: &mut [u8]) -> Result<(), Corrupt> {
        let part = self
            .get(at..at + out.len())
            .ok_or(Corrupt("read past the chunk"))?;
        out.copy_from_slice(part);
        Ok(())
    }
}

/// The rest of `source` into `buf`, which holds its first `buf.len()` bytes.
fn read_rest<S: ChunkSource>(source: &mut S, buf: &mut Vec<u8>) -> Result<(), S::Error> {
    let have = buf.len();
    buf.resize(source.size(), 0);
    source.read_at(have, &mut buf[have..])
}

/// [`decode`] of a chunk read whole from `source` (through `buf`).
pub fn decode_from<S: ChunkSource>(
    source: &mut S,
    (start_ns, count): (i64, usize),
    out: &mut Vec<Point>,
    buf: &mut Vec<u8>,
) -> Result<(), S::Error> {
    buf.clear();
    read_rest(source, buf)?;
    Ok(decode(buf, start_ns, count, out)?)
}

/// Bytes read first from a chunk: the format and, for a framed chunk, its table (about 40
/// bytes a frame, so a whole table for chunks of up to about 1 500 points).
const TABLE_PREFIX: usize = 256;

/// What a history read needs of a chunk cut at `cuts` (ascending timestamps: the pixel
/// column boundaries and the ends of the range read). Onto `out`, in time order, points of
/// the chunk that include, for each run of points between two neighbouring cuts (and
/// before the first, after the last), its first, its last, its first lowest and its first
/// highest: M4 gives the same answer from them as from every point. Onto `below`, per cut,
/// how many of the chunk's points lie before it. Returns how many points were decoded.
///
/// A framed chunk is read in parts: its table, then only the frames a cut falls in (the
/// others give their extremes from the table). Other chunks are read and decoded whole.
/// `buf` is reused for the bytes read.
pub fn decode_pieces<S: ChunkSource>(
    source: &mut S,
    (start_ns, count): (i64, usize),
    cuts: &[i64],
    out: &mut Vec<Point>,
    below: &mut Vec<usize>,
    buf: &mut Vec<u8>,
) -> Result<usize, S::Error> {
    let len = source.size();
    buf.clear();
    buf.resize(len.min(TABLE_PREFIX), 0);
    source.read_at(0, buf)?;
    if buf.first() != Some(&FORMAT_FRAMED) {
        read_rest(source, buf)?;
        let from = out.len();
        decode(buf, start_ns, count, out)?;
        let all = &out[from..];
        below.extend(cuts.iter().map(|&c| all.partition_point(|p| p.ts_ns < c)));
        return Ok(count);
    }
    let framed = match Framed::read(buf, len, start_ns, count) {
        Ok(framed) => framed,
        // A table longer than the bytes read first.
        Err(_) if buf.len() < len => {
            read_rest(source, buf)?;
            Framed::read(buf, len, start_ns, count)?
        }
        Err(e) => return Err(e.into()),
    };
    let frames = &framed.frames;
    // The frame holding the last point before `c`, for a cut inside the chunk (the frames'
    // starts ascend, so cuts in order give frames in order).
    let frame_before = |c: i64| {
        (c > start_ns && c <= framed.last.ts_ns)
            .then(|| frames.partition_point(|f| f.start < c).saturating_sub(1))
    };
    // Frames before `next` are on `out`: the decoded ones whole (where, in `decoded`), the
    // others as their extremes. One pass, so decoded points are written once.
    let mut next = 0;
    let mut decoded: Vec<Option<std::ops::Range<usize>>> = vec![None; frames.len()];
    let mut points_decoded = 0;
    let mut decode_frame = |k: usize, out: &mut Vec<Point>| -> Result<_, S::Error> {
        if let Some(range) = &decoded[k] {
            return Ok(range.clone());
        }
        for j in next..k {
            framed.push_extremes(j, out);
        }
        let f = &frames[k];
        buf.clear();
        buf.resize(f.body.len(), 0);
        source.read_at(f.body.start, buf)?;
        let at = out.len();
        decode_body(buf, f.start, f.count, out)?;
        points_decoded += f.count;
        decoded[k] = Some(at..out.len());
        next = k + 1;
        Ok(at..out.len())
    };
    for &c in cuts {
        let Some(k) = frame_before(c) else {
            below.push(if c <= start_ns { 0 } else { count });
            continue;
        };
        let range = decode_frame(k, out)?;
        let inside = out[range].partition_point(|p| p.ts_ns < c);
        // All of it before the cut: the first point after it starts the next frame.
        if inside == frames[k].count && k + 1 < frames.len() {
            decode_frame(k + 1, out)?;
        }
        below.push(frames[k].first_index + inside);
    }
    for j in next..frames.len() {
        framed.push_extremes(j, out);
    }
    Ok(points_decoded)
}

/// The points of a format-2 chunk from `pos` (after its header) onto `out`. Block by block
/// through a buffer on the stack, straight into `out`: reads decode a chunk per pixel column
/// boundary, and a vector per part of a chunk cost as much as the decoding itself.
fn decode_points(
    bytes: &[u8],
    mut pos: usize,
    (start_ns, first_delta): (i64, i64),
    count: usize,
    out: &mut Vec<Point>,
) -> Result<(), Corrupt> {
    let start = out.len();
    let rest = count.saturating_sub(1);
    out.reserve(count);
    let mut buf = [0u64; BLOCK];
    // Timestamps: the first is the chunk's start, each next one a delta of deltas further.
    if count > 0 {
        let (mut t, mut delta) = (start_ns, first_delta);
        out.push(Point {
            ts_ns: t,
            value: 0.0,
        });
        let mut left = rest;
        while left > 0 {
            let block = &mut buf[..left.min(BLOCK)];
            unpack_blocks(bytes, &mut pos, block)?;
            // `extend` over a slice's map knows its length: no capacity check per point.
            out.extend(block.iter().map(|&dod| {
                delta = delta.wrapping_add(unzigzag(dod));
                t = t.wrapping_add(delta);
                Point {
                    ts_ns: t,
                    value: 0.0,
                }
            }));
            left -= block.len();
        }
    }
    let points = &mut out[start..];
    let mode = *bytes.get(pos).ok_or(Corrupt("truncated values"))?;
    pos += 1;
    match mode {
        VALUES_DECIMAL => {
            let k = usize::from(*bytes.get(pos).ok_or(Corrupt("truncated values"))?);
            pos += 1;
            let scale = *POW10.get(k).ok_or(Corrupt("bad decimal scale"))?;
            let mut m = unzigzag(get_varint(bytes, &mut pos)?);
            if let Some((first, later)) = points.split_first_mut() {
                first.value = m as f64 / scale;
                for part in later.chunks_mut(BLOCK) {
                    let block = &mut buf[..part.len()];
                    unpack_blocks(bytes, &mut pos, block)?;
                    // The running sum first, then the divisions apart from it: they need
                    // not wait for each other, and whole integers skip them.
                    for d in block.iter_mut() {
                        m = m.wrapping_add(unzigzag(*d));
                        *d = m as u64;
                    }
                    if k == 0 {
                        for (p, &m) in part.iter_mut().zip(block.iter()) {
                            p.value = m as i64 as f64;
                        }
                    } else {
                        for (p, &m) in part.iter_mut().zip(block.iter()) {
                            p.value = m as i64 as f64 / scale;
                        }
                    }
                }
            }
        }
        VALUES_XOR => {
            let mut prev = 0u64;
            for part in points.chunks_mut(BLOCK) {
                let block = &mut buf[..part.len()];
                get_xor_blocks(bytes, &mut pos, block, &mut prev)?;
                for (p, &b) in part.iter_mut().zip(block.iter()) {
                    p.value = f64::from_bits(b);
                }
            }
        }
        _ => return Err(Corrupt("unknown value encoding")),
    }
    // Checked once at the end: a damaged chunk must not yield NaN or infinities.
    if !points.iter().all(|p| p.value.is_finite()) {
        return Err(Corrupt("non-finite value"));
    }
    if pos != bytes.len() {
        return Err(Corrupt("trailing bytes"));
    }
    Ok(())
}

/// Format 1: per point a zigzag varint delta of deltas and an XOR-coded value.
fn decode_v1(
    bytes: &[u8],
    start_ns: i64,
    count: usize,
    out: &mut Vec<Point>,
) -> Result<(), Corrupt> {
    let mut pos = 1;
    let (mut ts, mut delta, mut bits) = (start_ns, 0i64, 0u64);
    // A point takes at least two bytes: never reserve more than the bytes can hold.
    out.reserve(count.min(bytes.len() / 2));
    for _ in 0..count {
        delta = delta.wrapping_add(unzigzag(get_varint(bytes, &mut pos)?));
        ts = ts.wrapping_add(delta);
        bits = get_xor_value(bytes, &mut pos, bits)?;
        let value = f64::from_bits(bits);
        out.push(Point::new(ts, value).map_err(|_| Corrupt("non-finite value"))?);
    }
    if pos != bytes.len() {
        return Err(Corrupt("trailing bytes"));
    }
    Ok(())
}

/// One series' points within a commit-log record.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub series_id: i64,
    /// Offset of the first point; the others follow one by one, in time order.
    pub first_offset: i64,
    pub points: Vec<Point>,
}

/// Appends an entry to a log record: series id, first offset, start time and point count as
/// varints, then the points in chunk form.
pub fn encode_entry(out: &mut Vec<u8>, series_id: i64, first_offset: i64, points: &[Point]) {
    put_varint(out, zigzag(series_id));
    put_varint(out, zigzag(first_offset));
    put_varint(out, zigzag(points.first().map_or(0, |p| p.ts_ns)));
    put_varint(out, points.len() as u64);
    let body = encode(points);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(&body);
}

/// The first (earliest) timestamp of a record's first entry, from its header alone: a prefix
/// of the record is enough (entries hold their points in time order).
pub fn entry_start(bytes: &[u8]) -> Result<i64, Corrupt> {
    let mut pos = 0;
    let _series_id = get_varint(bytes, &mut pos)?;
    let _first_offset = get_varint(bytes, &mut pos)?;
    Ok(unzigzag(get_varint(bytes, &mut pos)?))
}

/// Reads every entry of a log record.
pub fn decode_record(bytes: &[u8]) -> Result<Vec<LogEntry>, Corrupt> {
    decode_record_of(bytes, None)
}

/// Reads the entries of a log record, of one series only when `only` is given: the others'
/// points are skipped by their length, not decoded.
pub fn decode_record_of(bytes: &[u8], only: Option<i64>) -> Result<Vec<LogEntry>, Corrupt> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < bytes.len() {
        let series_id = unzigzag(get_varint(bytes, &mut pos)?);
        let first_offset = unzigzag(get_varint(bytes, &mut pos)?);
        let start = unzigzag(get_varint(bytes, &mut pos)?);
        let count = usize::try_from(get_varint(bytes, &mut pos)?)
            .map_err(|_| Corrupt("count too large"))?;
        let len = usize::try_from(get_varint(bytes, &mut pos)?)
            .map_err(|_| Corrupt("length too large"))?;
        let body = bytes
            .get(pos..pos.saturating_add(len))
            .ok_or(Corrupt("truncated entry"))?;
        pos += len;
        if only.is_some_and(|id| id != series_id) {
            continue;
        }
        let mut points = Vec::new();
        decode(body, start, count, &mut points)?;
        out.push(LogEntry {
            series_id,
            first_offset,
            points,
        });
    }
    Ok(out)
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn get_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, Corrupt> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos).ok_or(Corrupt("truncated timestamp"))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Corrupt("overlong timestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decimate::Extremes;
    use proptest::prelude::*;

    /// The Redis series list reads only a record's first 64 bytes: the header there names the
    /// first point's time, whatever the entry holds.
    #[test]
    fn an_entry_starts_where_its_header_says_from_a_prefix() {
        for (series, offset, first) in [(0, 0, 0), (3, 1 << 40, -5_000_000_000), (1, 7, i64::MAX)] {
            let points: Vec<Point> = (0..10_000)
                .map(|i| Point::new(first.saturating_add(i), i as f64).unwrap())
                .collect();
            let mut record = Vec::new();
            encode_entry(&mut record, series, offset, &points);
            assert_eq!(entry_start(&record[..64]), Ok(first));
        }
        assert!(
            entry_start(&[0x80]).is_err(),
            "a cut header is an error, not a guess"
        );
    }

    proptest! {
        #[test]
        fn round_trips(
            mut ts in proptest::collection::vec(any::<i64>(), 0..50),
            values in proptest::collection::vec(
                prop_oneof![any::<f64>(), Just(0.0), Just(-0.0), Just(1.5), (0i32..100).prop_map(f64::from)],
                50,
            ),
        ) {
            ts.sort();
            let points: Vec<Point> = ts
                .iter()
                .zip(&values)
                .map(|(&t, &v)| Point::new(t, if v.is_finite() { v } else { 0.0 }).unwrap())
                .collect();
            let bytes = encode(&points);
            let mut back = Vec::new();
            decode(&bytes, points.first().map_or(0, |p| p.ts_ns), points.len(), &mut back).unwrap();
            prop_assert_eq!(back, points);
        }
    }

    proptest! {
        /// Decimal values (what sensors send) take the scaled-integer path and come back
        /// bit for bit, whatever their scale and sign; so does a chunk that mixes in one value
        /// that is not a short decimal.
        #[test]
        fn decimals_round_trip(
            ints in proptest::collection::vec(-1_000_000_000i64..1_000_000_000, 1..300),
            k in 0usize..=MAX_DECIMALS,
            step in 1i64..10_000_000_000,
            odd in any::<Option<f64>>(),
        ) {
            let mut points: Vec<Point> = ints
                .iter()
                .enumerate()
                .map(|(i, &m)| Point::new(i as i64 * step, m as f64 / POW10[k]).unwrap())
                .collect();
            prop_assert!(decimals(&points).is_some_and(|d| d <= k));
            if let Some(v) = odd.filter(|v| v.is_finite()) {
                points[0].value = v;
            }
            let bytes = encode(&points);
            let mut back = Vec::new();
            decode(&bytes, 0, points.len(), &mut back).unwrap();
            prop_assert_eq!(back, points);
        }
    }

    /// Strictly increasing timestamps (a chunk holds one point per timestamp), with
    /// irregular steps, and values of three kinds: a few levels (short, unframed chunks),
    /// levels with fractions on two in three points (framed chunks whose lowest and highest
    /// value recur, so which one is first matters), or any finite f64.
    fn chunk_points() -> impl Strategy<Value = Vec<Point>> {
        (
            proptest::collection::vec(
                (1i64..5_000, -3i32..3, any::<u16>(), any::<f64>()),
                0..1_400,
            ),
            0..3,
        )
            .prop_map(|(steps, kind)| {
                let mut t = -2_000_000;
                steps
                    .into_iter()
                    .map(|(step, level, frac, any)| {
                        t += step;
                        let level = f64::from(level);
                        let v = match kind {
                            1 if frac % 3 != 0 => level + f64::from(frac) / 65_536.0,
                            2 if any.is_finite() => any,
                            _ => level,
                        };
                        Point::new(t, v).unwrap()
                    })
                    .collect()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Framed chunks decode to what was written, whole and in pieces: for every run
        /// between two cuts, the pieces keep its first, last, first lowest and first
        /// highest point, and count the points before each cut.
        #[test]
        fn framed_chunks_decode_whole_and_in_pieces(
            points in chunk_points(),
            mut cuts in proptest::collection::vec(-2_100_000i64..5_000_000, 0..12),
            at_points in proptest::collection::vec(0usize..2_400, 0..4),
            at_frames in proptest::collection::vec(1usize..10, 0..3),
        ) {
            // Cuts at points too, and at frames' first points (the frame before then holds
            // nothing after the cut).
            for i in at_points.into_iter().chain(at_frames.into_iter().map(|k| k * FRAME)) {
                if let Some(p) = points.get(i) {
                    cuts.push(p.ts_ns);
                }
            }
            cuts.sort();
            let start = points.first().map_or(0, |p| p.ts_ns);
            let bytes = encode_framed(&points);
            let big = points.len() >= 2 * FRAME && encode(&points).len() >= FRAMED_FROM_BYTES;
            prop_assert_eq!(bytes[0] == FORMAT_FRAMED, big);
            let mut back = Vec::new();
            decode(&bytes, start, points.len(), &mut back).unwrap();
            prop_assert_eq!(&back, &points);

            let (mut kept, mut below) = (Vec::new(), Vec::new());
            let mut source = Counted::new(&bytes);
            let decoded =
                decode_pieces(&mut source, (start, points.len()), &cuts, &mut kept, &mut below, &mut Vec::new()).unwrap();
            prop_assert!(decoded <= points.len());
            // Read once: a plain chunk whole, a framed one's table and frames at most (the
            // frames' first bytes may be among the table's prefix too).
            match bytes[0] {
                FORMAT_FRAMED => prop_assert!(source.read <= bytes.len() + TABLE_PREFIX),
                _ => prop_assert_eq!(source.read, bytes.len()),
            }
            let before = |c: i64| points.partition_point(|p| p.ts_ns < c);
            prop_assert_eq!(&below, &cuts.iter().map(|&c| before(c)).collect::<Vec<_>>());
            prop_assert!(kept.windows(2).all(|w| w[0].ts_ns < w[1].ts_ns));
            prop_assert!(kept.iter().all(|p| points.contains(p)));
            let bounds: Vec<i64> = std::iter::once(i64::MIN).chain(cuts.iter().copied()).chain([i64::MAX]).collect();
            for w in bounds.windows(2) {
                let run = |all: &[Point]| -> Vec<Point> {
                    all.iter().filter(|p| p.ts_ns >= w[0] && p.ts_ns < w[1]).copied().collect()
                };
                let (all, some) = (run(&points), run(&kept));
                prop_assert_eq!(Extremes::of(&all), Extremes::of(&some));
            }
        }
    }

    /// A chunk's bytes, counting how many were read.
    struct Counted<'a> {
        bytes: &'a [u8],
        read: usize,
    }

    impl<'a> Counted<'a> {
        fn new(bytes: &'a [u8]) -> Self {
            Self { bytes, read: 0 }
        }
    }

    impl ChunkSource for Counted<'_> {
        type Error = Corrupt;

        fn size(&self) -> usize {
            self.bytes.len()
        }

        fn read_at(&mut self, at: usize, out: &mut [u8]) -> Result<(), Corrupt> {
            self.read += out.len();
            (&mut &self.bytes[..]).read_at(at, out)
        }
    }

    /// A read cut once inside a chunk of four frames reads its table and one frame, and
    /// decodes that frame.
    #[test]
    fn a_cut_reads_and_decodes_one_frame() {
        let points: Vec<Point> = (0..4 * FRAME as i64)
            .map(|i| Point::new(i * 1_000, (i as f64 * 0.37).sin()).unwrap())
            .collect();
        let bytes = encode_framed(&points);
        assert_eq!(bytes[0], FORMAT_FRAMED);
        let (mut kept, mut below, mut buf) = (Vec::new(), Vec::new(), Vec::new());
        let cut = 600 * 1_000 + 1;
        let mut source = Counted::new(&bytes);
        let range = (0, points.len());
        let decoded =
            decode_pieces(&mut source, range, &[cut], &mut kept, &mut below, &mut buf).unwrap();
        assert_eq!((decoded, &below[..]), (FRAME, &[601][..]));
        assert!(kept.len() < FRAME + 12, "{} points kept", kept.len());
        assert!(
            source.read < bytes.len() / 3,
            "{} of {} bytes read",
            source.read,
            bytes.len()
        );
        // A table longer than the bytes read first (20 frames) is read whole.
        let many: Vec<Point> = (0..20 * FRAME as i64)
            .map(|i| Point::new(i * 1_000, (i as f64 * 0.37).sin()).unwrap())
            .collect();
        let long = encode_framed(&many);
        let mut source = Counted::new(&long);
        let range = (0, many.len());
        below.clear();
        let decoded =
            decode_pieces(&mut source, range, &[cut], &mut kept, &mut below, &mut buf).unwrap();
        assert_eq!((decoded, &below[..]), (FRAME, &[601][..]));
        let range = (0, points.len());
        let damaged = &bytes[..bytes.len() - 1];
        let mut source = Counted::new(damaged);
        assert!(
            decode_pieces(&mut source, range, &[cut], &mut kept, &mut below, &mut buf).is_err()
        );
        assert!(decode(damaged, 0, points.len(), &mut kept).is_err());
    }

    #[test]
    fn format_1_chunks_are_still_read() {
        // Written by format 1: (0, 1.5), (1 000, 1.5), (3 000, -2.0).
        let mut v1 = vec![FORMAT_V1];
        let p = |t, v| Point::new(t, v).unwrap();
        let mut prev = (0i64, 0i64, 0u64);
        for q in [p(0, 1.5), p(1_000, 1.5), p(3_000, -2.0)] {
            let delta = q.ts_ns - prev.0;
            put_varint(&mut v1, zigzag(delta - prev.1));
            let x = q.value.to_bits() ^ prev.2;
            if x == 0 {
                v1.push(SAME);
            } else {
                let (lead, trail) = (x.leading_zeros() / 8, x.trailing_zeros() / 8);
                v1.push((lead << 4 | trail) as u8);
                v1.extend_from_slice(&x.to_le_bytes()[trail as usize..8 - lead as usize]);
            }
            prev = (q.ts_ns, delta, q.value.to_bits());
        }
        let mut back = Vec::new();
        decode(&v1, 0, 3, &mut back).unwrap();
        assert_eq!(back, vec![p(0, 1.5), p(1_000, 1.5), p(3_000, -2.0)]);
    }

    #[test]
    fn sensor_series_take_bits_not_bytes() {
        // Every second, a temperature in hundredths drifting by a few steps.
        let mut m = 2_137i64;
        let sensor: Vec<Point> = (0..1_024)
            .map(|i| {
                m += [0, 1, -1, 2, -2, 0, 1, 0][i % 8];
                Point::new(
                    1_700_000_000_000_000_000 + i as i64 * 1_000_000_000,
                    m as f64 / 100.0,
                )
                .unwrap()
            })
            .collect();
        let bytes = encode(&sensor);
        assert!(
            bytes.len() < 1_024 / 2,
            "{} bytes for 1 024 points",
            bytes.len()
        );
        // -0.0 is not a decimal (it would come back as 0.0): the XOR path keeps it.
        let zero = [Point::new(0, -0.0).unwrap(), Point::new(1, 0.0).unwrap()];
        let mut back = Vec::new();
        decode(&encode(&zero), 0, 2, &mut back).unwrap();
        assert_eq!(back[0].value.to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn log_records_round_trip() {
        let p = |t, v| Point::new(t, v).unwrap();
        let mut record = Vec::new();
        encode_entry(&mut record, 7, 100, &[p(-5, 1.0), p(10, 2.5)]);
        encode_entry(&mut record, 8, 0, &[p(1_700_000_000_000_000_000, -3.0)]);
        let entries = decode_record(&record).unwrap();
        assert_eq!(
            entries,
            vec![
                LogEntry {
                    series_id: 7,
                    first_offset: 100,
                    points: vec![p(-5, 1.0), p(10, 2.5)]
                },
                LogEntry {
                    series_id: 8,
                    first_offset: 0,
                    points: vec![p(1_700_000_000_000_000_000, -3.0)]
                },
            ]
        );
        assert!(decode_record(&record[..record.len() - 2]).is_err());
    }

    #[test]
    fn regular_series_are_compact_and_damage_is_reported() {
        let points: Vec<Point> = (0..100)
            .map(|i| Point::new(1_700_000_000_000_000_000 + i * 1_000_000_000, 1.5).unwrap())
            .collect();
        let bytes = encode(&points);
        assert!(bytes.len() <= 20, "{} bytes", bytes.len());
        let counter: Vec<Point> = (0..100)
            .map(|i| Point::new(i * 1_000_000_000, (i % 100) as f64).unwrap())
            .collect();
        assert!(
            encode(&counter).len() <= 100 * 6,
            "{} bytes",
            encode(&counter).len()
        );
        let mut out = Vec::new();
        assert!(decode(&bytes[..bytes.len() - 1], points[0].ts_ns, 100, &mut out).is_err());
        assert!(decode(&bytes, points[0].ts_ns, 99, &mut Vec::new()).is_err());
    }
}
