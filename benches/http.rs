//! HTTP under load (docs/performance.md, "HTTP under load"): do the health
//! checks stay fast while the API is flooded with its heaviest query?
//!
//! Builds a view of 100,000 pages from synthetic events, serves
//! `api::router` with the default limits on 127.0.0.1:0 (a real socket, a
//! 2-thread runtime like the daemon's), then for 20 s keeps 200 clients
//! sending `GET /v1/rankings?window=rolling&metric=interactions_per_1k_followers&limit=1000&offset=99000`
//! back to back while a prober on its own thread asks `/healthz` and
//! `/readyz` every 10 ms. Prints p50/p99/max of the probes and the status
//! counts and slowest answer of the heavy requests.
//!
//! Then the same again over TLS with basic auth, as a web config file
//! serves them (a CA and a server certificate made by `openssl`, a bcrypt
//! hash of cost 10), plus the cost of a new connection: TCP, TLS handshake
//! and one `/healthz`, 200 times.
//!
//! `cargo bench --bench http` (full size); `cargo test`, `--test` or
//! `BENCH_QUICK=1` shrink it to 5,000 pages, 20 clients and 2 s.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use engagement_core::engine::{Engine, Limits};
use engagement_core::event::{DecodeContext, decode};
use engagement_core::synth::{RandomStream, seed_quarter};
use engagement_core::view::View;
use engagement_monitor::config::{Config, HttpConfig, HttpLimits};
use engagement_monitor::pipeline::status;
use engagement_monitor::serve::api::{self, AppState};
use engagement_monitor::serve::{metrics, published};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

const HEAVY: &str = "/v1/rankings?window=rolling&metric=interactions_per_1k_followers&limit=1000&offset=99000";

struct Size {
    pages: u64,
    clients: usize,
    duration: Duration,
}

fn main() {
    let Some(quick) = common::quick() else { return };
    let size = if quick {
        Size { pages: 5_000, clients: 20, duration: Duration::from_secs(2) }
    } else {
        Size { pages: 100_000, clients: 200, duration: Duration::from_secs(20) }
    };
    let started = Instant::now();
    let view = Arc::new(synthetic_view(size.pages));
    println!("view: {} pages, built in {:.1?}", view.usage.pages, started.elapsed());
    // The same view again for the TLS run, so that its orders are computed
    // afresh there too (a view caches the orders it was asked for).
    let again = Arc::new(synthetic_view(size.pages));
    let limits = default_limits();

    println!("--- plain HTTP");
    serve_and_load(view, limits, &size, None);
    println!("--- TLS and basic auth (a web config file)");
    serve_and_load(again, limits, &size, Some(&Pki::new()));
}

/// Serves `view` (through `pki`'s web config file, if any), then measures
/// it: new connections (with TLS only), one client, and the load.
fn serve_and_load(view: Arc<View>, limits: HttpLimits, size: &Size, pki: Option<&Pki>) {
    let (addr, stop, server) = start_server(view, limits, pki.map(|p| p.web_config.as_path()));
    let client = pki.map_or(Client { addr, tls: None, authorization: None }, |p| p.client(addr));
    if client.tls.is_some() {
        new_connections(&client, 200);
    }
    single_client_latency(&client);
    let heavy = run_load(&client, size);
    stop.cancel();
    let _ = server.join();
    heavy.print(limits);
}

/// How the bench's clients reach the server.
#[derive(Clone)]
struct Client {
    addr: std::net::SocketAddr,
    /// TLS, trusting the bench's CA; `None`: plain HTTP.
    tls: Option<TlsConnector>,
    /// The `Authorization` header every request carries.
    authorization: Option<HeaderValue>,
}

/// A CA and a server certificate for 127.0.0.1 (made by `openssl`), and a
/// web config file serving them with one basic-auth user.
struct Pki {
    dir: std::path::PathBuf,
    web_config: std::path::PathBuf,
}

impl Pki {
    const USER: &str = "bench";
    const PASSWORD: &str = "bench-password-1";

    fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!("engagement-bench-pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let d = dir.display();
        openssl(&format!(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
             -keyout {d}/ca.key -out {d}/ca.crt \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
        ));
        let ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
        std::fs::write(dir.join("server.ext"), ext).expect("written");
        openssl(&format!(
            "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=server \
             -keyout {d}/server.key -out {d}/server.csr"
        ));
        openssl(&format!(
            "x509 -req -in {d}/server.csr -CA {d}/ca.crt -CAkey {d}/ca.key -set_serial 2 -days 2 \
             -extfile {d}/server.ext -out {d}/server.crt"
        ));
        let hash = bcrypt::hash(Self::PASSWORD, 10).expect("a bcrypt hash");
        let web_config = dir.join("web.yml");
        let text = format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  {}: '{hash}'\n",
            Self::USER
        );
        std::fs::write(&web_config, text).expect("written");
        Pki { dir, web_config }
    }

    fn client(&self, addr: std::net::SocketAddr) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.dir.join("ca.crt")).expect("the CA") {
            roots.add(cert.expect("a certificate")).expect("a root");
        }
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let credentials = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", Self::USER, Self::PASSWORD),
        );
        Client {
            addr,
            tls: Some(TlsConnector::from(Arc::new(config))),
            authorization: Some(HeaderValue::try_from(format!("Basic {credentials}")).expect("a header value")),
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `openssl` with the words of `args` (the paths have no spaces).
fn openssl(args: &str) {
    let out = std::process::Command::new("openssl")
        .args(args.split_whitespace())
        .output()
        .expect("openssl runs (Debian's openssl)");
    assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `n` new connections, one after another, each opened (with its TLS
/// handshake) and asked `/healthz` once; prints what one took.
fn new_connections(client: &Client, n: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut took: Vec<Duration> = runtime.block_on(async {
        let mut took = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let mut send = connect(client).await.expect("connect");
            assert_eq!(get(&mut send, "/healthz", client).await, Some(StatusCode::OK));
            took.push(t.elapsed());
        }
        took
    });
    took.sort();
    println!(
        "new connection + /healthz: p50 {:.2?} / p99 {:.2?} / max {:.2?} ({n} in a row)",
        took[n / 2],
        took[n * 99 / 100],
        took[n - 1]
    );
}

/// One event per page, then random re-observations, so that every page is
/// in the rolling window with varied figures.
fn synthetic_view(pages: u64) -> View {
    let mut engine = Engine::new(Limits::default());
    let cx = DecodeContext { message_time: None, now: i64::MAX / 4, max_skew: 0, max_payload_bytes: 1 << 16 };
    let mut stream = RandomStream::new(pages, 1, seed_quarter(), 7);
    let (mut buf, mut seen, mut missing) = (Vec::new(), vec![false; pages as usize], pages);
    while missing > 0 {
        let page = stream.next_into(&mut buf) as usize;
        let event = decode(&buf, &cx).expect("synthetic events are valid");
        engine.apply(&event);
        if !std::mem::replace(&mut seen[page], true) {
            missing -= 1;
        }
    }
    View::build(&engine)
}

fn default_limits() -> HttpLimits {
    Config::default().http.limits
}

/// Serves the view on its own 2-thread runtime (the daemon's shape), as
/// the web config file `web_config` says (`None`: plain HTTP).
fn start_server(
    view: Arc<View>,
    limits: HttpLimits,
    web_config: Option<&std::path::Path>,
) -> (std::net::SocketAddr, CancellationToken, std::thread::JoinHandle<()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("address");
    let (views_tx, views) = published::channel();
    views_tx.send_replace(published::Published { view, ready: true });
    let (status_tx, status) = status::channel();
    status_tx.send_replace(status::Readiness::Ready);
    let sources = metrics::Sources {
        views: views.clone(),
        status: status.clone(),
        top_n: 50,
        limits: Limits::default(),
        log_rate_per_second: 10,
        watches: engagement_monitor::config::Config::default().ranking.watches.into(),
        groups: Arc::from([]),
    };
    let state = AppState {
        views,
        status,
        metrics: Arc::new(metrics::Metrics::new(sources)),
        groups: Arc::from([]),
        shard: false,
    };
    let http = HttpConfig { web_config_file: web_config.map(Into::into), ..Config::default().http };
    let web = api::Web::new(&http).expect("the bench's web config file is served");
    let stop = CancellationToken::new();
    let app = api::guarded(state, limits, &web.guard);
    let serving = api::serve_on(listener, app, limits, web.transport, None, stop.clone());
    let thread = std::thread::spawn(move || {
        runtime.block_on(serving);
        drop((views_tx, status_tx));
    });
    (addr, stop, thread)
}

/// A keep-alive HTTP/1.1 connection to the client's server (with its TLS
/// handshake, when it speaks TLS).
async fn connect(client: &Client) -> Option<SendRequest<Body>> {
    let stream = TcpStream::connect(client.addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    match &client.tls {
        None => http1(stream).await,
        Some(tls) => http1(tls.connect(ServerName::IpAddress(client.addr.ip().into()), stream).await.ok()?).await,
    }
}

/// HTTP/1.1 over `io`, its connection driven by a task of its own.
async fn http1<T>(io: T) -> Option<SendRequest<Body>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.ok()?;
    tokio::spawn(conn);
    Some(send)
}

/// Sends `GET path` (with the client's credentials) and reads the whole
/// answer; `None` if the connection failed.
async fn get(send: &mut SendRequest<Body>, path: &str, client: &Client) -> Option<StatusCode> {
    send.ready().await.ok()?;
    let mut req = Request::get(path).header(header::HOST, "bench");
    if let Some(auth) = &client.authorization {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let req = req.body(Body::empty()).ok()?;
    let resp = send.send_request(req).await.ok()?;
    let status = resp.status();
    axum::body::to_bytes(Body::new(resp.into_body()), usize::MAX).await.ok()?;
    Some(status)
}

/// Before the load: one client asks `/v1/rankings?limit=1000` for each
/// metric, once cold (the order is computed) then 50 times (the view's
/// cached order), and prints the latencies, whole requests included.
fn single_client_latency(client: &Client) {
    const METRICS: [&str; 7] = [
        "interactions",
        "reactions",
        "comments",
        "shares",
        "posts",
        "interactions_per_post",
        "interactions_per_1k_followers",
    ];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut send = connect(client).await.expect("connect");
        for metric in METRICS {
            let path = format!("/v1/rankings?window=rolling&metric={metric}&limit=1000");
            let t = Instant::now();
            assert_eq!(get(&mut send, &path, client).await, Some(StatusCode::OK), "{path}");
            let cold = t.elapsed();
            let mut warm = Vec::new();
            for _ in 0..50 {
                let t = Instant::now();
                assert_eq!(get(&mut send, &path, client).await, Some(StatusCode::OK), "{path}");
                warm.push(t.elapsed());
            }
            warm.sort();
            println!(
                "rankings limit=1000 {metric}: cold {:.2?}, then p50 {:.2?} / p99 {:.2?} / max {:.2?}",
                cold,
                warm[warm.len() / 2],
                warm[warm.len() * 99 / 100],
                warm[warm.len() - 1]
            );
        }
    });
}

/// What the heavy clients saw.
#[derive(Default)]
struct Heavy {
    statuses: BTreeMap<String, u64>,
    slowest: Duration,
}

impl Heavy {
    fn merge(&mut self, other: Heavy) {
        for (k, n) in other.statuses {
            *self.statuses.entry(k).or_default() += n;
        }
        self.slowest = self.slowest.max(other.slowest);
    }

    fn print(&self, limits: HttpLimits) {
        let total: u64 = self.statuses.values().sum();
        println!("heavy requests: {total}, by status: {:?}", self.statuses);
        println!(
            "heavy requests: slowest {:.0?} (bound: request_timeout {:?} + 1 s)",
            self.slowest, limits.request_timeout
        );
    }
}

/// One heavy client: requests back to back until `until`, reconnecting
/// when the server closes the connection.
async fn heavy_client(client: Client, until: Instant) -> Heavy {
    let mut seen = Heavy::default();
    let mut conn = None;
    while Instant::now() < until {
        if conn.is_none() {
            conn = connect(&client).await;
        }
        let Some(send) = conn.as_mut() else {
            *seen.statuses.entry("connect failed".into()).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let sent = Instant::now();
        let status = get(send, HEAVY, &client).await;
        seen.slowest = seen.slowest.max(sent.elapsed());
        let key = status.map_or_else(|| "connection lost".into(), |s| s.as_u16().to_string());
        *seen.statuses.entry(key).or_default() += 1;
        if status.is_none() {
            conn = None;
        }
    }
    seen
}

/// Runs the heavy clients (2 threads) and the prober (its own thread).
fn run_load(client: &Client, size: &Size) -> Heavy {
    let until = Instant::now() + size.duration;
    let connected = Arc::new(std::sync::Barrier::new(2));
    let prober = {
        let (connected, client) = (connected.clone(), client.clone());
        std::thread::spawn(move || probe(&client, until, &connected))
    };
    // The probes' connections exist before the flood: this measures
    // answers, not a SYN lost in the burst of 200 connects (a 1 s retry).
    connected.wait();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let heavy = runtime.block_on(async {
        let clients: Vec<_> = (0..size.clients).map(|_| tokio::spawn(heavy_client(client.clone(), until))).collect();
        let mut all = Heavy::default();
        for c in clients {
            all.merge(c.await.expect("a heavy client panicked"));
        }
        all
    });
    for (path, mut latencies) in prober.join().expect("the prober panicked") {
        latencies.sort_unstable();
        let at = |q: f64| latencies.get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)));
        let show = |d: Option<&Duration>| d.map_or("-".into(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3));
        println!(
            "{path}: {} probes, p50 {}, p99 {}, max {}",
            latencies.len(),
            show(at(0.5)),
            show(at(0.99)),
            show(latencies.last())
        );
    }
    heavy
}

/// Asks `/healthz` and `/readyz` every 10 ms until `until`; the latencies
/// of each (a failed probe counts as the time it took to fail).
fn probe(client: &Client, until: Instant, connected: &std::sync::Barrier) -> Vec<(&'static str, Vec<Duration>)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut results = vec![("/healthz", Vec::new()), ("/readyz", Vec::new())];
        let mut conns = [connect(client).await, connect(client).await];
        connected.wait();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        while Instant::now() < until {
            tick.tick().await;
            for (i, (path, latencies)) in results.iter_mut().enumerate() {
                let sent = Instant::now();
                if conns[i].is_none() {
                    conns[i] = connect(client).await;
                }
                let ok = match conns[i].as_mut() {
                    Some(send) => get(send, path, client).await == Some(StatusCode::OK),
                    None => false,
                };
                latencies.push(sent.elapsed());
                if !ok {
                    eprintln!("{path}: probe failed");
                    conns[i] = None;
                }
            }
        }
        results
    })
}
