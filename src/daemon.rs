//! Wires the parts together and stops them in one written order:
//! stop intake → finish in-flight work and commit (consumer thread) →
//! flush the producer → stop serving → return. Every wait has a deadline
//! taken from `shutdown_timeout`, so the process exits in bounded time even
//! when the broker is gone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState, HttpLimits};
use crate::config::Config;
use crate::consumer;
use crate::metrics::Metrics;
use crate::publisher::Publisher;
use crate::ranker;
use crate::status::{Phase, Status};
use engagement_core::view::View;

/// Runs the daemon until `shutdown` is cancelled (or the consumer fails).
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let view = Arc::new(ArcSwap::from_pointee(View::empty()));
    let status = Status::new(Phase::CatchingUp, "starting");
    let metrics = Arc::new(Metrics::new(view.clone(), config.ranking.top_n, &config.engine));
    metrics.set_phase(Phase::CatchingUp);
    let publisher = Arc::new(Publisher::new(&config.kafka, metrics.clone()).context("creating the Kafka producer")?);
    let listener = TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding http.listen {}", config.http.listen))?;
    tracing::info!(listen = %listener.local_addr()?, topic = %config.kafka.topic, brokers = %config.kafka.brokers, "engagement-monitor started");

    let (views_tx, views_rx) = watch::channel((Arc::new(View::empty()), false));
    let ranker = tokio::spawn(ranker::run(views_rx, config.ranking.top_n, metrics.clone(), publisher.clone()));
    let mut consumer_done = consumer::spawn(consumer::Parts {
        config: config.clone(),
        view: view.clone(),
        views: views_tx,
        status: status.clone(),
        metrics: metrics.clone(),
        publisher: publisher.clone(),
        shutdown: shutdown.clone(),
    })?;

    let state = AppState { view, status, metrics, rolling_days: config.engine.rolling_days };
    let limits = HttpLimits {
        request_timeout: config.http.request_timeout,
        max_concurrent_requests: config.http.max_concurrent_requests,
        max_query_bytes: config.http.max_query_bytes,
    };
    let stop_serving = CancellationToken::new();
    let server = axum::serve(listener, api::router(state, limits))
        .with_graceful_shutdown(stop_serving.clone().cancelled_owned());
    let server = tokio::spawn(async move { server.await });

    let early = tokio::select! {
        _ = shutdown.cancelled() => None,
        r = &mut consumer_done => Some(r),
    };
    let deadline = Instant::now() + config.shutdown_timeout;
    shutdown.cancel();
    let consumer_result = match early {
        Some(r) => r.unwrap_or_else(|_| Err(anyhow::anyhow!("the consumer thread died"))),
        None => match tokio::time::timeout_at(deadline.into(), consumer_done).await {
            Ok(r) => r.unwrap_or_else(|_| Err(anyhow::anyhow!("the consumer thread died"))),
            Err(_) => {
                tracing::error!("consumer did not stop before the shutdown deadline");
                Ok(())
            }
        },
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let flush = publisher.clone();
    let _ =
        tokio::time::timeout(left, tokio::task::spawn_blocking(move || flush.flush(left.min(Duration::from_secs(3)))))
            .await;
    stop_serving.cancel();
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
    let _ = tokio::time::timeout(left, server).await;
    ranker.abort();
    tracing::info!("stopped");
    consumer_result
}
