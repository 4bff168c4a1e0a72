//! `engagement-monitor demo`: the whole pipeline with no outside service.
//! librdkafka's in-process mock cluster stands in for Kafka; a synthetic
//! 2025-Q3 modelled on the reference table (README) is produced into it, the real
//! daemon consumes it, and a slow live stream keeps ranks changing.
//!
//! A page directory puts the reference pages in `category:government`
//! among media and celebrity pages that outrank them in "all pages"; the
//! demo's own view is that group's.
//!
//! The mock keeps only about 5 MB per partition, so events are produced
//! lz4-compressed (the opening history is well under 1 MB compressed).

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::kafka::{Logged, client_config};
use crate::run::daemon;
use engagement_core::synth::groups::{demo_directory, tail_events};
use engagement_core::synth::{demo_events, demo_live_event};

const TOPIC: &str = "engagement-events";
const RANK_TOPIC: &str = "rank-changes";
const DEAD_LETTERS: &str = "dead-letters";
const DIRECTORY_TOPIC: &str = "page-directory";
/// The group the demo is about: the reference table's.
const GROUP: &str = "category:government";
/// One live event this often.
const LIVE_EVERY: Duration = Duration::from_millis(500);

/// Runs the demo until `shutdown` is cancelled.
pub async fn run(listen: SocketAddr, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel();
    // Its own token: the mock cluster must outlive the daemon's clients,
    // or they log its disappearance as connection errors on a clean stop.
    let cluster_stop = CancellationToken::new();
    let stop = cluster_stop.clone();
    // The mock cluster is !Send: it lives and dies on this thread.
    let cluster = std::thread::Builder::new().name("mock-kafka".into()).spawn(move || mock_cluster(&tx, &stop))?;
    let result = serve(rx, listen, shutdown).await;
    cluster_stop.cancel();
    let _ = tokio::task::spawn_blocking(move || cluster.join()).await;
    println!("engagement-monitor demo: stopped");
    result
}

/// Runs the daemon against the mock cluster once it has started; returns
/// when the daemon has stopped and closed its Kafka clients.
async fn serve(rx: mpsc::Receiver<Started>, listen: SocketAddr, shutdown: CancellationToken) -> anyhow::Result<()> {
    let brokers = tokio::task::spawn_blocking(move || rx.recv()).await?.context("the mock cluster did not start")??;
    let mut config = Config::default();
    config.kafka.brokers = brokers;
    config.kafka.topic = TOPIC.into();
    config.kafka.group_id = "engagement-monitor-demo".into();
    config.kafka.rank_events_topic = Some(RANK_TOPIC.into());
    config.kafka.dead_letter_topic = Some(DEAD_LETTERS.into());
    config.directory.topic = Some(DIRECTORY_TOPIC.into());
    config.ranking.groups = vec![GROUP.into()];
    config.ranking.add_group_watches();
    config.http.listen = listen;
    config.ranking.interval = Duration::from_secs(2);
    config.ranking.ready_max_lag = 100;
    println!(
        "engagement-monitor demo: an embedded Kafka mock cluster, 2025-Q3 modelled on the reference table, live updates"
    );
    println!("  leaderboard  http://{listen}/");
    println!("  JSON         http://{listen}/v1/rankings?window=2025-Q3&platform=facebook");
    println!("  government   http://{listen}/?group={GROUP}");
    println!("  JSON         http://{listen}/v1/rankings?window=2025-Q3&group={GROUP}");
    println!("  metrics      http://{listen}/metrics");
    println!("  Ctrl-C stops it.");
    daemon::run(config, shutdown).await
}

type Started = anyhow::Result<String>;

fn mock_cluster(started: &mpsc::Sender<Started>, stop: &CancellationToken) {
    let setup = || -> anyhow::Result<(MockCluster<'static, DefaultProducerContext>, ThreadedProducer<Logged>)> {
        let mock = MockCluster::new(1)?;
        mock.create_topic(TOPIC, 3, 1)?;
        mock.create_topic(RANK_TOPIC, 1, 1)?;
        mock.create_topic(DEAD_LETTERS, 1, 1)?;
        // The mock has no topic configs: compaction does not matter here,
        // the directory is written once.
        mock.create_topic(DIRECTORY_TOPIC, 1, 1)?;
        let defaults = [("compression.type", "lz4"), ("linger.ms", "20")];
        let producer: ThreadedProducer<Logged> =
            client_config(&mock.bootstrap_servers(), &defaults, []).create_with_context(Logged)?;
        // The directory first, so that groups are known before the events.
        for (key, value) in demo_directory() {
            let _ = producer.send(BaseRecord::to(DIRECTORY_TOPIC).key(&key).payload(&value));
        }
        // Keyed by page, as docs/events.md asks of producers: a page's
        // events stay on one partition.
        for json in demo_events(2025).iter().chain(&tail_events()) {
            let key = crate::tools::repartition::page_key(json.as_bytes()).unwrap_or_default();
            let _ = producer.send(BaseRecord::to(TOPIC).key(key.as_bytes()).payload(json.as_bytes()));
        }
        producer.flush(Duration::from_secs(30))?;
        Ok((mock, producer))
    };
    let (mock, producer) = match setup() {
        Ok(x) => x,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    let _ = started.send(Ok(mock.bootstrap_servers()));
    let mut k = 0u64;
    while !stop.is_cancelled() {
        std::thread::sleep(LIVE_EVERY);
        let json = demo_live_event(k);
        let key = crate::tools::repartition::page_key(json.as_bytes()).unwrap_or_default();
        let _ = producer.send(BaseRecord::to(TOPIC).key(key.as_bytes()).payload(json.as_bytes()));
        k += 1;
    }
    let _ = producer.flush(Duration::from_secs(1));
    drop(producer);
    drop(mock);
}
