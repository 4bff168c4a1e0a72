use std::sync::Arc;

use axum::http::StatusCode;
use engagement_core::directory::Directory;
use engagement_core::synth::seed_events;
use serde_json::Value;

use crate::serve::api::AppState;
use crate::serve::api::tests::{fixture, get};

/// The seed table with a directory: three government pages (two in the
/// US), one media page with a directory name, one page not in it.
fn state() -> AppState {
    let (mut state, _) = fixture(&seed_events());
    let mut d = Directory::default();
    for (id, groups) in [
        ("whitehouse", r#"{"category":"government","country":"US","list":["g20-gov"]}"#),
        ("moi.egy", r#"{"category":"government","country":"EG"}"#),
        ("ice.gov", r#"{"category":"government","country":"US"}"#),
        ("pmcambodia", r#"{"category":"media"}"#),
    ] {
        let value = format!(r#"{{"page_id":"{id}","groups":{groups}}}"#);
        d.apply(Some(format!("facebook/{id}").as_bytes()), Some(value.as_bytes())).unwrap();
    }
    let named = br#"{"page_id":"pmcambodia","page_name":"PM of Cambodia","groups":{"category":"media"}}"#;
    d.apply(None, Some(named)).unwrap();
    state.views.borrow().view.attach(Arc::new(d));
    state.groups = Arc::from(["category:government".to_string()]);
    state
}

fn ids(body: &Value) -> Vec<(u64, &str, Value)> {
    let entries = body["entries"].as_array().unwrap();
    entries
        .iter()
        .map(|e| (e["rank"].as_u64().unwrap(), e["page_id"].as_str().unwrap(), e["previous_period_rank"].clone()))
        .collect()
}

#[tokio::test]
async fn a_group_ranks_only_its_pages_and_groups_combine() {
    let s = state();
    let (code, body) = get(&s, "/v1/rankings?window=2025-Q3&group=category:government").await;
    assert_eq!(code, StatusCode::OK);
    let got: Vec<_> = ids(&body).into_iter().map(|(r, id, _)| (r, id)).collect();
    assert_eq!(got, vec![(1, "whitehouse"), (2, "moi.egy"), (3, "ice.gov")]);
    assert_eq!(body["total_pages"], 3);
    assert_eq!(body["groups"], serde_json::json!(["category:government"]));
    assert_eq!(
        body["entries"][0]["groups"],
        serde_json::json!({"category": ["government"], "country": ["US"], "list": ["g20-gov"]})
    );

    let (_, body) = get(&s, "/v1/rankings?window=2025-Q3&group=category:government&group=country:US&offset=1").await;
    assert_eq!(ids(&body).into_iter().map(|(r, id, _)| (r, id)).collect::<Vec<_>>(), vec![(2, "ice.gov")]);
    assert_eq!(body["total_pages"], 2);
    let (_, body) = get(&s, "/v1/rankings?window=2025-Q3&group=list:g20-gov&platform=facebook&metric=posts").await;
    assert_eq!(ids(&body).into_iter().map(|(_, id, _)| id).collect::<Vec<_>>(), vec!["whitehouse"]);
}

#[tokio::test]
async fn unknown_groups_are_404s_naming_the_dimensions_and_malformed_ones_400s() {
    let s = state();
    let (code, body) = get(&s, "/v1/rankings?group=country:ZZ").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no page is in group country:ZZ; known dimensions: category, country, list");
    for bad in ["group=category", "group=Category:x", "group=category:", "group=c:%01"] {
        let (code, body) = get(&s, &format!("/v1/rankings?{bad}")).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].as_str().unwrap().contains("dimension:value"), "{body}");
    }
    let nine = "group=category:government&".repeat(9);
    let (code, body) = get(&s, &format!("/v1/rankings?{nine}")).await;
    assert_eq!((code, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("at most 8 group parameters")));
    let (code, _) = get(&s, "/v1/rankings?platform=facebook&platform=x").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "only group may repeat");
}

#[tokio::test]
async fn groups_lists_dimensions_values_and_page_counts_and_pages_show_theirs() {
    let s = state();
    let (code, body) = get(&s, "/v1/groups").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["configured"], serde_json::json!(["category:government"]));
    assert_eq!(body["pages"], 4);
    assert_eq!(
        body["dimensions"][0],
        serde_json::json!({"name": "category", "values": [
        {"value": "government", "pages": 3}, {"value": "media", "pages": 1}]})
    );
    assert_eq!(body["dimensions"][1]["name"], "country");
    let (code, _) = get(&s, "/v1/groups?x=1").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    let (_, page) = get(&s, "/v1/pages/facebook/pmcambodia").await;
    assert_eq!(page["groups"], serde_json::json!({"category": ["media"]}));
    assert_eq!(page["page_name"], "PM of Cambodia", "the directory's name wins over the events'");
    let (_, page) = get(&s, "/v1/pages/facebook/inc.bihar").await;
    assert_eq!(page["groups"], serde_json::json!({}));
}

#[test]
fn a_configured_group_exports_its_top_n_with_a_group_label_and_all_pages_stay_as_they_were() {
    let s = state();
    let sources = crate::serve::metrics::Sources {
        views: s.views.clone(),
        status: s.status.clone(),
        top_n: 2,
        limits: Default::default(),
        log_rate_per_second: 1,
        watches: Arc::from([]),
        groups: Arc::from(["country:US".to_string()]),
    };
    let text = crate::serve::metrics::Metrics::new(sources).render();
    let line = r#"engagement_page_rank{window="current",platform="facebook",page_id="ice.gov",group="country:US"} 2"#;
    assert!(text.contains(line), "{text}");
    let all = r#"engagement_page_rank{window="current",platform="facebook",page_id="moi.egy"} 2"#;
    assert!(text.contains(all), "{text}");
    let ranked = text.lines().filter(|l| l.starts_with("engagement_page_rank{")).count();
    // current, current-month, previous-month, rolling and rolling-7d hold posts.
    assert_eq!(ranked, 4 * 5, "top 2 of every page and of the group, in each window with posts: {text}");
}
