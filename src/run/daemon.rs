//! Wires the parts together and stops them in one written order:
//! stop intake → finish in-flight work, checkpoint and commit (ingest
//! thread) → flush the producer → stop serving → return. Every wait has a
//! deadline taken from `shutdown_timeout`, so the process exits in bounded
//! time even when the broker is gone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::alerts::publisher::Publisher;
use crate::alerts::rank_changes;
use crate::config::{ClusterMode, Config, redact_brokers};
use crate::pipeline::{checkpoint, ingest, shard, status};
use crate::serve::api::{self, AppState};
use crate::serve::metrics::{Metrics, Sources};
use crate::serve::published;
use crate::{directory, kafka};

/// Runs the daemon until `shutdown` is cancelled (or ingest fails).
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    check_state_dir(&config)?;
    let mut web = web(&config)?;
    let config = Arc::new(config);
    let (views_tx, views) = published::channel();
    let (status_tx, status) = status::channel();
    let metrics = Arc::new(Metrics::new(Sources {
        views: views.clone(),
        status: status.clone(),
        top_n: config.ranking.top_n,
        limits: config.engine,
        log_rate_per_second: config.events.log_rate_per_second,
        watches: config.ranking.watches.clone().into(),
        groups: config.ranking.groups.clone().into(),
    }));
    let publisher = Publisher::new(&config.kafka, metrics.clone())
        .map_err(|e| anyhow::anyhow!("cannot create the Kafka producer: {}", kafka::creation_error(&e)))?;
    let publisher = Arc::new(publisher);
    let listener = TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding http.listen {}", config.http.listen))?;
    let brokers = redact_brokers(&config.kafka.brokers);
    let tls = matches!(web.transport, api::Transport::Tls(_));
    tracing::info!(version = env!("CARGO_PKG_VERSION"), revision = crate::REVISION, listen = %listener.local_addr()?, tls, topic = %config.kafka.topic, brokers = %brokers, "engagement-monitor started");

    let ranks = tokio::spawn(rank_changes::run(views.clone(), ranking_parts(&config, &metrics, &publisher)));
    let status_tx = Arc::new(status_tx);
    let directory = directory::start(&config, &metrics, &shutdown)?;
    let preparer = ingest::Preparer::spawn(views_tx, status_tx.clone(), metrics.clone(), directory)?;
    let parts = ingest::Parts {
        config: config.clone(),
        views: preparer,
        status: status_tx,
        metrics: metrics.clone(),
        publisher: publisher.clone(),
        shutdown: shutdown.clone(),
    };
    let ingest_done = match config.cluster.mode {
        ClusterMode::Replica => ingest::spawn(parts)?,
        ClusterMode::Shard => shard::spawn(parts)?,
    };
    let groups = config.ranking.groups.clone().into();
    let shard = config.cluster.mode == ClusterMode::Shard;
    if let Some(reloader) = web.reloader() {
        tokio::spawn(api::reload_until(reloader, metrics.clone(), shutdown.clone()));
    }
    let failures = Some(metrics.tls_handshake_failures.clone());
    let state = AppState { views, status, metrics, groups, shard };
    let limits = config.http.limits;
    let stop_serving = CancellationToken::new();
    let app = api::guarded(state, limits, &web.guard);
    let server = tokio::spawn(api::serve_on(listener, app, limits, web.transport, failures, stop_serving.clone()));

    let result = stop_ingest(ingest_done, &shutdown, config.shutdown_timeout).await;
    let deadline = result.1;
    let left = deadline.saturating_duration_since(Instant::now());
    let flush = publisher.clone();
    let flushing = tokio::task::spawn_blocking(move || flush.flush(left.min(Duration::from_secs(3))));
    let _ = tokio::time::timeout(left, flushing).await;
    stop_serving.cancel();
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
    let _ = tokio::time::timeout(left, server).await;
    ranks.abort();
    let _ = ranks.await;
    close(publisher, deadline).await;
    tracing::info!("stopped");
    result.0
}

/// What the ranking loop needs.
fn ranking_parts(config: &Config, metrics: &Arc<Metrics>, publisher: &Arc<Publisher>) -> rank_changes::Parts {
    rank_changes::Parts {
        watches: config.ranking.watches.clone().into(),
        metrics: metrics.clone(),
        publisher: publisher.clone(),
    }
}

/// The TLS acceptor and the request guard of `http.web_config_file`,
/// certificates and keys loaded: a bad one stops the start, naming the file.
pub fn web(config: &Config) -> anyhow::Result<api::Web> {
    api::Web::new(&config.http).map_err(|e| match &config.http.web_config_file {
        Some(path) => anyhow::anyhow!("web config file {} (http.web_config_file): {e}", path.display()),
        None => anyhow::anyhow!("{e}"),
    })
}

/// Checks that `state.dir`, when set, can hold checkpoints: found now, not
/// at the first checkpoint a minute later or at shutdown, when the state
/// it should have saved is lost.
fn check_state_dir(config: &Config) -> anyhow::Result<()> {
    let Some(dir) = &config.state.dir else {
        return Ok(());
    };
    checkpoint::probe(dir).map_err(|e| {
        anyhow::anyhow!(
            "state.dir {} cannot hold checkpoints ({e}): point state.dir (--state-dir) at a directory this user \
             can create and write",
            dir.display()
        )
    })
}

/// Drops the last handle of the producer, so that librdkafka closes its
/// connections before `run` returns (the demo stops its mock cluster only
/// then). Closing can hang without a broker: it gets what is left of the
/// shutdown deadline, on a blocking thread, and the process exits anyway.
async fn close(publisher: Arc<Publisher>, deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
    let _ = tokio::time::timeout(left, tokio::task::spawn_blocking(move || drop(publisher))).await;
}

/// Waits for shutdown (or ingest ending early), then for ingest to stop,
/// at most `timeout`. Returns ingest's result and the shutdown deadline.
async fn stop_ingest(
    mut done: oneshot::Receiver<anyhow::Result<()>>,
    shutdown: &CancellationToken,
    timeout: Duration,
) -> (anyhow::Result<()>, Instant) {
    let early = tokio::select! {
        _ = shutdown.cancelled() => None,
        r = &mut done => Some(r),
    };
    let deadline = Instant::now() + timeout;
    shutdown.cancel();
    let died = || Err(anyhow::anyhow!("the ingest thread died"));
    let result = match early {
        Some(r) => r.unwrap_or_else(|_| died()),
        None => match tokio::time::timeout_at(deadline.into(), done).await {
            Ok(r) => r.unwrap_or_else(|_| died()),
            Err(_) => {
                tracing::error!("ingest did not stop before the shutdown deadline");
                Ok(())
            }
        },
    };
    (result, deadline)
}
