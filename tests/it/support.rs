//! Shared helpers of the integration tests: the project's Kafka broker
//! (started by `scripts/test.sh`; a test fails loudly when it is absent),
//! unique topics, a producer, the daemon binary on a free port, a tiny HTTP
//! client and `wait_until`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// The broker the tests use: `KAFKA_BROKERS`, or the project script's default.
pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

/// A topic name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or panics with `what`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers()).create().expect("admin client");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let result = rt.block_on(admin.create_topics([&topic], &opts)).unwrap_or_else(|e| {
        panic!("cannot reach the Kafka broker at {} ({e}): start it with scripts/kafka.sh start", brokers())
    });
    for r in result {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

pub fn producer(compression: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("compression.type", compression)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer")
}

/// Produces `payloads` (keyed by index) round-robin over `partitions` and
/// waits until all are acknowledged.
pub fn produce(topic: &str, partitions: i32, payloads: &[Vec<u8>], compression: &str) {
    let p = producer(compression);
    for (i, payload) in payloads.iter().enumerate() {
        let key = i.to_string();
        send(&p, BaseRecord::to(topic).payload(payload.as_slice()).key(key.as_str()).partition(i as i32 % partitions));
    }
    p.flush(Duration::from_secs(60)).expect("all messages acknowledged");
}

/// Sends `record`, waiting while the producer's queue is full.
fn send(p: &BaseProducer, mut record: BaseRecord<'_, str, [u8]>) {
    loop {
        match p.send(record) {
            Ok(()) => return,
            Err((_, r)) => {
                p.poll(Duration::from_millis(10));
                record = r;
            }
        }
    }
}

/// The offsets the broker holds for `group` on each partition of `topic`
/// (0 where none is committed).
pub fn committed_offsets(group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers()).set("group.id", group).create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    (0..partitions)
        .map(|p| match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(rdkafka::Offset::Offset(o)) => o,
            _ => 0,
        })
        .collect()
}

pub fn produce_strings(topic: &str, partitions: i32, payloads: &[String]) {
    let bytes: Vec<Vec<u8>> = payloads.iter().map(|s| s.as_bytes().to_vec()).collect();
    produce(topic, partitions, &bytes, "none");
}

/// The daemon binary, running with its stderr captured.
pub struct Daemon {
    pub child: Child,
    pub addr: String,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `engagement-monitor run` on a free port with fast intervals
    /// and waits until it serves HTTP. `extra` are additional CLI args.
    pub fn start(topic: &str, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::launch(&brokers(), topic, extra, env)
    }

