//! The page directory as the daemon keeps it (docs/directory.md): read by
//! a thread of its own from a compacted topic ([`topic`]: every partition,
//! from its beginning, by every instance) or a JSON Lines file ([`file`]:
//! re-read when it changes), and handed to the view preparer as an
//! immutable [`Directory`] that each published view carries. A change is
//! in the next view published; it touches no page's totals.
//!
//! A missing topic or file is a start-up error. Later read errors keep the
//! last directory in effect; refused records are counted and skipped.
//! Until the directory is read to its end once, the instance is not ready.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use engagement_core::directory::Directory;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::serve::metrics::Metrics;
use crate::telemetry::directory::DirectoryPublished;
use crate::telemetry::events::InternalEvent;

mod file;
mod topic;

/// The directory in effect, shared by its reader and the view preparer.
#[derive(Debug)]
pub struct Directories {
    current: Mutex<Arc<Directory>>,
    /// Bumped on every change: shard mode publishes a view when it moves.
    version: AtomicU64,
    loaded: AtomicBool,
    /// `topic NAME` or `file PATH`, for logs and `/readyz`.
    source: String,
}

impl Directories {
    /// No directory configured: empty, and loaded.
    pub fn none() -> Arc<Directories> {
        Arc::new(Directories::new(String::new(), true))
    }

    fn new(source: String, loaded: bool) -> Directories {
        let current = Mutex::new(Arc::new(Directory::default()));
        Directories { current, version: AtomicU64::new(0), loaded: AtomicBool::new(loaded), source }
    }

    /// The directory in effect.
    pub fn current(&self) -> Arc<Directory> {
        self.current.lock().expect("directory lock").clone()
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Whether the directory has been read to its end once.
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Where it comes from, as `/readyz` says it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Puts `directory`, read to its end, in effect.
    fn publish(&self, directory: Directory, metrics: &Metrics) {
        let first = !self.loaded();
        DirectoryPublished { source: &self.source, directory: &directory, first }.emit(metrics);
        *self.current.lock().expect("directory lock") = Arc::new(directory);
        self.version.fetch_add(1, Ordering::Release);
        self.loaded.store(true, Ordering::Release);
    }
}

/// A reader's loop, run on the directory thread.
type ReadLoop = Box<dyn FnOnce(&Directories) + Send>;

/// Starts reading the configured directory: checks now that its topic or
/// file exists (a start-up error names it), then reads on a thread until
/// `shutdown`.
pub fn start(
    config: &Arc<Config>,
    metrics: &Arc<Metrics>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Arc<Directories>> {
    let d = &config.directory;
    let (source, reader): (String, ReadLoop) = match (&d.topic, &d.file) {
        (Some(topic), _) => {
            let reader = topic::open(config, topic)?;
            let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
            (format!("topic {topic}"), Box::new(move |dirs| topic::run(reader, dirs, &metrics, &shutdown)))
        }
        (None, Some(path)) => {
            let watcher = file::open(path, d.limits)?;
            let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
            (format!("file {}", path.display()), Box::new(move |dirs| file::run(watcher, dirs, &metrics, &shutdown)))
        }
        (None, None) => {
            metrics.directory.loaded.set(1);
            return Ok(Directories::none());
        }
    };
    let dirs = Arc::new(Directories::new(source, false));
    let handle = dirs.clone();
    std::thread::Builder::new().name("directory".into()).spawn(move || reader(&handle))?;
    Ok(dirs)
}
