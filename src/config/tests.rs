//! Tests of loading, layering, validation and rendering, through the
//! module's front door ([`load`], [`render_effective`]) where possible.

use std::ffi::OsString;

use super::render::{REDACTED, redact_brokers};
use super::*;
use engagement_core::directory::DirectoryLimits;

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
    for (ms, text) in [(0, "0s"), (250, "250ms"), (1500, "1500ms"), (90_000, "90s"), (120_000, "2m"), (7_200_000, "2h")]
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

/// Every [`Config`] field's key, in [`SETTINGS`] order: a const so that the
/// test below stays within the 60-line limit for functions.
const FIELDS: [&str; 53] = [
    "shutdown_timeout",
    "kafka.brokers",
    "kafka.topic",
    "kafka.group_id",
    "kafka.dead_letter_topic",
    "kafka.rank_events_topic",
    "kafka.metadata_refresh",
    "kafka.commit_interval",
    "kafka.producer_queue_messages",
    "kafka.producer_queue_kbytes",
    "http.listen",
    "http.request_timeout",
    "http.max_concurrent_requests",
    "http.max_query_bytes",
    "http.header_timeout",
    "http.idle_timeout",
    "http.max_connections",
    "http.web_config_file",
    "http.probes_without_auth",
    "events.max_future_skew",
    "events.max_payload_bytes",
    "events.max_watermark_jump",
    "events.watermark_jump_quorum",
    "events.log_rate_per_second",
    "engine.max_pages",
    "engine.max_posts",
    "engine.max_platforms",
    "engine.max_event_ids",
    "engine.top_posts",
    "windows.calendar",
    "windows.rolling",
    "windows.retention.quarter",
    "windows.retention.month",
    "windows.retention.week",
    "windows.retention.year",
    "ranking.interval",
    "ranking.top_n",
    "ranking.ready_max_lag",
    "ranking.groups",
    "directory.topic",
    "directory.file",
    "directory.max_groups_per_page",
    "directory.max_values",
    "directory.max_pages",
    "state.dir",
    "state.checkpoint_interval",
    "cluster.mode",
    "cluster.instance_id",
    "cluster.state_topic",
    "cluster.totals_topic",
    "cluster.partition_silent_after",
    "log.format",
    "log.level",
];

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
                producer_queue_kbytes: _,
            },
        http:
            HttpConfig {
                listen: _,
                limits:
                    HttpLimits {
                        request_timeout: _,
                        max_concurrent_requests: _,
                        max_query_bytes: _,
                        header_timeout: _,
                        idle_timeout: _,
                        max_connections: _,
                    },
                web_config_file: _,
                web: _,
                probes_without_auth: _,
            },
        events: EventsConfig { max_future_skew: _, max_payload_bytes: _, log_rate_per_second: _ },
        engine:
            Limits {
                windows: _,
                max_pages: _,
                max_posts: _,
                max_platforms: _,
                max_event_ids: _,
                top_posts: _,
                max_watermark_jump: _,
                watermark_jump_quorum: _,
            },
        windows: WindowsConfig { calendar: _, rolling: _, retention: _ },
        ranking: RankingConfig { interval: _, top_n: _, ready_max_lag: _, watches: _, groups: _ },
        directory:
            DirectoryConfig {
                topic: _,
                file: _,
                limits: DirectoryLimits { max_groups_per_page: _, max_values: _, max_pages: _ },
            },
        state: StateConfig { dir: _, checkpoint_interval: _ },
        log: LogConfig { format: _, level: _ },
        cluster: ClusterConfig { mode: _, instance_id: _, state_topic: _, totals_topic: _, partition_silent_after: _ },
        shutdown_timeout: _,
    } = Config::default();
    let keys: Vec<_> = SETTINGS.iter().map(|s| s.key).collect();
    assert_eq!(keys, FIELDS);
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
        // The headless Service of the StatefulSet, engagement-monitor-headless.
        ("ENGAGEMENT_MONITOR_HEADLESS_SERVICE_HOST", "10.0.0.2"),
        ("ENGAGEMENT_MONITOR_HEADLESS_SERVICE_PORT", "9898"),
        ("ENGAGEMENT_MONITOR_HEADLESS_PORT", "tcp://10.0.0.2:9898"),
        ("ENGAGEMENT_MONITOR_HEADLESS_PORT_9898_TCP", "tcp://10.0.0.2:9898"),
        ("ENGAGEMENT_MONITOR_HEADLESS_PORT_9898_TCP_PROTO", "tcp"),
    ]
    .into_iter()
    .collect();
    assert_eq!(load(None, &env, &Overrides::default()).unwrap().config, Config::default());
    // A misspelt setting is still refused.
    for typo in ["ENGAGEMENT_MONITOR_HTTP_PORT_X", "ENGAGEMENT_MONITOR_KAFKA_TOPICS", "ENGAGEMENT_MONITOR_PORT_9898"] {
        assert!(load(None, &[(typo, "1")].into_iter().collect(), &Overrides::default()).is_err(), "{typo}");
    }
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
fn kafka_properties_are_checked_as_run_checks_them_naming_where_they_came_from() {
    let misspelt = error(file("[kafka.properties]\n\"sasl.pasword\" = \"hunter2\"\n"));
    assert!(misspelt.starts_with("invalid kafka property sasl.pasword: No such configuration property"), "{misspelt}");
    assert!(
        misspelt.ends_with("(from /etc/em.toml)") && !misspelt.contains("hunter2"),
        "a secret stays out: {misspelt}"
    );
    let mut flags = Overrides::default();
    flags.property("fetch.max.byts", "1000");
    let flag = error(load_text(None, &Env::default(), &flags));
    assert!(flag.contains("fetch.max.byts") && flag.ends_with("(from flag --kafka-property)"), "{flag}");
    let plain = error(env(&[("ENGAGEMENT_MONITOR_KAFKA_PROPERTY_LINGER_MS", "soon")]));
    assert!(plain.contains(r#"linger.ms = "soon""#), "a plain value helps: {plain}");
    assert!(file("[kafka.properties]\n\"fetch.max.bytes\" = \"1000000\"\n").is_ok());
}

#[test]
fn a_missing_file_says_why_once() {
    let e = error(load(Some(Path::new("/nonexistent/em.toml")), &Env::default(), &Overrides::default()));
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
    let chained = format!(
        "{:#}",
        anyhow::Error::from(
            load(Some(Path::new("/nonexistent/em.toml")), &Env::default(), &Overrides::default()).unwrap_err()
        )
    );
    assert_eq!(chained.matches("No such file or directory").count(), 1, "as main prints it: {chained}");
}

#[test]
fn windows_are_configured_and_checked_as_a_whole() {
    let loaded = file(
        "[windows]\ncalendar = [\"quarter\", \"month\", \"week\", \"year\"]\nrolling = [\"90d\", \"28d\", \"7d\"]\n\
                       [windows.retention]\nweek = 9\n",
    )
    .expect("valid windows");
    let w = loaded.config.engine.windows;
    assert_eq!(w.retention(engagement_core::window::CalendarKind::Week), Some(8));
    assert_eq!(w.rolling(), &[90, 28, 7]);
    assert!(error(file("[windows]\ncalendar = [\"fortnight\"]\n")).contains("unknown calendar kind \"fortnight\""));
    assert!(error(file("[windows]\nrolling = [\"400d\"]\n")).contains("not a whole number of days from 1 to 366"));
    assert!(error(file("[windows]\ncalendar = [\"year\"]\n[windows.retention]\nyear = 3\n")).contains("reach up to"));
    let watch = "[windows]\ncalendar = [\"quarter\"]\n[[ranking.watches]]\nname = \"m\"\nplatform = \"*\"\nwindows = [\"current-month\"]\n";
    assert!(error(file(watch)).contains("configured: quarter, rolling 90d, rolling 7d"), "{}", error(file(watch)));
}

#[test]
fn engine_limits_are_validated_naming_the_key() {
    assert_eq!(
        error(file("[engine]\nretained_quarters = 8\n")),
        "setting engine.retained_quarters (from /etc/em.toml) was retired: use windows.retention.quarter \
         (periods kept, the current one included: old value + 1)"
    );
    assert_eq!(
        error(env(&[("ENGAGEMENT_MONITOR_ENGINE_MAX_PAGES", "0")])),
        "invalid value 0 for engine.max_pages (from environment variable ENGAGEMENT_MONITOR_ENGINE_MAX_PAGES): must be between 1 and 8388606"
    );
    assert!(error(file("[engine]\nrolling_days = 0\n")).contains("was retired: use windows.rolling"));
    let env_error = error(env(&[("ENGAGEMENT_MONITOR_ENGINE_ROLLING_DAYS", "30")]));
    assert!(
        env_error.contains("engine.rolling_days") && env_error.contains("was retired: use windows.rolling"),
        "{env_error}"
    );
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
        error(env(&[("ENGAGEMENT_MONITOR_KAFKA_PROPERTY_ENABLE_AUTO_COMMIT", "true")])).contains("enable.auto.commit")
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
        [kafka.properties]\n\"sasl.password\" = \"hunter2\"\n\"ssl.key.location\" = \"/k\"\n\
        \"security.protocol\" = \"SASL_SSL\"\n\
        [state]\ndir = \"/var/lib/em\"\n[events]\nmax_future_skew = \"90s\"\n";
    let env: Env = [("ENGAGEMENT_MONITOR_RANKING_INTERVAL", "250ms")].into_iter().collect();
    let loaded = load_text(Some((Path::new("f.toml"), text)), &env, &Overrides::default()).expect("valid");
    let rendered = render_effective(&loaded);
    for secret in ["s3cret", "alice", "hunter2", "/k\""] {
        assert!(!rendered.contains(secret), "{secret} leaked:\n{rendered}");
    }
    assert!(rendered.contains("# env ENGAGEMENT_MONITOR_RANKING_INTERVAL"), "{rendered}");
    assert!(rendered.contains("# file") && rendered.contains("# default"), "{rendered}");

    let back = file(&rendered).expect("the rendered configuration loads");
    let mut expected = loaded.config.clone();
    expected.kafka.brokers = "sasl_ssl://<redacted>@k1:9093,k2:9093".into();
    for name in ["sasl.password", "ssl.key.location"] {
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
    let reference = include_str!("../../config/engagement-monitor.toml");
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
    assert_eq!(loaded.sources[WATCHES_KEY], Source::File("/etc/em.toml".into()), "the default watches are shown");
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

#[test]
fn oauthbearer_config_and_key_passphrases_are_redacted() {
    let text = "[kafka.properties]\n\"sasl.oauthbearer.config\" = \"principal=alice clientSecret=0auth-s3cret\"\n\
        \"ssl.keystore.password\" = \"ks-s3cret\"\n";
    let rendered = render_effective(&file(text).expect("valid"));
    for secret in ["0auth-s3cret", "ks-s3cret"] {
        assert!(!rendered.contains(secret), "{secret} leaked:\n{rendered}");
    }
    // Names this build of librdkafka refuses (no OIDC, no JAAS) are
    // secrets all the same where a build takes them.
    for name in [
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.oauthbearer.client.credentials.client.secret",
        "sasl.jaas.config",
        "sasl.oauthbearer.token.endpoint.url",
    ] {
        assert!(is_secret(name), "{name}");
    }
}

#[test]
fn errors_never_echo_a_secret_value() {
    let cases = [
        // A non-string value of a secret property.
        "[kafka.properties]\n\"sasl.password\" = [\"hunter2-s3cret\"]\n",
        "[kafka.properties]\n\"sasl.oauthbearer.config\" = 2021-01-01T00:00:00Z # hunter2-s3cret\n",
        // A TOML syntax error on the line that holds the secret.
        "[kafka.properties]\n\"sasl.password\" = \"hunter2-s3cret\n",
        "[kafka.properties]\nsasl.password = hunter2-s3cret\n",
        // Brokers with credentials that fail validation.
        "[kafka]\nbrokers = \"alice:hunter2-s3cret@k1:9092,\"\n",
    ];
    for text in cases {
        let message = error(file(text));
        assert!(!message.contains("hunter2"), "{text:?} echoed the secret: {message}");
        assert!(message.contains("/etc/em.toml"), "{text:?}: the file is named: {message}");
    }
    let syntax = error(file("[kafka]\ntopic = \"t\"\n\"sasl.password\" = \"hunter2-s3cret\n"));
    assert!(syntax.contains("line 3"), "the line is named instead of quoted: {syntax}");
    let from_env = error(env(&[("ENGAGEMENT_MONITOR_KAFKA_BROKERS", "u:hunter2-s3cret@k1:9092,")]));
    assert!(!from_env.contains("hunter2") && from_env.contains("ENGAGEMENT_MONITOR_KAFKA_BROKERS"), "{from_env}");
}

#[test]
fn every_duration_is_bounded_so_it_converts_without_truncation() {
    let durations: Vec<&Setting> = SETTINGS.iter().filter(|s| s.unit == "duration").collect();
    assert!(durations.len() >= 6, "{durations:?}");
    for s in durations {
        let var = s.env_var();
        // Fits a u64 of milliseconds, not an i64.
        let over = error(env(&[(&var, "10000000000000000000ms")]));
        assert!(over.contains(&var) && over.contains("at most 8760h"), "{over}");
        assert!(env(&[(&var, "8761h")]).is_err(), "{var}=8761h was accepted");
        assert!(env(&[(&var, "8760h")]).is_ok(), "{var}: the maximum is accepted");
    }
    let skew = env(&[("ENGAGEMENT_MONITOR_EVENTS_MAX_FUTURE_SKEW", "8760h")]).unwrap().config.events.max_future_skew;
    assert_eq!(i64::try_from(skew.as_millis()), Ok(365 * 24 * 3_600_000));
    assert!(std::time::Instant::now().checked_add(skew).is_some(), "deadlines can be computed from it");
}

#[test]
fn the_producer_queue_is_bounded_in_bytes_too() {
    let loaded = file("[kafka]\nproducer_queue_kbytes = 2048\n").expect("a setting of its own");
    assert!(render_effective(&loaded).contains("producer_queue_kbytes = 2048"));
    let refused = error(env(&[("ENGAGEMENT_MONITOR_KAFKA_PRODUCER_QUEUE_KBYTES", "0")]));
    assert!(refused.contains("an integer from 1 to 2097152"), "{refused}");
}

#[test]
fn watches_come_from_the_file_only_and_errors_name_the_key() {
    let text = "[[ranking.watches]]\nname = \"fb\"\nplatform = \"facebook\"\ntop_n = 3\n";
    let loaded = file(text).expect("valid");
    assert_eq!(loaded.config.ranking.watches.len(), 1, "the file's watches replace the defaults");
    assert_eq!(loaded.sources[WATCHES_KEY], Source::File("/etc/em.toml".into()));
    assert_eq!(Config::default().ranking.watches, default_watches());
    assert_eq!(
        error(file("[[ranking.watches]]\nname = \"fb\"\ntop_n = 101\n")),
        "invalid value 101 for ranking.watches[0].top_n (from /etc/em.toml): expected an integer from 1 to 100"
    );
    assert_eq!(
        error(env(&[("ENGAGEMENT_MONITOR_RANKING_WATCHES", "x")])),
        "unknown environment variable ENGAGEMENT_MONITOR_RANKING_WATCHES: no setting has that name"
    );
    let rendered = render_effective(&loaded);
    assert!(rendered.contains(&format!("{:<40} # file", "[[ranking.watches]]")), "{rendered}");
}

#[test]
fn a_cluster_table_is_accepted_and_the_mode_parses() {
    let text = "[cluster]\nmode = \"shard\"\ninstance_id = \"em-1\"\nstate_topic = \"st\"\ntotals_topic = \"tt\"\n";
    let loaded = file(text).expect("a [cluster] table is a setting like any other");
    let c = &loaded.config.cluster;
    assert_eq!((c.mode, c.instance_id.as_str()), (ClusterMode::Shard, "em-1"));
    assert_eq!((c.state_topic("events"), c.totals_topic("events")), ("st".into(), "tt".into()));
    assert_eq!(loaded.sources["cluster.mode"], Source::File("/etc/em.toml".into()));
    assert_eq!(file("[cluster]\nmode = \"replica\"\n").unwrap().config.cluster.mode, ClusterMode::Replica);
    let from_env =
        env(&[("ENGAGEMENT_MONITOR_CLUSTER_MODE", "shard"), ("ENGAGEMENT_MONITOR_CLUSTER_INSTANCE_ID", "x")]);
    let from_env = from_env.expect("the variables follow from the keys");
    assert_eq!((from_env.config.cluster.mode, from_env.config.cluster.instance_id()), (ClusterMode::Shard, "x".into()));
    assert_eq!(Config::default().cluster.mode, ClusterMode::Replica);
    let rendered = render_effective(&loaded);
    assert!(rendered.contains("\n[cluster]\nmode = \"shard\""), "{rendered}");
}

#[test]
fn a_bad_mode_is_refused_naming_the_setting_and_the_accepted_values() {
    assert_eq!(
        error(file("[cluster]\nmode = \"Shard\"\n")),
        "invalid value \"Shard\" for cluster.mode (from /etc/em.toml): expected replica or shard"
    );
    assert_eq!(
        error(env(&[("ENGAGEMENT_MONITOR_CLUSTER_MODE", "sharded")])),
        "invalid value \"sharded\" for cluster.mode (from environment variable ENGAGEMENT_MONITOR_CLUSTER_MODE): expected replica or shard"
    );
    assert!(error(file("[cluster]\nmode = 1\n")).contains("expected replica or shard"));
    let refused = [
        ("ENGAGEMENT_MONITOR_CLUSTER_INSTANCE_ID", "a b"),
        ("ENGAGEMENT_MONITOR_CLUSTER_STATE_TOPIC", "a/b"),
        ("ENGAGEMENT_MONITOR_CLUSTER_TOTALS_TOPIC", ".."),
    ];
    for (name, value) in refused {
        let err = error(env(&[(name, value)]));
        assert!(err.contains(name), "{name}={value}: {err}");
    }
    assert!(error(file("[cluster]\nunknown = 1\n")).contains("unknown setting cluster.unknown"));
}

#[test]
fn cluster_flags_override_file_and_env() {
    let text = "[cluster]\nmode = \"replica\"\ninstance_id = \"from-file\"\n";
    let env: Env = [("ENGAGEMENT_MONITOR_CLUSTER_INSTANCE_ID", "from-env")].into_iter().collect();
    let mut flags = Overrides::default();
    flags.set("cluster.mode", "--mode", Some("shard")).set("cluster.instance_id", "--instance-id", Some("em-2"));
    let loaded = load_text(Some((Path::new("f.toml"), text)), &env, &flags).expect("valid");
    assert_eq!(loaded.config.cluster.mode, ClusterMode::Shard);
    assert_eq!(loaded.config.cluster.instance_id(), "em-2");
    assert_eq!(loaded.sources["cluster.mode"].to_string(), "flag --mode");
    assert_eq!(loaded.sources["cluster.instance_id"].to_string(), "flag --instance-id");
    let mut bad = Overrides::default();
    bad.set("cluster.mode", "--mode", Some("all"));
    let err = error(load_text(None, &Env::default(), &bad));
    assert!(err.contains("cluster.mode (from flag --mode): expected replica or shard"), "{err}");
}

#[test]
fn cluster_topics_are_derived_from_the_kafka_topic_when_empty() {
    let c = Config::default().cluster;
    assert_eq!((c.state_topic.as_str(), c.totals_topic.as_str()), ("", ""));
    assert_eq!(c.state_topic("engagement-events"), "engagement-events-shard-state");
    assert_eq!(c.totals_topic("engagement-events"), "engagement-events-page-totals");
    let loaded = file("[kafka]\ntopic = \"ev\"\n[cluster]\ntotals_topic = \"totals\"\n").expect("valid");
    let (topic, cluster) = (&loaded.config.kafka.topic, &loaded.config.cluster);
    assert_eq!((cluster.state_topic(topic), cluster.totals_topic(topic)), ("ev-shard-state".into(), "totals".into()));
}

#[test]
fn shard_topics_must_be_usable() {
    let long = "t".repeat(249);
    let ok_as_replica = file(&format!("[kafka]\ntopic = \"{long}\"\n")).expect("replicas use no shard topics");
    assert_eq!(ok_as_replica.config.cluster.mode, ClusterMode::Replica);
    let err = error(file(&format!("[kafka]\ntopic = \"{long}\"\n[cluster]\nmode = \"shard\"\n")));
    assert!(err.contains("cluster.state_topic (from /etc/em.toml): the name derived from kafka.topic"), "{err}");
    let same = error(file("[kafka]\ntopic = \"ev\"\n[cluster]\nmode = \"shard\"\nstate_topic = \"ev\"\n"));
    assert!(same.contains("cluster.state_topic") && same.contains("must differ from kafka.topic"), "{same}");
    let twice = "[cluster]\nmode = \"shard\"\nstate_topic = \"x\"\ntotals_topic = \"x\"\n";
    assert!(error(file(twice)).contains("cluster.totals_topic") && error(file(twice)).contains("must differ"));
}

#[test]
fn a_partition_is_called_silent_only_after_two_missed_heartbeats() {
    assert_eq!(Config::default().cluster.partition_silent_after, Duration::from_secs(30));
    let ok = file("[cluster]\nmode = \"shard\"\npartition_silent_after = \"20s\"\n").expect("twice the 10s interval");
    assert_eq!(ok.config.cluster.partition_silent_after, Duration::from_secs(20));
    let err = error(file("[cluster]\nmode = \"shard\"\npartition_silent_after = \"15s\"\n"));
    assert!(
        err.contains("cluster.partition_silent_after (from /etc/em.toml): must be at least twice ranking.interval"),
        "{err}"
    );
    file("[cluster]\npartition_silent_after = \"15s\"\n").expect("replicas do not use it");
    assert!(error(file("[cluster]\npartition_silent_after = \"0s\"\n")).contains("above zero"));
}

#[test]
fn the_instance_id_defaults_to_the_host_name() {
    assert_eq!(resolve_instance_id(Some("web-7\n"), Some("other")), "web-7");
    assert_eq!(resolve_instance_id(Some(" \n"), Some("from-env")), "from-env");
    assert_eq!(resolve_instance_id(None, None), FALLBACK_INSTANCE_ID);
    assert_eq!(resolve_instance_id(None, Some("")), FALLBACK_INSTANCE_ID);
    let resolved = Config::default().cluster.instance_id();
    assert!(!resolved.is_empty() && !resolved.contains(char::is_whitespace), "{resolved:?}");
}

#[test]
fn ranking_groups_add_default_watches_unless_the_file_names_watches() {
    let loaded = env(&[("ENGAGEMENT_MONITOR_RANKING_GROUPS", "category:government, country:EG")]).unwrap();
    let c = &loaded.config;
    assert_eq!(c.ranking.groups, vec!["category:government", "country:EG"]);
    let names: Vec<&str> = c.ranking.watches.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, vec!["all", "per_platform", "group-category-government", "group-country-eg"]);
    assert_eq!(c.ranking.watches[3].groups, vec!["country:EG"]);
    assert_eq!((c.ranking.watches[3].top_n, c.ranking.watches[3].scope.clone()), (10, Scope::All));

    let text = "[ranking]\ngroups = [\"category:government\"]\n[[ranking.watches]]\nname = \"gov\"\ngroups = [\"category:government\", \"country:US\"]\nwindows = [\"current\"]\n";
    let loaded = file(text).unwrap();
    let watches = &loaded.config.ranking.watches;
    assert_eq!(watches.len(), 1, "the file's watches replace the defaults");
    assert_eq!(watches[0].groups, vec!["category:government", "country:US"]);
    assert_eq!(watches[0].group_label(), "category:government,country:US");
}

#[test]
fn bad_groups_and_directory_settings_are_refused_naming_the_key() {
    let e = error(env(&[("ENGAGEMENT_MONITOR_RANKING_GROUPS", "government")]));
    assert!(e.contains("ranking.groups") && e.contains("dimension:value"), "{e}");
    let many = (0..15).map(|i| format!("c:{i}")).collect::<Vec<_>>().join(",");
    assert!(error(env(&[("ENGAGEMENT_MONITOR_RANKING_GROUPS", &many)])).contains("at most 14"));
    let e = error(file("[[ranking.watches]]\nname = \"w\"\ngroups = [\"Bad:x\"]\n"));
    assert!(e.contains("ranking.watches[0].groups"), "{e}");
    let e =
        error(env(&[("ENGAGEMENT_MONITOR_DIRECTORY_TOPIC", "d"), ("ENGAGEMENT_MONITOR_DIRECTORY_FILE", "/d.jsonl")]));
    assert!(e.contains("exclusive"), "{e}");
    let e = error(env(&[("ENGAGEMENT_MONITOR_DIRECTORY_TOPIC", "engagement-events")]));
    assert!(e.contains("directory.topic") && e.contains("must differ from kafka.topic"), "{e}");
    let e = error(env(&[("ENGAGEMENT_MONITOR_DIRECTORY_MAX_GROUPS_PER_PAGE", "0")]));
    assert!(e.contains("directory.max_groups_per_page"), "{e}");
}

/// The tables of the configuration, as docs name keys (`kafka.brokers`).
const TABLES: [&str; 10] =
    ["kafka", "http", "events", "engine", "windows", "ranking", "directory", "state", "log", "cluster"];

/// Markdown files of the repository a reader is sent to.
fn documents() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md"), root.join("deploy/README.md"), root.join("CHANGELOG.md")];
    let dir = std::fs::read_dir(root.join("docs")).expect("docs/");
    docs.extend(dir.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "md")));
    docs
}

