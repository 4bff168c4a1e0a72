use std::time::Duration;

use super::*;
use axum::body::Body;
use axum::http::Request as HttpRequest;
use axum::http::header;
use engagement_core::engine::{Engine, Limits};
use engagement_core::event::{DecodeContext, decode};
use engagement_core::synth::seed_events;
use engagement_core::view::View;
use tower::ServiceExt;

fn state_with(events: &[String]) -> AppState {
    fixture(events).0
}

/// The app state over `events`, ready, with the status's writing end.
pub(super) fn fixture(events: &[String]) -> (AppState, crate::pipeline::status::StatusTx) {
    let mut e = Engine::new(Limits::default());
    let cx = DecodeContext { message_time: None, now: i64::MAX / 4, max_skew: 0, max_payload_bytes: 1 << 16 };
    for json in events {
        e.apply(&decode(json.as_bytes(), &cx).unwrap());
    }
    let (views_tx, views) = crate::serve::published::channel();
    views_tx.send_replace(crate::serve::published::Published { view: Arc::new(View::build(&e)), ready: true });
    let (status_tx, status) = crate::pipeline::status::channel();
    status_tx.send_replace(crate::pipeline::status::Readiness::Ready);
    let sources = crate::serve::metrics::Sources {
        views: views.clone(),
        status: status.clone(),
        top_n: 50,
        limits: Limits::default(),
        log_rate_per_second: 10,
        watches: crate::config::default_watches().into(),
        groups: Arc::from([]),
    };
    let state = AppState {
        views,
        status,
        metrics: Arc::new(crate::serve::metrics::Metrics::new(sources)),
        groups: Arc::from([]),
        shard: false,
    };
    (state, status_tx)
}

const LIMITS: HttpLimits = HttpLimits {
    request_timeout: Duration::from_secs(5),
    max_concurrent_requests: 8,
    max_query_bytes: 256,
    header_timeout: Duration::from_secs(30),
    idle_timeout: Duration::from_secs(30),
    max_connections: 8,
};

