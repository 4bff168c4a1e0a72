//! Transactions written by Kafka's own Java producer: aborted events are
//! never counted, and committed offsets and the lag follow the consumer
//! past commit/abort markers and aborted records, so a partition that ends
//! in a marker shows no lag.
//!
//! The producer is a tiny Java program compiled at test time against the
//! broker's jars (`$KAFKA_HOME_DIR/lib`, else `<repo>/.kafka/lib`, where
//! `scripts/kafka.sh` puts them). Without `java`/`javac` or the jars the
//! test fails, saying what is missing: it never skips.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::support::*;

/// Reads commands from stdin: `BEGIN`, `COMMIT`, `ABORT`, or a payload
/// sent to partition 0 of the topic inside the open transaction.
const PRODUCER: &str = r#"
import java.io.*;
import java.util.Properties;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxProducer {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        p.put("transactional.id", args[2]);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
            for (String line; (line = in.readLine()) != null; ) {
                switch (line) {
                    case "BEGIN": producer.beginTransaction(); break;
                    case "COMMIT": producer.commitTransaction(); break;
                    case "ABORT": producer.flush(); producer.abortTransaction(); break;
                    default: producer.send(new ProducerRecord<>(args[1], 0, null, line));
                }
            }
        }
    }
}
"#;

fn kafka_lib() -> PathBuf {
    let home = std::env::var_os("KAFKA_HOME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".kafka"));
    let lib = home.join("lib");
    let has_clients = std::fs::read_dir(&lib)
        .is_ok_and(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("kafka-clients-")));
    assert!(has_clients, "Kafka's jars are not in {} (scripts/kafka.sh fetch puts them there)", lib.display());
    lib
}

fn tool(name: &str) -> Command {
    let found = Command::new(name).arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(found.is_ok_and(|s| s.success()), "{name} is needed (Debian: apt-get install default-jdk-headless)");
    Command::new(name)
}

/// Compiles the producer into a fresh directory; returns its classpath.
fn compile_producer() -> String {
    let dir = std::env::temp_dir().join(unique("tx-producer"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("TxProducer.java"), PRODUCER).unwrap();
    let classpath = format!("{}:{}/*", dir.display(), kafka_lib().display());
    let out =
        tool("javac").args(["-cp", &classpath, "-d"]).arg(&dir).arg(dir.join("TxProducer.java")).output().unwrap();
    assert!(out.status.success(), "javac: {}", String::from_utf8_lossy(&out.stderr));
    classpath
}

/// Writes `script` (one command per line) through the transactional producer.
fn run_transactions(topic: &str, script: &[String]) {
    let classpath = compile_producer();
    let mut child = tool("java")
        .args(["-cp", &classpath, "TxProducer", &brokers(), topic, &unique("tx")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all((script.join("\n") + "\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the Java producer failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn events(page: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            crate::daemon::event(
                page,
                &i.to_string(),
                "2025-08-01T00:00:00Z",
                "2025-08-02T00:00:00Z",
                r#","reactions":1"#,
            )
        })
        .collect()
}

#[test]
fn offsets_and_lag_move_past_transaction_markers_and_aborted_events() {
    let topic = unique("transactions");
    create_topic(&topic, 1);
    let mut script = vec!["BEGIN".to_string()];
    script.extend(events("committed-1", 50));
    script.extend(["COMMIT".into(), "BEGIN".into()]);
    script.extend(events("aborted", 100));
    script.extend(["ABORT".into(), "BEGIN".into()]);
    script.extend(events("committed-2", 50));
    script.push("COMMIT".into());
    run_transactions(&topic, &script);

    let d = Daemon::start(&topic, &[], &[]);
    d.wait_ready(Duration::from_secs(30));
    assert_eq!(d.consumed(), 100.0, "aborted events are never counted");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("{topic}-group"))
        .create()
        .unwrap();
    let (_, end) = consumer.fetch_watermarks(&topic, 0, Duration::from_secs(10)).unwrap();
    assert_eq!(end, 50 + 1 + 100 + 1 + 50 + 1, "three transactions and their markers");
    let mut partition = TopicPartitionList::new();
    partition.add_partition(&topic, 0);
    wait_until("the committed offset to reach the partition's end", Duration::from_secs(15), || {
        let committed = consumer.committed_offsets(partition.clone(), Duration::from_secs(5)).ok()?;
        (committed.find_partition(&topic, 0)?.offset() == Offset::Offset(end)).then_some(())
    });
    let lag = format!(r#"engagement_consumer_lag_messages{{partition="0",topic="{topic}"}}"#);
    assert_eq!(d.metric(&lag), Some(0.0));
}
