//! `engagement-monitor produce`: writes synthetic events to a real topic at
//! a target rate, with a progress line (rate, ETA) and a summary. Used by the
//! demo, the end-to-end benchmark and load tests. With a directory topic,
//! the page directory of the data set (docs/directory.md) goes there first.

use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use crate::kafka::{DeliveryCount, Logged, client_config, creation_error, send_waiting};
use engagement_core::synth::groups::{numbered_directory, seed_directory, tail_events};
use engagement_core::synth::{InsertStream, RandomStream, TrackerStream, seed_events, seed_quarter};

/// What to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The reference table, one snapshot per post, repeated as needed.
    Seed,
    /// Random snapshots over `pages × posts_per_page` posts.
    Random { pages: u64, posts_per_page: u64 },
    /// A crawler's stream: Zipf-popular pages, each post re-observed 10–50
    /// times with growing counts, a few percent new posts.
    Tracker { pages: u64 },
    /// Every event a new post.
    Inserts { pages: u64 },
}

/// A synthetic stream of the scenarios that generate events.
enum Stream {
    Random(RandomStream),
    Tracker(Box<TrackerStream>),
    Inserts(InsertStream),
}

impl Stream {
    fn of(scenario: Scenario, seed: u64) -> Option<Stream> {
        Some(match scenario {
            Scenario::Seed => return None,
            Scenario::Random { pages, posts_per_page } => {
                Stream::Random(RandomStream::new(pages.max(1), posts_per_page.max(1), seed_quarter(), seed))
            }
            Scenario::Tracker { pages } => {
                let pages = pages.max(1);
                Stream::Tracker(Box::new(TrackerStream::new(pages, pages as usize, seed_quarter(), seed)))
            }
            Scenario::Inserts { pages } => Stream::Inserts(InsertStream::new(pages.max(1), seed_quarter(), seed)),
        })
    }

    /// The next event into `buf`; returns its page number.
    fn next_into(&mut self, buf: &mut Vec<u8>) -> u64 {
        match self {
            Stream::Random(s) => s.next_into(buf),
            Stream::Tracker(s) => s.next_into(buf),
            Stream::Inserts(s) => s.next_into(buf),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub brokers: String,
    pub topic: String,
    pub scenario: Scenario,
    /// Stop after this many events (default: one pass of the seed table,
    /// or 1,000,000 random events, unless a duration is given).
    pub events: Option<u64>,
    pub duration: Option<Duration>,
    /// Events per second; 0 = as fast as the broker takes them.
    pub rate: u64,
    pub compression: String,
    /// Partitions of the topic when it has to be created.
    pub partitions: i32,
    pub seed: u64,
    pub properties: Vec<(String, String)>,
    pub progress: bool,
    /// Topic of the page directory, written before the events (created
    /// compacted when missing).
    pub directory: Option<String>,
    /// The seed scenario also carries the tail of media and celebrity
    /// pages larger than every government page.
    pub with_tail: bool,
}

/// What was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub elapsed: Duration,
}

impl Summary {
    pub fn rate(&self) -> f64 {
        self.acknowledged as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Creates `topic` with `partitions` partitions unless it exists.
pub async fn ensure_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    properties: &[(String, String)],
) -> anyhow::Result<()> {
    create_topic(brokers, topic, partitions, properties, &[]).await
}

/// Creates `topic` with the topic configuration `config` unless it exists
/// (an existing topic's configuration is left as it is).
pub async fn create_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    properties: &[(String, String)],
    config: &[(&str, &str)],
) -> anyhow::Result<()> {
    let c = client_config(brokers, &[], properties.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let admin: AdminClient<Logged> = c
        .create_with_context(Logged)
        .map_err(|e| anyhow::anyhow!("cannot create the admin client: {}", creation_error(&e)))?;
    reachable(&admin, brokers)?;
    let new = config.iter().fold(NewTopic::new(topic, partitions, TopicReplication::Fixed(1)), |t, (k, v)| t.set(k, v));
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(30)))
        .request_timeout(Some(Duration::from_secs(30)));
    for r in admin.create_topics([&new], &opts).await.context("creating the topic")? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => anyhow::bail!("cannot create topic {t}: {e}"),
        }
    }
    Ok(())
}