pub(super) async fn get(state: &AppState, uri: &str) -> (StatusCode, serde_json::Value) {
    let resp = router(state.clone(), LIMITS).oneshot(HttpRequest::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn rankings_default_to_current_quarter_by_interactions() {
    let s = state_with(&seed_events());
    let (code, body) = get(&s, "/v1/rankings").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["window"]["id"], "2025-Q3");
    assert_eq!(body["window"]["start"], "2025-07-01T00:00:00Z");
    assert_eq!(body["metric"], "interactions");
    assert_eq!(body["total_pages"], 5);
    let first = &body["entries"][0];
    assert_eq!((first["rank"].as_u64(), first["page_id"].as_str()), (Some(1), Some("whitehouse")));
    assert_eq!(first["interactions"], 26_243_488);
    assert_eq!(first["posts"], 650);
    assert_eq!(first["followers"], 12_485_769);
    assert_eq!(first["interactions_per_1k_followers"], 2101.87);
    assert_eq!(first["previous_period_rank"], serde_json::Value::Null);
    assert_eq!(body["entries"][3]["followers"], serde_json::Value::Null);
}

#[tokio::test]
async fn limit_offset_metric_and_quarter_ids_work() {
    let s = state_with(&seed_events());
    let (_, body) = get(&s, "/v1/rankings?window=2025-Q3&metric=interactions_per_1k_followers&limit=1&offset=0").await;
    assert_eq!(body["entries"].as_array().unwrap().len(), 1);
    assert_eq!(body["entries"][0]["page_id"], "pmcambodia");
    let (_, body) = get(&s, "/v1/rankings?limit=2&offset=3").await;
    let ids: Vec<&str> = body["entries"].as_array().unwrap().iter().map(|e| e["page_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["inc.bihar", "ice.gov"]);
    let (code, body) = get(&s, "/v1/rankings?window=rolling").await;
    assert_eq!((code, body["window"]["id"].as_str()), (StatusCode::OK, Some("rolling")));
}

#[tokio::test]
async fn bad_parameters_are_400_with_a_json_error() {
    let s = state_with(&seed_events());
    for uri in [
        "/v1/rankings?metric=likes",
        "/v1/rankings?window=2025-Q9",
        "/v1/rankings?window=yesterday",
        "/v1/rankings?limit=1001",
        "/v1/rankings?limit=-1",
        "/v1/rankings?offset=x",
        "/v1/rankings?platform=Face%20book",
        "/v1/rankings?limit=1&limit=2",
        "/v1/rankings?colour=blue",
        "/v1/rankings?%ff=1",
    ] {
        let (code, body) = get(&s, uri).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{uri}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{uri}: {body}");
    }
    let long = format!("/v1/rankings?window={}", "a".repeat(300));
    assert_eq!(get(&s, &long).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_things_are_404() {
    let s = state_with(&seed_events());
    assert_eq!(get(&s, "/v1/rankings?window=2020-Q1").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&s, "/v1/pages/facebook/nobody").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&s, "/v2/anything").await.0, StatusCode::NOT_FOUND);
    let empty = state_with(&[]);
    let (code, body) = get(&empty, "/v1/rankings").await;
    assert_eq!((code, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("no events consumed yet")));
}

#[tokio::test]
async fn page_endpoint_lists_windows_ranks_and_top_posts() {
    let s = state_with(&seed_events());
    let (code, body) = get(&s, "/v1/pages/facebook/moi.egy").await;
    assert_eq!(code, StatusCode::OK);
    assert!(body["page_name"].as_str().unwrap().starts_with("وزارة الداخلية"));
    let q3 = body["windows"].as_array().unwrap().iter().find(|w| w["id"] == "2025-Q3").unwrap();
    assert_eq!(
        (q3["rank"].as_u64(), q3["interactions"].as_u64(), q3["posts"].as_u64()),
        (Some(2), Some(24_370_680), Some(1780))
    );
    let posts = body["top_posts"].as_array().unwrap();
    assert_eq!(posts.len(), 10);
    assert!(posts.windows(2).all(|w| w[0]["interactions"].as_u64() >= w[1]["interactions"].as_u64()));
}

#[tokio::test]
async fn every_quarter_window_of_a_page_has_its_own_top_posts() {
    // Late observations of two posts published in 2025-Q2, after the
    // seed's Q3: the page's live list stays Q3's, Q2 gets a list of its own.
    let mut events = seed_events();
    for (post, reactions) in [("june-1", 700), ("june-2", 900)] {
        events.push(format!(
            r#"{{"page_id":"moi.egy","post_id":"{post}","published_at":"2025-06-10T00:00:00Z","observed_at":"2025-09-29T00:00:00Z","reactions":{reactions}}}"#
        ));
    }
    let s = state_with(&events);
    let (code, body) = get(&s, "/v1/pages/facebook/moi.egy").await;
    assert_eq!(code, StatusCode::OK);
    let window = |id: &str| body["windows"].as_array().unwrap().iter().find(|w| w["id"] == id).cloned().unwrap();
    let (q2, q3) = (window("2025-Q2"), window("2025-Q3"));
    assert_eq!(q2["posts"], 2);
    assert_eq!(
        q2["top_posts"],
        serde_json::json!([{"post_id": "june-2", "interactions": 900}, {"post_id": "june-1", "interactions": 700}])
    );
    assert_eq!(q3["top_posts"], body["top_posts"], "the current quarter's list, as at the top level");
    assert_eq!(q3["top_posts"].as_array().unwrap().len(), 10);
    for w in body["windows"].as_array().unwrap() {
        let quarter = w["id"].as_str().unwrap().contains("-Q");
        assert_eq!(w.get("top_posts").is_some(), quarter, "only quarters have their own list: {}", w["id"]);
    }
}

#[tokio::test]
async fn windows_endpoint_lists_retained_quarters() {
    let s = state_with(&seed_events());
    let (_, body) = get(&s, "/v1/windows").await;
    let quarters = body["quarters"].as_array().unwrap();
    assert_eq!(quarters.len(), 5);
    assert_eq!((quarters[0]["id"].as_str(), quarters[0]["pages"].as_u64()), (Some("2025-Q3"), Some(5)));
    assert_eq!(body["rolling"]["days"], 90);
}

#[tokio::test]
async fn metrics_have_the_prometheus_3_content_type_and_top_pages() {
    let s = state_with(&seed_events());
    let resp =
        router(s.clone(), LIMITS).oneshot(HttpRequest::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/plain; version=0.0.4; charset=utf-8");
    let text = String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap().to_vec()).unwrap();
    assert!(
        text.contains(r#"engagement_page_rank{window="current",platform="facebook",page_id="whitehouse"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"engagement_events_total{outcome="conflict"} 0"#));
    let build =
        format!(r#"engagement_build_info{{revision="{}",version="{}"}} 1"#, crate::REVISION, env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&build), "{text}");
}

#[tokio::test]
async fn readiness_follows_the_phase() {
    let (s, status) = fixture(&[]);
    assert_eq!(get(&s, "/readyz").await.0, StatusCode::OK);
    status.send_replace(crate::pipeline::status::Readiness::CatchingUp { behind: 5 });
    let (code, body) = get(&s, "/readyz").await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("catching up: 5 messages behind"))
    );
    assert_eq!(get(&s, "/healthz").await.0, StatusCode::OK);
}

// ---- hardening (B1–B3), written before the fixes ----

/// A ready state over `pages` pages (one post each, platform facebook).
fn big_state(pages: u64) -> AppState {
    let quarter = engagement_core::synth::seed_quarter();
    let events: Vec<String> = (0..pages)
        .map(|page| {
            let published = quarter.start() + (page * 7919 % (40 * 86_400_000)) as i64;
            format!(
                r#"{{"page_id":"page_{page:07}","post_id":"p{page:07}","published_at":{published},"observed_at":{published},"reactions":{},"comments":{},"followers":{}}}"#,
                page * 37 % 100_003,
                page % 101,
                1_000 + page * 13 % 7_919
            )
        })
        .collect();
    state_with(&events)
}

const HEAVY: &str = "/v1/rankings?window=rolling&metric=interactions_per_1k_followers&limit=1000&offset=99000";

async fn call(app: &Router, method: &str, uri: &str) -> Response {
    let req = HttpRequest::builder().method(method).uri(uri).body(Body::empty()).unwrap();
    app.clone().oneshot(req).await.unwrap()
}

/// Polls `f` every 10 ms until it holds; panics with `what` after `within`.
async fn wait_until<F: std::future::Future<Output = bool>>(within: Duration, what: &str, mut f: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + within;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Keeps one heavy ranking request in flight until the handle is aborted.
fn keep_busy(app: &Router) -> tokio::task::JoinHandle<()> {
    let app = app.clone();
    tokio::spawn(async move {
        loop {
            let _ = call(&app, "GET", HEAVY).await;
            tokio::task::yield_now().await;
        }
    })
}

/// A router over 100,000 pages that serves one request at a time, kept
/// busy by [`keep_busy`]: returned once another request is refused.
async fn busy_router() -> (Router, tokio::task::JoinHandle<()>) {
    let limits = HttpLimits { max_concurrent_requests: 1, request_timeout: Duration::from_secs(60), ..LIMITS };
    let app = router(big_state(100_000), limits);
    let busy = keep_busy(&app);
    let app2 = app.clone();
    wait_until(Duration::from_secs(60), "the API is busy with a ranking", || {
        let app = app2.clone();
        async move { call(&app, "GET", "/v1/windows").await.status() == StatusCode::SERVICE_UNAVAILABLE }
    })
    .await;
    (app, busy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_are_not_subject_to_the_concurrency_limit() {
    let (app, busy) = busy_router().await;
    for _ in 0..20 {
        assert_eq!(call(&app, "GET", "/healthz").await.status(), StatusCode::OK);
        assert_eq!(call(&app, "GET", "/readyz").await.status(), StatusCode::OK);
    }
    busy.abort();
}

/// One runtime thread: a handler that computed on it would hold every other
/// request until it finished, so the API would never be seen busy.
#[tokio::test(flavor = "current_thread")]
async fn heavy_work_runs_off_the_runtime_threads() {
    let (app, busy) = busy_router().await;
    assert_eq!(call(&app, "GET", "/healthz").await.status(), StatusCode::OK);
    busy.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_heavy_request_past_its_deadline_gets_408() {
    let limits = HttpLimits { request_timeout: Duration::from_millis(1), ..LIMITS };
    let resp = call(&router(big_state(100_000), limits), "GET", HEAVY).await;
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    assert_eq!(&body[..], br#"{"error":"request timed out"}"#);
}

#[tokio::test]
async fn method_not_allowed_is_json_with_allow() {
    let app = router(state_with(&seed_events()), LIMITS);
    let resp = call(&app, "POST", "/v1/rankings").await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(resp.headers()[header::ALLOW].to_str().unwrap().contains("GET"));
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    let body: serde_json::Value =
        serde_json::from_slice(&axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
}

#[tokio::test]
async fn invalid_utf8_in_the_path_is_a_json_error() {
    let app = router(state_with(&seed_events()), LIMITS);
    let resp = call(&app, "GET", "/v1/pages/facebook/%FF").await;
    assert!(matches!(resp.status(), StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND), "{}", resp.status());
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
}

#[tokio::test]
async fn windows_and_rank_changes_refuse_any_parameter() {
    let s = state_with(&seed_events());
    for uri in [
        "/v1/windows?colour=blue",
        "/v1/windows?x=1&x=2",
        "/v1/windows?%ff=1",
        "/v1/rank-changes?limit=5",
        "/v1/rank-changes?%ff=1",
    ] {
        let (code, body) = get(&s, uri).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{uri}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{uri}: {body}");
    }
    let (code, body) = get(&s, "/v1/rank-changes").await;
    assert_eq!((code, body["changes"].is_array()), (StatusCode::OK, true), "{body}");
}

#[tokio::test]
async fn every_response_says_nosniff() {
    let app = router(state_with(&seed_events()), LIMITS);
    for (method, uri) in [
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/v1/rankings"),
        ("GET", "/v1/rankings?colour=blue"),
        ("GET", "/nowhere"),
        ("POST", "/v1/rankings"),
        ("GET", "/metrics"),
    ] {
        let resp = call(&app, method, uri).await;
        assert_eq!(resp.headers().get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]), "{uri}");
    }
}

#[tokio::test]
async fn the_leaderboard_has_a_strict_content_security_policy() {
    let app = router(state_with(&seed_events()), LIMITS);
    let resp = call(&app, "GET", "/").await;
    let csp = resp.headers().get(header::CONTENT_SECURITY_POLICY).expect("a CSP").to_str().unwrap().to_owned();
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    assert!(directives.contains(&"default-src 'none'"), "{csp}");
    assert!(directives.contains(&"connect-src 'self'"), "{csp}");
    let script = directives.iter().find(|d| d.starts_with("script-src ")).expect("script-src");
    assert!(script.contains("'sha256-") && !script.contains("unsafe-inline"), "{csp}");
}

// ---- connections (B2): a real socket on 127.0.0.1:0 ----

mod connections {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    struct Server {
        addr: std::net::SocketAddr,
        stop: tokio_util::sync::CancellationToken,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.cancel();
        }
    }

    async fn start(limits: HttpLimits) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(serve(listener, router(state_with(&seed_events()), limits), limits, stop.clone()));
        Server { addr, stop }
    }

    /// Reads one whole response to `GET /healthz` (its body ends the JSON).
    async fn read_health(c: &mut TcpStream) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(br#"{"status":"ok"}"#) {
            let n = c.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(got).unwrap()
    }

    const REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

    /// Whether the server has closed `c` (read returns end of file or an error).
    async fn closed_within(c: &mut TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 64];
        matches!(tokio::time::timeout(within, c.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
    }

    #[tokio::test]
    async fn a_client_that_trickles_its_headers_is_disconnected() {
        let header_timeout = Duration::from_millis(300);
        let server = start(HttpLimits { header_timeout, ..LIMITS }).await;
        let mut c = TcpStream::connect(server.addr).await.unwrap();
        let header = b"GET /healthz HTTP/1.1\r\nX-Slow: ".iter().chain(std::iter::repeat(&b'a'));
        let started = tokio::time::Instant::now();
        let mut buf = [0u8; 64];
        for byte in header {
            if started.elapsed() > Duration::from_secs(10) {
                panic!("still connected after 10 s of trickled headers");
            }
            let closed = c.write_all(&[*byte]).await.is_err()
                || matches!(
                    tokio::time::timeout(Duration::from_millis(100), c.read(&mut buf)).await,
                    Ok(Ok(0) | Err(_))
                );
            if closed {
                assert!(started.elapsed() >= header_timeout, "closed after {:?}", started.elapsed());
                return;
            }
        }
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed() {
        let idle_timeout = Duration::from_millis(300);
        let server = start(HttpLimits { idle_timeout, ..LIMITS }).await;
        let mut c = TcpStream::connect(server.addr).await.unwrap();
        c.write_all(REQUEST).await.unwrap();
        assert!(read_health(&mut c).await.starts_with("HTTP/1.1 200"));
        let answered = tokio::time::Instant::now();
        assert!(closed_within(&mut c, Duration::from_secs(10)).await, "idle connection still open after 10 s");
        assert!(answered.elapsed() >= idle_timeout, "closed after {:?}", answered.elapsed());
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait_until_one_closes() {
        let server = start(HttpLimits { max_connections: 1, ..LIMITS }).await;
        let mut first = TcpStream::connect(server.addr).await.unwrap();
        first.write_all(REQUEST).await.unwrap();
        read_health(&mut first).await;
        let mut second = TcpStream::connect(server.addr).await.unwrap();
        second.write_all(REQUEST).await.unwrap();
        // The first connection is still served, the second is not.
        first.write_all(REQUEST).await.unwrap();
        read_health(&mut first).await;
        let mut buf = [0u8; 64];
        let early = tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf)).await;
        assert!(early.is_err(), "connection 2 was served while connection 1 was open");
        drop(first);
        let answer = tokio::time::timeout(Duration::from_secs(5), read_health(&mut second)).await;
        assert!(answer.is_ok_and(|a| a.starts_with("HTTP/1.1 200")));
    }
}

/// The raw answer to `uri` with `accept`: status, content type, body.
async fn get_raw(state: &AppState, uri: &str, accept: Option<&str>) -> (StatusCode, String, Vec<u8>) {
    let mut req = HttpRequest::get(uri);
    if let Some(a) = accept {
        req = req.header(header::ACCEPT, a);
    }
    let resp = router(state.clone(), LIMITS).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let ctype = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (status, ctype, axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap().to_vec())
}

#[tokio::test]
async fn a_ranking_as_csv_holds_the_rows_of_its_json_quoted_where_needed() {
    let mut events = seed_events();
    // A page whose name needs quoting: a comma, a quote, Arabic text.
    let odd = r#"{"page_id":"odd","post_id":"o1","published_at":"2025-07-02T00:00:00Z","observed_at":"2025-07-03T00:00:00Z","reactions":7,"page_name":"Ministry, \"Interior\" وزارة الداخلية"}"#;
    events.push(odd.to_string());
    let s = state_with(&events);
    let (_, json) = get(&s, "/v1/rankings?window=2025-Q3&limit=100").await;
    let (code, ctype, body) = get_raw(&s, "/v1/rankings?window=2025-Q3&limit=100&format=csv", None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(ctype, "text/csv; charset=utf-8; header=present");
    let text = String::from_utf8(body.clone()).expect("UTF-8");
    assert!(text.contains("\"Ministry, \"\"Interior\"\" وزارة الداخلية\""), "RFC 4180 quoting: {text}");
    assert_eq!(text.matches("\r\n").count(), text.matches('\n').count(), "CRLF line ends");
    let mut rows = csv::Reader::from_reader(&body[..]);
    let header: Vec<String> = rows.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header[..4], ["rank", "platform", "page_id", "page_name"]);
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let entries = json["entries"].as_array().unwrap();
    assert_eq!(records.len(), entries.len());
    for (r, e) in records.iter().zip(entries) {
        for (i, column) in header.iter().enumerate() {
            let field = &r[i];
            let expected = match &e[column.as_str()] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(groups) => {
                    let mut g: Vec<String> = groups
                        .iter()
                        .flat_map(|(d, vs)| {
                            vs.as_array().unwrap().iter().map(move |v| format!("{d}:{}", v.as_str().unwrap()))
                        })
                        .collect();
                    g.sort();
                    g.join(";")
                }
                serde_json::Value::Number(n) => {
                    let read: f64 = field.parse().unwrap_or(f64::NAN);
                    assert_eq!(read, n.as_f64().unwrap(), "column {column} of {}", e["page_id"]);
                    continue;
                }
                v => v.to_string(),
            };
            assert_eq!(field, expected, "column {column} of {}", e["page_id"]);
        }
    }
    assert!(records.iter().any(|r| &r[3] == "Ministry, \"Interior\" وزارة الداخلية"));
}

#[tokio::test]
async fn csv_is_chosen_by_accept_without_format_and_a_bad_format_is_a_400() {
    let s = state_with(&seed_events());
    let (code, ctype, _) = get_raw(&s, "/v1/rankings", Some("text/html, text/csv;q=0.9")).await;
    assert_eq!((code, ctype.as_str()), (StatusCode::OK, "text/csv; charset=utf-8; header=present"));
    let (_, ctype, _) = get_raw(&s, "/v1/rankings?format=json", Some("text/csv")).await;
    assert!(ctype.starts_with("application/json"), "the parameter wins: {ctype}");
    let (_, ctype, _) = get_raw(&s, "/v1/rankings", Some("*/*")).await;
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let (code, body) = get(&s, "/v1/rankings?format=xml").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "format must be json or csv");
    let (code, body) = get(&s, "/v1/rankings?window=bogus&format=csv").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "errors stay JSON: {body}");
}

#[tokio::test]
async fn views_are_a_ranking_metric() {
    let ev = |page: &str, views: u64| {
        format!(
            r#"{{"page_id":"{page}","post_id":"{page}-1","published_at":"2025-07-02T00:00:00Z","observed_at":"2025-07-03T00:00:00Z","reactions":9,"views":{views}}}"#
        )
    };
    let s = state_with(&[ev("few", 10), ev("many", 5_000), ev("none", 0)]);
    let (code, body) = get(&s, "/v1/rankings?window=2025-Q3&metric=views").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["metric"], "views");
    let order: Vec<(&str, u64)> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["page_id"].as_str().unwrap(), e["views"].as_u64().unwrap()))
        .collect();
    assert_eq!(order, [("many", 5_000), ("few", 10), ("none", 0)]);
}

#[tokio::test]
async fn pages_are_found_by_name_or_id_whatever_the_case_accents_or_arabic_marks() {
    let s = state_with(&seed_events());
    let (code, body) = get(&s, "/v1/pages?q=MINISTRY").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 1);
    assert_eq!(body["pages"][0]["page_id"], "moi.egy");
    assert_eq!(body["pages"][0]["page_name"], "وزارة الداخلية - Egypt, Ministry of Interior");
    // Arabic without the taa marbuta's form and with a short vowel mark.
    let (_, body) = get(&s, "/v1/pages?q=%D8%A7%D9%84%D8%AF%D8%A7%D8%AE%D9%84%D9%8A%D9%87").await;
    assert_eq!(body["pages"][0]["page_id"], "moi.egy", "الداخليه: {body}");
    let (_, body) = get(&s, "/v1/pages?q=whiteh").await;
    assert_eq!((body["total"].as_u64(), body["pages"][0]["page_id"].as_str()), (Some(1), Some("whitehouse")));
    let (_, body) = get(&s, "/v1/pages?q=e&limit=2").await;
    assert_eq!(body["pages"].as_array().unwrap().len(), 2, "bounded by limit");
    assert!(body["total"].as_u64().unwrap() > 2, "the total still counted: {body}");
    let (_, body) = get(&s, "/v1/pages?q=nothing-like-this").await;
    assert_eq!((body["total"].as_u64(), body["pages"].as_array().map(Vec::len)), (Some(0), Some(0)));
    for (uri, error) in [
        ("/v1/pages", "q is required: the text to find in page names and ids"),
        ("/v1/pages?q=%20%20", "q must hold 1 to 256 bytes of text once folded"),
        ("/v1/pages?q=x&limit=101", "limit must be an integer from 0 to 100"),
        ("/v1/pages?q=x&page=1", "unknown parameter \"page\"; allowed: q, limit"),
    ] {
        let (code, body) = get(&s, uri).await;
        assert_eq!((code, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some(error)), "{uri}");
    }
}

