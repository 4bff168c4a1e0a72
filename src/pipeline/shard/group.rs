//! The group's consumer: Kafka's consumer group hands this shard its
//! partitions (cooperative-sticky, static membership). Each partition's
//! fetched messages are forwarded to a fetch queue of our own before it is
//! assigned, and read from there in batches; the consumer's own queue
//! carries only rebalances, commit results and errors. The callbacks note
//! what moved; the owner's loop handles it right after the poll that ran
//! them. The fetch queue is read on the fetch thread ([`GroupFeed`]),
//! paused while the owner's loop polls the consumer's queue.

use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientContext, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::pipeline::ingest::{Feed, FetchQueue, MessageBatch, Record};
use crate::serve::metrics::Metrics;
use crate::serve::metrics::labels::Attempt;
use crate::telemetry::events::{ClientError, Committed, ConsumerError, InternalEvent};

/// A change of assignment, noted by the group callbacks and handled by
/// the loop right after the poll that ran them.
pub enum Moved {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

pub struct Ctx {
    parts: Arc<crate::serve::metrics::Metrics>,
    pub moved: Mutex<Vec<Moved>>,
    /// Our fetch queue, where each partition's messages are sent before it
    /// is assigned (taken out before the consumer is dropped).
    pub queue: Mutex<Option<Arc<FetchQueue>>>,
    /// A partition could not be sent to our queue: its messages would be lost.
    pub unforwarded: Mutex<Vec<i32>>,
}

impl ClientContext for Ctx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        crate::kafka::log(level, fac, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        ClientError { error: &error, reason }.emit(&self.parts);
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        match r {
            Rebalance::Revoke(tpl) => {
                self.moved.lock().unwrap_or_else(|e| e.into_inner()).push(Moved::Revoked(partitions(tpl)));
            }
            Rebalance::Assign(tpl) => {
                // Before the assignment: none of their messages may reach
                // the consumer's own queue.
                let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner()).clone();
                for p in partitions(tpl) {
                    if !queue.as_ref().is_some_and(|q| q.forward(p)) {
                        self.unforwarded.lock().unwrap_or_else(|e| e.into_inner()).push(p);
                    }
                }
            }
            Rebalance::Error(_) => {}
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = r {
            self.moved.lock().unwrap_or_else(|e| e.into_inner()).push(Moved::Assigned(partitions(tpl)));
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _: &TopicPartitionList) {
        Committed(if result.is_ok() { Attempt::Ok } else { Attempt::Failed }).emit(&self.parts);
    }
}

/// The group's consumer, subscribed, and the fetch queue its partitions'
/// messages go to (handed to the context by the caller, last).
pub fn group_consumer(
    k: &KafkaConfig,
    metrics: &Arc<Metrics>,
    instance: &str,
) -> anyhow::Result<(BaseConsumer<Ctx>, Arc<FetchQueue>)> {
    // Replica mode's consumer settings (offsets stored and committed by
    // the daemon only, fetches sized for throughput), then the group's.
    let mut defaults = super::reader_defaults("engagement-monitor-shard");
    defaults.push(("partition.assignment.strategy", "cooperative-sticky"));
    let properties = k.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let mut config = crate::kafka::client_config(&k.brokers, &defaults, properties);
    config.set("group.id", &k.group_id).set("group.instance.id", instance);
    let ctx =
        Ctx { parts: metrics.clone(), moved: Mutex::default(), queue: Mutex::default(), unforwarded: Mutex::default() };
    let consumer: BaseConsumer<Ctx> = config
        .create_with_context(ctx)
        .map_err(|e| anyhow::anyhow!("cannot create the Kafka consumer: {}", crate::kafka::creation_error(&e)))?;
    let topic_c = std::ffi::CString::new(k.topic.clone())?;
    // SAFETY: the queue is dropped before the consumer (`Owner`'s field
    // order; the context's handle is taken out in its `Drop`).
    let queue = unsafe { FetchQueue::new(consumer.client().native_ptr(), topic_c) }
        .ok_or_else(|| anyhow::anyhow!("cannot create a fetch queue"))?;
    // Rebalances run only in `poll`: none before the caller hands the
    // queue to the context.
    consumer.subscribe(&[&k.topic])?;
    Ok((consumer, Arc::new(queue)))
}

/// The fetch thread's half of the group's consumer: it reads only our
/// fetch queue, never the consumer's own (where the group's callbacks run).
pub struct GroupFeed {
    queue: Arc<FetchQueue>,
    metrics: Arc<Metrics>,
    batch: MessageBatch,
    records: Vec<Record<'static>>,
}

impl GroupFeed {
    pub fn new(queue: Arc<FetchQueue>, metrics: Arc<Metrics>) -> GroupFeed {
        GroupFeed { queue, metrics, batch: MessageBatch::default(), records: Vec::new() }
    }
}

impl Feed for GroupFeed {
    fn poll(&mut self, timeout: std::time::Duration, max: usize, f: &mut dyn FnMut(&[Record<'_>])) {
        let metrics = &self.metrics;
        self.queue
            .consume(timeout, max, &mut self.batch, &mut self.records, f, &mut |e| ConsumerError(&e).emit(metrics));
    }

    /// None: a partition's next offset is the one after its last record
    /// (what follows a topic's last record is not waited for in shard mode).
    fn positions(&mut self, out: &mut Vec<(i32, i64)>) {
        out.clear();
    }
}
