//! The settings table: each setting's key, unit and meaning, and the
//! parsers and printers that move its value between text or TOML and the
//! [`Config`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::Value;

use super::{ClusterMode, Config, LogFormat};

/// Prefix of every environment variable the daemon reads.
pub const ENV_PREFIX: &str = "ENGAGEMENT_MONITOR_";
/// Prefix of environment variables holding librdkafka properties, e.g.
/// `ENGAGEMENT_MONITOR_KAFKA_PROPERTY_SECURITY_PROTOCOL` for
/// `security.protocol`.
pub const PROPERTY_ENV_PREFIX: &str = "ENGAGEMENT_MONITOR_KAFKA_PROPERTY_";
/// The TOML table of librdkafka pass-through properties.
pub const PROPERTIES_KEY: &str = "kafka.properties";

/// `ENGAGEMENT_MONITOR_` + the key upper-cased, dots as underscores:
/// `ranking.top_n` → `ENGAGEMENT_MONITOR_RANKING_TOP_N`.
pub fn env_var_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "_").to_ascii_uppercase())
}

pub(super) fn setting(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// One setting: its place in the file, unit and meaning, and how a value is
/// parsed into the [`Config`] and printed from it.
#[derive(Debug)]
pub struct Setting {
    /// Dotted TOML path, e.g. `ranking.top_n`.
    pub key: &'static str,
    pub unit: &'static str,
    /// One line, for the reference file and the README.
    pub help: &'static str,
    /// Parses and stores a value; `Err` says what was expected.
    pub(super) apply: fn(&mut Config, Raw<'_>) -> Result<(), String>,
    pub(super) show: fn(&Config) -> Value,
}

impl Setting {
    pub fn env_var(&self) -> String {
        env_var_name(self.key)
    }

    /// The default as written in TOML, e.g. `"10s"` or `50`.
    pub fn default_toml(&self) -> String {
        (self.show)(&Config::default()).to_string()
    }
}

/// A [`Setting`] for the field at `$field`, parsed by `$parse` and printed
/// by `$show`.
macro_rules! setting {
    ($key:literal, $unit:literal, $help:literal, $($field:ident).+, $parse:expr, $show:expr) => {
        Setting {
            key: $key,
            unit: $unit,
            help: $help,
            apply: |c, v| {
                c.$($field).+ = $parse(v)?;
                Ok(())
            },
            show: |c| $show(&c.$($field).+),
        }
    };
}

/// A [`Setting`] for the retention of the calendar kind at `$i` in
/// [`CalendarKind::ALL`](engagement_core::window::CalendarKind::ALL) order.
macro_rules! retention {
    ($key:literal, $unit:literal, $help:literal, $i:literal) => {
        Setting {
            key: $key,
            unit: $unit,
            help: $help,
            apply: |c, v| {
                c.windows.retention[$i] = int(v, 1, 61)?;
                Ok(())
            },
            show: |c| int_value(&c.windows.retention[$i]),
        }
    };
}

/// Every setting, in file order; a test checks that each [`Config`] field
/// has one. The pass-through table [`PROPERTIES_KEY`](super::PROPERTIES_KEY) is handled apart.
#[rustfmt::skip]
pub const SETTINGS: &[Setting] = &[
    setting!("shutdown_timeout", "duration",
        "Deadline for a clean exit after SIGTERM or SIGINT.",
        shutdown_timeout, interval, duration_value),
    setting!("kafka.brokers", "host:port list",
        "Kafka bootstrap servers, comma-separated.",
        kafka.brokers, brokers, str_value),
    setting!("kafka.topic", "topic",
        "Topic of engagement events; every partition is read.",
        kafka.topic, topic, str_value),
    setting!("kafka.group_id", "group id",
        "Group under which consumed offsets are committed, for lag monitoring only.",
        kafka.group_id, non_empty, str_value),
    setting!("kafka.dead_letter_topic", "topic, empty = off",
        "Invalid and rejected events are copied to this topic when set.",
        kafka.dead_letter_topic, optional_topic, optional_value),
    setting!("kafka.rank_events_topic", "topic, empty = off",
        "Rank-change events (docs/metrics.md#rank-change-events) are published to this topic when set.",
        kafka.rank_events_topic, optional_topic, optional_value),
    setting!("kafka.metadata_refresh", "duration",
        "How often the topic's partition count is re-read.",
        kafka.metadata_refresh, interval, duration_value),
    setting!("kafka.commit_interval", "duration",
        "How often consumed offsets are committed under the group id.",
        kafka.commit_interval, interval, duration_value),
    setting!("kafka.producer_queue_messages", "messages",
        "Bound on messages queued for the producer (dead letters, rank events).",
        kafka.producer_queue_messages, |v| int(v, 1, i32::MAX as u64), int_value),
    setting!("kafka.producer_queue_kbytes", "KiB",
        "Bound on the bytes queued for the producer (queue.buffering.max.kbytes); further messages are dropped.",
        kafka.producer_queue_kbytes, |v| int(v, 1, MAX_QUEUE_KBYTES), int_value),
    setting!("http.listen", "address",
        "Address of the JSON API, /metrics and the health checks.",
        http.listen, address, address_value),
    setting!("http.request_timeout", "duration",
        "Deadline for answering one HTTP request.",
        http.limits.request_timeout, interval, duration_value),
    setting!("http.max_concurrent_requests", "requests",
        "HTTP requests served at once; more are refused with 503.",
        http.limits.max_concurrent_requests, |v| int(v, 1, 100_000), int_value),
    setting!("http.max_query_bytes", "bytes",
        "Longest accepted query string.",
        http.limits.max_query_bytes, |v| int(v, 1, 1 << 20), int_value),
    setting!("http.header_timeout", "duration",
        "Time for a request's headers to arrive, from its first byte or the connection opening.",
        http.limits.header_timeout, interval, duration_value),
    setting!("http.idle_timeout", "duration",
        "A keep-alive connection with no request for this long is closed.",
        http.limits.idle_timeout, interval, duration_value),
    setting!("http.max_connections", "connections",
        "Open HTTP connections; further ones wait, not accepted, until one closes.",
        http.limits.max_connections, |v| int(v, 1, 1_000_000), int_value),
    setting!("http.web_config_file", "path, empty = none",
        "Web config file (Prometheus exporter-toolkit format): TLS, client certificates, headers, basic auth.",
        http.web_config_file, optional_path, path_value),
    setting!("http.probes_without_auth", "boolean",
        "Whether /healthz and /readyz answer without the basic auth of the web config file.",
        http.probes_without_auth, boolean, bool_value),
    setting!("events.max_future_skew", "duration",
        "How far observed_at may lie ahead of the wall clock.",
        events.max_future_skew, duration, duration_value),
    setting!("events.max_payload_bytes", "bytes",
        "Largest event accepted; larger ones are invalid.",
        events.max_payload_bytes, |v| int(v, 1, 1 << 30), int_value),
    setting!("events.max_watermark_jump", "duration, 0 = off",
        "How far one event may move the watermark ahead before the stream must corroborate the jump.",
        engine.max_watermark_jump, duration, duration_value),
    setting!("events.watermark_jump_quorum", "events",
        "Events past a watermark jump that corroborate it (2 to 100000); those before the last are refused.",
        engine.watermark_jump_quorum, |v| int(v, 2, 100_000), int_value),
    setting!("events.log_rate_per_second", "lines/s",
        "Invalid-event log lines per second; the rest are only counted.",
        events.log_rate_per_second, |v| int(v, 0, u32::MAX.into()), int_value),
    setting!("engine.max_pages", "pages",
        "Most pages tracked; events for further pages are rejected.",
        engine.max_pages, |v| int(v, 0, u32::MAX.into()), int_value),
    setting!("engine.max_posts", "posts",
        "Most posts tracked; events for further posts are rejected.",
        engine.max_posts, |v| int(v, 0, u32::MAX.into()), int_value),
    setting!("engine.max_platforms", "platforms",
        "Most platforms tracked (1 to 1024).",
        engine.max_platforms, |v| int(v, 0, u32::MAX.into()), int_value),
    setting!("engine.max_event_ids", "ids",
        "Event ids of applied deltas remembered to drop duplicates.",
        engine.max_event_ids, |v| int(v, 0, u32::MAX.into()), int_value),
    setting!("engine.top_posts", "posts",
        "Posts listed per page by the page endpoint (at most 100).",
        engine.top_posts, |v| int(v, 0, u32::MAX.into()), int_value),
    setting!("windows.calendar", "kind list",
        "Calendar windows kept: quarter, month, week (ISO 8601), year.",
        windows.calendar, |v| words(v, 4), strings_value),
    setting!("windows.rolling", "duration list",
        "Rolling windows kept, 1d to 366d; the first is the one `rolling` names.",
        windows.rolling, |v| words(v, 8), strings_value),
    retention!("windows.retention.quarter", "quarters", "Quarters kept, the current one included.", 0),
    retention!("windows.retention.month", "months", "Months kept, the current one included.", 1),
    retention!("windows.retention.week", "weeks", "ISO weeks kept, the current one included.", 2),
    retention!("windows.retention.year", "years", "Years kept, the current one included.", 3),
    setting!("ranking.interval", "duration",
        "How often the view is rebuilt and rank changes are detected.",
        ranking.interval, interval, duration_value),
    setting!("ranking.top_n", "pages",
        "Pages per window exported as series and watched for rank changes (1 to 1000).",
        ranking.top_n, |v| int(v, 1, 1000), int_value),
    setting!("ranking.ready_max_lag", "messages",
        "Ready once every partition's lag is at most this many messages.",
        ranking.ready_max_lag, |v| int(v, 0, i64::MAX as u64), int_value),
    setting!("ranking.groups", "dimension:value list",
        "Groups whose leader and top-10 entries and exits are watched by default and exported with a group label (at most 14; docs/directory.md).",
        ranking.groups, groups, strings_value),
    setting!("directory.topic", "topic, empty = none",
        "Compacted topic of page directory records (docs/directory.md); read whole by every instance.",
        directory.topic, optional_topic, optional_value),
    setting!("directory.file", "path, empty = none",
        "JSON Lines file of page directory records, re-read when it changes (instead of a topic).",
        directory.file, optional_path, path_value),
    setting!("directory.max_groups_per_page", "groups",
        "Most groups one directory record may give a page; a record with more is refused.",
        directory.limits.max_groups_per_page, |v| int(v, 1, 1024), int_value),
    setting!("directory.max_values", "groups",
        "Most distinct groups (dimension:value) the directory holds; records adding more are refused.",
        directory.limits.max_values, |v| int(v, 1, 10_000_000), int_value),
    setting!("directory.max_pages", "pages",
        "Most pages the directory holds; records for further pages are refused.",
        directory.limits.max_pages, |v| int(v, 1, 100_000_000), int_value),
    setting!("state.dir", "path, empty = memory only",
        "Directory of checkpoints; empty keeps state in memory only.",
        state.dir, optional_path, path_value),
    setting!("state.checkpoint_interval", "duration",
        "How often a checkpoint of state and offsets is written.",
        state.checkpoint_interval, interval, duration_value),
    setting!("cluster.mode", "replica | shard",
        "replica: every instance reads every partition; shard: the instances of one group split them (docs/scaling.md).",
        cluster.mode, cluster_mode, mode_value),
    setting!("cluster.instance_id", "id, empty = host name",
        "Static group membership id (group.instance.id) in shard mode; empty uses the host name.",
        cluster.instance_id, instance_id, str_value),
    setting!("cluster.state_topic", "topic, empty = <kafka.topic>-shard-state",
        "Compacted topic holding each partition's state in shard mode.",
        cluster.state_topic, topic_or_empty, str_value),
    setting!("cluster.totals_topic", "topic, empty = <kafka.topic>-page-totals",
        "Compacted topic of per-page totals in shard mode.",
        cluster.totals_topic, topic_or_empty, str_value),
    setting!("cluster.partition_silent_after", "duration",
        "In shard mode, a partition whose owner published no heartbeat for this long counts as unowned (at least twice ranking.interval).",
        cluster.partition_silent_after, interval, duration_value),
    setting!("log.format", "text | json",
        "Log line format on stderr.",
        log.format, log_format, format_value),
    setting!("log.level", "filter",
        "Log filter such as info or engagement_monitor=debug; RUST_LOG wins when set.",
        log.level, log_filter, str_value),
];

/// A value as given: typed in the TOML file, text in the environment or a
/// flag.
#[derive(Debug, Clone, Copy)]
pub(super) enum Raw<'a> {
    Toml(&'a Value),
    Text(&'a str),
}

impl Raw<'_> {
    /// The value as an error message quotes it.
    pub(super) fn shown(self) -> String {
        match self {
            Raw::Toml(value) => value.to_string(),
            Raw::Text(text) => format!("{text:?}"),
        }
    }
}

const DURATION_EXPECTED: &str = "a duration like 10s or 500ms";

/// Longest duration any setting takes: 365 days (8760h). Durations are
/// added to `Instant`s and converted to i64 milliseconds
/// (`events.max_future_skew`); below this bound both are exact, far from
/// overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Largest producer queue in KiB: 2 GiB (librdkafka would take more, a
/// queue of dead letters and rank events never needs it).
const MAX_QUEUE_KBYTES: u64 = 2 * 1024 * 1024;
const TOPIC_EXPECTED: &str = "a Kafka topic name: 1 to 249 of a-z A-Z 0-9 . _ -";
const INSTANCE_ID_EXPECTED: &str = "a group instance id: 1 to 249 of a-z A-Z 0-9 . _ -, or empty for the host name";

/// Parses `500ms`, `10s`, `2m` or `1h`: digits, then one unit.
pub fn parse_duration(text: &str) -> Result<Duration, &'static str> {
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or(DURATION_EXPECTED)?;
    let (digits, unit) = text.split_at(split);
    let count: u64 = digits.parse().map_err(|_| DURATION_EXPECTED)?;
    let millis_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(DURATION_EXPECTED),
    };
    let millis = count.checked_mul(millis_per_unit).ok_or(DURATION_EXPECTED)?;
    Ok(Duration::from_millis(millis))
}

