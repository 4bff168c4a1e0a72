//! The command line (docs/cli.md), parsed with clap derive. Parsing only: each
//! subcommand's behaviour lives in its own module, and flag values reach the
//! configuration unparsed ([`RunArgs::overrides`]) so that [`crate::config`]
//! validates every layer alike and its errors name the flag.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Overrides, parse_duration};
use crate::tools::{produce, repartition};

/// Ranks social-media pages by engagement, live from Kafka, for Prometheus
/// and a JSON API.
#[derive(Debug, Parser)]
#[command(
    name = "engagement-monitor",
    version = concat!(env!("CARGO_PKG_VERSION"), " (revision ", env!("ENGAGEMENT_BUILD_REVISION"), ")"),
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: consume events, rank pages, serve the API and /metrics.
    Run(RunArgs),
    /// Run the whole pipeline with no outside service: embedded Kafka,
    /// synthetic events, the daemon.
    Demo(DemoArgs),
    /// Write synthetic events to a Kafka topic, for load tests and demos.
    Produce(ProduceArgs),
    /// Copy a topic into one keyed by page_id, so that each page's events
    /// are in one partition (for producers that cannot key by page).
    Repartition(RepartitionArgs),
    /// Validate a configuration file (with the environment) and print the
    /// effective configuration, secrets redacted.
    CheckConfig(CheckConfigArgs),
}

/// Flags of `run`; each overrides the file and the environment.
#[derive(Debug, Default, Args)]
pub struct RunArgs {
    /// TOML configuration file (reference: config/engagement-monitor.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers, comma-separated [kafka.brokers].
    #[arg(long, value_name = "LIST")]
    pub brokers: Option<String>,
    /// Topic of engagement events [kafka.topic].
    #[arg(long, value_name = "NAME")]
    pub topic: Option<String>,
    /// Group id for committed offsets [kafka.group_id].
    #[arg(long, value_name = "ID")]
    pub group: Option<String>,
    /// Address of the HTTP API and /metrics [http.listen].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Web config file (Prometheus exporter-toolkit format): TLS, client
    /// certificates, headers, basic auth [http.web_config_file].
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<String>,
    /// Checkpoint directory [state.dir].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<String>,
    /// librdkafka property passed through, e.g. security.protocol=SASL_SSL
    /// (repeatable) [kafka.properties].
    #[arg(long = "kafka-property", value_name = "K=V", value_parser = PropertyParser)]
    pub kafka_properties: Vec<(String, String)>,
    /// Log line format [log.format].
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// replica: read every partition; shard: split them with the other
    /// instances of the group (docs/scaling.md) [cluster.mode].
    #[arg(long, value_name = "MODE", value_parser = ["replica", "shard"])]
    pub mode: Option<String>,
    /// Static group membership id in shard mode [default: the host name]
    /// [cluster.instance_id].
    #[arg(long, value_name = "ID")]
    pub instance_id: Option<String>,
    /// Compacted topic of page directory records (docs/directory.md)
    /// [directory.topic].
    #[arg(long, value_name = "NAME")]
    pub directory_topic: Option<String>,
}

impl RunArgs {
    /// The flags layer of the configuration.
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides::default();
        o.set("kafka.brokers", "--brokers", self.brokers.as_deref())
            .set("kafka.topic", "--topic", self.topic.as_deref())
            .set("kafka.group_id", "--group", self.group.as_deref())
            .set("http.listen", "--listen", self.listen.as_deref())
            .set("http.web_config_file", "--web.config.file", self.web_config_file.as_deref())
            .set("state.dir", "--state-dir", self.state_dir.as_deref())
            .set("log.format", "--log-format", self.log_format.as_deref())
            .set("cluster.mode", "--mode", self.mode.as_deref())
            .set("cluster.instance_id", "--instance-id", self.instance_id.as_deref())
            .set("directory.topic", "--directory-topic", self.directory_topic.as_deref());
        for (name, value) in &self.kafka_properties {
            o.property(name, value);
        }
        o
    }
}

