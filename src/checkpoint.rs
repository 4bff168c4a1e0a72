//! Durable checkpoints: the engine state and the next offset of every
//! partition, in one versioned, checksummed file written atomically.
//!
//! File layout (little-endian):
//! `magic "EMCKPT\0\x01"`, `version u32`, `body length u64`,
//! `xxh3-128 of the body (16 bytes)`, then the body: wall-clock time of the
//! checkpoint, the topic, the partition offsets, and the engine state.
//!
//! Writing: the body is streamed to `checkpoint-<seq>.tmp` by the consumer
//! thread (no copy of the state in memory; the pause is the time to
//! serialize), then [`Pending::finish`] fsyncs the file, renames it to
//! `checkpoint-<seq>.bin` and fsyncs the directory — off the consume loop.
//! The two newest checkpoints are kept.
//!
//! Reading: the newest file that passes magic, version, length and checksum
//! and decodes is used; a file that fails is renamed `*.corrupt`, and the
//! next older one is tried. With none, the daemon replays from the earliest
//! offsets.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use xxhash_rust::xxh3::Xxh3;

use engagement_core::codec::{DecodeError, Reader, Writer};
use engagement_core::engine::{Engine, Limits, STATE_VERSION, Snapshot};

const MAGIC: &[u8; 8] = b"EMCKPT\0\x01";
const HEADER: usize = 8 + 4 + 8 + 16;
/// Longest topic name Kafka allows.
const MAX_TOPIC: usize = 249;
const MAX_PARTITIONS: usize = 100_000;

/// Next offset to consume, per partition.
pub type Offsets = Vec<(i32, i64)>;

/// A checkpoint as read back.
pub struct Restored {
    pub seq: u64,
    pub topic: String,
    pub offsets: Offsets,
    pub engine: Engine,
    pub bytes: u64,
}

/// What restoring found, for logs and metrics.
#[derive(Debug, Default)]
pub struct RestoreReport {
    /// Files moved aside as `*.corrupt`, with the reason.
    pub discarded: Vec<(PathBuf, String)>,
}

/// Writes `bytes` through to `inner` and hashes them.
struct Hashing<W> {
    inner: W,
    hash: Xxh3,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

fn path(dir: &Path, seq: u64, ext: &str) -> PathBuf {
    dir.join(format!("checkpoint-{seq:020}.{ext}"))
}

/// Checkpoint files in `dir` with the extension `ext`, newest first.
fn list(dir: &Path, ext: &str) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let p = entry?.path();
        let seq: Option<u64> = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("checkpoint-")?.strip_suffix(&format!(".{ext}"))?.parse().ok());
        if let Some(seq) = seq {
            found.push((seq, p));
        }
    }
    found.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    Ok(found)
}

/// A checkpoint written but not yet durable.
pub struct Pending {
    pub seq: u64,
    pub offsets: Offsets,
    pub bytes: u64,
    /// How long the consume loop was paused to write it.
    pub pause: std::time::Duration,
    tmp: PathBuf,
    file: File,
    dir: PathBuf,
}

/// Streams a checkpoint of `state` (a durable snapshot of the engine) and
/// `offsets` to a temporary file.
pub fn write(dir: &Path, seq: u64, topic: &str, offsets: &Offsets, state: &Snapshot) -> io::Result<Pending> {
    let started = Instant::now();
    fs::create_dir_all(dir)?;
    let tmp = path(dir, seq, "tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(&[0u8; HEADER])?;
    // Hash under the buffer, so the checksum sees 1 MiB blocks, not fields.
    let mut body = BufWriter::with_capacity(1 << 20, Hashing { inner: &mut file, hash: Xxh3::new(), len: 0 });
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let mut w = Writer(&mut body);
    w.i64(now)?;
    w.str(topic)?;
    w.len(offsets.len())?;
    for (p, o) in offsets {
        w.i32(*p)?;
        w.i64(*o)?;
    }
    state.encode(&mut body)?;
    let hashed = body.into_inner().map_err(|e| e.into_error())?;
    let (len, digest) = (hashed.len, hashed.hash.digest128());
    file.seek(SeekFrom::Start(0))?;
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&STATE_VERSION.to_le_bytes());
    header.extend_from_slice(&len.to_le_bytes());
    header.extend_from_slice(&digest.to_le_bytes());
    file.write_all(&header)?;
    Ok(Pending {
        seq,
        offsets: offsets.clone(),
        bytes: len + HEADER as u64,
        pause: started.elapsed(),
        tmp,
        file,
        dir: dir.to_path_buf(),
    })
}