/// The largest whole unit [`parse_duration`] reads back: `90s` → `"90s"`,
/// `3600s` → `"1h"`.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    match ms {
        0 => "0s".into(),
        _ if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        _ if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        _ if ms % 1_000 == 0 => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

fn string(v: Raw<'_>) -> Result<&str, String> {
    match v {
        Raw::Toml(Value::String(s)) => Ok(s),
        Raw::Text(s) => Ok(s),
        Raw::Toml(_) => Err("a string".into()),
    }
}

/// Most groups `ranking.groups` names: each adds a default watch, and the
/// two default watches and these stay within the 16 watches allowed.
pub const MAX_RANKING_GROUPS: usize = 14;

/// A list of `dimension:value` groups: a TOML array of strings, or
/// comma-separated text in the environment or a flag.
fn groups(v: Raw<'_>) -> Result<Vec<String>, String> {
    let expected = || format!("at most {MAX_RANKING_GROUPS} groups dimension:value, e.g. [\"category:government\"]");
    let items = list(v, expected)?;
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if engagement_core::directory::parse_group(item).is_none() || out.len() >= MAX_RANKING_GROUPS {
            return Err(expected());
        }
        if !out.iter().any(|g| g == item) {
            out.push(item.to_owned());
        }
    }
    Ok(out)
}

