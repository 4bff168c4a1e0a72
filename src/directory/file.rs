//! The directory from a JSON Lines file: one record value per line (the
//! value names the page; blank lines and lines starting with `#` are
//! skipped), later lines for a page replacing earlier ones. The file is
//! read whole at start and again whenever its modification time or size
//! changes (looked at every [`CHECK_EVERY`]); a page left out of the new
//! file leaves the directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use engagement_core::directory::{Directory, DirectoryLimits};
use tokio_util::sync::CancellationToken;

use super::Directories;
use crate::serve::metrics::Metrics;
use crate::telemetry::directory::{DirectoryUnreadable, RecordRead};
use crate::telemetry::events::InternalEvent;

const CHECK_EVERY: Duration = Duration::from_secs(1);

pub(super) struct Watcher {
    path: PathBuf,
    limits: DirectoryLimits,
    /// (modified, length) of the version last read.
    seen: Option<(SystemTime, u64)>,
}

/// Checks that the file can be read: a start-up error when it cannot.
pub(super) fn open(path: &Path, limits: DirectoryLimits) -> anyhow::Result<Watcher> {
    std::fs::File::open(path).with_context(|| format!("directory.file {} cannot be read", path.display()))?;
    Ok(Watcher { path: path.to_owned(), limits, seen: None })
}

pub(super) fn run(mut w: Watcher, dirs: &Directories, metrics: &Metrics, shutdown: &CancellationToken) {
    while !shutdown.is_cancelled() {
        match w.changed() {
            Ok(Some(stamp)) => match w.read(dirs, metrics) {
                Ok(directory) => {
                    dirs.publish(directory, metrics);
                    w.seen = Some(stamp);
                }
                Err(error) => DirectoryUnreadable { source: dirs.source(), error: &error }.emit(metrics),
            },
            Ok(None) => {}
            Err(error) => DirectoryUnreadable { source: dirs.source(), error: &error }.emit(metrics),
        }
        let wake = std::time::Instant::now() + CHECK_EVERY;
        while !shutdown.is_cancelled() && std::time::Instant::now() < wake {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Watcher {
    /// The file's stamp when it differs from the version last read.
    fn changed(&self) -> anyhow::Result<Option<(SystemTime, u64)>> {
        let meta = std::fs::metadata(&self.path)?;
        let stamp = (meta.modified()?, meta.len());
        Ok((self.seen != Some(stamp)).then_some(stamp))
    }

    /// Reads the whole file into a new directory.
    fn read(&self, dirs: &Directories, metrics: &Metrics) -> anyhow::Result<Directory> {
        let text = std::fs::read(&self.path)?;
        let mut directory = Directory::new(self.limits);
        for (i, line) in text.split(|b| *b == b'\n').enumerate() {
            let line = line.trim_ascii();
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            let result = directory.apply(None, Some(line));
            RecordRead { source: dirs.source(), position: (0, i as i64 + 1), result }.emit(metrics);
        }
        Ok(directory)
    }
}
