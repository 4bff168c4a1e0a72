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
//!
//! This module holds the typed tree, the sources and errors, and [`load`];
//! `settings` holds the table and its parsers and printers, `layers` reads
//! the file, environment and flags into a [`Loaded`], and `render` prints
//! it back for `check-config`.

mod layers;
mod render;
mod settings;
#[cfg(test)]
mod tests;
mod watches;
pub mod web;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use engagement_core::directory::DirectoryLimits;
use engagement_core::engine::Limits;
use engagement_core::event::DecodeContext;

pub use layers::{Env, Overrides};
pub use render::{SECRET_MARKERS, is_secret, property_error, redact_brokers, render_effective};
pub use settings::{ENV_PREFIX, PROPERTIES_KEY, PROPERTY_ENV_PREFIX, env_var_name};
pub use settings::{MAX_DURATION, MAX_RANKING_GROUPS, SETTINGS, Setting, format_duration, parse_duration};
pub use watches::{
    MAX_HOLD, MAX_PLATFORM_SCOPES, MAX_WATCH_GROUPS, MAX_WATCH_TOP_N, MAX_WATCHED_PAGES, MAX_WATCHES, PageKey, Scope,
    WATCHES_KEY, Watch, default_watches, group_watch,
};
pub use web::{ClientAuth, Pem, TlsSettings, TlsVersion, WebConfig};

/// The `[windows]` table as configured (docs/windows.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsConfig {
    /// Calendar kinds kept: `quarter`, `month`, `week`, `year`.
    pub calendar: Vec<String>,
    /// Rolling windows, e.g. `90d`; the first is the one `rolling` names.
    pub rolling: Vec<String>,
    /// Per kind in [`CalendarKind::ALL`](engagement_core::window::CalendarKind::ALL)
    /// order: the periods kept, the current one included.
    pub retention: [u32; 4],
}

impl Default for WindowsConfig {
    fn default() -> WindowsConfig {
        WindowsConfig {
            calendar: vec!["quarter".into(), "month".into()],
            rolling: vec!["90d".into(), "7d".into()],
            retention: engagement_core::window::CalendarKind::ALL.map(|k| k.default_retention() + 1),
        }
    }
}

impl WindowsConfig {
    /// The specification these settings describe.
    pub fn spec(&self) -> Result<engagement_core::window::Windows, String> {
        use engagement_core::window::{CalendarKind, Windows};
        let mut kinds = Vec::new();
        for name in &self.calendar {
            let kind = CalendarKind::parse(name)
                .ok_or_else(|| format!("unknown calendar kind {name:?}: expected quarter, month, week or year"))?;
            let kept = self.retention[kind as usize];
            let past = kept.checked_sub(1).ok_or_else(|| format!("windows.retention.{name} must be at least 1"))?;
            kinds.push((name.as_str(), Some(past)));
        }
        let rolling: Vec<&str> = self.rolling.iter().map(String::as_str).collect();
        Windows::new(&kinds, &rolling).map_err(|e| e.to_string())
    }
}

/// The daemon's whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub http: HttpConfig,
    pub events: EventsConfig,
    pub engine: Limits,
    /// The windows kept (`[windows]`), built into `engine.windows`.
    pub windows: WindowsConfig,
    pub ranking: RankingConfig,
    /// Where page groups come from (docs/directory.md).
    pub directory: DirectoryConfig,
    pub state: StateConfig,
    pub log: LogConfig,
    /// How instances share the topic: replicas, or shards of one group.
    pub cluster: ClusterConfig,
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
    /// Invalid and rejected events are copied here when set.
    pub dead_letter_topic: Option<String>,
    /// Rank-change events (docs/metrics.md#rank-change-events) are published here when set.
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
    /// Bound on the bytes (KiB) queued for the producer.
    pub producer_queue_kbytes: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// The `http.*` limits, as the HTTP layer takes them.
    pub limits: HttpLimits,
    /// The web config file (TLS, headers, basic auth; exporter-toolkit
    /// format), read at start and again when it changes; `None` serves
    /// plain HTTP without auth.
    pub web_config_file: Option<PathBuf>,
    /// What `web_config_file` holds, once [`load`] has read it.
    pub web: WebConfig,
    /// `/healthz` and `/readyz` answer without basic auth.
    pub probes_without_auth: bool,
}

/// Limits of the HTTP layer: per request (the first three) and per
/// connection (the rest; see `api::serve`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpLimits {
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
    pub max_query_bytes: usize,
    /// From a connection's first byte of a request (or its opening) to the
    /// end of that request's headers.
    pub header_timeout: Duration,
    /// From the end of a response to the first byte of the next request.
    pub idle_timeout: Duration,
    /// Open connections; further ones wait in the listen backlog.
    pub max_connections: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventsConfig {
    /// How far `observed_at` may lie ahead of the wall clock (default 1 h).
    pub max_future_skew: Duration,
    pub max_payload_bytes: usize,
    /// Invalid-event log lines allowed per second (the rest are counted).
    pub log_rate_per_second: u32,
}