    /// Like [`Daemon::start`], with explicit bootstrap servers.
    pub fn launch(brokers: &str, topic: &str, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_engagement-monitor"));
        cmd.args(["run", "--brokers", brokers, "--topic", topic, "--listen", "127.0.0.1:0"])
            .args(if extra.contains(&"--group") {
                vec![]
            } else {
                vec!["--group".to_string(), format!("{topic}-group")]
            })
            .args(if extra.contains(&"--log-format") { &[][..] } else { &["--log-format", "json"][..] })
            .args(extra)
            .env("ENGAGEMENT_MONITOR_RANKING_INTERVAL", "200ms")
            .env("ENGAGEMENT_MONITOR_KAFKA_COMMIT_INTERVAL", "500ms")
            .env("ENGAGEMENT_MONITOR_KAFKA_METADATA_REFRESH", "1s")
            .env("ENGAGEMENT_MONITOR_RANKING_READY_MAX_LAG", "0")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the daemon binary starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            if let Some(addr) = logs.lock().unwrap().iter().find_map(|l| listen_address(l)) {
                break addr;
            }
            if Instant::now() >= deadline || child.try_wait().ok().flatten().is_some() {
                let status = child.try_wait().ok().flatten();
                panic!(
                    "the daemon logged no listen address (exit: {status:?}); its log:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Daemon { child, addr, logs }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.addr, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        let (code, body) = self.get(path);
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn wait_ready(&self, timeout: Duration) {
        wait_until("/readyz to answer 200", timeout, || (http_get(&self.addr, "/readyz").ok()?.0 == 200).then_some(()));
    }

    /// The value of one metric sample, e.g. `engagement_events_total{outcome="applied"}`.
    pub fn metric(&self, sample: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics");
        text.lines().find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
    }

    /// Events consumed so far, whatever became of them.
    pub fn consumed(&self) -> f64 {
        ["applied", "stale", "duplicate", "conflict", "expired", "invalid", "rejected"]
            .iter()
            .map(|o| self.metric(&format!(r#"engagement_events_total{{outcome="{o}"}}"#)).unwrap_or(0.0))
            .sum()
    }

    /// Waits until `sample` reaches `value`.
    pub fn wait_metric(&self, sample: &str, value: f64, timeout: Duration) {
        wait_until(&format!("{sample} to reach {value}"), timeout, || (self.metric(sample)? >= value).then_some(()));
        assert_eq!(self.metric(sample), Some(value), "{sample} went past the expected value");
    }

    pub fn signal(&self, sig: &str) {
        let ok =
            Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits for the process to exit and returns its status and the time it took.
    pub fn wait_exit(&mut self, timeout: Duration) -> (std::process::ExitStatus, Duration) {
        let start = Instant::now();
        let status = wait_until("the daemon to exit", timeout, || self.child.try_wait().unwrap());
        (status, start.elapsed())
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }
}

/// The `listen` field of the start-up line, in JSON or in text format.
fn listen_address(line: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        return v["listen"].as_str().map(String::from);
    }
    let rest = &line[line.find(" listen=")? + " listen=".len()..];
    Some(rest.split_whitespace().next()?.to_string())
}

impl Drop for Daemon {
    /// Stops the daemon; when a test fails, shows what it logged (every
    /// warning and error, and the last lines), so a failure in CI can be
    /// read from its output alone.
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        // What the daemon says of itself, asked before it is stopped.
        let said = if panicking { http_get(&self.addr, "/metrics").map(|(_, text)| text).ok() } else { None };
        let _ = self.child.kill();
        let _ = self.child.wait();
        if panicking {
            let logs = self.logs();
            let last = logs.len().saturating_sub(LOG_TAIL);
            let shown =
                logs.iter().enumerate().filter(|(i, l)| *i >= last || l.contains("WARN") || l.contains("ERROR"));
            let shown: Vec<&str> = shown.map(|(_, l)| l.as_str()).collect();
            eprintln!("--- daemon {} ({} log lines; warnings, errors and the last {LOG_TAIL}):", self.addr, logs.len());
            eprintln!("{}", shown.join("\n"));
            let said = said.unwrap_or_default();
            let samples = said.lines().filter(|l| SHOWN_METRICS.iter().any(|m| l.starts_with(m)) && !l.ends_with(" 0"));
            eprintln!("--- its metrics (non-zero):\n{}", samples.collect::<Vec<_>>().join("\n"));
        }
    }
}

/// The metrics a failed test shows of each daemon: where it is in its
/// life, what it consumed, owns, detected and sent.
const SHOWN_METRICS: [&str; 6] = [
    "engagement_phase",
    "engagement_events_total",
    "engagement_shard_partitions_owned",
    "engagement_watch_changes_total",
    "engagement_rank_events_",
    "engagement_produced_messages_total",
];

/// How many of a daemon's last log lines a failed test shows.
const LOG_TAIL: usize = 40;

/// A minimal HTTP/1.1 GET over a fresh connection.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    Ok((code, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Fails unless `promtool check metrics` accepts `metrics`.
pub fn promtool_accepts(metrics: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/install-deps.sh installs Debian's prometheus)");
    child.stdin.take().unwrap().write_all(metrics.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a finished run of the binary left behind.
pub struct Exited {
    pub status: std::process::ExitStatus,
    pub stderr: String,
    pub took: Duration,
}

/// Runs the binary with `args` and `env` (stdout discarded, stderr
/// captured) and waits at most `timeout` for it to exit; a process still
/// running then is killed and the test fails.
pub fn run_to_exit(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Exited {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_engagement-monitor"));
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("the binary starts");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let status = wait_until_or_kill(&mut child, timeout);
    let took = start.elapsed();
    Exited { status, stderr: reader.join().unwrap(), took }
}

fn wait_until_or_kill(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A local TCP port nothing listens on: connecting to it is refused.
pub fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Creates a one-partition topic with `cleanup.policy=compact`, as a page
/// directory topic is.
pub fn create_compacted_topic(name: &str) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers()).create().expect("admin client");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let result = rt.block_on(admin.create_topics([&topic], &opts)).unwrap_or_else(|e| {
        panic!("cannot reach the Kafka broker at {} ({e}): start it with scripts/kafka.sh start", brokers())
    });
    for r in result {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

/// Produces `(key, value)` records to partition 0 of `topic` (e.g. page
/// directory records keyed `platform/page_id`) and waits until all are
/// acknowledged.
pub fn produce_records(topic: &str, records: &[(String, String)]) {
    let p = producer("none");
    for (key, value) in records {
        send(&p, BaseRecord::to(topic).payload(value.as_bytes()).key(key.as_str()).partition(0));
    }
    p.flush(Duration::from_secs(60)).expect("all records acknowledged");
}

/// Produces `events` keyed by page, so each page lives in one partition.
pub fn produce_keyed(topic: &str, events: &[String]) {
    let p = producer("lz4");
    for e in events {
        let v: serde_json::Value = serde_json::from_str(e).unwrap();
        let key = v["page_id"].as_str().unwrap().to_string();
        p.send(BaseRecord::to(topic).key(&key).payload(e)).expect("queued");
    }
    p.flush(Duration::from_secs(60)).expect("all acknowledged");
}

/// Produces `events` to partition `partition` of `topic`, keyed by page.
pub fn produce_to(topic: &str, partition: i32, events: &[String]) {
    let p = producer("none");
    for e in events {
        let v: serde_json::Value = serde_json::from_str(e).unwrap();
        let key = v["page_id"].as_str().unwrap().to_string();
        send(&p, BaseRecord::to(topic).key(key.as_str()).payload(e.as_bytes()).partition(partition));
    }
    p.flush(Duration::from_secs(60)).expect("all acknowledged");
}

/// Every JSON message on `topic`, from the beginning (kcat).
pub fn consume_json(topic: &str) -> Vec<serde_json::Value> {
    let out = std::process::Command::new("kcat")
        .args(["-b", &brokers(), "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n"])
        .output()
        .expect("kcat runs (scripts/install-deps.sh installs it)");
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The end offset of each partition of `topic`.
pub fn end_offsets(topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    (0..partitions).map(|p| c.fetch_watermarks(topic, p, Duration::from_secs(5)).unwrap().1).collect()
}

/// Deletes the records of every partition before `offsets` (Kafka's
/// delete-records), as retention would, and checks the log starts moved.
pub fn delete_records(topic: &str, offsets: &[i64]) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets.iter().enumerate() {
        tpl.add_partition_offset(topic, p as i32, Offset::Offset(*o)).unwrap();
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let done = rt.block_on(admin.delete_records(&tpl, &opts)).expect("delete-records");
    for e in done.elements() {
        assert!(e.error().is_ok(), "delete-records of partition {}: {:?}", e.partition(), e.error());
    }
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    for (p, o) in offsets.iter().enumerate() {
        let (low, _) = c.fetch_watermarks(topic, p as i32, Duration::from_secs(5)).unwrap();
        assert_eq!(low, *o, "partition {p} starts at the given offset now");
    }
}

/// A post of the Ministry of Interior on 2025-09-28 with 3,000,000
/// interactions: its quarter then ends at 27,370,680, above the White
/// House's 26,243,488, which led every day before.
pub fn viral_post_of_the_ministry() -> String {
    let moi = &engagement_core::synth::SEED_TABLE[1];
    serde_json::json!({
        "page_id": moi.id, "platform": "facebook", "page_name": moi.name, "post_id": "moi.egy-viral",
        "published_at": "2025-09-28T12:00:00Z", "observed_at": "2025-09-28T13:00:00Z",
        "reactions": 2_400_000, "comments": 375_000, "shares": 225_000, "followers": moi.followers,
    })
    .to_string()
}
