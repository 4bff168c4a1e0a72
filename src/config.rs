//! Configuration: one typed tree, layered defaults < file < environment <
//! flags. Every error names the setting and where its value came from.
//!
//! [`SETTINGS`] is the one list of settings: dotted key (the TOML path),
//! unit, meaning, and how a value is parsed and printed; the environment
//! variable follows from the key ([`env_var_name`]). Loading, `check-config`
//! ([`render_effective`]) and the reference file
//! `config/engagement-monitor.toml` are driven by it, and tests keep the
//! reference file and the [`Config`] fields in step with it.
//!
//! Loading is pure: `main` captures the environment ([`Env`]) and the flags
//! ([`Overrides`]) and passes them in with the file path.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Value;

use engagement_core::engine::Limits;

/// The daemon's whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub http: HttpConfig,
    pub events: EventsConfig,
    pub engine: Limits,
    pub ranking: RankingConfig,
    pub state: StateConfig,
    pub log: LogConfig,
    /// Deadline for a clean exit after SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KafkaConfig {
    /// `bootstrap.servers`, comma-separated.
    pub brokers: String,
    pub topic: String,
    /// Group id under which offsets are committed (for lag monitoring only).
    pub group_id: String,
    /// Invalid and refused events are copied here when set.
    pub dead_letter_topic: Option<String>,
    /// Rank-change events (SPEC §5) are published here when set.
    pub rank_events_topic: Option<String>,
    /// librdkafka properties passed through unchanged (TLS, SASL, tuning);
    /// applied to the consumer and the producer, after our defaults.
    pub properties: BTreeMap<String, String>,
    /// How often the topic's partition count is re-read.
    pub metadata_refresh: Duration,
    /// How often consumed offsets are committed under the group id.
    pub commit_interval: Duration,
    /// Bound on messages queued for the producer (dead letters, rank events).
    pub producer_queue_messages: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
    /// Longest accepted query string, in bytes.
    pub max_query_bytes: usize,
    /// A request's headers must arrive within this long of its first byte
    /// (of the connection opening, for the first request).
    pub header_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections; further ones wait in the listen backlog.
    pub max_connections: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventsConfig {
    /// How far `observed_at` may lie ahead of the wall clock (SPEC: 1 h).
    pub max_future_skew: Duration,
    pub max_payload_bytes: usize,
    /// Invalid-event log lines allowed per second (the rest are counted).
    pub log_rate_per_second: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RankingConfig {
    /// How often the view is rebuilt and rank changes detected (SPEC: 10 s).
    pub interval: Duration,
    /// Pages per window exported as series and watched for changes (SPEC: 50).
    pub top_n: usize,
    /// Ready once every partition's lag is at most this many messages.
    pub ready_max_lag: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    /// Where checkpoints live; `None` keeps state in memory only.
    pub dir: Option<PathBuf>,
    pub checkpoint_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `engagement_monitor=debug`;
    /// `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            kafka: KafkaConfig {
                brokers: "127.0.0.1:9092".into(),
                topic: "engagement-events".into(),
                group_id: "engagement-monitor".into(),
                dead_letter_topic: None,
                rank_events_topic: None,
                properties: BTreeMap::new(),
                metadata_refresh: Duration::from_secs(30),
                commit_interval: Duration::from_secs(5),
                producer_queue_messages: 100_000,
            },
            http: HttpConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 9898)),
                request_timeout: Duration::from_secs(5),
                max_concurrent_requests: 64,
                max_query_bytes: 1024,
                header_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(60),
                max_connections: 1024,
            },
            events: EventsConfig {
                max_future_skew: Duration::from_secs(3600),
                max_payload_bytes: 64 * 1024,
                log_rate_per_second: 10,
            },
            engine: Limits::default(),
            ranking: RankingConfig { interval: Duration::from_secs(10), top_n: 50, ready_max_lag: 1000 },
            state: StateConfig { dir: None, checkpoint_interval: Duration::from_secs(60) },
            log: LogConfig { format: LogFormat::Text, level: "info".into() },
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Prefix of every environment variable the daemon reads.
pub const ENV_PREFIX: &str = "ENGAGEMENT_MONITOR_";
/// Prefix of environment variables holding librdkafka properties, e.g.
/// `ENGAGEMENT_MONITOR_KAFKA_PROPERTY_SECURITY_PROTOCOL` for
/// `security.protocol`.
pub const PROPERTY_ENV_PREFIX: &str = "ENGAGEMENT_MONITOR_KAFKA_PROPERTY_";
/// The TOML table of librdkafka pass-through properties.
pub const PROPERTIES_KEY: &str = "kafka.properties";

/// Pass-through properties whose name contains one of these hold secrets;
/// they are printed as `"<redacted>"`.
pub const SECRET_MARKERS: [&str; 6] = ["password", "secret", "sasl.jaas", ".key.pem", "token", "ssl.key"];
const REDACTED: &str = "<redacted>";

/// Properties the daemon owns: passing them through would break its offset
/// discipline (SPEC §7) or contradict a dedicated setting.
const RESERVED_PROPERTIES: [(&str, &str); 5] = [
    ("bootstrap.servers", "set kafka.brokers instead"),
    ("metadata.broker.list", "set kafka.brokers instead"),
    ("group.id", "set kafka.group_id instead"),
    ("enable.auto.commit", "the daemon commits offsets itself, never ahead of its state"),
    ("enable.auto.offset.store", "the daemon stores offsets itself, after applying the events"),
];