impl EventsConfig {
    /// How events are decoded; `now` is 0, set from the wall clock by the
    /// consumer for every batch.
    pub fn decode_context(&self) -> DecodeContext {
        DecodeContext {
            message_time: None,
            now: 0,
            // At most MAX_DURATION: exact in i64 milliseconds.
            max_skew: i64::try_from(self.max_future_skew.as_millis()).unwrap_or(i64::MAX),
            max_payload_bytes: self.max_payload_bytes,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RankingConfig {
    /// How often the view is rebuilt and rank changes detected (default 10 s).
    pub interval: Duration,
    /// Pages per window exported as series and watched for changes (default 50).
    pub top_n: usize,
    /// Ready once every partition's lag is at most this many messages.
    pub ready_max_lag: u64,
    /// The rankings tracked for alertable changes (`[[ranking.watches]]`,
    /// file only; [`default_watches`] when the file names none).
    pub watches: Vec<Watch>,
    /// Groups (`dimension:value`) watched by default and exported with a
    /// `group` label; at most [`MAX_RANKING_GROUPS`].
    pub groups: Vec<String>,
}

impl RankingConfig {
    /// Adds the default watch of each of `groups` (its leader and top 10
    /// in every window): what the defaults gain when the file names no
    /// watches.
    pub fn add_group_watches(&mut self) {
        for g in &self.groups {
            let watch = group_watch(g, &self.watches);
            self.watches.push(watch);
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryConfig {
    /// Compacted topic of directory records, read whole by every instance.
    pub topic: Option<String>,
    /// A JSON Lines file of the same records, re-read when it changes.
    pub file: Option<PathBuf>,
    pub limits: DirectoryLimits,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterMode {
    Replica,
    Shard,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// `replica`: every instance reads every partition (default); `shard`: instances of one group split them (docs/scaling.md).
    pub mode: ClusterMode,
    /// Static group membership id in shard mode (`group.instance.id`);
    /// empty (the default) means the host name: see [`ClusterConfig::instance_id`].
    pub instance_id: String,
    /// Compacted topic holding each partition's state in shard mode; empty
    /// (the default) means `<kafka.topic>-shard-state`: see [`ClusterConfig::state_topic`].
    pub state_topic: String,
    /// Compacted topic of per-page totals in shard mode; empty (the
    /// default) means `<kafka.topic>-page-totals`: see [`ClusterConfig::totals_topic`].
    pub totals_topic: String,
    /// In shard mode, a partition whose owner has published no heartbeat
    /// for this long counts as unowned (docs/operations.md#shard-mode).
    pub partition_silent_after: Duration,
}

/// Instance id used when neither the host name nor `HOSTNAME` is known.
pub const FALLBACK_INSTANCE_ID: &str = "engagement-monitor";

impl ClusterConfig {
    /// The static group membership id: `instance_id` when set, else the
    /// host name (`/proc/sys/kernel/hostname`, then `HOSTNAME`, then
    /// [`FALLBACK_INSTANCE_ID`]). Resolved here, at use, so that loading
    /// stays pure and the defaults the same on every host.
    pub fn instance_id(&self) -> String {
        if !self.instance_id.is_empty() {
            return self.instance_id.clone();
        }
        let proc = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
        let env = std::env::var("HOSTNAME").ok();
        resolve_instance_id(proc.as_deref(), env.as_deref())
    }

    /// The shard-state topic: `state_topic` when set, else
    /// `<kafka_topic>-shard-state`.
    pub fn state_topic(&self, kafka_topic: &str) -> String {
        derived_topic(&self.state_topic, kafka_topic, "-shard-state")
    }

    /// The page-totals topic: `totals_topic` when set, else
    /// `<kafka_topic>-page-totals`.
    pub fn totals_topic(&self, kafka_topic: &str) -> String {
        derived_topic(&self.totals_topic, kafka_topic, "-page-totals")
    }
}

impl ClusterMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterMode::Replica => "replica",
            ClusterMode::Shard => "shard",
        }
    }
}

/// The first non-blank of the host name file's contents and `HOSTNAME`,
/// trimmed; [`FALLBACK_INSTANCE_ID`] when both are missing or blank.
fn resolve_instance_id(proc_hostname: Option<&str>, env_hostname: Option<&str>) -> String {
    [proc_hostname, env_hostname]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|name| !name.is_empty())
        .unwrap_or(FALLBACK_INSTANCE_ID)
        .to_owned()
}

fn derived_topic(set: &str, kafka_topic: &str, suffix: &str) -> String {
    match set {
        "" => format!("{kafka_topic}{suffix}"),
        topic => topic.to_owned(),
    }
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
                producer_queue_kbytes: 65_536,
            },
            http: HttpConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 9898)),
                limits: HttpLimits {
                    request_timeout: Duration::from_secs(5),
                    max_concurrent_requests: 64,
                    max_query_bytes: 1024,
                    header_timeout: Duration::from_secs(10),
                    idle_timeout: Duration::from_secs(60),
                    max_connections: 1024,
                },
                web_config_file: None,
                web: WebConfig::default(),
                probes_without_auth: false,
            },
            events: EventsConfig {
                max_future_skew: Duration::from_secs(3600),
                max_payload_bytes: 64 * 1024,
                log_rate_per_second: 10,
            },
            engine: Limits::default(),
            windows: WindowsConfig::default(),
            ranking: RankingConfig {
                interval: Duration::from_secs(10),
                top_n: 50,
                ready_max_lag: 1000,
                watches: default_watches(),
                groups: Vec::new(),
            },
            directory: DirectoryConfig { topic: None, file: None, limits: DirectoryLimits::default() },
            state: StateConfig { dir: None, checkpoint_interval: Duration::from_secs(60) },
            log: LogConfig { format: LogFormat::Text, level: "info".into() },
            cluster: ClusterConfig {
                mode: ClusterMode::Replica,
                instance_id: String::new(),
                state_topic: String::new(),
                totals_topic: String::new(),
                partition_silent_after: Duration::from_secs(30),
            },
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