impl Pending {
    /// Makes the checkpoint durable: fsync, rename, fsync the directory,
    /// then removes all but the two newest checkpoints.
    pub fn finish(self) -> io::Result<Pending> {
        self.file.sync_all()?;
        failpoint("checkpoint-before-rename");
        fs::rename(&self.tmp, path(&self.dir, self.seq, "bin"))?;
        File::open(&self.dir)?.sync_all()?;
        for (_, old) in list(&self.dir, "bin")?.into_iter().skip(2) {
            let _ = fs::remove_file(old);
        }
        Ok(self)
    }
}

/// Test hook: when `EM_FAILPOINT` names this point, the process aborts
/// here, like a crash (kill -9) at the worst moment.
fn failpoint(name: &str) {
    if std::env::var("EM_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

/// The newest valid checkpoint in `dir`, if any. Invalid files are moved
/// aside; leftover temporary files are removed.
pub fn restore(dir: &Path, limits: Limits) -> io::Result<(Option<Restored>, RestoreReport)> {
    let mut report = RestoreReport::default();
    if !dir.exists() {
        return Ok((None, report));
    }
    for (_, tmp) in list(dir, "tmp")? {
        let _ = fs::remove_file(tmp);
    }
    for (seq, p) in list(dir, "bin")? {
        match read(&p, seq, limits) {
            Ok(r) => return Ok((Some(r), report)),
            Err(why) => {
                let aside = p.with_extension("corrupt");
                fs::rename(&p, &aside)?;
                report.discarded.push((aside, why));
            }
        }
    }
    Ok((None, report))
}

fn read(p: &Path, seq: u64, limits: Limits) -> Result<Restored, String> {
    let mut file = File::open(p).map_err(|e| e.to_string())?;
    let mut header = [0u8; HEADER];
    file.read_exact(&mut header).map_err(|_| "shorter than its header".to_string())?;
    if &header[..8] != MAGIC {
        return Err("not a checkpoint (bad magic)".into());
    }
    let word = |at: usize, n: usize| header[at..at + n].iter().rev().fold(0u128, |acc, b| acc << 8 | u128::from(*b));
    let version = word(8, 4) as u32;
    if version != STATE_VERSION {
        return Err(format!("version {version}, this build reads {STATE_VERSION}"));
    }
    let (len, digest) = (word(12, 8) as u64, word(20, 16));
    let mut body = BufReader::with_capacity(1 << 20, Hashing { inner: file.take(len), hash: Xxh3::new(), len: 0 });
    let decoded = decode_body(&mut body, limits);
    io::copy(&mut body, &mut io::sink()).map_err(|e| e.to_string())?;
    let hashed = body.into_inner();
    if hashed.len != len {
        return Err("truncated".into());
    }
    if hashed.hash.digest128() != digest {
        return Err("checksum mismatch".into());
    }
    let (topic, offsets, engine) = decoded.map_err(|e| e.to_string())?;
    Ok(Restored { seq, topic, offsets, engine, bytes: len + HEADER as u64 })
}

fn decode_body<R: Read>(r: &mut R, limits: Limits) -> Result<(String, Offsets, Engine), DecodeError> {
    let mut body = Reader(&mut *r);
    body.i64()?; // written at (wall clock), informational
    let topic = body.str(MAX_TOPIC, "topic")?;
    let count = body.len(MAX_PARTITIONS, "partition count")?;
    let mut offsets = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        offsets.push((body.i32()?, body.i64()?));
    }
    let engine = Engine::decode(&mut *r, limits)?;
    Ok((topic, offsets, engine))
}

#[cfg(test)]
mod tests;
