//! The monitoring stack around the daemon, for the alerting and dashboard
//! tests: a real Prometheus (Debian's `prometheus`) loading
//! `deploy/prometheus/rules.yml`, a real Alertmanager (Debian's
//! `prometheus-alertmanager`) and a webhook receiver inside the test. Each
//! runs on 127.0.0.1 with a free port and a temporary directory, is killed
//! on drop, and is waited for with deadlines. A missing binary fails the
//! test loudly (scripts/install-deps.sh installs both).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

const START: Duration = Duration::from_secs(60);

/// A child process of the test, killed on drop; its output goes to files
/// in its directory, shown when it fails to start.
pub struct Service {
    child: Child,
    pub addr: String,
    pub dir: TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// Runs `binary` with `config` in its own directory, its storage beside
    /// it (flag `storage`), on a free address, with `extra` arguments, and
    /// waits until it answers `/-/ready`.
    fn configured(binary: &str, name: &str, config: &str, storage: &str, extra: &[&str]) -> Service {
        let dir = TempDir::new(name);
        let config_path = dir.0.join(format!("{name}.yml"));
        std::fs::write(&config_path, config).unwrap_or_else(|e| panic!("writing {}: {e}", config_path.display()));
        let addr = free_addr();
        let mut args = vec![
            format!("--config.file={}", config_path.display()),
            format!("{storage}={}", dir.0.join("data").display()),
            format!("--web.listen-address={addr}"),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let log = std::fs::File::create(dir.0.join("output.log")).expect("a log file");
        let child = Command::new(binary)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `{binary}` ({e}): install Debian's {binary} (scripts/install-deps.sh)")
            });
        let mut service = Service { child, addr, dir };
        let ready = Instant::now() + START;
        while http_get(&service.addr, "/-/ready").map(|(code, _)| code).ok() != Some(200) {
            if let Ok(Some(status)) = service.child.try_wait() {
                panic!("{binary} exited with {status}:\n{}", service.output());
            }
            assert!(Instant::now() < ready, "{binary} not ready within {START:?}:\n{}", service.output());
            std::thread::sleep(Duration::from_millis(100));
        }
        service
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("output.log")).unwrap_or_default()
    }
}

