//! Whole-buffer gzip inflation with libdeflate: several times faster than streaming
//! inflate, for objects small enough to hold (see [`FAST_GZIP_MAX_BYTES`]). Handles
//! multi-member input by walking member boundaries: each member's header is read here,
//! its deflate body inflated by libdeflate (which reports how much input it used), its
//! trailer read.
//!
//! The members' CRC-32s are not computed while inflating but later, a slice at a time,
//! as the record decoder takes the output ([`Checksums`]): a large object's output no
//! longer fits in the processor's cache by the time inflating ends, so a checksum pass
//! right after it reads everything back from main memory (inflating v5 objects: 15 M
//! records/s without that pass, 12 M with it); a slice that was just decoded is mostly
//! still in the cache.
//!
//! The `unsafe` here is the FFI calls, with the buffer contracts libdeflate documents.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_crc32, libdeflate_decompressor,
    libdeflate_deflate_decompress_ex, libdeflate_free_decompressor,
    libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE, libdeflate_result_LIBDEFLATE_SUCCESS,
};

use super::gzip::is_gzip;

/// Compressed objects up to this size are inflated whole; larger ones stream.
pub const FAST_GZIP_MAX_BYTES: usize = 8 << 20;

/// Largest output accepted on the fast path; a larger object is streamed instead.
pub const FAST_GZIP_MAX_OUTPUT: usize = 512 << 20;

/// Output buffers kept for the next objects (see [`buffer`]).
static SPARE: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
/// At most this many spare buffers are kept ...
const SPARE_BUFFERS: usize = 4;
/// ... each of at most this capacity: room for a large object's output (AWS caps a
/// flow-log file at 75 MB; the scan bench's 500 k-record v5 objects inflate to about
/// 120 MB, and at 64 MiB their buffers were never reused).
const SPARE_MAX_BYTES: usize = 128 << 20;

/// An empty output buffer for [`gunzip_all`], reusing one that [`recycle`] kept. A
/// fresh buffer of tens of MiB costs a page fault per 4 KiB the first time it is
/// written (a quarter of the decode time of 120 MB v5 objects); a reused one does not.
/// The spares never raise peak memory: they were all in use at once before.
pub fn buffer() -> Vec<u8> {
    SPARE
        .lock()
        .ok()
        .and_then(|mut spare| spare.pop())
        .unwrap_or_default()
}

/// Gives an output buffer back for [`buffer`] to hand out again (dropped if it is too
/// large or enough are kept).
pub fn recycle(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > SPARE_MAX_BYTES {
        return;
    }
    buf.clear();
    if let Ok(mut spare) = SPARE.lock()
        && spare.len() < SPARE_BUFFERS
    {
        spare.push(buf);
    }
}

/// Frees the spare buffers (the next objects allocate afresh).
pub fn release_spares() {
    if let Ok(mut spare) = SPARE.lock() {
        spare.clear();
    }
}

/// Why the fast path did not produce the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// Corrupt or truncated data (the streaming decoder then recovers the prefix).
    BadData,
    /// The output would exceed [`FAST_GZIP_MAX_OUTPUT`].
    TooLarge,
}

struct Decompressor(NonNull<libdeflate_decompressor>);

impl Decompressor {
    fn new() -> Self {
        // SAFETY: allocation has no preconditions; null (out of memory) is handled.
        let ptr = unsafe { libdeflate_alloc_decompressor() };
        Decompressor(NonNull::new(ptr).expect("libdeflate decompressor allocation"))
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the pointer came from libdeflate_alloc_decompressor and is freed once.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

thread_local! {
    static DECOMPRESSOR: std::cell::RefCell<Option<Decompressor>> = const { std::cell::RefCell::new(None) };
}

/// What the start of a buffer holds as a gzip member header (RFC 1952: the fixed ten
/// bytes, then the optional extra field, file name, comment and header CRC the flags
/// announce).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Header {
    /// A whole header of this many bytes.
    Complete(usize),
    /// The start of one: more bytes are needed.
    Incomplete,
    /// Not a deflate member header (magic, method or reserved flag bits).
    Invalid,
}

/// Reads the gzip member header at the start of `data` (see [`Header`]).
pub(super) fn member_header(data: &[u8]) -> Header {
    const FHCRC: u8 = 1 << 1;
    const FEXTRA: u8 = 1 << 2;
    const FNAME: u8 = 1 << 3;
    const FCOMMENT: u8 = 1 << 4;
    const RESERVED: u8 = 0xe0;
    let head = &data[..data.len().min(4)];
    if head.len() >= 3 && !is_gzip(head) || head.len() == 4 && head[3] & RESERVED != 0 {
        return Header::Invalid;
    }
    let optional = || {
        let flags = *data.get(3)?;
        let mut at = 10;
        if flags & FEXTRA != 0 {
            let xlen = u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?) as usize;
            at += 2 + xlen;
        }
        for flag in [FNAME, FCOMMENT] {
            if flags & flag != 0 {
                at += data.get(at..)?.iter().position(|&b| b == 0)? + 1;
            }
        }
        if flags & FHCRC != 0 {
            at += 2;
        }
        (at <= data.len()).then_some(at)
    };
    match optional() {
        Some(n) => Header::Complete(n),
        None => Header::Incomplete,
    }
}