/// Fails fast, saying what to check, when no broker answers a metadata
/// request within 5 s: creating the topic would wait 30 s and then report
/// only "OperationTimedOut".
fn reachable(admin: &AdminClient<Logged>, brokers: &str) -> anyhow::Result<()> {
    let metadata = tokio::task::block_in_place(|| admin.inner().fetch_metadata(None, Duration::from_secs(5)));
    metadata.map(|_| ()).map_err(|e| {
        let brokers = crate::config::redact_brokers(brokers);
        anyhow::anyhow!("cannot reach Kafka at {brokers}: is the broker running? check --brokers ({e})")
    })
}

/// Produces events as `opts` says; blocks until every event is acknowledged
/// or failed.
pub fn run(opts: &Options) -> anyhow::Result<Summary> {
    let defaults = [
        ("compression.type", opts.compression.as_str()),
        ("linger.ms", "20"),
        ("batch.size", "1000000"),
        ("queue.buffering.max.messages", "1000000"),
        ("queue.buffering.max.kbytes", "1048576"),
    ];
    let c = client_config(&opts.brokers, &defaults, opts.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let producer: ThreadedProducer<DeliveryCount> = c
        .create_with_context(DeliveryCount::default())
        .map_err(|e| anyhow::anyhow!("cannot create the producer: {}", creation_error(&e)))?;
    if let Some(topic) = &opts.directory {
        write_directory(opts, topic)?;
    }
    let seed = seed_data(opts.with_tail);
    let limit = opts.events.or(if opts.duration.is_some() { None } else { Some(default_events(opts.scenario, &seed)) });
    let mut random = Stream::of(opts.scenario, opts.seed);
    let started = Instant::now();
    let mut progress = Progress::new(opts.progress, limit);
    let mut buf = Vec::with_capacity(256);
    let mut key = String::with_capacity(32);
    let mut sent = 0u64;
    while limit.is_none_or(|n| sent < n) && opts.duration.is_none_or(|d| started.elapsed() < d) {
        key.clear();
        match random.as_mut() {
            Some(r) => {
                let page = r.next_into(&mut buf);
                let _ = std::fmt::Write::write_fmt(&mut key, format_args!("page_{page:07}"));
            }
            None => {
                let json = &seed[(sent % seed.len() as u64) as usize];
                buf.clear();
                buf.extend_from_slice(json.as_bytes());
                key.push_str(page_id_of(json));
            }
        }
        let record = BaseRecord::to(&opts.topic).key(&key).payload(&buf);
        send_waiting(&producer, record).with_context(|| format!("producing to {}", opts.topic))?;
        sent += 1;
        pace(opts.rate, sent, started);
        progress.tick(sent);
    }
    producer.flush(Duration::from_secs(120)).context("waiting for the broker to acknowledge every event")?;
    let summary = Summary {
        sent,
        acknowledged: producer.context().acknowledged(),
        failed: producer.context().failed(),
        elapsed: started.elapsed(),
    };
    progress.finish(&summary);
    Ok(summary)
}

/// The seed scenario's events: the reference table, and the tail pages
/// when asked (without them, exactly what `produce` always wrote).
fn seed_data(with_tail: bool) -> Vec<String> {
    let mut events = seed_events();
    if with_tail {
        events.extend(tail_events());
    }
    events
}

/// The directory records of the scenario: the seed directory (reference
/// pages in `category:government`, tail pages in media or celebrity), or
/// one record per numbered page of the generated streams.
fn directory_records(s: Scenario) -> Box<dyn Iterator<Item = (String, String)>> {
    match s {
        Scenario::Seed => Box::new(seed_directory().into_iter()),
        Scenario::Random { pages, .. } | Scenario::Tracker { pages } | Scenario::Inserts { pages } => {
            Box::new(numbered_directory(pages.max(1)))
        }
    }
}

/// Writes the scenario's page directory to `topic`, keyed
/// `platform/page_id`, creating the topic compacted (one partition: a
/// directory is small and every reader reads all of it) when missing. Its
/// own producer, so the events' summary counts events only.
fn write_directory(opts: &Options, topic: &str) -> anyhow::Result<()> {
    // `run` is synchronous; creating a topic is not (and needs a
    // multi-threaded runtime for its metadata check).
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(create_topic(&opts.brokers, topic, 1, &opts.properties, &[("cleanup.policy", "compact")]))?;
    let c = client_config(
        &opts.brokers,
        &[("linger.ms", "20")],
        opts.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let producer: ThreadedProducer<DeliveryCount> = c
        .create_with_context(DeliveryCount::default())
        .map_err(|e| anyhow::anyhow!("cannot create the producer: {}", creation_error(&e)))?;
    let mut sent = 0u64;
    for (key, value) in directory_records(opts.scenario) {
        let record = BaseRecord::to(topic).key(&key).payload(&value);
        send_waiting(&producer, record).with_context(|| format!("producing to {topic}"))?;
        sent += 1;
    }
    producer.flush(Duration::from_secs(120)).context("waiting for the broker to acknowledge the directory")?;
    let failed = producer.context().failed();
    anyhow::ensure!(failed == 0, "{failed} directory records were not acknowledged");
    eprintln!("wrote {sent} directory records to {topic}");
    Ok(())
}

fn default_events(s: Scenario, seed: &[String]) -> u64 {
    match s {
        Scenario::Seed => seed.len() as u64,
        Scenario::Random { .. } | Scenario::Tracker { .. } | Scenario::Inserts { .. } => 1_000_000,
    }
}

/// The `page_id` of a seed event (they are written by `synth`, so the field
/// is always first and unescaped).
fn page_id_of(json: &str) -> &str {
    json.strip_prefix("{\"page_id\":\"").and_then(|r| r.split('"').next()).unwrap_or("")
}

/// Sleeps so that `sent` events take at least `sent / rate` seconds.
fn pace(rate: u64, sent: u64, started: Instant) {
    if rate == 0 || sent % 64 != 0 {
        return;
    }
    let due = Duration::from_secs_f64(sent as f64 / rate as f64);
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        std::thread::sleep(wait);
    }
}

/// The progress bar on stderr (indicatif: it stays quiet when stderr is
/// not a terminal), and the summary line, which is always printed.
struct Progress(ProgressBar);

impl Progress {
    fn new(enabled: bool, total: Option<u64>) -> Progress {
        if !enabled {
            return Progress(ProgressBar::hidden());
        }
        let (bar, template) = match total {
            Some(n) => (ProgressBar::new(n), "[{bar:30}] {pos}/{len} events  {per_sec}  ETA {eta}"),
            None => (ProgressBar::no_length(), "{pos} events  {per_sec}"),
        };
        bar.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("#>."));
        Progress(bar)
    }

    fn tick(&mut self, sent: u64) {
        // Updating the bar is cheap but not free: every 1024 events is plenty.
        if sent % 1024 == 0 {
            self.0.set_position(sent);
        }
    }

    fn finish(&self, s: &Summary) {
        self.0.finish_and_clear();
        eprintln!(
            "produced {} events ({} acknowledged, {} failed) in {:.2}s: {:.0} events/s",
            s.sent,
            s.acknowledged,
            s.failed,
            s.elapsed.as_secs_f64(),
            s.rate()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_keys_are_page_ids() {
        for json in seed_events().iter().step_by(500) {
            let id = page_id_of(json);
            assert!(engagement_core::synth::SEED_TABLE.iter().any(|p| p.id == id), "{id}");
        }
    }
}