/// Every relative link in the docs leads to a file or directory that
/// exists, and every configuration key they name in backticks is a
/// setting (or a retired one, named as such).
#[test]
fn docs_link_to_what_exists_and_name_real_settings() {
    let keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
    let mut broken = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let name = doc.file_name().unwrap().to_string_lossy().to_string();
        // Links: ](target) with a relative target; an anchor into a
        // Markdown file names one of its headings.
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let (target, anchor) = rest[..end].split_once('#').unwrap_or((&rest[..end], ""));
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            let path = if target.is_empty() { doc.clone() } else { doc.parent().unwrap().join(target) };
            if !path.exists() {
                broken.push(format!("{name}: link to {target}"));
            } else if !anchor.is_empty() && path.extension().is_some_and(|x| x == "md") {
                let headings = std::fs::read_to_string(&path).unwrap();
                if !headings.lines().filter(|l| l.starts_with('#')).any(|h| slug(h) == anchor) {
                    broken.push(format!("{name}: link to {target}#{anchor}"));
                }
            }
        }
        // Keys: `table.key` in backticks, up to the first space or `=`.
        for quoted in text.split('`').skip(1).step_by(2) {
            let key = quoted.split([' ', '=', '[', ',']).next().unwrap_or_default();
            let Some((table, _)) = key.split_once('.') else { continue };
            let file = [".rs", ".md", ".toml", ".yaml", ".yml", ".json", ".sh"].iter().any(|x| key.ends_with(x));
            // Settings are snake_case: a camelCase key is a Helm value
            // (`kafka.sasl.existingSecret`), not a setting.
            let helm_value = key.contains(|c: char| c.is_ascii_uppercase());
            if !TABLES.contains(&table) || file || helm_value || key.ends_with('.') || key.contains(['*', '…', '<']) {
                continue;
            }
            let known = keys.contains(&key)
                || key.starts_with("kafka.properties")
                || key.starts_with(WATCHES_KEY)
                || super::layers::RETIRED.iter().any(|(k, _)| *k == key)
                || keys.iter().any(|k| k.starts_with(&format!("{key}.")));
            if !known {
                broken.push(format!("{name}: key {key}"));
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

/// The anchor GitHub gives a Markdown heading line.
fn slug(heading: &str) -> String {
    let text = heading.trim_start_matches('#').trim();
    text.chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}