#[tokio::test]
async fn a_series_sums_to_the_window_and_a_comparison_orders_each_bucket() {
    let s = state_with(&seed_events());
    let (code, body) = get(&s, "/v1/pages/facebook/moi.egy/series?window=2025-Q3").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let buckets = body["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 92, "every day of the quarter, empty ones included");
    assert_eq!((buckets[0]["start"].as_str(), buckets[91]["end"].as_str()), (Some("2025-07-01"), Some("2025-09-30")));
    let sum = |key: &str| buckets.iter().map(|b| b[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("interactions"), sum("posts")), (24_370_680, 1_780));
    assert_eq!(buckets[91]["running"]["interactions"], 24_370_680);
    assert_eq!(body["totals"]["posts"], 1_780);
    assert_eq!((body["rank"].as_u64(), body["bucket"].as_str()), (Some(2), Some("day")));

    let (code, weeks) = get(&s, "/v1/pages/facebook/moi.egy/series?window=2025-Q3&bucket=week").await;
    assert_eq!(code, StatusCode::OK);
    let weeks = weeks["buckets"].as_array().unwrap();
    // 2025-07-01 is a Tuesday: a short first week, 12 whole ones, then Monday 29 to Tuesday 30 September.
    assert_eq!(weeks.len(), 14);
    assert_eq!((weeks[0]["end"].as_str(), weeks[13]["start"].as_str()), (Some("2025-07-06"), Some("2025-09-29")));
    assert_eq!(weeks[13]["running"]["interactions"], 24_370_680);

    let (code, c) = get(&s, "/v1/compare?page=facebook/moi.egy&page=facebook/whitehouse&window=2025-Q3").await;
    assert_eq!(code, StatusCode::OK, "{c}");
    assert_eq!(c["pages"][0]["page_id"], "moi.egy");
    assert_eq!(c["pages"][1]["rank"], 1);
    let last = &c["buckets"][91];
    assert_eq!(last["values"][1]["running"]["interactions"], 26_243_488);
    assert_eq!(last["order"], serde_json::json!(["facebook/whitehouse", "facebook/moi.egy"]));
    // The White House leads from the first day on: nobody overtakes.
    assert_eq!(c["overtakes"], serde_json::json!([]));
}

#[tokio::test]
async fn bad_series_and_comparison_requests_are_400_or_404() {
    let s = state_with(&seed_events());
    let cases = [
        ("/v1/pages/facebook/nobody/series", StatusCode::NOT_FOUND, "unknown page"),
        ("/v1/pages/facebook/moi.egy/series?bucket=month", StatusCode::BAD_REQUEST, "bucket must be day or week"),
        ("/v1/pages/facebook/moi.egy/series?window=2019-Q1", StatusCode::NOT_FOUND, "not retained"),
        ("/v1/pages/facebook/moi.egy/series?limit=3", StatusCode::BAD_REQUEST, "unknown parameter"),
        ("/v1/compare?page=facebook/moi.egy", StatusCode::BAD_REQUEST, "2 to 8 page parameters"),
        ("/v1/compare?page=facebook/moi.egy&page=moi.egy", StatusCode::BAD_REQUEST, "is not platform/page_id"),
        ("/v1/compare?page=facebook/moi.egy&page=Face%20book/x", StatusCode::BAD_REQUEST, "is not platform/page_id"),
        ("/v1/compare?page=facebook/moi.egy&page=facebook/moi.egy", StatusCode::BAD_REQUEST, "given twice"),
        (
            "/v1/compare?page=facebook/moi.egy&page=facebook/nobody",
            StatusCode::NOT_FOUND,
            "unknown page facebook/nobody",
        ),
        ("/v1/compare?page=facebook/a&page=facebook/b&metric=likes", StatusCode::BAD_REQUEST, "metric must be"),
    ];
    for (uri, status, message) in cases {
        let (code, body) = get(&s, uri).await;
        assert_eq!(code, status, "{uri}: {body}");
        assert!(body["error"].as_str().unwrap_or_default().contains(message), "{uri}: {body}");
    }
    let nine: String = (0..9).map(|i| format!("page=facebook/p{i}&")).collect();
    let (code, body) = get(&s, &format!("/v1/compare?{nine}")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("at most 8"), "{body}");
    let (code, _) = get(&state_with(&[]), "/v1/pages/facebook/moi.egy/series").await;
    assert_eq!(code, StatusCode::NOT_FOUND, "before the first event");
}

#[tokio::test]
async fn a_week_bucket_does_not_fit_a_window_shorter_than_a_week() {
    let mut e = Engine::new(Limits {
        windows: engagement_core::window::Windows::new(&[("quarter", None)], &["3d"]).unwrap(),
        ..Limits::default()
    });
    let cx = DecodeContext { message_time: None, now: i64::MAX / 4, max_skew: 0, max_payload_bytes: 1 << 16 };
    for json in seed_events() {
        e.apply(&decode(json.as_bytes(), &cx).unwrap());
    }
    let (s, _status) = fixture(&[]);
    let (views_tx, views) = crate::serve::published::channel();
    views_tx.send_replace(crate::serve::published::Published { view: Arc::new(View::build(&e)), ready: true });
    let s = AppState { views, ..s };
    let (code, body) = get(&s, "/v1/pages/facebook/moi.egy/series?window=rolling&bucket=week").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "bucket=week needs a window of at least 7 days");
    let (code, body) = get(&s, "/v1/pages/facebook/moi.egy/series?window=rolling").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["buckets"].as_array().unwrap().len(), 4, "three days and the part of a fourth");
}