#[derive(Debug, Default, Args)]
pub struct DemoArgs {
    /// Address of the HTTP API and /metrics [http.listen].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

impl DemoArgs {
    /// The flags layer of the demo's configuration.
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides::default();
        o.set("http.listen", "--listen", self.listen.as_deref());
        o
    }
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic to write to; created when missing.
    #[arg(long, value_name = "NAME", default_value = "engagement-events")]
    pub topic: String,
    /// What to write: the reference table; random snapshots; a tracker's
    /// stream (Zipf pages, posts re-observed 10–50 times); new posts only.
    #[arg(long, value_enum, default_value_t = ScenarioArg::Seed)]
    pub scenario: ScenarioArg,
    /// Stop after N events [default: one pass of the seed table, or
    /// 1000000 random events, unless --duration is given].
    #[arg(long, value_name = "N")]
    pub events: Option<u64>,
    /// Stop after this long, e.g. 30s or 5m.
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub duration: Option<Duration>,
    /// Events per second; 0 = as fast as the broker takes them.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub rate: u64,
    /// Pages of the random, tracker and inserts scenarios.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub pages: u64,
    /// Posts per page of the random scenario.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub posts_per_page: u64,
    /// Compression codec of the produced batches.
    #[arg(long, value_enum, default_value_t = Compression::Lz4)]
    pub compression: Compression,
    /// Partitions of the topic when it has to be created.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// Seed of the random scenario; the same seed gives the same events.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// librdkafka property for the producer, e.g. linger.ms=50 (repeatable).
    #[arg(long = "kafka-property", value_name = "K=V", value_parser = PropertyParser)]
    pub kafka_properties: Vec<(String, String)>,
    /// No progress line on stderr (for scripts and CI logs).
    #[arg(long)]
    pub no_progress: bool,
    /// Also write the page directory of the data set to this topic (keyed
    /// platform/page_id, created compacted when missing), before the events:
    /// for seed, the reference pages in category:government with their
    /// countries and the tail pages in category:media or category:celebrity;
    /// for the other scenarios, page_0000000... in government, media, brand
    /// and celebrity in turn.
    #[arg(long, value_name = "TOPIC")]
    pub directory: Option<String>,
    /// With --scenario seed: also 24 media and celebrity pages, each larger
    /// than every page of the reference table (2025-Q3 and Q2 posts).
    #[arg(long)]
    pub with_tail: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioArg {
    Seed,
    Random,
    Tracker,
    Inserts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The librdkafka `compression.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl ProduceArgs {
    /// The producer's options.
    pub fn options(&self) -> produce::Options {
        let scenario = match self.scenario {
            ScenarioArg::Seed => produce::Scenario::Seed,
            ScenarioArg::Random => produce::Scenario::Random { pages: self.pages, posts_per_page: self.posts_per_page },
            ScenarioArg::Tracker => produce::Scenario::Tracker { pages: self.pages },
            ScenarioArg::Inserts => produce::Scenario::Inserts { pages: self.pages },
        };
        produce::Options {
            brokers: self.brokers.clone(),
            topic: self.topic.clone(),
            scenario,
            events: self.events,
            duration: self.duration,
            rate: self.rate,
            compression: self.compression.as_str().to_owned(),
            partitions: self.partitions,
            seed: self.seed,
            properties: self.kafka_properties.clone(),
            progress: !self.no_progress,
            directory: self.directory.clone().filter(|t| !t.is_empty()),
            with_tail: self.with_tail,
        }
    }
}

#[derive(Debug, Args)]
pub struct RepartitionArgs {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic to copy: what it holds when the command starts.
    #[arg(long, value_name = "NAME")]
    pub from: String,
    /// Topic to write, keyed by page_id; created when missing.
    #[arg(long, value_name = "NAME")]
    pub to: String,
    /// Partitions of the target when it has to be created [default: as
    /// many as the source].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: Option<i32>,
    /// librdkafka property for both clients, e.g. security.protocol=SASL_SSL
    /// (repeatable).
    #[arg(long = "kafka-property", value_name = "K=V", value_parser = PropertyParser)]
    pub kafka_properties: Vec<(String, String)>,
}

impl RepartitionArgs {
    pub fn options(&self) -> repartition::Options {
        repartition::Options {
            brokers: self.brokers.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            partitions: self.partitions,
            properties: self.kafka_properties.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The TOML configuration file to check.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Parses the process arguments; exits with usage on error.
pub fn parse() -> Cli {
    Cli::parse()
}

/// `NAME=VALUE` → `(NAME, VALUE)`; the value may contain `=`. A malformed
/// argument is not echoed back: it may be a secret pasted without its name.
#[derive(Clone)]
struct PropertyParser;

impl clap::builder::TypedValueParser for PropertyParser {
    type Value = (String, String);

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let invalid = || {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                "invalid value for '--kafka-property': expected NAME=VALUE, e.g. security.protocol=SASL_SSL \
                 (the value is not shown; it may be a secret)\n",
            )
        };
        let arg = value.to_str().ok_or_else(invalid)?;
        match arg.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_owned(), value.to_owned())),
            _ => Err(invalid()),
        }
    }
}

fn duration_arg(arg: &str) -> Result<Duration, String> {
    parse_duration(arg).map_err(|expected| format!("expected {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, Source, load};
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("engagement-monitor").chain(args.iter().copied()))
    }

    fn run_args(args: &[&str]) -> RunArgs {
        match parse(&[&["run"], args].concat()) {
            Ok(Cli { command: Command::Run(run) }) => run,
            other => panic!("expected run, got {other:?}"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_flags_become_overrides_that_win() {
        let run = run_args(&[
            "--brokers",
            "k1:9092,k2:9092",
            "--topic",
            "events",
            "--group",
            "g1",
            "--listen",
            "0.0.0.0:8080",
            "--state-dir",
            "/var/lib/em",
            "--kafka-property",
            "security.protocol=SASL_SSL",
            "--kafka-property",
            "sasl.oauthbearer.config=a=b",
            "--log-format",
            "json",
            "--mode",
            "shard",
            "--instance-id",
            "em-0",
            "--web.config.file",
            "",
        ]);
        let loaded = load(None, &Env::default(), &run.overrides()).expect("valid flags");
        let c = &loaded.config;
        assert_eq!(c.kafka.brokers, "k1:9092,k2:9092");
        assert_eq!(c.kafka.topic, "events");
        assert_eq!(c.kafka.group_id, "g1");
        assert_eq!(c.http.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.state.dir, Some(PathBuf::from("/var/lib/em")));
        assert_eq!(c.log.format, crate::config::LogFormat::Json);
        assert_eq!(c.kafka.properties["security.protocol"], "SASL_SSL");
        assert_eq!(c.kafka.properties["sasl.oauthbearer.config"], "a=b");
        assert_eq!(loaded.sources["http.listen"], Source::Flag("--listen"));
        assert_eq!(loaded.sources["kafka.group_id"], Source::Flag("--group"));
        assert_eq!(c.cluster.mode, crate::config::ClusterMode::Shard);
        assert_eq!(c.cluster.instance_id(), "em-0");
        assert_eq!(loaded.sources["cluster.mode"], Source::Flag("--mode"));
        assert_eq!(loaded.sources["cluster.instance_id"], Source::Flag("--instance-id"));
        assert_eq!(loaded.sources["http.web_config_file"], Source::Flag("--web.config.file"));
    }

    #[test]
    fn the_web_config_flag_names_itself_when_its_file_is_missing() {
        let run = run_args(&["--web.config.file", "/nonexistent/web.yml"]);
        let err = load(None, &Env::default(), &run.overrides()).unwrap_err().to_string();
        assert!(err.starts_with("web config file /nonexistent/web.yml (http.web_config_file, from flag --web.config.file): cannot read it"), "{err}");
    }

    #[test]
    fn run_without_flags_changes_nothing() {
        let run = run_args(&[]);
        assert_eq!(run.overrides(), Overrides::default());
        assert_eq!(run.config, None);
        assert_eq!(run_args(&["--config", "x.toml"]).config, Some(PathBuf::from("x.toml")));
    }

    #[test]
    fn bad_flag_values_are_refused() {
        assert!(parse(&["run", "--kafka-property", "novalue"]).is_err());
        let err = parse(&["run", "--kafka-property", "hunter2-secret"]).unwrap_err().to_string();
        assert!(err.contains("NAME=VALUE") && !err.contains("hunter2"), "{err}");
        assert!(parse(&["run", "--kafka-property", "=x"]).is_err());
        assert!(parse(&["run", "--log-format", "xml"]).is_err());
        assert!(parse(&["run", "--mode", "Shard"]).is_err());
        let run = run_args(&["--instance-id", "a/b"]);
        let err = load(None, &Env::default(), &run.overrides()).unwrap_err();
        assert!(err.to_string().contains("cluster.instance_id (from flag --instance-id)"), "{err}");
        assert!(parse(&["run", "--nope"]).is_err());
        let run = run_args(&["--listen", "nowhere"]);
        let err = load(None, &Env::default(), &run.overrides()).unwrap_err();
        assert!(err.to_string().contains("http.listen (from flag --listen)"), "{err}");
    }

    #[test]
    fn demo_takes_a_listen_address() {
        let Ok(Cli { command: Command::Demo(demo) }) = parse(&["demo", "--listen", "127.0.0.1:0"]) else {
            panic!("expected demo");
        };
        let loaded = load(None, &Env::default(), &demo.overrides()).expect("valid");
        assert_eq!(loaded.config.http.listen.port(), 0);
    }

    #[test]
    fn produce_defaults() {
        let Ok(Cli { command: Command::Produce(p) }) = parse(&["produce"]) else {
            panic!("expected produce");
        };
        let o = p.options();
        assert_eq!(o.scenario, produce::Scenario::Seed);
        assert_eq!(o.compression, "lz4");
        assert_eq!((o.partitions, o.rate, o.events, o.duration), (3, 0, None, None));
        assert!(o.progress);
    }

    #[test]
    fn produce_flags() {
        let Ok(Cli { command: Command::Produce(p) }) = parse(&[
            "produce",
            "--brokers",
            "b:9092",
            "--topic",
            "t",
            "--scenario",
            "random",
            "--events",
            "500",
            "--duration",
            "30s",
            "--rate",
            "1000",
            "--pages",
            "7",
            "--posts-per-page",
            "3",
            "--compression",
            "zstd",
            "--partitions",
            "6",
            "--seed",
            "42",
            "--kafka-property",
            "linger.ms=50",
            "--no-progress",
        ]) else {
            panic!("expected produce");
        };
        let o = p.options();
        assert_eq!(o.scenario, produce::Scenario::Random { pages: 7, posts_per_page: 3 });
        assert_eq!((o.events, o.duration), (Some(500), Some(Duration::from_secs(30))));
        assert_eq!((o.rate, o.partitions, o.seed), (1000, 6, 42));
        assert_eq!(o.compression, "zstd");
        assert_eq!(o.properties, vec![("linger.ms".to_owned(), "50".to_owned())]);
        assert!(!o.progress);
        assert!(parse(&["produce", "--duration", "30"]).is_err());
        assert!(parse(&["produce", "--partitions", "0"]).is_err());
        assert!(parse(&["produce", "--compression", "brotli"]).is_err());
    }

    #[test]
    fn check_config_takes_a_file() {
        let Ok(Cli { command: Command::CheckConfig(c) }) = parse(&["check-config", "a.toml"]) else {
            panic!("expected check-config");
        };
        assert_eq!(c.file, PathBuf::from("a.toml"));
        assert!(parse(&["check-config"]).is_err());
    }

    #[test]
    fn version_is_global() {
        let err = parse(&["--version"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
    }
}