fn free_addr() -> String {
    format!("127.0.0.1:{}", TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port())
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Prometheus scraping the targets of `targets` (file discovery, so a
/// restarted daemon on a new port is found) every second, evaluating the
/// project's rules every second, and alerting `alertmanager` when given.
pub fn prometheus(targets: &Targets, alertmanager: Option<&str>) -> Service {
    let alerting = alertmanager.map_or(String::new(), |am| {
        format!("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"{am}\"]\n")
    });
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules}\n{alerting}\
         scrape_configs:\n  - job_name: engagement-monitor\n    file_sd_configs:\n      - files: [\"{targets}\"]\n        refresh_interval: 1s\n",
        rules = repo("deploy/prometheus/rules.yml").display(),
        targets = targets.path.display(),
    );
    Service::configured("prometheus", "prometheus", &config, "--storage.tsdb.path", &[])
}

/// Prometheus scraping `target` every second over TLS (trusting only
/// `ca_file`) with basic auth, as an operator would against a daemon with
/// a web config file.
pub fn prometheus_tls(target: &str, ca_file: &Path, user: &str, password: &str) -> Service {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: engagement-monitor\n    scheme: https\n\
         \x20   tls_config:\n      ca_file: {ca}\n\
         \x20   basic_auth:\n      username: {user}\n      password: {password}\n\
         \x20   static_configs:\n      - targets: [\"{target}\"]\n",
        ca = ca_file.display(),
    );
    Service::configured("prometheus", "prometheus", &config, "--storage.tsdb.path", &[])
}

/// Waits until `promql` has a sample of `value`; the last value seen
/// (`None`: no sample) when `timeout` passes first.
pub fn wait_for_value(prometheus: &Service, promql: &str, value: f64, timeout: Duration) -> Option<f64> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = query(prometheus, promql).first().and_then(|s| s["value"][1].as_str()?.parse::<f64>().ok());
        if last == Some(value) || Instant::now() >= deadline {
            return last;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `lastError` of each active scrape target, for failure messages.
pub fn target_error(prometheus: &Service) -> String {
    match http_get(&prometheus.addr, "/api/v1/targets") {
        Ok((_, body)) => body,
        Err(e) => format!("(targets unavailable: {e})"),
    }
}

/// Alertmanager sending every alert on its own (`group_by: ['...']`) to
/// `webhook`, firing and resolved, with one-second waits.
pub fn alertmanager(webhook: &str) -> Service {
    let config = format!(
        "route:\n  receiver: test\n  group_by: ['...']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: test\n    webhook_configs:\n      - url: http://{webhook}/\n        send_resolved: true\n"
    );
    let (binary, no_cluster) = ("prometheus-alertmanager", "--cluster.listen-address=");
    Service::configured(binary, "alertmanager", &config, "--storage.path", &[no_cluster])
}

/// Alertmanager with the shipped route (deploy/alertmanager/alertmanager.yml),
/// both receivers sending to `webhook`.
pub fn alertmanager_shipped(webhook: &str) -> Service {
    let shipped = std::fs::read_to_string(repo("deploy/alertmanager/alertmanager.yml")).expect("the shipped route");
    let url = format!("http://{webhook}/");
    let config = shipped
        .replace("http://operators-webhook.example:8080/alerts", &url)
        .replace("http://analysts-webhook.example:8080/rank-changes", &url);
    assert_eq!(config.matches(&url).count(), 2, "both receivers point at the webhook");
    let (binary, no_cluster) = ("prometheus-alertmanager", "--cluster.listen-address=");
    Service::configured(binary, "alertmanager", &config, "--storage.path", &[no_cluster])
}

/// The file Prometheus discovers the daemon's address in.
pub struct Targets {
    path: PathBuf,
    _dir: TempDir,
}

impl Targets {
    pub fn new() -> Targets {
        let dir = TempDir::new("targets");
        let path = dir.0.join("targets.json");
        let targets = Targets { path, _dir: dir };
        targets.set(&[]);
        targets
    }

    /// Replaces the targets (written whole and renamed: Prometheus never
    /// reads half a file).
    pub fn set(&self, addrs: &[&str]) {
        let json = serde_json::json!([{ "targets": addrs }]).to_string();
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, json).expect("writing the targets");
        std::fs::rename(&tmp, &self.path).expect("renaming the targets");
    }
}

/// `/api/v1/query` of `prometheus` at now: the result vector.
pub fn query(prometheus: &Service, promql: &str) -> Vec<serde_json::Value> {
    let (code, body) = http_get(&prometheus.addr, &format!("/api/v1/query?query={}", encode(promql)))
        .unwrap_or_else(|e| panic!("querying Prometheus: {e}"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!((code, v["status"].as_str()), (200, Some("success")), "query {promql}: {body}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Percent-encodes a query parameter.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A notification as the webhook received it.
#[derive(Debug, Clone)]
pub struct Notification {
    pub at: Instant,
    pub body: serde_json::Value,
}

/// An HTTP server inside the test that records every POST body.
pub struct Webhook {
    pub addr: String,
    received: Arc<Mutex<Vec<Notification>>>,
    stop: Arc<AtomicBool>,
}

impl Webhook {
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a webhook port");
        let addr = listener.local_addr().unwrap().to_string();
        let (received, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let (sink, stopped) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(body) = stream.ok().and_then(|s| serve_one(s).ok()) {
                    let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
                    sink.lock().unwrap().push(Notification { at: Instant::now(), body });
                }
            }
        });
        Webhook { addr, received, stop }
    }

    pub fn received(&self) -> Vec<Notification> {
        self.received.lock().unwrap().clone()
    }

    /// Waits for a notification with `status` holding an alert that `matches`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        status: &str,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> (Notification, serde_json::Value) {
        wait_until(what, timeout, || {
            self.received().into_iter().find_map(|n| {
                let alert = n.body["alerts"].as_array()?.iter().find(|a| a["status"] == status && matches(a))?.clone();
                Some((n, alert))
            })
        })
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr);
    }
}

/// Reads one request, answers 200, returns the body.
fn serve_one(stream: TcpStream) -> std::io::Result<String> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut stream = stream;
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}