#[tokio::test]
async fn a_series_and_a_comparison_as_csv() {
    let s = state_with(&seed_events());
    let (code, ty, body) = get_raw(&s, "/v1/pages/facebook/moi.egy/series?window=2025-Q3&format=csv", None).await;
    assert_eq!((code, ty.starts_with("text/csv")), (StatusCode::OK, true));
    let text = String::from_utf8(body).unwrap();
    let mut lines = text.split("\r\n");
    assert_eq!(
        lines.next(),
        Some(
            "start,end,posts,interactions,reactions,comments,shares,views,running_posts,running_interactions,running_reactions,running_comments,running_shares,running_views"
        )
    );
    assert_eq!(text.split("\r\n").filter(|l| !l.is_empty()).count(), 93);
    let (code, _, body) = get_raw(
        &s,
        "/v1/compare?page=facebook/moi.egy&page=facebook/whitehouse&window=2025-Q3&bucket=week",
        Some("text/csv"),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with("start,end,platform,page_id,page_name,position,posts,"), "{text}");
    // Two rows a week; the Ministry's name holds a comma, so it is quoted.
    assert_eq!(text.split("\r\n").filter(|l| !l.is_empty()).count(), 1 + 2 * 14);
    assert!(text.contains(",moi.egy,\"وزارة الداخلية - Egypt, Ministry of Interior\",2,"), "{text}");
}