/// `ENGAGEMENT_MONITOR_` + the key upper-cased, dots as underscores:
/// `ranking.top_n` → `ENGAGEMENT_MONITOR_RANKING_TOP_N`.
/// Variables Kubernetes injects for a Service named `engagement-monitor`
/// (service links); they are not settings and must not stop the daemon.
fn is_kubernetes_service_link(name: &str) -> bool {
    let rest = &name[ENV_PREFIX.len().min(name.len())..];
    rest.starts_with("SERVICE_HOST") || rest.starts_with("SERVICE_PORT") || rest == "PORT" || rest.starts_with("PORT_")
}

pub fn env_var_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Where a value came from. Displays as in `check-config` comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    /// The environment variable's name.
    Env(String),
    /// The flag, e.g. `--listen`.
    Flag(&'static str),
}

impl Source {
    /// The source as error messages put it.
    fn origin(&self) -> String {
        match self {
            Source::Default => "default".into(),
            Source::File(path) => format!("from {}", path.display()),
            Source::Env(name) => format!("from environment variable {name}"),
            Source::Flag(flag) => format!("from flag {flag}"),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(_) => f.write_str("file"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A loaded configuration and the source of each value, keyed by dotted
/// key (pass-through properties as `kafka.properties.<name>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub sources: BTreeMap<String, Source>,
}

/// The environment layer: this program's variables (those starting with
/// [`ENV_PREFIX`]), captured by `main`. A set rather than a lookup function
/// because pass-through properties are found by listing the variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// From `std::env::vars_os()`; a variable of ours that is not UTF-8 is
    /// an error rather than silently ignored.
    pub fn from_os(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Result<Env, ConfigError> {
        let mut env = Env::default();
        for (name, value) in vars {
            if !name.as_encoded_bytes().starts_with(ENV_PREFIX.as_bytes()) {
                continue;
            }
            let not_unicode = |name: &OsString| ConfigError::NotUnicode { name: name.to_string_lossy().into_owned() };
            let value = value.into_string().map_err(|_| not_unicode(&name))?;
            let name = name.into_string().map_err(|n| not_unicode(&n))?;
            env.vars.insert(name, value);
        }
        Ok(env)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Env {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(vars: I) -> Env {
        let vars = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(k, _): &(String, String)| k.starts_with(ENV_PREFIX))
            .collect();
        Env { vars }
    }
}

/// The flags layer: values as typed on the command line, parsed by the
/// loader so that errors name the flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    values: Vec<(&'static str, &'static str, String)>,
    properties: Vec<(String, String)>,
}

impl Overrides {
    /// Sets `key` from `flag` (e.g. `--listen`) when `value` was given.
    pub fn set(&mut self, key: &'static str, flag: &'static str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.values.push((key, flag, value.to_owned()));
        }
        self
    }

    /// A pass-through property from `--kafka-property NAME=VALUE`.
    pub fn property(&mut self, name: &str, value: &str) -> &mut Self {
        self.properties.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// Why a configuration was refused. Each message names the setting and the
/// source of the offending value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} is not valid TOML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("unknown setting {key} ({origin})")]
    UnknownKey { key: String, origin: String },
    #[error("unknown environment variable {name}: no setting has that name")]
    UnknownEnv { name: String },
    #[error("environment variable {name} is not valid UTF-8")]
    NotUnicode { name: String },
    #[error("invalid value {value} for {key} ({origin}): expected {expected}")]
    Invalid { key: String, value: String, origin: String, expected: String },
    #[error("invalid value {value} for {key} ({origin}): {rule}")]
    Rule { key: String, value: String, origin: String, rule: String },
    #[error("kafka property {name} ({origin}) cannot be passed through: {reason}")]
    Reserved { name: String, origin: String, reason: &'static str },
}

/// Loads the configuration: defaults < `file` < `env` < `flags`, then
/// validates the whole.
pub fn load(file: Option<&Path>, env: &Env, flags: &Overrides) -> Result<Loaded, ConfigError> {
    let text = match file {
        Some(path) => {
            Some(std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?)
        }
        None => None,
    };
    load_text(file.zip(text.as_deref()), env, flags)
}

/// [`load`] with the file already read: `(path, contents)`.
fn load_text(file: Option<(&Path, &str)>, env: &Env, flags: &Overrides) -> Result<Loaded, ConfigError> {
    let mut loaded = Loaded::defaults();
    if let Some((path, text)) = file {
        loaded.apply_file(path, text)?;
    }
    loaded.apply_env(env)?;
    loaded.apply_flags(flags)?;
    loaded.check_limits()?;
    Ok(loaded)
}

impl Loaded {
    fn defaults() -> Loaded {
        let sources = SETTINGS.iter().map(|s| (s.key.to_owned(), Source::Default)).collect();
        Loaded { config: Config::default(), sources }
    }

    fn apply_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax { path: path.to_owned(), message: e.to_string() })?;
        let mut entries = Vec::new();
        flatten("", &table, &mut entries);
        for (key, value) in entries {
            let source = Source::File(path.to_owned());
            match key.strip_prefix(PROPERTIES_KEY).and_then(|k| k.strip_prefix('.')) {
                Some(name) => self.set_property(name, &property_text(&key, value, &source)?, source)?,
                None => self.set(&key, Raw::Toml(value), source)?,
            }
        }
        Ok(())
    }

    fn apply_env(&mut self, env: &Env) -> Result<(), ConfigError> {
        for (name, value) in &env.vars {
            let source = Source::Env(name.clone());
            if let Some(property) = name.strip_prefix(PROPERTY_ENV_PREFIX) {
                // librdkafka names have dots and no underscores.
                let property = property.replace('_', ".").to_ascii_lowercase();
                self.set_property(&property, value, source)?;
            } else if let Some(setting) = SETTINGS.iter().find(|s| env_var_name(s.key) == *name) {
                self.set(setting.key, Raw::Text(value), source)?;
            } else if is_kubernetes_service_link(name) {
                // Kubernetes adds ENGAGEMENT_MONITOR_SERVICE_HOST, ..._PORT,
                // ..._PORT_9898_TCP... for a Service of that name: not ours.
                continue;
            } else {
                // A misspelt variable would otherwise be silently ignored.
                return Err(ConfigError::UnknownEnv { name: name.clone() });
            }
        }
        Ok(())
    }

    fn apply_flags(&mut self, flags: &Overrides) -> Result<(), ConfigError> {
        for (key, flag, value) in &flags.values {
            self.set(key, Raw::Text(value), Source::Flag(flag))?;
        }
        for (name, value) in &flags.properties {
            self.set_property(name, value, Source::Flag("--kafka-property"))?;
        }
        Ok(())
    }

    fn set(&mut self, key: &str, raw: Raw<'_>, source: Source) -> Result<(), ConfigError> {
        let setting =
            setting(key).ok_or_else(|| ConfigError::UnknownKey { key: key.to_owned(), origin: source.origin() })?;
        (setting.apply)(&mut self.config, raw).map_err(|expected| ConfigError::Invalid {
            key: key.to_owned(),
            value: raw.shown(),
            origin: source.origin(),
            expected,
        })?;
        self.sources.insert(setting.key.to_owned(), source);
        Ok(())
    }

    /// Sets a pass-through property; an empty value removes it, so a later
    /// layer can unset what an earlier one set.
    fn set_property(&mut self, name: &str, value: &str, source: Source) -> Result<(), ConfigError> {
        check_property(name, &source)?;
        let key = format!("{PROPERTIES_KEY}.{name}");
        let properties = &mut self.config.kafka.properties;
        if value.is_empty() {
            properties.remove(name);
            self.sources.remove(&key);
        } else {
            properties.insert(name.to_owned(), value.to_owned());
            self.sources.insert(key, source);
        }
        Ok(())
    }

    /// [`Limits::validate`] on the merged limits; the error names the
    /// offending `engine.*` key and its source.
    fn check_limits(&self) -> Result<(), ConfigError> {
        let Err(reason) = self.config.engine.validate() else {
            return Ok(());
        };
        let field = reason.split_whitespace().next().unwrap_or_default();
        let key = format!("engine.{field}");
        let value = setting(&key).map_or_else(String::new, |s| (s.show)(&self.config).to_string());
        Err(ConfigError::Rule {
            origin: self.sources.get(&key).unwrap_or(&Source::Default).origin(),
            rule: reason.strip_prefix(field).unwrap_or(reason).trim().to_owned(),
            key,
            value,
        })
    }
}

/// Flattens nested tables to dotted keys, so `[ranking] top_n = 5`,
/// `ranking.top_n = 5` and an unquoted `security.protocol` under
/// `[kafka.properties]` all arrive the same way.
fn flatten<'a>(prefix: &str, table: &'a toml::Table, out: &mut Vec<(String, &'a Value)>) {
    for (name, value) in table {
        let key = match prefix {
            "" => name.clone(),
            _ => format!("{prefix}.{name}"),
        };
        match value {
            Value::Table(inner) => flatten(&key, inner, out),
            _ => out.push((key, value)),
        }
    }
}

/// A property's value from the file: librdkafka takes strings, but
/// `"linger.ms" = 5` or `"enable.idempotence" = true` are natural TOML.
fn property_text(key: &str, value: &Value, source: &Source) -> Result<String, ConfigError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Integer(_) | Value::Float(_) | Value::Boolean(_) => Ok(value.to_string()),
        _ => Err(ConfigError::Invalid {
            key: key.to_owned(),
            value: value.to_string(),
            origin: source.origin(),
            expected: "a string".into(),
        }),
    }
}

