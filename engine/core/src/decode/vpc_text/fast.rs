//! Word-at-a-time primitives of the text decoder's fast path.
//!
//! The fast path works in two passes over a window of the input, as simdjson does:
//! first [`Stops::index`] finds every byte that is not printable ASCII (`0x00..=0x20`:
//! space, tab, newline, carriage return, control bytes; `0x80..=0xff`: non-ASCII) 64
//! bytes at a time and lists their positions; then the record loop takes token after
//! token from that list — each token's end is a load, not a scan, so the tokens of a
//! record are decoded independently of one another — loads the 16 bytes at the
//! token's start ([`load16`]) and, for a numeric field, converts up to 16 digits
//! without a loop per digit ([`parse_uint`], SWAR: integer arithmetic on 8 bytes at
//! once). A token that ends at anything other than the single space or newline the
//! caller expects (tabs, runs of spaces, `\r`, control bytes, non-ASCII text) sends the
//! line to the general path, so this module only ever has to be right about plain
//! printable ASCII.
//!
//! The release build targets the x86-64 baseline, which has no hardware popcount or
//! bit-scan-and-clear: on a processor with AVX2 (`x86-64-v3`, nearly every x86 server
//! since 2015) the indexing pass runs a copy compiled for it, chosen at run time. That
//! took 6 % of the instructions off parsing v5 records and 5 % off v2 (callgrind); the
//! record loop compiled the same way came out no better, so it stays portable.

#![allow(unsafe_code)] // SIMD loads in the stop masks, the prefetch hint and the AVX2 dispatch (x86-64 only)

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;
const ONES: u64 = 0x0101_0101_0101_0101;

/// High bit set in every byte of `w` that is a stop byte: `0x00..=0x20` (space, tab,
/// newline, carriage return and the other control bytes) or `0x80..=0xff` (non-ASCII).
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
#[inline(always)]
fn stop_bytes(w: u64) -> u64 {
    // (b & 0x7f) + 0x5f carries into the high bit exactly when (b & 0x7f) >= 0x21; no
    // byte carries into its neighbour (0x7f + 0x5f < 0x100).
    let printable = (w & LOW7).wrapping_add(ONES * (0x80 - 0x21));
    (w | !printable) & HIGH
}

/// The 16 bytes of `buf` from `at` (little-endian), zero-padded past the end: a zero
/// byte ends a token, so a token never reads past `buf`.
#[inline(always)]
pub(super) fn load16(buf: &[u8], at: usize) -> u128 {
    match buf.get(at..at + 16) {
        Some(b) => u128::from_le_bytes(b.try_into().expect("16 bytes")),
        None => load16_padded(buf, at),
    }
}

/// [`load16`] near the end of `buf` (out of line: the hot loops stay free of the copy).
#[cold]
#[inline(never)]
fn load16_padded(buf: &[u8], at: usize) -> u128 {
    let mut padded = [0u8; 16];
    let rest = buf.get(at..).unwrap_or_default();
    padded[..rest.len()].copy_from_slice(rest);
    u128::from_le_bytes(padded)
}

/// Bytes of input indexed at a time by [`Stops::index`]; a line longer than this takes
/// the general path. A run's columns each walk the window's text and stops again, so a
/// window small enough to stay in the first- and second-level caches pays: 16 KiB
/// measured 3–6 % faster than 64 KiB on v5 records and 2 % on v2 (session 33; 32 and
/// 8 KiB alike, 4 KiB slower: runs too short).
pub(super) const WINDOW: usize = 16 << 10;

/// How far ahead of the block being indexed [`Stops::index`] asks for the input to be
/// loaded into the cache. The indexing pass is the first to touch each byte of the
/// input, which usually comes from main memory (a large inflated object, or a chunk the
/// inflater wrote long before); on the 2-vCPU VMs flowlens is benchmarked on, the
/// hardware prefetcher does not keep up with it, and asking 2 KiB ahead made v5 parsing
/// 25–40 % faster (`engine/core/benches/README.md` has the figures).
const PREFETCH_AHEAD: usize = 2048;

