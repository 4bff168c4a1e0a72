//! The directory from a compacted topic: every partition read from its
//! beginning by every instance (no group), records applied in order. The
//! first directory is put in effect once the topic is read to the ends the
//! broker reports; after that, changes are put in effect at most once per
//! [`PUBLISH_EVERY`] (each costs a copy of the directory) and at once when
//! the topic runs dry.

use std::time::{Duration, Instant};

use engagement_core::directory::Directory;
use rdkafka::message::Message;
use tokio_util::sync::CancellationToken;

use super::Directories;
use crate::config::Config;
use crate::kafka::TopicReader;
use crate::serve::metrics::Metrics;
use crate::telemetry::directory::{DirectoryUnreadable, RecordRead};
use crate::telemetry::events::InternalEvent;

const PUBLISH_EVERY: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(100);

pub(super) struct Reader {
    topic: TopicReader,
    directory: Directory,
}

/// Opens the topic: a start-up error when it does not exist.
pub(super) fn open(config: &Config, topic: &str) -> anyhow::Result<Reader> {
    let count = |client: &_| match crate::kafka::partition_count(client, topic, Duration::from_secs(10)) {
        Ok(Some(n)) => Ok(n as i32),
        Ok(None) => Err(anyhow::anyhow!(
            "directory.topic {topic} does not exist: create it (compacted, docs/directory.md) or unset directory.topic"
        )),
        Err(e) => Err(anyhow::anyhow!("cannot read the metadata of directory.topic {topic}: {e}")),
    };
    let topic = TopicReader::new(&config.kafka, topic, "directory-reader", count)?;
    Ok(Reader { topic, directory: Directory::new(config.directory.limits) })
}

pub(super) fn run(mut r: Reader, dirs: &Directories, metrics: &Metrics, shutdown: &CancellationToken) {
    let (mut changed, mut last) = (false, Instant::now());
    while !shutdown.is_cancelled() {
        match r.poll(dirs, metrics) {
            Ok(true) => {
                changed = true;
                if !dirs.loaded() || last.elapsed() < PUBLISH_EVERY {
                    continue;
                }
            }
            Ok(false) => {}
            Err(error) => {
                DirectoryUnreadable { source: dirs.source(), error: &error }.emit(metrics);
                std::thread::sleep(POLL);
                continue;
            }
        }
        // Dry, or a change waited long enough. The first directory is put
        // in effect only once the topic is read to the broker's ends.
        let loaded = dirs.loaded() || r.topic.lag(true) == 0;
        if loaded && (changed || !dirs.loaded()) {
            dirs.publish(r.directory.clone(), metrics);
            (changed, last) = (false, Instant::now());
        }
    }
}

impl Reader {
    /// Applies one record; `false` when none came.
    fn poll(&mut self, dirs: &Directories, metrics: &Metrics) -> anyhow::Result<bool> {
        let Some(m) = self.topic.poll(POLL)? else { return Ok(false) };
        let result = self.directory.apply(m.key(), m.payload());
        RecordRead { source: dirs.source(), position: (m.partition(), m.offset()), result }.emit(metrics);
        Ok(true)
    }
}
