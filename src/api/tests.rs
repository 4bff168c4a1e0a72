use super::*;
use axum::body::Body;
use axum::http::Request as HttpRequest;
use engagement_core::engine::{Engine, Limits};
use engagement_core::event::{DecodeContext, decode};
use engagement_core::synth::seed_events;
use tower::ServiceExt;

fn state_with(events: &[String]) -> AppState {
    fixture(events).0
}

/// The app state over `events`, ready, with the status's writing end.
fn fixture(events: &[String]) -> (AppState, crate::status::StatusTx) {
    let mut e = Engine::new(Limits::default());
    let cx = DecodeContext { message_time: None, now: i64::MAX / 4, max_skew: 0, max_payload_bytes: 1 << 16 };
    for json in events {
        e.apply(&decode(json.as_bytes(), &cx).unwrap());
    }
    let (views_tx, views) = crate::published::channel();
    views_tx.send_replace(crate::published::Published { view: Arc::new(View::build(&e)), ready: true });
    let (status_tx, status) = crate::status::channel();
    status_tx.send_replace(crate::status::Readiness::Ready);
    let sources = crate::metrics::Sources {
        views: views.clone(),
        status: status.clone(),
        top_n: 50,
        limits: Limits::default(),
        log_rate_per_second: 10,
        watches: crate::config::default_watches().into(),
    };
    let state = AppState { views, status, metrics: Arc::new(crate::metrics::Metrics::new(sources)), rolling_days: 90 };
    (state, status_tx)
}

const LIMITS: HttpLimits =
    HttpLimits { request_timeout: Duration::from_secs(5), max_concurrent_requests: 8, max_query_bytes: 256 };

async fn get(state: &AppState, uri: &str) -> (StatusCode, serde_json::Value) {
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
    assert!(text.contains("engagement_build_info{version="));
}

#[tokio::test]
async fn readiness_follows_the_phase() {
    let (s, status) = fixture(&[]);
    assert_eq!(get(&s, "/readyz").await.0, StatusCode::OK);
    status.send_replace(crate::status::Readiness::CatchingUp { behind: 5 });
    let (code, body) = get(&s, "/readyz").await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("catching up: 5 messages behind"))
    );
    assert_eq!(get(&s, "/healthz").await.0, StatusCode::OK);
}