/// Hints the processor to load the cache line at `at` (which may lie anywhere, even
/// outside any allocation: a prefetch never faults and reads nothing the program sees).
#[inline(always)]
fn prefetch(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86-64 baseline; a prefetch has no memory-safety
    // requirement on its address (it is a hint, never dereferenced by the program).
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// Bit `i` set when `block[i]` is a stop byte (not printable ASCII).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn stop_mask(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let mut mask = 0u64;
    // SAFETY: SSE2 is part of the x86-64 baseline, so these intrinsics are always
    // available; each load reads the 16 bytes of `lane`, and `_mm_loadu_si128` has no
    // alignment requirement.
    unsafe {
        // Signed compare: 0x80..=0xff are negative, so "below 0x21" catches them too.
        let limit = _mm_set1_epi8(0x21);
        for (i, lane) in block.chunks_exact(16).enumerate() {
            let v = _mm_loadu_si128(lane.as_ptr().cast::<__m128i>());
            let bits = _mm_movemask_epi8(_mm_cmplt_epi8(v, limit)) as u32 as u64;
            mask |= bits << (16 * i);
        }
    }
    mask
}

/// [`stop_mask`] with AVX2: two 32-byte compares instead of four 16-byte ones.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn stop_mask_avx2(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpgt_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
    };
    let limit = _mm256_set1_epi8(0x21);
    let half = |at: usize| {
        // SAFETY: `block` has 64 bytes, so `at` (0 or 32) leaves 32 to read;
        // `_mm256_loadu_si256` has no alignment requirement.
        let v = unsafe { _mm256_loadu_si256(block.as_ptr().add(at).cast::<__m256i>()) };
        // Signed compare: 0x80..=0xff are negative, so "below 0x21" catches them too.
        _mm256_movemask_epi8(_mm256_cmpgt_epi8(limit, v)) as u32 as u64
    };
    half(0) | half(32) << 32
}

/// Whether the processor has what [`Stops::index_v3`] is compiled for (AVX2, BMI1/2,
/// POPCNT, LZCNT: `x86-64-v3`), checked once per window (the standard library caches
/// the answer).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn has_v3() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("popcnt")
        && std::arch::is_x86_feature_detected!("lzcnt")
}

/// Bit `i` set when `block[i]` is a stop byte (not printable ASCII).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn stop_mask(block: &[u8; 64]) -> u64 {
    stop_mask_swar(block)
}