/// A list of short words: a TOML array of strings, or comma-separated
/// text in the environment or a flag; at most `max`, each checked later
/// as a whole specification.
fn words(v: Raw<'_>, max: usize) -> Result<Vec<String>, String> {
    let expected = || format!("a list of at most {max} names, e.g. [\"quarter\", \"month\"] or [\"90d\", \"7d\"]");
    let items = list(v, expected)?;
    if items.len() > max || items.iter().any(|i| i.len() > 16) {
        return Err(expected());
    }
    Ok(items.into_iter().map(str::to_owned).collect())
}

/// The items of a list setting: a TOML array of strings, or comma-separated
/// text (empty items dropped); `expected` says what was wanted otherwise.
fn list<'a>(v: Raw<'a>, expected: impl Fn() -> String) -> Result<Vec<&'a str>, String> {
    match v {
        Raw::Toml(Value::Array(items)) => items.iter().map(|i| i.as_str().ok_or_else(&expected)).collect(),
        Raw::Text(text) => Ok(text.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()),
        Raw::Toml(_) => Err(expected()),
    }
}

fn strings_value(strings: &[String]) -> Value {
    Value::Array(strings.iter().map(|g| Value::String(g.clone())).collect())
}

fn non_empty(v: Raw<'_>) -> Result<String, String> {
    match string(v)? {
        s if s.trim().is_empty() => Err("a non-empty string".into()),
        s => Ok(s.to_owned()),
    }
}

