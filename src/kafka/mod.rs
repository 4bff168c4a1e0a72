//! The one place an rdkafka `ClientConfig` is built. Every Kafka client of
//! the program (the ingest consumer, the producer of dead letters and rank
//! events, `produce`'s producer and admin client, the demo's producer)
//! starts here: the bootstrap servers, the caller's defaults for its role,
//! then the operator's pass-through properties, which win over the defaults.
//! What several clients share lives here too: the consumers' defaults, the
//! log and error rules, partition counts and cached partition ends.

use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::ToBytes;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};

use crate::config::property_error;

mod reader;
pub use reader::TopicReader;

/// A client configuration for `brokers` with `defaults`, overridden by
/// `properties` (`kafka.properties` of the configuration).
pub fn client_config<'p>(
    brokers: &str,
    defaults: &[(&str, &str)],
    properties: impl IntoIterator<Item = (&'p str, &'p str)>,
) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (key, value) in defaults {
        c.set(*key, *value);
    }
    for (key, value) in properties {
        c.set(key, value);
    }
    c
}

/// The consumer's settings before the operator's pass-through properties:
/// offsets are stored and committed by the daemon only; fetches are sized
/// so the consume thread is never starved (docs/performance.md).
pub(crate) const CONSUMER_DEFAULTS: [(&str, &str); 11] = [
    ("client.id", "engagement-monitor"),
    ("group.protocol", "classic"),
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    ("enable.partition.eof", "false"),
    ("fetch.wait.max.ms", "100"),
    ("fetch.min.bytes", "1"),
    ("fetch.queue.backoff.ms", "20"),
    ("queued.max.messages.kbytes", "262144"),
    ("statistics.interval.ms", "0"),
];

/// Why a Kafka client could not be created, for a person: the property
/// and librdkafka's reason. rdkafka's own message appends the value, and
/// the value of a secret property, or of a misspelt one that may be a
/// secret, is never shown.
pub fn creation_error(e: &KafkaError) -> String {
    match e {
        KafkaError::ClientConfig(_, _, key, _) => {
            format!("invalid Kafka client property {key}{} (check kafka.properties)", property_error(e))
        }
        e => e.to_string(),
    }
}

/// Whether `e` says a broker connection failed. librdkafka retries those
/// itself, so they are counted and logged at DEBUG; that no broker at all
/// can be reached is reported apart, once per 30 s.
pub fn is_connection_error(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::Resolve)
    )
}

/// Whether `e` says that no broker at all can be reached.
pub fn is_all_brokers_down(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown)
}

/// A client context for clients that need no callbacks of their own: its
/// librdkafka log lines go through [`log`].
pub struct Logged;

impl ClientContext for Logged {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log(level, fac, message);
    }
}

impl ProducerContext for Logged {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

impl rdkafka::consumer::ConsumerContext for Logged {}

/// The partition count of `topic`: `None` while the topic does not exist
/// (or has no partitions yet).
pub fn partition_count<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    timeout: std::time::Duration,
) -> Result<Option<usize>, KafkaError> {
    let md = client.fetch_metadata(Some(topic), timeout)?;
    let found = md.topics().iter().find(|t| t.name() == topic).filter(|t| t.error().is_none());
    Ok(found.map(|t| t.partitions().len()).filter(|n| *n > 0))
}

/// The watermarks librdkafka cached from its last fetch response: no
/// broker round trip, so it is safe to call from a consume loop (a request
/// would wait behind the connection's pending fetch).
pub(crate) fn cached_ends(
    client: *mut rdkafka::bindings::rd_kafka_t,
    topic: &CString,
    partition: i32,
) -> Option<(i64, i64)> {
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the caller's live client handle, a NUL-terminated topic, and
    // librdkafka only writes the two out-params.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(client, topic.as_ptr(), partition, &mut low, &mut high)
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && low >= 0 && high >= 0)
        .then_some((low, high))
}