fn check_property(name: &str, source: &Source) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::Invalid {
            key: PROPERTIES_KEY.into(),
            value: "\"\"".into(),
            origin: source.origin(),
            expected: "a librdkafka property name such as security.protocol".into(),
        });
    }
    let lower = name.to_ascii_lowercase();
    match RESERVED_PROPERTIES.iter().find(|(reserved, _)| *reserved == lower) {
        Some((_, reason)) => Err(ConfigError::Reserved { name: name.to_owned(), origin: source.origin(), reason }),
        None => Ok(()),
    }
}

fn setting(key: &str) -> Option<&'static Setting> {
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
    apply: fn(&mut Config, Raw<'_>) -> Result<(), String>,
    show: fn(&Config) -> Value,
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

/// Every setting, in file order; a test checks that each [`Config`] field
/// has one. The pass-through table [`PROPERTIES_KEY`] is handled apart.
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
        "Invalid and refused events are copied to this topic when set.",
        kafka.dead_letter_topic, optional_topic, optional_value),
    setting!("kafka.rank_events_topic", "topic, empty = off",
        "Rank-change events (SPEC §5) are published to this topic when set.",
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
    setting!("http.listen", "address",
        "Address of the JSON API, /metrics and the health checks.",
        http.listen, address, address_value),
    setting!("http.request_timeout", "duration",
        "Deadline for answering one HTTP request.",
        http.request_timeout, interval, duration_value),
    setting!("http.max_concurrent_requests", "requests",
        "HTTP requests served at once; more are refused with 503.",
        http.max_concurrent_requests, |v| int(v, 1, 100_000), int_value),
    setting!("http.max_query_bytes", "bytes",
        "Longest accepted query string.",
        http.max_query_bytes, |v| int(v, 1, 1 << 20), int_value),
    setting!("http.header_timeout", "duration",
        "Time for a request's headers to arrive, from its first byte or the connection opening.",
        http.header_timeout, interval, duration_value),
    setting!("http.idle_timeout", "duration",
        "A keep-alive connection with no request for this long is closed.",
        http.idle_timeout, interval, duration_value),
    setting!("http.max_connections", "connections",
        "Open HTTP connections; further ones wait, not accepted, until one closes.",
        http.max_connections, |v| int(v, 1, 1_000_000), int_value),
    setting!("events.max_future_skew", "duration",
        "How far observed_at may lie ahead of the wall clock.",
        events.max_future_skew, duration, duration_value),
    setting!("events.max_payload_bytes", "bytes",
        "Largest event accepted; larger ones are invalid.",
        events.max_payload_bytes, |v| int(v, 1, 1 << 30), int_value),
    setting!("events.log_rate_per_second", "lines/s",
        "Invalid-event log lines per second; the rest are only counted.",
        events.log_rate_per_second, |v| int(v, 0, u32::MAX.into()), int_value),
    setting!("engine.retained_quarters", "quarters",
        "Earlier quarters kept besides the current one (at most 7).",
        engine.retained_quarters, |v| int(v, 0, u32::MAX.into()), int_value),
    setting!("engine.rolling_days", "days",
        "Length of the rolling window (1 to 366).",
        engine.rolling_days, |v| int(v, 0, u32::MAX.into()), int_value),
    setting!("engine.max_pages", "pages",
        "Most pages tracked; events for further pages are refused.",
        engine.max_pages, |v| int(v, 0, u32::MAX.into()), int_value),
    setting!("engine.max_posts", "posts",
        "Most posts tracked; events for further posts are refused.",
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
    setting!("ranking.interval", "duration",
        "How often the view is rebuilt and rank changes are detected.",
        ranking.interval, interval, duration_value),
    setting!("ranking.top_n", "pages",
        "Pages per window exported as series and watched for rank changes (1 to 1000).",
        ranking.top_n, |v| int(v, 1, 1000), int_value),
    setting!("ranking.ready_max_lag", "messages",
        "Ready once every partition's lag is at most this many messages.",
        ranking.ready_max_lag, |v| int(v, 0, i64::MAX as u64), int_value),
    setting!("state.dir", "path, empty = memory only",
        "Directory of checkpoints; empty keeps state in memory only.",
        state.dir, optional_path, path_value),
    setting!("state.checkpoint_interval", "duration",
        "How often a checkpoint of state and offsets is written.",
        state.checkpoint_interval, interval, duration_value),
    setting!("log.format", "text | json",
        "Log line format on stderr.",
        log.format, log_format, format_value),
    setting!("log.level", "filter",
        "Log filter such as info or engagement_monitor=debug; RUST_LOG wins when set.",
        log.level, log_filter, str_value),
];

/// The effective configuration as TOML, each value followed by its source;
/// secrets are printed as `"<redacted>"`.
pub fn render_effective(loaded: &Loaded) -> String {
    let mut out = String::from("# engagement-monitor effective configuration; each value is followed by its source.\n");
    let mut table = "";
    for s in SETTINGS {
        let (section, name) = s.key.rsplit_once('.').unwrap_or(("", s.key));
        if section != table {
            out.push_str(&format!("\n[{section}]\n"));
            table = section;
        }
        let value = match (s.show)(&loaded.config) {
            Value::String(brokers) if s.key == "kafka.brokers" => Value::String(redact_brokers(&brokers)),
            value => value,
        };
        push_line(&mut out, name, &value, loaded.sources.get(s.key));
    }
    out.push_str(&format!("\n[{PROPERTIES_KEY}]\n"));
    for (name, value) in &loaded.config.kafka.properties {
        let value = if is_secret(name) { REDACTED } else { value };
        let source = loaded.sources.get(&format!("{PROPERTIES_KEY}.{name}"));
        // A quoted key: property names contain dots.
        let key = Value::String(name.clone()).to_string();
        push_line(&mut out, &key, &Value::String(value.to_owned()), source);
    }
    out
}

fn push_line(out: &mut String, name: &str, value: &Value, source: Option<&Source>) {
    let assignment = format!("{name} = {value}");
    let source = source.unwrap_or(&Source::Default);
    out.push_str(&format!("{assignment:<40} # {source}\n"));
}

fn is_secret(property: &str) -> bool {
    let lower = property.to_ascii_lowercase();
    SECRET_MARKERS.iter().any(|marker| lower.contains(marker))
}

/// Replaces `user:pass@` in each broker URL with `<redacted>@`.
fn redact_brokers(brokers: &str) -> String {
    brokers.split(',').map(redact_userinfo).collect::<Vec<_>>().join(",")
}

fn redact_userinfo(broker: &str) -> Cow<'_, str> {
    let start = broker.find("://").map_or(0, |i| i + 3);
    match broker.rfind('@') {
        Some(at) if at >= start => format!("{}{REDACTED}@{}", &broker[..start], &broker[at + 1..]).into(),
        _ => broker.into(),
    }
}

