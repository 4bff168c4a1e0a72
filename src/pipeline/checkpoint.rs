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
//! and decodes is used. The checksum is verified over the whole body in a
//! first, streaming pass before anything is decoded, so a corrupt file is
//! never decoded; and no allocation here is sized beyond what the body's
//! bytes can hold. A file that fails is renamed `*.corrupt` (the two newest
//! are kept), and the next older one is tried. A file written under other
//! windows than configured is renamed `*.other-windows` (the two newest
//! kept; moved back, it restores under its old `[windows]`): its tables are
//! not the configured ones, so the next older one is tried too. With none,
//! the daemon replays from the earliest offsets. A file of a newer format version
//! stops the restore instead: it is state this build cannot read, not
//! damage, and replaying would silently lose it.
//!
//! Files: the state directory is created 0700, checkpoint files 0600; the
//! temporary file is created exclusively and never through a symlink, and
//! only regular files are read (a symlink, FIFO or directory named like a
//! checkpoint is skipped and reported, never opened for reading or moved).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use xxhash_rust::xxh3::Xxh3;

use engagement_core::codec::{DecodeError, Reader, Writer};
use engagement_core::engine::{Engine, Limits, OLDEST_STATE_VERSION, STATE_VERSION, Snapshot};

const MAGIC: &[u8; 8] = b"EMCKPT\0\x01";
const HEADER: usize = 8 + 4 + 8 + 16;
/// Longest topic name Kafka allows.
const MAX_TOPIC: usize = 249;
const MAX_PARTITIONS: usize = 100_000;

/// Next offset to consume, per partition.
pub type Offsets = Vec<(i32, i64)>;

/// A checkpoint as read back.
pub struct Restored {
    pub path: PathBuf,
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
    /// Entries named like checkpoints that are not regular files, left
    /// where they are, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Files written under other windows than configured, moved aside as
    /// `*.other-windows`, with the windows of each.
    pub other_windows: Vec<(PathBuf, String)>,
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
    create_dir(dir)?;
    let tmp = path(dir, seq, "tmp");
    let mut file = create_new(&tmp)?;
    stream(&mut file, topic, offsets, state).map_err(|e| at(&tmp, e))?;
    Ok(Pending {
        seq,
        offsets: offsets.clone(),
        bytes: file.metadata().map_err(|e| at(&tmp, e))?.len(),
        pause: started.elapsed(),
        tmp,
        file,
        dir: dir.to_path_buf(),
    })
}

/// Writes the header and body of a checkpoint to `file`.
fn stream(file: &mut File, topic: &str, offsets: &Offsets, state: &Snapshot) -> io::Result<()> {
    file.write_all(&[0u8; HEADER])?;
    // Hash under the buffer, so the checksum sees 1 MiB blocks, not fields.
    let mut body = BufWriter::with_capacity(1 << 20, Hashing { inner: &mut *file, hash: Xxh3::new(), len: 0 });
    // The wall clock, read here so that this file depends on no loop.
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
    file.write_all(&header)
}

/// `error` with `path` in its message: a failed checkpoint names its file.
fn at(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

/// Creates `dir` (and its parents) readable by this user only, unless it
/// exists.
fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| at(dir, e))
}

/// Creates `path` for writing, 0600. Refuses an existing name (O_EXCL),
/// even a symlink planted there, and never follows one (O_NOFOLLOW).
fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW);
    options.open(path).map_err(|e| at(path, e))
}

/// Checks that checkpoints can be written to `dir`: creates it if needed,
/// then creates, writes, fsyncs and removes a probe file. Run at start so
/// that an unusable directory stops the daemon at once, not at shutdown.
pub fn probe(dir: &Path) -> io::Result<()> {
    create_dir(dir)?;
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let _ = fs::remove_file(&probe);
    let mut file = create_new(&probe)?;
    let written = file.write_all(b"probe").and_then(|()| file.sync_all()).map_err(|e| at(&probe, e));
    fs::remove_file(&probe).map_err(|e| at(&probe, e))?;
    written
}