fn brokers(v: Raw<'_>) -> Result<String, String> {
    let s = string(v)?;
    match s.split(',').all(|b| !b.trim().is_empty()) {
        true => Ok(s.to_owned()),
        false => Err("a comma-separated list of host:port, like kafka-1:9092,kafka-2:9092".into()),
    }
}

/// Whether `s` is a legal Kafka topic name (and group instance id: Kafka
/// checks both alike).
pub(super) fn is_topic_name(s: &str) -> bool {
    let legal = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
    (1..=249).contains(&s.len()) && s != "." && s != ".." && s.bytes().all(legal)
}

fn topic(v: Raw<'_>) -> Result<String, String> {
    let s = string(v)?;
    match is_topic_name(s) {
        true => Ok(s.to_owned()),
        false => Err(TOPIC_EXPECTED.into()),
    }
}

/// A topic name, or empty for a name derived from `kafka.topic`.
fn topic_or_empty(v: Raw<'_>) -> Result<String, String> {
    match string(v)? {
        "" => Ok(String::new()),
        _ => topic(v).map_err(|_| format!("{TOPIC_EXPECTED}, or empty for the derived name")),
    }
}

/// A `group.instance.id`, or empty for the host name.
fn instance_id(v: Raw<'_>) -> Result<String, String> {
    match string(v).map_err(|_| INSTANCE_ID_EXPECTED.to_owned())? {
        "" => Ok(String::new()),
        s if is_topic_name(s) => Ok(s.to_owned()),
        _ => Err(INSTANCE_ID_EXPECTED.into()),
    }
}

