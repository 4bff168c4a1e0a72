//! Parses the command line, sets up logging and dispatches; nothing else.

use std::process::ExitCode;

use engagement_monitor::config::{self, Env, LogFormat, Overrides};
use engagement_monitor::run::cli::{self, Command};
use engagement_monitor::run::{daemon, shutdown};
use engagement_monitor::telemetry;
use engagement_monitor::tools::{demo, produce, repartition};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = cli::parse();
    let code = match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engagement-monitor: {e:#}");
            ExitCode::FAILURE
        }
    };
    // Exit now: a Kafka client still closing (it can hang without a broker)
    // must not hold the process past the shutdown deadline.
    std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

fn load(file: Option<&std::path::Path>, flags: &Overrides) -> anyhow::Result<config::Config> {
    let env = Env::from_os(std::env::vars_os())?;
    Ok(config::load(file, &env, flags)?.config)
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => {
            let config = load(args.config.as_deref(), &args.overrides())?;
            telemetry::init(config.log.format, &config.log.level);
            runtime()?.block_on(async {
                let token = CancellationToken::new();
                shutdown::on_signals(token.clone());
                daemon::run(config, token).await
            })
        }
        Command::Demo(args) => {
            let config = load(None, &args.overrides())?;
            // Warnings and the summary of rank changes once a minute.
            telemetry::init(LogFormat::Text, "warn,engagement_monitor::alerts::rank_changes=info");
            runtime()?.block_on(async {
                let token = CancellationToken::new();
                shutdown::on_signals(token.clone());
                demo::run(config.http.listen, token).await
            })
        }
        Command::Produce(args) => {
            telemetry::init(LogFormat::Text, "warn");
            let opts = args.options();
            runtime()?.block_on(produce::ensure_topic(
                &opts.brokers,
                &opts.topic,
                opts.partitions,
                &opts.properties,
            ))?;
            let summary = produce::run(&opts)?;
            anyhow::ensure!(summary.failed == 0, "{} events were not acknowledged", summary.failed);
            Ok(())
        }
        Command::Repartition(args) => {
            telemetry::init(LogFormat::Text, "warn");
            let s = repartition::run(&args.options())?;
            eprintln!(
                "copied {} events ({} kept their key: no page_id) in {:.2}s",
                s.copied,
                s.unkeyed,
                s.elapsed.as_secs_f64()
            );
            anyhow::ensure!(s.failed == 0, "{} events were not acknowledged", s.failed);
            Ok(())
        }
        Command::CheckConfig(args) => {
            let env = Env::from_os(std::env::vars_os())?;
            let loaded = config::load(Some(&args.file), &env, &Overrides::default())?;
            // Certificates and keys are loaded as `run` loads them.
            daemon::web(&loaded.config)?;
            print!("{}", config::render_effective(&loaded));
            Ok(())
        }
    }
}
