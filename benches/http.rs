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
//! `cargo bench --bench http` (full size); `cargo test`, `--test` or
//! `BENCH_QUICK=1` shrink it to 5,000 pages, 20 clients and 2 s.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use engagement_core::engine::{Engine, Limits};
use engagement_core::event::{DecodeContext, decode};
use engagement_core::synth::{RandomStream, seed_quarter};
use engagement_core::view::View;
use engagement_monitor::config::{Config, HttpLimits};
use engagement_monitor::pipeline::status;
use engagement_monitor::serve::api::{self, AppState};
use engagement_monitor::serve::{metrics, published};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
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
    let view = synthetic_view(size.pages);
    println!("view: {} pages, built in {:.1?}", view.usage.pages, started.elapsed());
    let limits = default_limits();
    let (addr, stop, server) = start_server(view, limits);
    single_client_latency(addr);
    let heavy = run_load(addr, &size);
    stop.cancel();
    let _ = server.join();
    heavy.print(limits);
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

/// Serves the view on its own 2-thread runtime (the daemon's shape).
fn start_server(
    view: View,
    limits: HttpLimits,
) -> (std::net::SocketAddr, CancellationToken, std::thread::JoinHandle<()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("address");
    let (views_tx, views) = published::channel();
    views_tx.send_replace(published::Published { view: Arc::new(view), ready: true });
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
    let stop = CancellationToken::new();
    let serving = api::serve(listener, api::router(state, limits), limits, stop.clone());
    let thread = std::thread::spawn(move || {
        runtime.block_on(serving);
        drop((views_tx, status_tx));
    });
    (addr, stop, thread)
}

/// A keep-alive HTTP/1.1 connection to `addr`.
async fn connect(addr: std::net::SocketAddr) -> Option<SendRequest<Body>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(conn);
    Some(send)
}

/// Sends `GET path` and reads the whole answer; `None` if the connection failed.
async fn get(send: &mut SendRequest<Body>, path: &str) -> Option<StatusCode> {
    send.ready().await.ok()?;
    let req = Request::get(path).header(header::HOST, "bench").body(Body::empty()).ok()?;
    let resp = send.send_request(req).await.ok()?;
    let status = resp.status();
    axum::body::to_bytes(Body::new(resp.into_body()), usize::MAX).await.ok()?;
    Some(status)
}

/// Before the load: one client asks `/v1/rankings?limit=1000` for each
/// metric, once cold (the order is computed) then 50 times (the view's
/// cached order), and prints the latencies, whole requests included.
fn single_client_latency(addr: std::net::SocketAddr) {
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
        let mut send = connect(addr).await.expect("connect");
        for metric in METRICS {
            let path = format!("/v1/rankings?window=rolling&metric={metric}&limit=1000");
            let t = Instant::now();
            assert_eq!(get(&mut send, &path).await, Some(StatusCode::OK), "{path}");
            let cold = t.elapsed();
            let mut warm = Vec::new();
            for _ in 0..50 {
                let t = Instant::now();
                assert_eq!(get(&mut send, &path).await, Some(StatusCode::OK), "{path}");
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
async fn heavy_client(addr: std::net::SocketAddr, until: Instant) -> Heavy {
    let mut seen = Heavy::default();
    let mut conn = None;
    while Instant::now() < until {
        if conn.is_none() {
            conn = connect(addr).await;
        }
        let Some(send) = conn.as_mut() else {
            *seen.statuses.entry("connect failed".into()).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let sent = Instant::now();
        let status = get(send, HEAVY).await;
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
fn run_load(addr: std::net::SocketAddr, size: &Size) -> Heavy {
    let until = Instant::now() + size.duration;
    let connected = Arc::new(std::sync::Barrier::new(2));
    let prober = {
        let connected = connected.clone();
        std::thread::spawn(move || probe(addr, until, &connected))
    };
    // The probes' connections exist before the flood: this measures
    // answers, not a SYN lost in the burst of 200 connects (a 1 s retry).
    connected.wait();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let heavy = runtime.block_on(async {
        let clients: Vec<_> = (0..size.clients).map(|_| tokio::spawn(heavy_client(addr, until))).collect();
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
fn probe(
    addr: std::net::SocketAddr,
    until: Instant,
    connected: &std::sync::Barrier,
) -> Vec<(&'static str, Vec<Duration>)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut results = vec![("/healthz", Vec::new()), ("/readyz", Vec::new())];
        let mut conns = [connect(addr).await, connect(addr).await];
        connected.wait();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        while Instant::now() < until {
            tick.tick().await;
            for (i, (path, latencies)) in results.iter_mut().enumerate() {
                let sent = Instant::now();
                if conns[i].is_none() {
                    conns[i] = connect(addr).await;
                }
                let ok = match conns[i].as_mut() {
                    Some(send) => get(send, path).await == Some(StatusCode::OK),
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