/// A value as given: typed in the TOML file, text in the environment or a
/// flag.
#[derive(Debug, Clone, Copy)]
enum Raw<'a> {
    Toml(&'a Value),
    Text(&'a str),
}

impl Raw<'_> {
    /// The value as an error message quotes it.
    fn shown(self) -> String {
        match self {
            Raw::Toml(value) => value.to_string(),
            Raw::Text(text) => format!("{text:?}"),
        }
    }
}

const DURATION_EXPECTED: &str = "a duration like 10s or 500ms";
const TOPIC_EXPECTED: &str = "a Kafka topic name: 1 to 249 of a-z A-Z 0-9 . _ -";

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

fn topic(v: Raw<'_>) -> Result<String, String> {
    let s = string(v)?;
    let legal = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
    match (1..=249).contains(&s.len()) && s != "." && s != ".." && s.bytes().all(legal) {
        true => Ok(s.to_owned()),
        false => Err(TOPIC_EXPECTED.into()),
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

fn duration(v: Raw<'_>) -> Result<Duration, String> {
    let s = string(v).map_err(|_| DURATION_EXPECTED.to_owned())?;
    parse_duration(s).map_err(str::to_owned)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<Loaded, ConfigError> {
        load_text(Some((Path::new("/etc/em.toml"), text)), &Env::default(), &Overrides::default())
    }

    fn env(vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        load_text(None, &vars.iter().copied().collect(), &Overrides::default())
    }

    fn error(result: Result<Loaded, ConfigError>) -> String {
        result.expect_err("configuration should be refused").to_string()
    }

    #[test]
    fn durations_take_one_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "10", "s", "1.5s", "-1s", "10 s", "1d", "1m30s", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn durations_print_in_the_largest_whole_unit() {
        for (ms, text) in
            [(0, "0s"), (250, "250ms"), (1500, "1500ms"), (90_000, "90s"), (120_000, "2m"), (7_200_000, "2h")]
        {
            let d = Duration::from_millis(ms);
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Ok(d));
        }
    }

    #[test]
    fn env_names_follow_the_key() {
        assert_eq!(env_var_name("kafka.brokers"), "ENGAGEMENT_MONITOR_KAFKA_BROKERS");
        assert_eq!(env_var_name("ranking.top_n"), "ENGAGEMENT_MONITOR_RANKING_TOP_N");
        assert_eq!(env_var_name("shutdown_timeout"), "ENGAGEMENT_MONITOR_SHUTDOWN_TIMEOUT");
        // No setting's variable may be mistaken for a pass-through property.
        for s in SETTINGS {
            assert!(!s.env_var().starts_with(PROPERTY_ENV_PREFIX), "{}", s.key);
        }
    }

    #[test]
    fn keys_are_unique() {
        let keys: std::collections::BTreeSet<_> = SETTINGS.iter().map(|s| s.key).collect();
        assert_eq!(keys.len(), SETTINGS.len());
    }

    #[test]
    fn every_config_field_has_a_setting() {
        // Destructured without `..`: a new field fails to compile here
        // until it is listed, and the list must match SETTINGS.
        let Config {
            kafka:
                KafkaConfig {
                    brokers: _,
                    topic: _,
                    group_id: _,
                    dead_letter_topic: _,
                    rank_events_topic: _,
                    properties: _,
                    metadata_refresh: _,
                    commit_interval: _,
                    producer_queue_messages: _,
                },
            http:
                HttpConfig {
                    listen: _,
                    request_timeout: _,
                    max_concurrent_requests: _,
                    max_query_bytes: _,
                    header_timeout: _,
                    idle_timeout: _,
                    max_connections: _,
                },
            events: EventsConfig { max_future_skew: _, max_payload_bytes: _, log_rate_per_second: _ },
            engine:
                Limits {
                    retained_quarters: _,
                    rolling_days: _,
                    max_pages: _,
                    max_posts: _,
                    max_platforms: _,
                    max_event_ids: _,
                    top_posts: _,
                },
            ranking: RankingConfig { interval: _, top_n: _, ready_max_lag: _ },
            state: StateConfig { dir: _, checkpoint_interval: _ },
            log: LogConfig { format: _, level: _ },
            shutdown_timeout: _,
        } = Config::default();
        let fields = [
            "shutdown_timeout",
            "kafka.brokers",
            "kafka.topic",
            "kafka.group_id",
            "kafka.dead_letter_topic",
            "kafka.rank_events_topic",
            "kafka.metadata_refresh",
            "kafka.commit_interval",
            "kafka.producer_queue_messages",
            "http.listen",
            "http.request_timeout",
            "http.max_concurrent_requests",
            "http.max_query_bytes",
            "http.header_timeout",
            "http.idle_timeout",
            "http.max_connections",
            "events.max_future_skew",
            "events.max_payload_bytes",
            "events.log_rate_per_second",
            "engine.retained_quarters",
            "engine.rolling_days",
            "engine.max_pages",
            "engine.max_posts",
            "engine.max_platforms",
            "engine.max_event_ids",
            "engine.top_posts",
            "ranking.interval",
            "ranking.top_n",
            "ranking.ready_max_lag",
            "state.dir",
            "state.checkpoint_interval",
            "log.format",
            "log.level",
        ];
        let keys: Vec<_> = SETTINGS.iter().map(|s| s.key).collect();
        assert_eq!(keys, fields);
    }

    #[test]
    fn no_file_no_env_no_flags_gives_defaults() {
        let loaded = load(None, &Env::default(), &Overrides::default()).expect("defaults are valid");
        assert_eq!(loaded.config, Config::default());
        assert!(loaded.sources.values().all(|s| *s == Source::Default));
        assert_eq!(loaded.sources.len(), SETTINGS.len());
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let text = "[ranking]\ninterval = \"1m\"\ntop_n = 10\nready_max_lag = 5\n[http]\nlisten = \"0.0.0.0:1\"\n";
        let env: Env = [("ENGAGEMENT_MONITOR_RANKING_TOP_N", "20"), ("ENGAGEMENT_MONITOR_HTTP_LISTEN", "0.0.0.0:2")]
            .into_iter()
            .collect();
        let mut flags = Overrides::default();
        flags.set("http.listen", "--listen", Some("0.0.0.0:3"));
        let loaded = load_text(Some((Path::new("f.toml"), text)), &env, &flags).expect("valid");
        let c = &loaded.config;
        assert_eq!(c.ranking.interval, Duration::from_secs(60));
        assert_eq!((c.ranking.top_n, c.ranking.ready_max_lag), (20, 5));
        assert_eq!(c.http.listen.port(), 3);
        assert_eq!(c.kafka.topic, "engagement-events");
        let source = |key: &str| loaded.sources[key].to_string();
        assert_eq!(source("ranking.interval"), "file");
        assert_eq!(source("ranking.top_n"), "env ENGAGEMENT_MONITOR_RANKING_TOP_N");
        assert_eq!(source("http.listen"), "flag --listen");
        assert_eq!(source("kafka.topic"), "default");
    }

    #[test]
    fn dotted_keys_and_tables_are_the_same() {
        let a = file("ranking.top_n = 7\nkafka.properties.\"linger.ms\" = 5\n").expect("valid");
        let b = file("[ranking]\ntop_n = 7\n[kafka.properties]\nlinger.ms = \"5\"\n").expect("valid");
        assert_eq!(a.config, b.config);
        assert_eq!(a.config.kafka.properties["linger.ms"], "5");
    }

    #[test]
    fn errors_name_the_key_and_the_source() {
        assert_eq!(
            error(env(&[("ENGAGEMENT_MONITOR_RANKING_INTERVAL", "abc")])),
            "invalid value \"abc\" for ranking.interval (from environment variable ENGAGEMENT_MONITOR_RANKING_INTERVAL): expected a duration like 10s or 500ms"
        );
        assert_eq!(
            error(file("[ranking]\ntop_n = \"abc\"\n")),
            "invalid value \"abc\" for ranking.top_n (from /etc/em.toml): expected an integer from 1 to 1000"
        );
        let mut flags = Overrides::default();
        flags.set("http.listen", "--listen", Some("localhost"));
        let err = error(load_text(None, &Env::default(), &flags));
        assert!(
            err.starts_with("invalid value \"localhost\" for http.listen (from flag --listen): expected an address"),
            "{err}"
        );
    }

    #[test]
    fn kubernetes_service_links_are_not_settings() {
        let env: Env = [
            ("ENGAGEMENT_MONITOR_SERVICE_HOST", "10.0.0.1"),
            ("ENGAGEMENT_MONITOR_SERVICE_PORT_HTTP", "9898"),
            ("ENGAGEMENT_MONITOR_PORT", "tcp://10.0.0.1:9898"),
            ("ENGAGEMENT_MONITOR_PORT_9898_TCP_ADDR", "10.0.0.1"),
        ]
        .into_iter()
        .collect();
        assert_eq!(load(None, &env, &Overrides::default()).unwrap().config, Config::default());
    }

    #[test]
    fn unknown_keys_and_variables_are_refused() {
        assert_eq!(error(file("[ranking]\ntop = 5\n")), "unknown setting ranking.top (from /etc/em.toml)");
        assert_eq!(error(file("[rankin]\ntop_n = 5\n")), "unknown setting rankin.top_n (from /etc/em.toml)");
        assert_eq!(error(file("kafka = 1\n")), "unknown setting kafka (from /etc/em.toml)");
        assert!(error(file("[ranking\n")).starts_with("/etc/em.toml is not valid TOML"));
        assert_eq!(
            error(env(&[("ENGAGEMENT_MONITOR_KAFKA_BROKER", "x:1")])),
            "unknown environment variable ENGAGEMENT_MONITOR_KAFKA_BROKER: no setting has that name"
        );
        // Variables of other programs are none of our business.
        assert!(env(&[("KAFKA_BROKERS", "x"), ("RUST_LOG", "debug")]).is_ok());
    }

    #[test]
    fn values_are_validated() {
        let refused = [
            ("ENGAGEMENT_MONITOR_RANKING_TOP_N", "0"),
            ("ENGAGEMENT_MONITOR_RANKING_TOP_N", "1001"),
            ("ENGAGEMENT_MONITOR_RANKING_TOP_N", "-1"),
            ("ENGAGEMENT_MONITOR_RANKING_INTERVAL", "0s"),
            ("ENGAGEMENT_MONITOR_SHUTDOWN_TIMEOUT", "10"),
            ("ENGAGEMENT_MONITOR_KAFKA_BROKERS", ""),
            ("ENGAGEMENT_MONITOR_KAFKA_BROKERS", "a:1,,b:2"),
            ("ENGAGEMENT_MONITOR_KAFKA_TOPIC", ""),
            ("ENGAGEMENT_MONITOR_KAFKA_TOPIC", "bad topic"),
            ("ENGAGEMENT_MONITOR_KAFKA_GROUP_ID", " "),
            ("ENGAGEMENT_MONITOR_KAFKA_DEAD_LETTER_TOPIC", "a/b"),
            ("ENGAGEMENT_MONITOR_HTTP_MAX_CONCURRENT_REQUESTS", "0"),
            ("ENGAGEMENT_MONITOR_KAFKA_PRODUCER_QUEUE_MESSAGES", "0"),
            ("ENGAGEMENT_MONITOR_LOG_FORMAT", "xml"),
            ("ENGAGEMENT_MONITOR_LOG_LEVEL", "info,[[["),
        ];
        for (name, value) in refused {
            let err = error(env(&[(name, value)]));
            assert!(err.contains(name), "{name}={value}: {err}");
        }
        assert!(error(file("[kafka]\ncommit_interval = 5\n")).contains("expected a duration like 10s"));
        assert!(error(file("[http]\nmax_query_bytes = 1.5\n")).contains("http.max_query_bytes"));
    }

    #[test]
    fn empty_optional_values_are_unset() {
        let loaded = env(&[
            ("ENGAGEMENT_MONITOR_KAFKA_DEAD_LETTER_TOPIC", "dlq"),
            ("ENGAGEMENT_MONITOR_KAFKA_RANK_EVENTS_TOPIC", ""),
            ("ENGAGEMENT_MONITOR_STATE_DIR", "/var/lib/em"),
        ])
        .expect("valid");
        assert_eq!(loaded.config.kafka.dead_letter_topic.as_deref(), Some("dlq"));
        assert_eq!(loaded.config.kafka.rank_events_topic, None);
        assert_eq!(loaded.config.state.dir, Some(PathBuf::from("/var/lib/em")));
        let unset = file("[state]\ndir = \"\"\n").expect("valid");
        assert_eq!(unset.config.state.dir, None);
    }

    #[test]
    fn engine_limits_are_validated_naming_the_key() {
        assert_eq!(
            error(file("[engine]\nretained_quarters = 8\n")),
            "invalid value 8 for engine.retained_quarters (from /etc/em.toml): must be at most 7"
        );
        assert_eq!(
            error(env(&[("ENGAGEMENT_MONITOR_ENGINE_MAX_PAGES", "0")])),
            "invalid value 0 for engine.max_pages (from environment variable ENGAGEMENT_MONITOR_ENGINE_MAX_PAGES): must be between 1 and 8388606"
        );
        assert!(error(file("[engine]\nrolling_days = 0\n")).contains("engine.rolling_days"));
        assert!(error(file("[engine]\nmax_platforms = 2000\n")).contains("engine.max_platforms"));
        assert!(error(file("[engine]\ntop_posts = 101\n")).contains("engine.top_posts"));
    }

    #[test]
    fn properties_come_from_every_layer() {
        let text =
            "[kafka.properties]\n\"security.protocol\" = \"SSL\"\n\"linger.ms\" = 5\n\"enable.idempotence\" = true\n";
        let env: Env = [
            ("ENGAGEMENT_MONITOR_KAFKA_PROPERTY_SECURITY_PROTOCOL", "SASL_SSL"),
            ("ENGAGEMENT_MONITOR_KAFKA_PROPERTY_SASL_MECHANISM", "PLAIN"),
            ("ENGAGEMENT_MONITOR_KAFKA_PROPERTY_LINGER_MS", ""),
        ]
        .into_iter()
        .collect();
        let mut flags = Overrides::default();
        flags.property("sasl.mechanism", "SCRAM-SHA-512");
        let loaded = load_text(Some((Path::new("f.toml"), text)), &env, &flags).expect("valid");
        let p = &loaded.config.kafka.properties;
        assert_eq!(p["security.protocol"], "SASL_SSL");
        assert_eq!(p["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(p["enable.idempotence"], "true");
        assert!(!p.contains_key("linger.ms"), "an empty value unsets");
        assert_eq!(loaded.sources["kafka.properties.sasl.mechanism"], Source::Flag("--kafka-property"));
        assert_eq!(loaded.sources["kafka.properties.enable.idempotence"], Source::File("f.toml".into()));
    }

    #[test]
    fn owned_properties_are_refused_in_every_layer() {
        assert_eq!(
            error(file("[kafka.properties]\n\"group.id\" = \"g\"\n")),
            "kafka property group.id (from /etc/em.toml) cannot be passed through: set kafka.group_id instead"
        );
        assert!(error(file("[kafka.properties]\nbootstrap.servers = \"b:1\"\n")).contains("bootstrap.servers"));
        assert!(
            error(env(&[("ENGAGEMENT_MONITOR_KAFKA_PROPERTY_ENABLE_AUTO_COMMIT", "true")]))
                .contains("enable.auto.commit")
        );
        let mut flags = Overrides::default();
        flags.property("enable.auto.offset.store", "true");
        let err = error(load_text(None, &Env::default(), &flags));
        assert!(err.contains("enable.auto.offset.store (from flag --kafka-property)"), "{err}");
        assert!(error(env(&[("ENGAGEMENT_MONITOR_KAFKA_PROPERTY_", "x")])).contains("kafka.properties"));
        assert!(error(file("[kafka]\nproperties = \"x\"\n")).contains("kafka.properties"));
        assert!(error(file("[kafka.properties]\n\"a.b\" = [1]\n")).contains("kafka.properties.a.b"));
    }

    #[test]
    fn non_unicode_variables_of_ours_are_refused() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![0xff]);
        let ours = (OsString::from("ENGAGEMENT_MONITOR_KAFKA_TOPIC"), bad.clone());
        let theirs = (OsString::from("OTHER"), bad);
        assert!(Env::from_os([theirs.clone()]).is_ok());
        assert!(matches!(Env::from_os([theirs, ours]), Err(ConfigError::NotUnicode { .. })));
    }

    #[test]
    fn effective_config_round_trips_with_secrets_redacted() {
        let text = "[kafka]\nbrokers = \"sasl_ssl://alice:s3cret@k1:9093,k2:9093\"\ndead_letter_topic = \"dlq\"\n\
            [kafka.properties]\n\"sasl.password\" = \"hunter2\"\n\"sasl.jaas.config\" = \"x\"\n\"ssl.key.location\" = \"/k\"\n\
            \"sasl.oauthbearer.token.endpoint.url\" = \"https://t\"\n\"security.protocol\" = \"SASL_SSL\"\n\
            [state]\ndir = \"/var/lib/em\"\n[events]\nmax_future_skew = \"90s\"\n";
        let env: Env = [("ENGAGEMENT_MONITOR_RANKING_INTERVAL", "250ms")].into_iter().collect();
        let loaded = load_text(Some((Path::new("f.toml"), text)), &env, &Overrides::default()).expect("valid");
        let rendered = render_effective(&loaded);
        for secret in ["s3cret", "alice", "hunter2", "/k\"", "https://t"] {
            assert!(!rendered.contains(secret), "{secret} leaked:\n{rendered}");
        }
        assert!(rendered.contains("# env ENGAGEMENT_MONITOR_RANKING_INTERVAL"), "{rendered}");
        assert!(rendered.contains("# file") && rendered.contains("# default"), "{rendered}");

        let back = file(&rendered).expect("the rendered configuration loads");
        let mut expected = loaded.config.clone();
        expected.kafka.brokers = "sasl_ssl://<redacted>@k1:9093,k2:9093".into();
        for name in ["sasl.password", "sasl.jaas.config", "ssl.key.location", "sasl.oauthbearer.token.endpoint.url"] {
            expected.kafka.properties.insert(name.into(), REDACTED.into());
        }
        assert_eq!(back.config, expected);
        // Every setting is printed, so the file alone reproduces the config.
        assert!(SETTINGS.iter().all(|s| back.sources[s.key] == Source::File("/etc/em.toml".into())));
    }

    #[test]
    fn brokers_without_credentials_are_printed_as_is() {
        assert_eq!(redact_brokers("k1:9092,k2:9092"), "k1:9092,k2:9092");
        assert_eq!(redact_brokers("u:p@k1:9092"), "<redacted>@k1:9092");
    }

    /// The reference file as shipped equals the defaults, lists every key,
    /// and names every environment variable.
    #[test]
    fn reference_file_is_complete_and_equals_defaults() {
        let reference = include_str!("../config/engagement-monitor.toml");
        let shipped = file(reference).expect("the reference file loads");
        assert_eq!(shipped.config, Config::default());
        assert!(shipped.sources.values().all(|s| *s == Source::Default), "every line is commented out");

        let uncommented = uncomment(reference);
        let loaded = file(&uncommented).expect("the uncommented reference loads");
        assert_eq!(loaded.config, Config::default(), "the reference shows the defaults");
        for s in SETTINGS {
            assert_eq!(loaded.sources[s.key], Source::File("/etc/em.toml".into()), "{} missing", s.key);
            assert!(reference.contains(&s.env_var()), "{} missing", s.env_var());
        }
        assert!(uncommented.contains(&format!("\n[{PROPERTIES_KEY}]\n")));
    }

    /// Uncomments `# key = value` and `# [table]` lines, leaving prose.
    fn uncomment(text: &str) -> String {
        let is_setting = |line: &str| {
            let (key, _) = line.split_once(" = ").unwrap_or(("", ""));
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        };
        text.lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if rest.starts_with('[') && rest.ends_with(']') => rest,
                Some(rest) if is_setting(rest) => rest,
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
