//! A topic read whole by hand: every partition from its beginning, with no
//! group assignment and no commits — how every instance reads shard mode's
//! page-totals topic and the page directory. It knows how far it has read
//! and how far that is from the partitions' ends.

use std::ffi::CString;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::Logged;
use crate::config::KafkaConfig;

pub struct TopicReader {
    consumer: BaseConsumer<Logged>,
    /// Asks the broker for the partitions' true ends: a client of its own,
    /// with no fetch pending on its connection for the request to wait on.
    ends: BaseConsumer<Logged>,
    topic: String,
    topic_c: CString,
    /// Per partition, the next offset to read.
    next: Vec<i64>,
}

impl TopicReader {
    /// A reader of every partition of `topic`, as many as `count` finds
    /// with the reader's client (it may wait for the topic, or refuse a
    /// missing one); `name` tells its client id and group id (which only
    /// librdkafka needs) apart.
    pub fn new(
        k: &KafkaConfig,
        topic: &str,
        name: &'static str,
        count: impl FnOnce(&rdkafka::client::Client<Logged>) -> anyhow::Result<i32>,
    ) -> anyhow::Result<TopicReader> {
        let properties = k.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let mut config = super::client_config(&k.brokers, &super::CONSUMER_DEFAULTS, properties);
        if !k.properties.contains_key("client.id") {
            config.set("client.id", format!("engagement-monitor-{name}"));
        }
        config.set("group.id", format!("{}-{name}", k.group_id));
        let create = || -> anyhow::Result<BaseConsumer<Logged>> {
            config
                .create_with_context(Logged)
                .map_err(|e| anyhow::anyhow!("cannot create the {name}: {}", super::creation_error(&e)))
        };
        let (consumer, ends) = (create()?, create()?);
        let partitions = count(consumer.client())?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
        consumer.assign(&tpl).with_context(|| format!("assigning topic {topic}"))?;
        let next = vec![0; partitions.max(0) as usize];
        Ok(TopicReader { consumer, ends, topic: topic.into(), topic_c: CString::new(topic)?, next })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next record, waiting at most `timeout`; `None` when none came.
    pub fn poll(&mut self, timeout: Duration) -> anyhow::Result<Option<BorrowedMessage<'_>>> {
        let Some(m) = self.consumer.poll(timeout) else { return Ok(None) };
        let m = m.with_context(|| format!("reading topic {}", self.topic))?;
        if let Some(n) = self.next.get_mut(m.partition() as usize) {
            *n = m.offset() + 1;
        }
        Ok(Some(m))
    }

    /// Records between what was read and the end of each partition: the
    /// broker's true ends when `exact` (readiness depends on them), else the
    /// ends cached from the last fetch response (for a gauge). Unknown ends
    /// count as far behind.
    pub fn lag(&self, exact: bool) -> u64 {
        let mut behind = 0u64;
        for (p, n) in self.next.iter().enumerate() {
            let native = self.consumer.client().native_ptr();
            let cached = if exact { None } else { super::cached_ends(native, &self.topic_c, p as i32) };
            let ends =
                cached.or_else(|| self.ends.fetch_watermarks(&self.topic, p as i32, Duration::from_millis(2000)).ok());
            match ends {
                Some((low, high)) => behind += (high - (*n).max(low)).max(0) as u64,
                None => return u64::MAX / 2,
            }
        }
        behind
    }
}