impl Pending {
    /// Makes the checkpoint durable: fsync, rename, fsync the directory,
    /// then removes all but the two newest checkpoints.
    pub fn finish(self) -> io::Result<Pending> {
        self.file.sync_all().map_err(|e| at(&self.tmp, e))?;
        failpoint("checkpoint-before-rename");
        let bin = path(&self.dir, self.seq, "bin");
        fs::rename(&self.tmp, &bin).map_err(|e| at(&bin, e))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| at(&self.dir, e))?;
        prune(&self.dir, "bin");
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

/// Removes all but the two newest files of `dir` with extension `ext`.
fn prune(dir: &Path, ext: &str) {
    for (_, old) in list(dir, ext).unwrap_or_default().into_iter().skip(2) {
        let _ = fs::remove_file(old);
    }
}

/// Why restoring stopped instead of falling back to an older checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("cannot read state.dir {}: {source}", dir.display())]
    Dir { dir: PathBuf, source: io::Error },
    #[error(
        "checkpoint {} has format version {version}, newer than version {supported} that this build reads: \
         it was written by a newer engagement-monitor. Run that version, or move the file out of state.dir \
         to start from an older checkpoint or a replay of the topic",
        path.display()
    )]
    Newer { path: PathBuf, version: u32, supported: u32 },
}

/// Why one file was not restored.
enum Unusable {
    /// Damaged or unreadable: moved aside, the next older one is tried.
    Corrupt(String),
    /// Not a regular file: left alone, the next older one is tried.
    NotRegular(String),
    /// Of a newer format version: the restore stops.
    Newer(u32),
    /// Written under other windows: moved aside, the next older one is tried.
    OtherWindows(String),
}

impl From<DecodeError> for Unusable {
    fn from(e: DecodeError) -> Unusable {
        match e {
            DecodeError::Windows { .. } => Unusable::OtherWindows(e.to_string()),
            e => Unusable::Corrupt(e.to_string()),
        }
    }
}

/// The newest valid checkpoint in `dir`, if any. Corrupt files are moved
/// aside, entries that are not regular files skipped; leftover temporary
/// files are removed.
pub fn restore(dir: &Path, limits: Limits) -> Result<(Option<Restored>, RestoreReport), RestoreError> {
    let mut report = RestoreReport::default();
    if !dir.exists() {
        return Ok((None, report));
    }
    let unreadable = |source| RestoreError::Dir { dir: dir.to_path_buf(), source };
    for (_, tmp) in list(dir, "tmp").map_err(unreadable)? {
        let _ = fs::remove_file(tmp);
    }
    for (seq, p) in list(dir, "bin").map_err(unreadable)? {
        match read(&p, seq, limits) {
            Ok(r) => return Ok((Some(r), report)),
            Err(Unusable::Newer(version)) => {
                return Err(RestoreError::Newer { path: p, version, supported: STATE_VERSION });
            }
            Err(Unusable::NotRegular(why)) => report.skipped.push((p, why)),
            Err(Unusable::OtherWindows(why)) => {
                let aside = p.with_extension("other-windows");
                fs::rename(&p, &aside).map_err(|e| unreadable(at(&p, e)))?;
                report.other_windows.push((aside, why));
                prune(dir, "other-windows");
            }
            Err(Unusable::Corrupt(why)) => {
                let aside = p.with_extension("corrupt");
                fs::rename(&p, &aside).map_err(|e| unreadable(at(&p, e)))?;
                report.discarded.push((aside, why));
                prune(dir, "corrupt");
            }
        }
    }
    Ok((None, report))
}

