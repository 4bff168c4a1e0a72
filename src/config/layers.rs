//! The layers a configuration is read from — file, environment, flags —
//! and how each is applied onto a [`Loaded`], pass-through properties
//! included.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use toml::Value;

use super::render::{REDACTED, is_secret, property_error, redact_brokers};
use super::settings::{
    ENV_PREFIX, PROPERTIES_KEY, PROPERTY_ENV_PREFIX, Raw, SETTINGS, env_var_name, is_topic_name, setting,
};
use super::watches::{WATCHES_KEY, parse_watches};
use super::{ClusterMode, ConfigError, Loaded, Source};

// The file layer.

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
            value: if is_secret(key) { REDACTED.to_owned() } else { value.to_string() },
            origin: source.origin(),
            expected: "a string".into(),
        }),
    }
}

/// A TOML syntax error by line and column. toml's own message quotes the
/// offending line, and that line may hold a password.
fn syntax_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let at = e.span().map_or(0, |s| s.start).min(text.len());
    let before = text.as_bytes()[..at].split(|b| *b == b'\n');
    let (line, column) = before.fold((0, 0), |(n, _), l| (n + 1, l.len() + 1));
    ConfigError::Syntax { path: path.to_owned(), line, column, message: e.message().to_owned() }
}

/// A value as an error quotes it: brokers with their credentials redacted.
fn shown(key: &str, raw: Raw<'_>) -> String {
    match key {
        "kafka.brokers" => redact_brokers(&raw.shown()),
        _ => raw.shown(),
    }
}

// The environment layer.

