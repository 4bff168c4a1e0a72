//! The one place an rdkafka `ClientConfig` is built. Every Kafka client of
//! the program (the ingest consumer, the producer of dead letters and rank
//! events, `produce`'s producer and admin client, the demo's producer)
//! starts here: the bootstrap servers, the caller's defaults for its role,
//! then the operator's pass-through properties, which win over the defaults.

use rdkafka::config::ClientConfig;

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
}