/// One gzip member of an inflated object: where its output ends and the CRC-32 its
/// trailer gives for that output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub end: usize,
    pub crc: u32,
}

/// Inflates every gzip member of `data` into `out` (cleared first) and returns the
/// members, whose checksums the caller verifies with [`Checksums`]. The size each
/// trailer gives is checked here.
///
/// # Errors
/// [`InflateError::BadData`] for corrupt or truncated input (a bad header, deflate
/// data, or a trailer that is cut or gives another size), [`InflateError::TooLarge`]
/// past [`FAST_GZIP_MAX_OUTPUT`].
pub fn gunzip_all(data: &[u8], out: &mut Vec<u8>) -> Result<Vec<Member>, InflateError> {
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let d = cell.get_or_insert_with(Decompressor::new);
        out.clear();
        let mut members = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let rest = &data[pos..];
            if rest.iter().all(|b| *b == 0) {
                break; // zero padding after the last member
            }
            let Header::Complete(header) = member_header(rest) else {
                return Err(InflateError::BadData);
            };
            let body = &rest[header..];
            // A trailer can be anything in a cut or multi-member input: trust the size it
            // gives only within deflate's maximum ratio (about 1032:1).
            let hint = match rest.len().checked_sub(4) {
                Some(at) => u32::from_le_bytes(rest[at..].try_into().expect("4 bytes")) as usize,
                None => 0,
            };
            let hint = if hint <= rest.len().saturating_mul(1032) {
                hint
            } else {
                0
            };
            let mut capacity = hint.max(rest.len().saturating_mul(4)).max(4096);
            let (used_in, written) = loop {
                if out.len() + capacity > FAST_GZIP_MAX_OUTPUT {
                    return Err(InflateError::TooLarge);
                }
                // Exact: a recycled buffer slightly too small must not double.
                out.reserve_exact(capacity);
                let spare = out.capacity() - out.len();
                let mut used_in = 0usize;
                let mut written = 0usize;
                // SAFETY: `body` is valid for reads of body.len() bytes; the output pointer
                // is valid for writes of `spare` bytes (reserved capacity past len);
                // libdeflate writes at most `spare` bytes and reports how many.
                let result = unsafe {
                    libdeflate_deflate_decompress_ex(
                        d.0.as_ptr(),
                        body.as_ptr().cast(),
                        body.len(),
                        out.as_mut_ptr().add(out.len()).cast(),
                        spare,
                        &mut used_in,
                        &mut written,
                    )
                };
                if result == libdeflate_result_LIBDEFLATE_SUCCESS {
                    break (used_in, written);
                } else if result == libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE {
                    capacity = spare.saturating_mul(2);
                } else {
                    return Err(InflateError::BadData);
                }
            };
            // SAFETY: libdeflate initialised `written` bytes past len.
            unsafe { out.set_len(out.len() + written) };
            let trailer = body
                .get(used_in..used_in + 8)
                .ok_or(InflateError::BadData)?;
            let word = |at: usize| u32::from_le_bytes(trailer[at..at + 4].try_into().expect("4"));
            if word(4) != written as u32 {
                return Err(InflateError::BadData);
            }
            members.push(Member {
                end: out.len(),
                crc: word(0),
            });
            pos += header + used_in + trailer.len();
        }
        Ok(members)
    })
}

/// CRC-32 of `bytes` continuing from `crc` (libdeflate's, which uses the processor's
/// carry-less multiplication).
pub(super) fn crc32(crc: u32, bytes: &[u8]) -> u32 {
    // SAFETY: `bytes` is valid for reads of bytes.len() bytes.
    unsafe { libdeflate_crc32(crc, bytes.as_ptr().cast(), bytes.len()) }
}

/// Verifies the CRC-32 of each member [`gunzip_all`] returned, over the output taken
/// in order a slice at a time.
#[derive(Debug)]
pub struct Checksums {
    members: Vec<Member>,
    /// The member being checked (its index) ...
    member: usize,
    /// ... the CRC of its output so far ...
    crc: u32,
    /// ... which covers the output up to here.
    checked: usize,
}

impl Checksums {
    pub fn new(members: Vec<Member>) -> Self {
        Checksums {
            members,
            member: 0,
            crc: 0,
            checked: 0,
        }
    }

