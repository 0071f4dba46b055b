//! Whole-buffer gzip inflation with libdeflate: several times faster than streaming
//! inflate, for objects small enough to hold (see [`FAST_GZIP_MAX_BYTES`]). Handles
//! multi-member input by walking member boundaries (`gzip_decompress_ex` reports how
//! much input each member used).
//!
//! This is the crate's only `unsafe` code: four FFI calls with the buffer contracts
//! libdeflate documents.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE,
    libdeflate_result_LIBDEFLATE_SUCCESS,
};

/// Compressed objects up to this size are inflated whole; larger ones stream.
pub const FAST_GZIP_MAX_BYTES: usize = 8 << 20;

/// Largest output accepted on the fast path; a larger object is streamed instead.
pub const FAST_GZIP_MAX_OUTPUT: usize = 512 << 20;

/// Output buffers kept for the next objects (see [`buffer`]).
static SPARE: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
/// At most this many spare buffers are kept ...
const SPARE_BUFFERS: usize = 4;
/// ... each of at most this capacity.
const SPARE_MAX_BYTES: usize = 64 << 20;

/// An empty output buffer for [`gunzip_all`], reusing one that [`recycle`] kept. A
/// fresh buffer of tens of MiB costs a page fault per 4 KiB the first time it is
/// written (about a tenth of the decode time of a large object); a reused one does not.
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

/// The size the last member says it inflates to (ISIZE, mod 2^32).
fn trailer_size(data: &[u8]) -> usize {
    match data.len().checked_sub(4) {
        Some(at) => u32::from_le_bytes(data[at..].try_into().expect("4 bytes")) as usize,
        None => 0,
    }
}

/// Inflates every gzip member of `data` into `out` (cleared first).
///
/// # Errors
/// [`InflateError::BadData`] for corrupt or truncated input, [`InflateError::TooLarge`]
/// past [`FAST_GZIP_MAX_OUTPUT`].
pub fn gunzip_all(data: &[u8], out: &mut Vec<u8>) -> Result<(), InflateError> {
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let d = cell.get_or_insert_with(Decompressor::new);
        out.clear();
        let mut pos = 0;
        while pos < data.len() {
            let rest = &data[pos..];
            if rest.iter().all(|b| *b == 0) {
                break; // zero padding after the last member
            }
            // The trailer of a cut or multi-member input can be anything: trust it only
            // within deflate's maximum ratio (about 1032:1).
            let hint = trailer_size(rest);
            let hint = if hint <= rest.len().saturating_mul(1032) {
                hint
            } else {
                0
            };
            let mut capacity = hint.max(rest.len().saturating_mul(4)).max(4096);
            loop {
                if out.len() + capacity > FAST_GZIP_MAX_OUTPUT {
                    return Err(InflateError::TooLarge);
                }
                // Exact: a recycled buffer slightly too small must not double.
                out.reserve_exact(capacity);
                let spare = out.capacity() - out.len();
                let mut used_in = 0usize;
                let mut written = 0usize;
                // SAFETY: `rest` is valid for reads of rest.len() bytes; the output pointer
                // is valid for writes of `spare` bytes (reserved capacity past len);
                // libdeflate writes at most `spare` bytes and reports how many.
                let result = unsafe {
                    libdeflate_gzip_decompress_ex(
                        d.0.as_ptr(),
                        rest.as_ptr().cast(),
                        rest.len(),
                        out.as_mut_ptr().add(out.len()).cast(),
                        spare,
                        &mut used_in,
                        &mut written,
                    )
                };
                if result == libdeflate_result_LIBDEFLATE_SUCCESS {
                    // SAFETY: libdeflate initialised `written` bytes past len.
                    unsafe { out.set_len(out.len() + written) };
                    pos += used_in.max(1);
                    break;
                } else if result == libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE {
                    capacity = spare.saturating_mul(2);
                } else {
                    return Err(InflateError::BadData);
                }
            }
        }
        Ok(())
    })
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
        gunzip_all(&input, &mut out).unwrap();
        assert_eq!(&out[..a.len()], &a[..]);
        assert_eq!(&out[a.len()..], b"tail\n");
        let cut = &input[..input.len() / 2];
        assert!(gunzip_all(cut, &mut out).is_err());
        gunzip_all(b"", &mut out).unwrap();
        assert!(out.is_empty());
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
