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
    /// An unsigned integer in 7-bit groups, least significant first (LEB128):
    /// one byte below 128, at most ten.
    pub fn uvar(&mut self, mut v: u64) -> io::Result<()> {
        let (mut buf, mut n) = ([0u8; 10], 0);
        while v >= 0x80 {
            buf[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        buf[n] = v as u8;
        self.bytes(&buf[..=n])
    }
    /// A signed integer as [`uvar`](Self::uvar) of its zigzag mapping
    /// (0, -1, 1, -2, ... to 0, 1, 2, 3, ...): small magnitudes are short.
    pub fn ivar(&mut self, v: i64) -> io::Result<()> {
        self.uvar(((v << 1) ^ (v >> 63)) as u64)
    }
    /// A string as its length ([`uvar`](Self::uvar)) and its bytes.
    pub fn str_var(&mut self, s: &str) -> io::Result<()> {
        self.uvar(s.len() as u64)?;
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
    /// See [`Writer::uvar`]; more than 64 bits is an error.
    pub fn uvar(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError::Range("varint over 64 bits"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Range("varint over 64 bits"))
    }
    /// A string written by [`Writer::str_var`], of at most `max` bytes.
    pub fn str_var(&mut self, max: usize, what: &'static str) -> Result<String, DecodeError> {
        let n = usize::try_from(self.uvar()?).ok().filter(|n| *n <= max).ok_or(DecodeError::Range(what))?;
        let mut b = vec![0u8; n];
        self.bytes(&mut b)?;
        String::from_utf8(b).map_err(|_| DecodeError::Range(what))
    }
    /// See [`Writer::ivar`].
    pub fn ivar(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvar()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_read_back_and_small_ones_are_short() {
        let values = [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX >> 1, u64::MAX];
        for v in values {
            let mut w = Writer(Vec::new());
            w.uvar(v).unwrap();
            assert_eq!(w.0.len(), (64 - v.leading_zeros() as usize).div_ceil(7).max(1), "{v}");
            assert_eq!(Reader(&w.0[..]).uvar().unwrap(), v);
            for cut in 0..w.0.len() {
                assert!(Reader(&w.0[..cut]).uvar().is_err(), "{v} cut at {cut}");
            }
        }
        for v in [0, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            let mut w = Writer(Vec::new());
            w.ivar(v).unwrap();
            assert!(v.unsigned_abs() >= 64 || w.0.len() == 1, "{v} is one byte");
            assert_eq!(Reader(&w.0[..]).ivar().unwrap(), v);
        }
    }

    #[test]
    fn a_varint_over_64_bits_is_an_error() {
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader(&over[..]).uvar().is_err());
        let long = [0x80; 11];
        assert!(Reader(&long[..]).uvar().is_err());
    }
}