/// Case-sensitive, like `log.format`.
fn cluster_mode(v: Raw<'_>) -> Result<ClusterMode, String> {
    match string(v).map_err(|_| "replica or shard".to_owned())? {
        "replica" => Ok(ClusterMode::Replica),
        "shard" => Ok(ClusterMode::Shard),
        _ => Err("replica or shard".into()),
    }
}

fn optional_topic(v: Raw<'_>) -> Result<Option<String>, String> {
    match string(v)? {
        "" => Ok(None),
        _ => topic(v).map(Some),
    }
}

/// An integer in `min..=max`, converted to the field's type.
fn int<T: TryFrom<u64>>(v: Raw<'_>, min: u64, max: u64) -> Result<T, String> {
    let n = match v {
        Raw::Toml(Value::Integer(i)) => u64::try_from(*i).ok(),
        Raw::Toml(_) => None,
        Raw::Text(s) => s.parse().ok(),
    };
    n.filter(|n| (min..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("an integer from {min} to {max}"))
}

/// A duration of at most [`MAX_DURATION`].
fn duration(v: Raw<'_>) -> Result<Duration, String> {
    let s = string(v).map_err(|_| DURATION_EXPECTED.to_owned())?;
    match parse_duration(s).map_err(str::to_owned)? {
        d if d > MAX_DURATION => Err("a duration of at most 8760h (365 days)".into()),
        d => Ok(d),
    }
}

/// A duration above zero: a zero interval would spin.
fn interval(v: Raw<'_>) -> Result<Duration, String> {
    match duration(v)? {
        d if d.is_zero() => Err("a duration above zero, like 10s or 500ms".into()),
        d => Ok(d),
    }
}

fn address(v: Raw<'_>) -> Result<SocketAddr, String> {
    string(v)?.parse().map_err(|_| "an address like 127.0.0.1:9898 or [::]:9898".into())
}

fn optional_path(v: Raw<'_>) -> Result<Option<PathBuf>, String> {
    match string(v)? {
        "" => Ok(None),
        s => Ok(Some(PathBuf::from(s))),
    }
}

/// `true` or `false`: a TOML boolean, or that text in the environment.
fn boolean(v: Raw<'_>) -> Result<bool, String> {
    match v {
        Raw::Toml(Value::Boolean(b)) => Ok(*b),
        Raw::Text("true") => Ok(true),
        Raw::Text("false") => Ok(false),
        _ => Err("true or false".into()),
    }
}

fn bool_value(b: &bool) -> Value {
    Value::Boolean(*b)
}

fn log_format(v: Raw<'_>) -> Result<LogFormat, String> {
    match string(v)? {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("text or json".into()),
    }
}

/// Checked here so that a bad filter fails at start, naming the setting.
fn log_filter(v: Raw<'_>) -> Result<String, String> {
    let s = non_empty(v)?;
    match tracing_subscriber::EnvFilter::try_new(&s) {
        Ok(_) => Ok(s),
        Err(e) => Err(format!("a log filter like info or engagement_monitor=debug ({e})")),
    }
}

fn str_value<S: AsRef<str>>(s: &S) -> Value {
    Value::String(s.as_ref().to_owned())
}

fn optional_value(s: &Option<String>) -> Value {
    Value::String(s.clone().unwrap_or_default())
}

/// Values are bounded on input well below `i64::MAX`.
fn int_value<T: Copy + TryInto<i64>>(n: &T) -> Value {
    Value::Integer((*n).try_into().unwrap_or(i64::MAX))
}

fn duration_value(d: &Duration) -> Value {
    Value::String(format_duration(*d))
}

fn address_value(a: &SocketAddr) -> Value {
    Value::String(a.to_string())
}

fn path_value(p: &Option<PathBuf>) -> Value {
    Value::String(p.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default())
}

fn format_value(f: &LogFormat) -> Value {
    Value::String(f.as_str().to_owned())
}

fn mode_value(m: &ClusterMode) -> Value {
    Value::String(m.as_str().to_owned())
}