/// A producer context that counts deliveries, acknowledged and failed, for
/// clients that must know whether everything they sent landed (`produce`,
/// `repartition`, shard mode's checkpoints); read through
/// `producer.context()`.
#[derive(Debug, Default)]
pub struct DeliveryCount {
    acknowledged: AtomicU64,
    failed: AtomicU64,
}

impl DeliveryCount {
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Relaxed)
    }

    pub fn failed(&self) -> u64 {
        self.failed.load(Relaxed)
    }
}

impl ClientContext for DeliveryCount {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log(level, fac, message);
    }
}

impl ProducerContext for DeliveryCount {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() { &self.acknowledged } else { &self.failed };
        counter.fetch_add(1, Relaxed);
    }
}

/// Sends `record`, waiting while the producer's local queue is full (the
/// tools that write as fast as the broker takes: `produce`, `repartition`).
pub fn send_waiting<C, K, P>(
    p: &ThreadedProducer<C>,
    mut record: BaseRecord<'_, K, P, C::DeliveryOpaque>,
) -> Result<(), KafkaError>
where
    C: ProducerContext,
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match p.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// librdkafka's own log lines, through tracing under the target
/// `librdkafka`, with any `user:password@` in a broker's name redacted:
/// librdkafka prints the bootstrap servers as given.
pub fn log(level: RDKafkaLogLevel, fac: &str, message: &str) {
    let message = redact_userinfo(message);
    // A failed connection is logged by librdkafka per broker and retry; it
    // also reaches the error callback, where the daemon reports brokers it
    // cannot reach once per 30 s (ingest's BrokerWatch).
    if fac == "FAIL" && message.contains("Connect") {
        return tracing::debug!(target: "librdkafka", fac, "{message}");
    }
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", fac, "{message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
    }
}

/// Replaces the `user:password` before each `@` of `text` (within one
/// word) with `<redacted>`.
pub fn redact_userinfo(text: &str) -> String {
    let words: Vec<&str> = text.split('@').collect();
    let mut out = String::with_capacity(text.len());
    for (i, word) in words.iter().enumerate() {
        let before_at = i + 1 < words.len();
        let start = word.rfind(|c: char| c.is_whitespace() || "'\"[(/,".contains(c)).map_or(0, |i| i + 1);
        if before_at && word[start..].contains(':') {
            out.push_str(&word[..start]);
            out.push_str("<redacted>");
        } else {
            out.push_str(word);
        }
        if before_at {
            out.push('@');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_win_over_defaults() {
        let c = client_config("b:1", &[("linger.ms", "20"), ("acks", "all")], [("linger.ms", "5")]);
        assert_eq!(c.get("bootstrap.servers"), Some("b:1"));
        assert_eq!(c.get("linger.ms"), Some("5"));
        assert_eq!(c.get("acks"), Some("all"));
    }

    #[test]
    fn creation_errors_name_the_property_never_a_secret_value() {
        let create = |name, value| {
            let c = client_config("b:1", &[], [(name, value)]);
            creation_error(&c.create::<rdkafka::producer::BaseProducer>().err().expect("refused"))
        };
        let misspelt = create("sasl.pasword", "hunter2-s3cret");
        assert!(misspelt.contains("sasl.pasword") && !misspelt.contains("hunter2"), "{misspelt}");
        let invalid = create("linger.ms", "soon");
        assert!(invalid.contains("linger.ms") && invalid.contains("soon"), "a plain value helps: {invalid}");
    }

    #[test]
    fn credentials_in_broker_names_are_redacted_from_log_lines() {
        let line = "FAIL [thrd:alice:s3cret@k1:9092/bootstrap]: alice:s3cret@k1:9092/bootstrap: Failed to resolve 'alice:s3cret@k1:9092'";
        let redacted = redact_userinfo(line);
        assert!(!redacted.contains("s3cret") && redacted.contains("<redacted>@k1:9092/bootstrap"), "{redacted}");
        assert_eq!(redact_userinfo("no at sign: a@b c"), "no at sign: a@b c", "no colon before @, no credentials");
    }
}