impl Loaded {
    /// Reads and checks the file `http.web_config_file` names, if any,
    /// into `http.web`.
    fn read_web_config(&mut self) -> Result<(), ConfigError> {
        let Some(path) = self.config.http.web_config_file.clone() else {
            return Ok(());
        };
        let origin = self.sources.get("http.web_config_file").unwrap_or(&Source::Default).origin();
        let fail = |reason: String| ConfigError::WebConfig { path: path.clone(), origin: origin.clone(), reason };
        let text = std::fs::read_to_string(&path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        self.config.http.web = web::parse(&path, &text).map_err(fail)?;
        Ok(())
    }

    /// Every setting at its default, each sourced as such: the base the
    /// layers are applied on.
    fn defaults() -> Loaded {
        let sources = SETTINGS.iter().map(|s| (s.key.to_owned(), Source::Default)).collect();
        Loaded { config: Config::default(), sources }
    }
}

/// Why a configuration was refused. Each message names the setting and the
/// source of the offending value; a value that may hold a secret (a secret
/// property, brokers with credentials) is never quoted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The I/O error is part of the message, not a source: printed with
    /// its chain, it would show twice.
    #[error("cannot read config file {}: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    /// Names the line and column instead of quoting the line, which may
    /// hold a secret.
    #[error("{} is not valid TOML at line {line}, column {column}: {message}", path.display())]
    Syntax { path: PathBuf, line: usize, column: usize, message: String },
    #[error("setting {key} ({origin}) was retired: use {instead}")]
    Retired { key: String, origin: String, instead: &'static str },
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
    /// The web config file could not be read or is not valid; `reason`
    /// names the key in it and never quotes a password hash or a key.
    #[error("web config file {} (http.web_config_file, {origin}): {reason}", path.display())]
    WebConfig { path: PathBuf, origin: String, reason: String },
    #[error("kafka property {name} ({origin}) cannot be passed through: {reason}")]
    Reserved { name: String, origin: String, reason: &'static str },
    /// librdkafka refused the property as `run` would when it creates its
    /// clients; the value is left out when it may be a secret.
    #[error("invalid kafka property {name}{reason} ({origin})")]
    Property { name: String, origin: String, reason: String },
}

/// Loads the configuration: defaults < `file` < `env` < `flags`, then
/// validates the whole.
pub fn load(file: Option<&Path>, env: &Env, flags: &Overrides) -> Result<Loaded, ConfigError> {
    let text = match file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.to_owned(), error: source })?,
        ),
        None => None,
    };
    let mut loaded = load_text(file.zip(text.as_deref()), env, flags)?;
    loaded.read_web_config()?;
    Ok(loaded)
}

/// [`load`] with the file already read: `(path, contents)`.
fn load_text(file: Option<(&Path, &str)>, env: &Env, flags: &Overrides) -> Result<Loaded, ConfigError> {
    let mut loaded = Loaded::defaults();
    if let Some((path, text)) = file {
        loaded.apply_file(path, text)?;
    }
    loaded.apply_env(env)?;
    loaded.apply_flags(flags)?;
    loaded.build_windows()?;
    loaded.check_properties()?;
    loaded.check_watch_windows()?;
    loaded.check_limits()?;
    loaded.check_cluster()?;
    loaded.check_directory()?;
    loaded.add_group_watches();
    Ok(loaded)
}
