//! `check-config`: the effective configuration printed back as TOML, each
//! value with its source, secrets redacted; and what an error may quote of
//! a secret (a broker URL, a property librdkafka refused).

use std::borrow::Cow;

use rdkafka::error::KafkaError;
use toml::Value;

use super::settings::PROPERTIES_KEY;
use super::settings::SETTINGS;
use super::watches::{WATCHES_KEY, render_watches};
use super::{Loaded, Source};

/// Pass-through properties whose name contains one of these hold secrets;
/// they are printed as `"<redacted>"` and never quoted in an error.
/// `sasl.oauthbearer.config` carries client secrets inline; key
/// passphrases and private keys are secrets whatever their prefix.
pub const SECRET_MARKERS: [&str; 9] = [
    "password",
    "secret",
    "passphrase",
    "sasl.jaas",
    "sasl.oauthbearer.config",
    "private.key",
    ".key.pem",
    "token",
    "ssl.key",
];
pub(super) const REDACTED: &str = "<redacted>";

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
    let source = loaded.sources.get(WATCHES_KEY).unwrap_or(&Source::Default);
    out.push_str(&render_watches(&loaded.config.ranking.watches, &source.to_string()));
    out
}

fn push_line(out: &mut String, name: &str, value: &Value, source: Option<&Source>) {
    let assignment = format!("{name} = {value}");
    let source = source.unwrap_or(&Source::Default);
    out.push_str(&format!("{assignment:<40} # {source}\n"));
}

/// Whether a pass-through property's value is a secret (its name contains
/// one of [`SECRET_MARKERS`]).
pub fn is_secret(property: &str) -> bool {
    let lower = property.to_ascii_lowercase();
    SECRET_MARKERS.iter().any(|marker| lower.contains(marker))
}

/// Replaces `user:pass@` in each broker URL with `<redacted>@`.
pub fn redact_brokers(brokers: &str) -> String {
    brokers.split(',').map(redact_userinfo).collect::<Vec<_>>().join(",")
}

fn redact_userinfo(broker: &str) -> Cow<'_, str> {
    let start = broker.find("://").map_or(0, |i| i + 3);
    match broker.rfind('@') {
        Some(at) if at >= start => format!("{}{REDACTED}@{}", &broker[..start], &broker[at + 1..]).into(),
        _ => broker.into(),
    }
}

/// What librdkafka said of a refused property: ` = "value": reason`, or
/// `: reason` with the value redacted when the property is a secret, a
/// misspelt name (that may be one) or the brokers (credentials).
pub fn property_error(e: &KafkaError) -> String {
    let KafkaError::ClientConfig(code, reason, key, value) = e else {
        return e.to_string();
    };
    let hide =
        *code == rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN || is_secret(key) || key == "bootstrap.servers";
    if hide {
        let reason = if value.is_empty() { reason.clone() } else { reason.replace(value.as_str(), REDACTED) };
        return format!(": {reason}");
    }
    format!(" = {value:?}: {reason}")
}