    /// Checks `out[..upto]` (the output so far; the part before the previous call's
    /// `upto` was checked then).
    ///
    /// # Errors
    /// The first member whose output ends by `upto` and does not match its trailer's
    /// CRC-32: which member, and both checksums. Later calls check the later members.
    pub fn verify(&mut self, out: &[u8], upto: usize) -> Result<(), String> {
        let upto = upto.min(out.len()).max(self.checked);
        // The members cover the whole output, the last one ending at its end.
        while let Some(member) = self.members.get(self.member).copied() {
            let until = upto.min(member.end);
            self.crc = crc32(self.crc, &out[self.checked..until]);
            self.checked = until;
            if until < member.end {
                break;
            }
            let (index, computed) = (self.member, self.crc);
            let from = index.checked_sub(1).map_or(0, |m| self.members[m].end);
            self.member += 1;
            self.crc = 0;
            if computed != member.crc {
                return Err(format!(
                    "gzip member {} (inflated bytes {from}..{}) fails its CRC-32 check \
                     (trailer {:08x}, data {computed:08x}): the object is corrupt; its \
                     records were kept",
                    index + 1,
                    member.end,
                    member.crc
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn members_padding_and_errors() {
        let a: Vec<u8> = (0..100_000u32)
            .flat_map(|i| format!("{i} ").into_bytes())
            .collect();
        let mut input = gz(&a);
        input.extend(gz(b"tail\n"));
        input.extend([0u8; 16]);
        let mut out = Vec::new();
        let members = gunzip_all(&input, &mut out).unwrap();
        assert_eq!(&out[..a.len()], &a[..]);
        assert_eq!(&out[a.len()..], b"tail\n");
        assert_eq!(
            members.iter().map(|m| m.end).collect::<Vec<_>>(),
            [a.len(), out.len()]
        );
        // Checked in any slicing, the members match their trailers.
        for step in [1000, 4096, a.len() - 1, a.len(), 1 << 20] {
            let mut check = Checksums::new(members.clone());
            for upto in (step..out.len() + step).step_by(step) {
                check.verify(&out, upto).unwrap();
            }
            assert_eq!(check.member, 2, "{step}");
        }
        let cut = &input[..input.len() / 2];
        assert_eq!(gunzip_all(cut, &mut out), Err(InflateError::BadData));
        // Cut inside the second member's trailer.
        let cut = &input[..input.len() - 16 - 3];
        assert_eq!(gunzip_all(cut, &mut out), Err(InflateError::BadData));
        gunzip_all(b"", &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn a_bad_checksum_names_its_member_and_a_bad_size_fails() {
        let mut input = gz(b"first\n");
        let second = gz(b"second\n");
        let crc_at = input.len() + second.len() - 8;
        input.extend(&second);
        let mut bad_crc = input.clone();
        bad_crc[crc_at] ^= 1;
        let mut out = Vec::new();
        let members = gunzip_all(&bad_crc, &mut out).unwrap();
        assert_eq!(out, b"first\nsecond\n");
        let mut check = Checksums::new(members);
        check.verify(&out, 6).unwrap();
        let err = check.verify(&out, out.len()).unwrap_err();
        assert!(
            err.contains("gzip member 2 (inflated bytes 6..13)"),
            "{err}"
        );
        assert!(err.contains("CRC-32"), "{err}");
        let mut bad_size = input;
        bad_size[crc_at + 4] ^= 1;
        assert_eq!(gunzip_all(&bad_size, &mut out), Err(InflateError::BadData));
    }

    #[test]
    fn optional_header_fields_are_skipped() {
        let text = b"2 123 eni-1 10.0.0.1\n";
        let mut e = flate2::GzBuilder::new()
            .filename("flows.log")
            .comment("a comment")
            .extra(vec![1, 2, 3, 4])
            .write(Vec::new(), flate2::Compression::fast());
        e.write_all(text).unwrap();
        let named = e.finish().unwrap();
        // A header CRC (FHCRC): two bytes after the fixed header, announced by bit 1.
        let mut hcrc = gz(text);
        hcrc[3] |= 2;
        hcrc.splice(10..10, [0xab, 0xcd]);
        for input in [named, hcrc] {
            let mut out = Vec::new();
            let members = gunzip_all(&input, &mut out).unwrap();
            assert_eq!(out, text);
            Checksums::new(members).verify(&out, out.len()).unwrap();
        }
        // Reserved flag bits, another method, a cut header: not a member this path reads.
        for (at, value) in [(3, 0x20u8), (2, 7)] {
            let mut bent = gz(text);
            bent[at] = value;
            assert_eq!(member_header(&bent), Header::Invalid);
        }
        assert_eq!(member_header(&gz(text)[..9]), Header::Incomplete);
        assert_eq!(member_header(&gz(text)[..2]), Header::Incomplete);
        assert_eq!(member_header(b"PAR1"), Header::Invalid);
    }

    #[test]
    fn buffers_are_reused_empty_and_bounded() {
        let mut out = buffer();
        gunzip_all(&gz(&[b'x'; 100_000]), &mut out).unwrap();
        let capacity = out.capacity();
        recycle(out);
        // Other tests may take spares concurrently: look for ours among a few.
        let taken: Vec<Vec<u8>> = (0..SPARE_BUFFERS).map(|_| buffer()).collect();
        assert!(taken.iter().all(Vec::is_empty));
        assert!(taken.iter().any(|b| b.capacity() == capacity));
        for b in taken {
            recycle(b);
        }
        recycle(Vec::with_capacity(SPARE_MAX_BYTES + 1));
        assert!(
            SPARE
                .lock()
                .unwrap()
                .iter()
                .all(|b| b.capacity() <= SPARE_MAX_BYTES)
        );
        assert!(SPARE.lock().unwrap().len() <= SPARE_BUFFERS);
    }
}