/// [`stop_mask`] in portable integer arithmetic, 8 bytes at a time.
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
#[inline(always)]
fn stop_mask_swar(block: &[u8; 64]) -> u64 {
    let mut mask = 0u64;
    for (i, word) in block.chunks_exact(8).enumerate() {
        let high = stop_bytes(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        // Gather the eight high bits into one byte (bit j from byte j).
        let packed = ((high >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
        mask |= packed << (8 * i);
    }
    mask
}

/// Writes the positions of the stops in `mask` (a block's, at `offset`) to `out[n..]`;
/// returns how many. `out` has room for 64 past `n`.
#[inline(always)]
fn push_stops(out: &mut [u32], n: usize, offset: usize, mut mask: u64) -> usize {
    // One bounds check for the block, none per stop (indices below 64).
    let out: &mut [u32; 64] = (&mut out[n..n + 64]).try_into().expect("64 slots");
    // The usual block holds about eight stops: write eight unconditionally (no branch
    // per stop), then the rest one by one.
    let count = mask.count_ones() as usize;
    for slot in &mut out[..8] {
        *slot = (offset + mask.trailing_zeros() as usize) as u32;
        mask &= mask.wrapping_sub(1);
    }
    for k in 8..count {
        out[k & 63] = (offset + mask.trailing_zeros() as usize) as u32;
        mask &= mask.wrapping_sub(1);
    }
    count
}

/// The positions of the stop bytes of one window of the input, and a cursor over them.
#[derive(Default)]
pub(super) struct Stops {
    /// Positions relative to `base`; only the first `len` are meaningful.
    positions: Vec<u32>,
    len: usize,
    base: usize,
    /// End of the indexed window (exclusive).
    end: usize,
    /// Cursor: the next position to hand out.
    next: usize,
}

impl Stops {
    /// Indexes `buf[from..]`, at most [`WINDOW`] bytes of it; the cursor starts there.
    pub(super) fn index(&mut self, buf: &[u8], from: usize) {
        #[cfg(target_arch = "x86_64")]
        if has_v3() {
            // SAFETY: the processor has the features `index_v3` is compiled for.
            return unsafe { self.index_v3(buf, from) };
        }
        self.index_in::<false>(buf, from);
    }

    /// [`Stops::index`] compiled for `x86-64-v3` (hardware popcount and bit scans for
    /// the stop positions, AVX2 for the masks).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,bmi1,bmi2,popcnt,lzcnt")]
    fn index_v3(&mut self, buf: &[u8], from: usize) {
        self.index_in::<true>(buf, from);
    }

    /// The body of [`Stops::index`]; `V3` only where the processor has AVX2.
    #[inline(always)]
    fn index_in<const V3: bool>(&mut self, buf: &[u8], from: usize) {
        let mask = |block: &[u8; 64]| {
            #[cfg(target_arch = "x86_64")]
            if V3 {
                // SAFETY: `V3` is true only in `index_v3`, reached after `has_v3`.
                return unsafe { stop_mask_avx2(block) };
            }
            stop_mask(block)
        };
        let window = &buf[from..buf.len().min(from + WINDOW)];
        // Every byte could be a stop, plus the eight written past the last one.
        let room = window.len() + 64;
        if self.positions.len() < room {
            self.positions.resize(room, 0);
        }
        let out = &mut self.positions[..room];
        let mut n = 0;
        let blocks = window.chunks_exact(64);
        let tail = blocks.remainder();
        for (b, block) in blocks.enumerate() {
            prefetch(block.as_ptr().wrapping_add(PREFETCH_AHEAD));
            n += push_stops(out, n, b * 64, mask(block.try_into().expect("64 bytes")));
        }
        if !tail.is_empty() {
            // Padding with a printable byte adds no stop.
            let mut block = [b'x'; 64];
            block[..tail.len()].copy_from_slice(tail);
            n += push_stops(out, n, window.len() - tail.len(), mask(&block));
        }
        self.len = n;
        self.base = from;
        self.end = from + window.len();
        self.next = 0;
    }

    /// Whether the window reaches the end of `buf`.
    pub(super) fn covers_to_end(&self, buf: &[u8]) -> bool {
        self.end >= buf.len()
    }

    /// The stops not handed out yet, relative to the returned base (the input position
    /// the window was indexed from).
    #[inline]
    pub(super) fn pending(&self) -> (&[u32], usize) {
        (&self.positions[self.next..self.len], self.base)
    }

    /// Moves the cursor past `n` more stops.
    #[inline]
    pub(super) fn skip(&mut self, n: usize) {
        self.next = (self.next + n).min(self.len);
    }

    /// The next stop's position in the input, or `None` at the end of the window.
    #[cfg(test)]
    pub(super) fn next(&mut self) -> Option<usize> {
        let at = *self.positions[..self.len].get(self.next)?;
        self.next += 1;
        Some(self.base + at as usize)
    }

    /// Moves the cursor to the first stop at or after `at` (which may lie past the window).
    pub(super) fn seek(&mut self, at: usize) {
        let rel = at.saturating_sub(self.base);
        self.next = self.positions[..self.len].partition_point(|&p| (p as usize) < rel);
    }
}

/// Eight ASCII digits (the first at the lowest byte) as a number, or `None` if a byte
/// is not a digit.
#[inline(always)]
fn eight_digits(w: u64) -> Option<u64> {
    // Every byte is 0x30..=0x39: its high nibble is 3, and adding 6 keeps it 3.
    let hi = w & (ONES * 0xf0);
    let carried = w.wrapping_add(ONES * 0x06) & (ONES * 0xf0);
    if hi | (carried >> 4) != ONES * 0x33 {
        return None;
    }
    // Pairs, then quads, then the whole (the classic three multiplications).
    let d = w - ONES * b'0' as u64;
    let pairs = d.wrapping_mul(10).wrapping_add(d >> 8);
    const MASK: u64 = 0x0000_00ff_0000_00ff;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let v = (pairs & MASK)
        .wrapping_mul(MUL1)
        .wrapping_add(((pairs >> 16) & MASK).wrapping_mul(MUL2))
        >> 32;
    Some(v & 0xffff_ffff)
}

/// The first `len` (1..=8) bytes of `w` as digits: moved to the top of the word with
/// `'0'` bytes in front.
#[inline(always)]
fn digits_upto8(w: u64, len: usize) -> Option<u64> {
    debug_assert!((1..=8).contains(&len));
    let shift = 8 * (8 - len) as u32;
    eight_digits((w << shift) | ZERO_DIGITS[len])
}

/// `ZERO_DIGITS[n]`: `'0'` in the low `8 - n` bytes, the padding [`digits_upto8`] puts
/// in front of an `n`-digit number.
const ZERO_DIGITS: [u64; 9] = {
    let mut pads = [0u64; 9];
    let mut n = 1;
    while n < 8 {
        pads[n] = (ONES * b'0' as u64) & ((1u64 << (8 * (8 - n))) - 1);
        n += 1;
    }
    pads
};

/// The unsigned decimal of `len` bytes at `buf[at..]` (`head` holds its first 16
/// bytes, as [`load16`] gives them): at most 19 digits, nothing else; `None` otherwise.
#[inline(always)]
pub(super) fn parse_uint(head: u128, buf: &[u8], at: usize, len: usize) -> Option<u64> {
    match len {
        1..=8 => digits_upto8(head as u64, len),
        9..=16 => {
            let high = digits_upto8(head as u64, len - 8)?;
            let low = eight_digits((head >> (8 * (len - 8))) as u64)?;
            Some(high * 100_000_000 + low)
        }
        17..=19 => parse_long_uint(buf.get(at..at + len)?),
        _ => None,
    }
}

/// [`parse_uint`] of 17 to 19 digits (rare: no VPC field but a byte count that large).
#[cold]
#[inline(never)]
fn parse_long_uint(token: &[u8]) -> Option<u64> {
    token.iter().try_fold(0u64, |v, &b| {
        let d = b.wrapping_sub(b'0');
        (d <= 9).then(|| v * 10 + d as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scalar_stops(bytes: &[u8]) -> Vec<usize> {
        (0..bytes.len())
            .filter(|&i| !(0x21..0x80).contains(&bytes[i]))
            .collect()
    }

    /// `text` through [`parse_uint`], as the fast path calls it (within a longer input).
    fn parse(text: &str) -> Option<u64> {
        let buf = format!("{text} 123");
        parse_uint(load16(buf.as_bytes(), 0), buf.as_bytes(), 0, text.len())
    }

    fn all_stops(buf: &[u8], from: usize) -> Vec<usize> {
        let mut stops = Stops::default();
        stops.index(buf, from);
        std::iter::from_fn(|| stops.next()).collect()
    }

    #[test]
    fn every_non_printable_byte_is_a_stop() {
        for stop in (0u8..=0x20).chain(0x80..=0xff) {
            for at in [0, 1, 15, 16, 31, 63, 64, 65, 100] {
                let mut bytes = vec![b'a'; 130];
                bytes[at] = stop;
                assert_eq!(all_stops(&bytes, 0), [at], "{stop:#x} at {at}");
            }
        }
        let printable: Vec<u8> = (0x21u8..0x80).collect();
        assert!(all_stops(&printable, 0).is_empty());
    }

    #[test]
    fn windows_and_seeking() {
        let line = b"2 123 eni-1 10.0.0.1 ACCEPT OK\n".repeat(5000);
        let expected = scalar_stops(&line);
        assert!(line.len() > WINDOW);
        let mut stops = Stops::default();
        stops.index(&line, 7);
        assert!(!stops.covers_to_end(&line));
        let first: Vec<usize> = std::iter::from_fn(|| stops.next()).collect();
        let in_window: Vec<usize> = expected
            .iter()
            .copied()
            .filter(|&p| (7..7 + WINDOW).contains(&p))
            .collect();
        assert_eq!(first, in_window);
        stops.seek(40);
        assert_eq!(stops.next(), expected.iter().copied().find(|&p| p >= 40));
        stops.index(&line, line.len() - 100);
        assert!(stops.covers_to_end(&line));
        assert_eq!(
            stops.next(),
            expected.iter().copied().find(|&p| p >= line.len() - 100)
        );
    }

    #[test]
    fn numbers_of_every_length() {
        let mut n: u64 = 0;
        for len in 1..=19 {
            n = n * 10 + (len as u64 % 10);
            for v in [n, 10u64.pow(len - 1), 10u64.pow(len - 1) * 10 - 1] {
                let text = v.to_string();
                assert_eq!(parse(&text), Some(v), "{text}");
            }
        }
        for bad in [
            "",
            "-",
            "1a",
            "a1",
            "12345678/",
            "123456789:",
            "+1",
            "1 2",
            "12345678901234567890",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        // Leading zeros are digits like any other.
        assert_eq!(parse("000443"), Some(443));
        // 19 digits (the most there is room for in a u64) take the out-of-line path.
        assert_eq!(
            parse("9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(parse("18446744073709551616"), None);
    }

    proptest! {
        #[test]
        fn both_stop_masks_match_a_byte_loop(block in proptest::collection::vec(any::<u8>(), 64)) {
            let block: [u8; 64] = block.try_into().unwrap();
            let expected = scalar_stops(&block).iter().fold(0u64, |m, &i| m | 1 << i);
            prop_assert_eq!(stop_mask(&block), expected);
            prop_assert_eq!(stop_mask_swar(&block), expected);
            #[cfg(target_arch = "x86_64")]
            if has_v3() {
                // SAFETY: the processor has AVX2 (just checked).
                prop_assert_eq!(unsafe { stop_mask_avx2(&block) }, expected);
            }
        }

        #[test]
        fn stops_match_a_byte_loop(bytes in proptest::collection::vec(any::<u8>(), 0..300), from in 0usize..300) {
            let from = from.min(bytes.len());
            let expected: Vec<usize> = scalar_stops(&bytes).into_iter().filter(|&p| p >= from).collect();
            prop_assert_eq!(&all_stops(&bytes, from), &expected);
            // The portable body too, which `index` skips where the processor has AVX2.
            let mut stops = Stops::default();
            stops.index_in::<false>(&bytes, from);
            let portable: Vec<usize> = std::iter::from_fn(|| stops.next()).collect();
            prop_assert_eq!(portable, expected);
        }

        #[test]
        fn parse_uint_matches_str_parse(text in "[0-9]{1,19}|[-0-9/:a+ ]{1,20}") {
            let expected = if text.bytes().all(|b| b.is_ascii_digit()) && text.len() <= 19 {
                text.parse::<u64>().ok()
            } else {
                None
            };
            prop_assert_eq!(parse(&text), expected);
        }

    }
}