/// Opens `p` for reading only if it is a regular file: O_NOFOLLOW refuses
/// a symlink, O_NONBLOCK keeps a FIFO from blocking the open, and fstat
/// on the open file (no race with a rename) says what it is.
fn open_regular(p: &Path) -> Result<File, Unusable> {
    let opened = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(p);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Unusable::NotRegular("not a regular file: a symbolic link".into()));
        }
        Err(e) => return Err(Unusable::Corrupt(e.to_string())),
    };
    let kind = file.metadata().map_err(|e| Unusable::Corrupt(e.to_string()))?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() { "a directory" } else { "a FIFO, socket or device" };
        return Err(Unusable::NotRegular(format!("not a regular file: {what}")));
    }
    Ok(file)
}

/// The header's format version, body length and checksum.
fn header(file: &mut File) -> Result<(u32, u64, u128), Unusable> {
    let mut header = [0u8; HEADER];
    file.read_exact(&mut header).map_err(|_| Unusable::Corrupt("shorter than its header".into()))?;
    if &header[..8] != MAGIC {
        return Err(Unusable::Corrupt("not a checkpoint (bad magic)".into()));
    }
    let word = |at: usize, n: usize| header[at..at + n].iter().rev().fold(0u128, |acc, b| acc << 8 | u128::from(*b));
    let version = word(8, 4) as u32;
    if version > STATE_VERSION {
        return Err(Unusable::Newer(version));
    }
    if version < OLDEST_STATE_VERSION {
        let (oldest, newest) = (OLDEST_STATE_VERSION, STATE_VERSION);
        return Err(Unusable::Corrupt(format!("version {version}, this build reads {oldest} to {newest}")));
    }
    Ok((version, word(12, 8) as u64, word(20, 16)))
}

/// The first pass: hashes exactly `len` bytes of body, in 1 MiB reads,
/// decoding nothing.
fn verify(file: &mut File, len: u64, digest: u128) -> Result<(), Unusable> {
    let hashing = Hashing { inner: file.take(len), hash: Xxh3::new(), len: 0 };
    let mut body = BufReader::with_capacity(1 << 20, hashing);
    io::copy(&mut body, &mut io::sink()).map_err(|e| Unusable::Corrupt(e.to_string()))?;
    let hashed = body.into_inner();
    if hashed.len != len {
        return Err(Unusable::Corrupt("truncated".into()));
    }
    if hashed.hash.digest128() != digest {
        return Err(Unusable::Corrupt("checksum mismatch".into()));
    }
    Ok(())
}

fn read(p: &Path, seq: u64, limits: Limits) -> Result<Restored, Unusable> {
    let mut file = open_regular(p)?;
    let (version, len, digest) = header(&mut file)?;
    verify(&mut file, len, digest)?;
    file.seek(SeekFrom::Start(HEADER as u64)).map_err(|e| Unusable::Corrupt(e.to_string()))?;
    let mut body = BufReader::with_capacity(1 << 20, file.take(len));
    let (topic, offsets, engine) = decode_body(&mut body, len, limits, version)?;
    Ok(Restored { path: p.to_path_buf(), seq, topic, offsets, engine, bytes: len + HEADER as u64 })
}

/// Decodes a body of `len` bytes whose checksum was verified.
fn decode_body<R: Read>(
    r: &mut R,
    len: u64,
    limits: Limits,
    version: u32,
) -> Result<(String, Offsets, Engine), DecodeError> {
    let mut body = Reader(&mut *r);
    body.i64()?; // written at (wall clock), informational
    let topic = body.str(MAX_TOPIC, "topic")?;
    let count = body.len(MAX_PARTITIONS, "partition count")?;
    // 12 bytes per partition: never reserve more than the body can hold.
    let mut offsets = Vec::with_capacity(count.min(usize::try_from(len / 12).unwrap_or(usize::MAX)));
    for _ in 0..count {
        offsets.push((body.i32()?, body.i64()?));
    }
    let engine = Engine::decode_version(&mut *r, limits, version)?;
    Ok((topic, offsets, engine))
}

#[cfg(test)]
mod tests;
