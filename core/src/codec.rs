//! A minimal little-endian binary codec for checkpoints. Decoding checks
//! every length against the bytes left and a caller-given bound, so a
//! corrupt file yields an error, never a panic or a huge allocation.

use std::io::{self, Read, Write};

/// Why a checkpoint body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("checkpoint truncated")]
    Truncated,
    #[error("checkpoint field out of range: {0}")]
    Range(&'static str),
    #[error("checkpoint read failed: {0}")]
    Io(io::Error),
    /// Written under another windows specification: its figures cannot
    /// answer the configured windows exactly.
    #[error("the checkpoint keeps the windows {stored}, the configuration asks for {configured}")]
    Windows { stored: String, configured: String },
}

pub struct Writer<W: Write>(pub W);

impl<W: Write> Writer<W> {
    pub fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.0.write_all(b)
    }
    pub fn u8(&mut self, v: u8) -> io::Result<()> {
        self.bytes(&[v])
    }
    pub fn u16(&mut self, v: u16) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn u32(&mut self, v: u32) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn u64(&mut self, v: u64) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn i32(&mut self, v: i32) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn i64(&mut self, v: i64) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn str(&mut self, s: &str) -> io::Result<()> {
        self.u32(s.len() as u32)?;
        self.bytes(s.as_bytes())
    }
    /// `Some((at, value))` as a flag byte and two words.
    pub fn sample(&mut self, s: Option<(i64, u64)>) -> io::Result<()> {
        match s {
            None => self.u8(0),
            Some((at, v)) => {
                self.u8(1)?;
                self.i64(at)?;
                self.u64(v)
            }
        }
    }
}

pub struct Reader<R: Read>(pub R);

impl<R: Read> Reader<R> {
    pub fn bytes(&mut self, buf: &mut [u8]) -> Result<(), DecodeError> {
        self.0.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => DecodeError::Truncated,
            _ => DecodeError::Io(e),
        })
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut b = [0u8; N];
        self.bytes(&mut b)?;
        Ok(b)
    }
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    /// A count no larger than `max`.
    pub fn len(&mut self, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let n = self.u64()?;
        usize::try_from(n).ok().filter(|n| *n <= max).ok_or(DecodeError::Range(what))
    }
    /// A UTF-8 string of at most `max` bytes.
    pub fn str(&mut self, max: usize, what: &'static str) -> Result<String, DecodeError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(DecodeError::Range(what));
        }
        let mut b = vec![0u8; n];
        self.bytes(&mut b)?;
        String::from_utf8(b).map_err(|_| DecodeError::Range(what))
    }
    pub fn sample(&mut self) -> Result<Option<(i64, u64)>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some((self.i64()?, self.u64()?))),
            _ => Err(DecodeError::Range("sample flag")),
        }
    }
}

impl<W: Write> Writer<W> {
    /// A count, written as u64 (read back with [`Reader::len`]).
    pub fn len(&mut self, n: usize) -> io::Result<()> {
        self.u64(n as u64)
    }
}
