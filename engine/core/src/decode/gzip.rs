//! Streaming gzip: push compressed chunks, decompressed bytes are forwarded as they
//! come, so an object never has to fit in memory. Multi-member files (concatenated
//! gzip members, as `cat a.gz b.gz` or Firehose produce) decode as one stream.

use std::io::{self, Write};

/// The two magic bytes every gzip member starts with.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether `head` starts like a gzip member (magic and the deflate method byte).
pub fn is_gzip(head: &[u8]) -> bool {
    head.len() >= 3 && head[..2] == GZIP_MAGIC && head[2] == 8
}

/// Push-style multi-member gzip decoder writing into `W`.
pub struct GzipStream<W: Write> {
    inner: flate2::write::MultiGzDecoder<W>,
    compressed_in: u64,
}

impl<W: Write> GzipStream<W> {
    pub fn new(out: W) -> Self {
        GzipStream {
            inner: flate2::write::MultiGzDecoder::new(out),
            compressed_in: 0,
        }
    }

    /// Decompresses `chunk`, forwarding output to the inner writer.
    ///
    /// # Errors
    /// Corrupt deflate data or a bad gzip header.
    pub fn push(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.compressed_in += chunk.len() as u64;
        self.inner.write_all(chunk)
    }

    /// Ends the stream.
    ///
    /// # Errors
    /// The stream stopped inside a member (a truncated object) or a checksum failed.
    pub fn finish(&mut self) -> io::Result<()> {
        self.inner.try_finish()
    }

    pub fn get_mut(&mut self) -> &mut W {
        self.inner.get_mut()
    }

    pub fn get_ref(&self) -> &W {
        self.inner.get_ref()
    }

    /// Compressed bytes pushed so far.
    pub fn compressed_in(&self) -> u64 {
        self.compressed_in
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn multi_member_in_any_chunking() {
        let mut input = gz(b"hello ");
        input.extend(gz(b"world\n"));
        for chunk in [1, 3, 7, 1000] {
            let mut s = GzipStream::new(Vec::new());
            for c in input.chunks(chunk) {
                s.push(c).unwrap();
            }
            s.finish().unwrap();
            assert_eq!(s.get_ref(), b"hello world\n");
        }
    }

    #[test]
    fn truncation_is_an_error_after_the_good_prefix() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let input = gz(&data);
        let cut = &input[..input.len() / 2];
        let mut s = GzipStream::new(Vec::new());
        s.push(cut).unwrap();
        assert!(s.finish().is_err());
        let out = s.get_ref();
        assert!(!out.is_empty() && data.starts_with(out));
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let mut input = gz(b"some text that is long enough to matter, repeated repeated repeated");
        let n = input.len();
        for b in &mut input[12..n - 8] {
            *b ^= 0x5a;
        }
        let mut s = GzipStream::new(Vec::new());
        let r = s.push(&input).and_then(|_| s.finish());
        assert!(r.is_err());
    }
}
