//! The typed events of the page directory (docs/directory.md): each logs
//! and counts in one call, as in [`events`](super::events).

use engagement_core::directory::{Change, Directory, Refused};

use crate::serve::metrics::Metrics;
use crate::telemetry::events::{InternalEvent, limited};

/// One record applied, or refused (logged at the shared rate limit,
/// without its value).
pub struct RecordRead<'a> {
    pub source: &'a str,
    /// Partition and offset in a topic, line number in a file.
    pub position: (i32, i64),
    pub result: Result<Change, Refused>,
}

impl InternalEvent for RecordRead<'_> {
    fn emit(self, m: &Metrics) {
        let d = &m.directory;
        match self.result {
            Ok(Change::Put) => d.records[0].inc(),
            Ok(Change::Removed) => d.records[1].inc(),
            Err(why) => {
                d.records[2].inc();
                if let Some(i) = Refused::ALL.iter().position(|r| *r == why) {
                    d.refused[i].inc();
                }
                let (source, (partition, offset), reason) = (self.source, self.position, why.describe());
                limited(m, || {
                    tracing::warn!(source, partition, offset, reason, "page directory record refused; skipped")
                });
            }
        }
    }
}

/// A new directory is in effect: from the next published view on.
pub struct DirectoryPublished<'a> {
    pub source: &'a str,
    pub directory: &'a Directory,
    /// The first time since start: the directory is read to its end.
    pub first: bool,
}

impl InternalEvent for DirectoryPublished<'_> {
    fn emit(self, m: &Metrics) {
        let d = &m.directory;
        let (pages, groups) = (self.directory.len(), self.directory.group_count());
        d.pages.set(pages as i64);
        d.groups.set(groups as i64);
        d.loaded.set(1);
        if self.first {
            tracing::info!(source = self.source, pages, groups, "page directory loaded");
        } else {
            tracing::debug!(source = self.source, pages, groups, "page directory updated");
        }
    }
}

/// Reading the directory failed; the last one read stays in effect.
pub struct DirectoryUnreadable<'a> {
    pub source: &'a str,
    pub error: &'a anyhow::Error,
}

impl InternalEvent for DirectoryUnreadable<'_> {
    fn emit(self, m: &Metrics) {
        let error = format!("{:#}", self.error);
        limited(m, || {
            tracing::warn!(source = self.source, error, "cannot read the page directory; the last one read stays")
        });
    }
}