/// Variables Kubernetes injects for a Service named `engagement-monitor`
/// (service links); they are not settings and must not stop the daemon.
fn is_kubernetes_service_link(name: &str) -> bool {
    let rest = &name[ENV_PREFIX.len().min(name.len())..];
    // `<SERVICE>_SERVICE_HOST`, `_SERVICE_PORT[_<NAME>]`, `_PORT`,
    // `_PORT_<n>_<PROTOCOL>[_PROTO|_PORT|_ADDR]`, for a Service named
    // `engagement-monitor` or `engagement-monitor-<anything>` (the headless
    // one of a StatefulSet, say): its name comes first, then these.
    let service = |s: &str| s.is_empty() || s.ends_with('_');
    let port_link = |tail: &str| {
        let mut parts = tail.split('_');
        let number = parts.next().is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let protocol = parts.next().is_some_and(|p| matches!(p, "TCP" | "UDP" | "SCTP"));
        let field = parts.next().is_none_or(|f| matches!(f, "PROTO" | "PORT" | "ADDR"));
        number && protocol && field && parts.next().is_none()
    };
    let ends = |suffix: &str| rest.strip_suffix(suffix).is_some_and(service);
    ends("SERVICE_HOST")
        || ends("SERVICE_PORT")
        || ends("PORT")
        || rest.match_indices("SERVICE_PORT_").any(|(i, m)| service(&rest[..i]) && !rest[i + m.len()..].is_empty())
        || rest.match_indices("PORT_").any(|(i, m)| service(&rest[..i]) && port_link(&rest[i + m.len()..]))
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

// The flags layer.

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

/// Settings of earlier versions, with what replaces them.
pub(super) const RETIRED: [(&str, &str); 2] = [
    ("engine.retained_quarters", "windows.retention.quarter (periods kept, the current one included: old value + 1)"),
    ("engine.rolling_days", "windows.rolling, e.g. [\"90d\", \"7d\"]"),
];

// Pass-through properties.

/// Properties the daemon owns: passing them through would break its offset
/// discipline (docs/operations.md#instances-and-offsets) or contradict a dedicated setting.
const RESERVED_PROPERTIES: [(&str, &str); 5] = [
    ("bootstrap.servers", "set kafka.brokers instead"),
    ("metadata.broker.list", "set kafka.brokers instead"),
    ("group.id", "set kafka.group_id instead"),
    ("enable.auto.commit", "the daemon commits offsets itself, never ahead of its state"),
    ("enable.auto.offset.store", "the daemon stores offsets itself, after applying the events"),
];

/// Checked wherever a property comes from, so that no layer can smuggle in
/// a reserved one or an empty name.
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

// Applying the layers.

impl Loaded {
    pub(super) fn apply_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| syntax_error(path, text, &e))?;
        let mut entries = Vec::new();
        flatten("", &table, &mut entries);
        for (key, value) in entries {
            let source = Source::File(path.to_owned());
            if key == WATCHES_KEY {
                self.set_watches(value, source)?;
                continue;
            }
            match key.strip_prefix(PROPERTIES_KEY).and_then(|k| k.strip_prefix('.')) {
                Some(name) => self.set_property(name, &property_text(&key, value, &source)?, source)?,
                None => self.set(&key, Raw::Toml(value), source)?,
            }
        }
        Ok(())
    }

    pub(super) fn apply_env(&mut self, env: &Env) -> Result<(), ConfigError> {
        for (name, value) in &env.vars {
            let source = Source::Env(name.clone());
            if let Some(property) = name.strip_prefix(PROPERTY_ENV_PREFIX) {
                // librdkafka names have dots and no underscores.
                let property = property.replace('_', ".").to_ascii_lowercase();
                self.set_property(&property, value, source)?;
            } else if let Some(setting) = SETTINGS.iter().find(|s| env_var_name(s.key) == *name) {
                self.set(setting.key, Raw::Text(value), source)?;
            } else if let Some((key, _)) = RETIRED.iter().find(|(k, _)| env_var_name(k) == *name) {
                self.set(key, Raw::Text(value), source)?;
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

    pub(super) fn apply_flags(&mut self, flags: &Overrides) -> Result<(), ConfigError> {
        for (key, flag, value) in &flags.values {
            self.set(key, Raw::Text(value), Source::Flag(flag))?;
        }
        for (name, value) in &flags.properties {
            self.set_property(name, value, Source::Flag("--kafka-property"))?;
        }
        Ok(())
    }

    fn set(&mut self, key: &str, raw: Raw<'_>, source: Source) -> Result<(), ConfigError> {
        if let Some((_, instead)) = RETIRED.iter().find(|(k, _)| *k == key) {
            return Err(ConfigError::Retired { key: key.to_owned(), origin: source.origin(), instead });
        }
        let setting =
            setting(key).ok_or_else(|| ConfigError::UnknownKey { key: key.to_owned(), origin: source.origin() })?;
        (setting.apply)(&mut self.config, raw).map_err(|expected| ConfigError::Invalid {
            key: key.to_owned(),
            value: shown(setting.key, raw),
            origin: source.origin(),
            expected,
        })?;
        self.sources.insert(setting.key.to_owned(), source);
        Ok(())
    }

    /// Replaces the default watches with the file's.
    fn set_watches(&mut self, value: &Value, source: Source) -> Result<(), ConfigError> {
        self.config.ranking.watches = parse_watches(value).map_err(|e| ConfigError::Invalid {
            key: e.key,
            value: e.value,
            origin: source.origin(),
            expected: e.expected,
        })?;
        self.sources.insert(WATCHES_KEY.to_owned(), source);
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

    /// Builds the windows specification from the `windows.*` settings into
    /// the engine limits; the error names the windows keys set.
    pub(super) fn build_windows(&mut self) -> Result<(), ConfigError> {
        match self.config.windows.spec() {
            Ok(w) => {
                self.config.engine.windows = w;
                Ok(())
            }
            Err(e) => {
                let keys = ["windows.calendar", "windows.rolling"];
                let origin = keys.iter().filter_map(|k| self.sources.get(*k)).find(|s| **s != Source::Default);
                let w = &self.config.windows;
                Err(ConfigError::Rule {
                    key: "windows".into(),
                    value: format!("calendar = {:?}, rolling = {:?}", w.calendar, w.rolling),
                    origin: origin.unwrap_or(&Source::Default).origin(),
                    rule: e.to_string(),
                })
            }
        }
    }

    /// Every window a watch names is one the configuration keeps.
    /// Every pass-through property is one librdkafka accepts, checked as
    /// `run` creates its clients (without connecting); the error names
    /// where the property came from.
    pub(super) fn check_properties(&self) -> Result<(), ConfigError> {
        for (name, value) in &self.config.kafka.properties {
            let mut c = rdkafka::ClientConfig::new();
            c.set(name, value);
            if let Err(e) = c.create_native_config() {
                let key = format!("{PROPERTIES_KEY}.{name}");
                return Err(ConfigError::Property {
                    name: name.clone(),
                    origin: self.sources.get(&key).unwrap_or(&Source::Default).origin(),
                    reason: property_error(&e),
                });
            }
        }
        Ok(())
    }

    /// Every window a watch names is one the configuration keeps; each is
    /// stored as the configuration names it (`rolling-90d` as `rolling`
    /// when 90 days is the first rolling window), as the series label it.
    pub(super) fn check_watch_windows(&mut self) -> Result<(), ConfigError> {
        let spec = self.config.engine.windows;
        let origin = self.sources.get(WATCHES_KEY).unwrap_or(&Source::Default).origin();
        for (i, w) in self.config.ranking.watches.iter_mut().enumerate() {
            for id in &mut w.windows {
                *id = spec.keep(*id).map_err(|e| ConfigError::Rule {
                    key: format!("{WATCHES_KEY}[{i}].windows"),
                    value: id.to_string(),
                    origin: origin.clone(),
                    rule: e.to_string(),
                })?;
            }
            let mut seen = Vec::new();
            w.windows.retain(|id| {
                !seen.contains(id) && {
                    seen.push(*id);
                    true
                }
            });
        }
        Ok(())
    }

    /// [`Limits::validate`](engagement_core::engine::Limits::validate) on the merged limits; the error names the
    /// offending `engine.*` key and its source.
    pub(super) fn check_limits(&self) -> Result<(), ConfigError> {
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

impl Loaded {
    /// Without watches in the file, the default watches gain one per
    /// `ranking.groups` entry.
    pub(super) fn add_group_watches(&mut self) {
        if !self.sources.contains_key(WATCHES_KEY) {
            self.config.ranking.add_group_watches();
        }
    }

    /// The directory comes from a topic or a file, not both, and its topic
    /// is not the events topic.
    pub(super) fn check_directory(&self) -> Result<(), ConfigError> {
        let d = &self.config.directory;
        let rule = match (&d.topic, &d.file) {
            (Some(_), Some(_)) => "directory.topic and directory.file are exclusive: set one",
            (Some(t), None) if *t == self.config.kafka.topic => "must differ from kafka.topic",
            _ => return Ok(()),
        };
        Err(ConfigError::Rule {
            key: "directory.topic".into(),
            value: format!("{:?}", d.topic.as_deref().unwrap_or_default()),
            origin: self.sources.get("directory.topic").unwrap_or(&Source::Default).origin(),
            rule: rule.into(),
        })
    }

    /// In shard mode, the state and totals topics as used (set, or derived
    /// from `kafka.topic`) must be legal topic names, distinct from each
    /// other and from `kafka.topic`, and a partition may be called silent
    /// only after two heartbeats (one per `ranking.interval`) were missed.
    /// Replica mode does not use them.
    pub(super) fn check_cluster(&self) -> Result<(), ConfigError> {
        let c = &self.config;
        if c.cluster.mode != ClusterMode::Shard {
            return Ok(());
        }
        let silent_after = c.cluster.partition_silent_after;
        if silent_after < c.ranking.interval * 2 {
            return Err(ConfigError::Rule {
                key: "cluster.partition_silent_after".into(),
                value: format!("{:?}", super::settings::format_duration(silent_after)),
                origin: self.sources.get("cluster.partition_silent_after").unwrap_or(&Source::Default).origin(),
                rule: "must be at least twice ranking.interval (a heartbeat is sent every ranking.interval)".into(),
            });
        }
        let topic = &c.kafka.topic;
        let state = c.cluster.state_topic(topic);
        let totals = c.cluster.totals_topic(topic);
        let used = [
            ("cluster.state_topic", &c.cluster.state_topic, &state, None),
            ("cluster.totals_topic", &c.cluster.totals_topic, &totals, Some(&state)),
        ];
        for (key, set, name, other) in used {
            let rule = if !is_topic_name(name) {
                "the name derived from kafka.topic is longer than 249 characters; set it explicitly"
            } else if name == topic {
                "must differ from kafka.topic"
            } else if other == Some(name) {
                "must differ from cluster.state_topic"
            } else {
                continue;
            };
            // A derived name is blamed on kafka.topic's source.
            let source = self.sources.get(if set.is_empty() { "kafka.topic" } else { key });
            return Err(ConfigError::Rule {
                key: key.to_owned(),
                value: format!("{name:?}"),
                origin: source.unwrap_or(&Source::Default).origin(),
                rule: rule.to_owned(),
            });
        }
        Ok(())
    }
}
