use engagement_core::engine::{Engine, Limits};
use engagement_core::event::{DecodeContext, decode};
use engagement_core::window::parse_rfc3339;

use super::*;
use crate::config::{PageKey, default_watches};

/// An engine fed with snapshots; each view is built on demand.
struct Feed(Engine);

impl Feed {
    fn new() -> Feed {
        Feed(Engine::new(Limits::default()))
    }

    /// One snapshot of post `post` of `platform/page` with `n` reactions.
    fn post(&mut self, platform: &str, page: &str, post: &str, n: u64, observed_minute: u32) -> &mut Feed {
        let json = format!(
            r#"{{"platform":"{platform}","page_id":"{page}","post_id":"{post}","published_at":"2025-08-01T00:00:00Z",
            "observed_at":"2025-08-02T00:{:02}:00Z","reactions":{n}}}"#,
            observed_minute % 60
        );
        let cx = DecodeContext {
            message_time: None,
            now: parse_rfc3339("2026-01-01T00:00:00Z").expect("valid"),
            max_skew: 0,
            max_payload_bytes: 1 << 16,
        };
        let event = decode(json.as_bytes(), &cx).expect("a valid event");
        assert_eq!(self.0.apply(&event).as_str(), "applied", "{json}");
        self
    }

    fn view(&self) -> View {
        View::build(&self.0)
    }
}

fn watch(name: &str, scope: Scope, top_n: usize) -> Watch {
    let mut w = default_watches().remove(0);
    w.name = name.into();
    w.scope = scope;
    w.top_n = top_n;
    w.windows = vec![WindowId::parse("current").expect("an id")];
    w
}

fn detector(watches: Vec<Watch>) -> Detector {
    Detector::new(watches.into())
}

/// (kind, page_id, old, new) of each change, in order.
fn summary(changes: &[WatchChange]) -> Vec<(&'static str, String, Option<u32>, Option<u32>)> {
    changes.iter().map(|c| (c.kind.as_str(), c.page.page_id.to_string(), c.old_rank, c.new_rank)).collect()
}

/// tiktok: a (500), b (400), c (300); facebook: f (1000).
fn three_pages() -> Feed {
    let mut f = Feed::new();
    f.post("tiktok", "a", "a1", 500, 1).post("tiktok", "b", "b1", 400, 1).post("tiktok", "c", "c1", 300, 1);
    f.post("facebook", "f", "f1", 1000, 1);
    f
}

#[test]
fn a_page_overtaking_the_leader_of_a_platform_is_a_leader_change_and_an_entry() {
    let mut feed = three_pages();
    let mut d = detector(vec![watch("pp", Scope::EachPlatform, 2)]);
    assert!(d.observe(&feed.view(), true).is_empty(), "the first view is a baseline");
    feed.post("tiktok", "c", "c1", 900, 2);
    let changes = d.observe(&feed.view(), true);
    assert_eq!(
        summary(&changes),
        [
            ("leader", "c".into(), None, Some(1)),
            ("entered", "c".into(), None, Some(1)),
            ("exited", "b".into(), Some(2), None)
        ]
    );
    let c = &changes[0];
    assert_eq!(
        (c.key.scope.as_deref(), &*c.watch, c.period.map(|p| p.to_string()).as_deref()),
        (Some("tiktok"), "pp", Some("2025-Q3"))
    );
    assert_eq!(c.places_gained(), 2, "from outside the top 2 (3) to 1");
    assert_eq!(c.page.interactions, 900);
}

#[test]
fn nothing_is_reported_unless_both_views_were_ready() {
    let mut feed = three_pages();
    let mut d = detector(vec![watch("all", Scope::All, 3)]);
    d.observe(&feed.view(), false);
    feed.post("tiktok", "c", "c1", 5000, 2);
    assert!(d.observe(&feed.view(), true).is_empty(), "catching up -> ready moves the baseline only");
    feed.post("tiktok", "b", "b1", 6000, 3);
    assert_eq!(summary(&d.observe(&feed.view(), false)), [], "not ready: quiet");
    feed.post("tiktok", "a", "a1", 7000, 4);
    assert!(d.observe(&feed.view(), true).is_empty(), "the previous view was not ready");
    feed.post("facebook", "f", "f1", 8000, 5);
    assert_eq!(
        summary(&d.observe(&feed.view(), true)),
        [
            ("leader", "f".into(), None, Some(1)),
            ("entered", "f".into(), None, Some(1)),
            ("exited", "c".into(), Some(3), None)
        ]
    );
}

#[test]
fn watched_pages_report_every_move_wherever_they_rank() {
    let mut feed = three_pages();
    let mut w = watch("mine", Scope::Platform("tiktok".into()), 1);
    w.pages = vec![PageKey { platform: "tiktok".into(), page_id: "c".into() }];
    let mut d = detector(vec![w]);
    d.observe(&feed.view(), true);
    feed.post("tiktok", "c", "c1", 450, 2);
    assert_eq!(summary(&d.observe(&feed.view(), true)), [("moved", "c".into(), Some(3), Some(2))]);
    feed.post("tiktok", "c", "c1", 100, 3);
    let changes = d.observe(&feed.view(), true);
    assert_eq!(summary(&changes), [("moved", "c".into(), Some(2), Some(3))]);
    assert_eq!(changes[0].places_gained(), -1);
}

#[test]
fn per_platform_watches_rank_at_most_sixteen_platforms_those_with_most_pages() {
    let mut feed = Feed::new();
    for p in 0..20u32 {
        // Platform p has p + 1 pages.
        for page in 0..=p {
            feed.post(&format!("p{p:02}"), &format!("x{page}"), "post", 100 + u64::from(page), 1);
        }
    }
    let mut d = detector(vec![watch("pp", Scope::EachPlatform, 10)]);
    d.observe(&feed.view(), true);
    let mut scopes: Vec<String> = d.pictures().filter_map(|(k, _)| k.scope.as_deref().map(String::from)).collect();
    scopes.sort();
    let want: Vec<String> = (4..20).map(|p| format!("p{p:02}")).collect();
    assert_eq!(scopes, want);
    let biggest = d.pictures().find(|(k, _)| k.scope.as_deref() == Some("p19")).expect("p19").1.clone();
    assert_eq!(biggest.top.len(), 10, "top_n pages of the 20");
}

#[test]
fn a_quarter_rollover_resets_the_baseline_without_reporting() {
    let mut feed = three_pages();
    let mut d = detector(vec![watch("all", Scope::All, 3)]);
    d.observe(&feed.view(), true);
    // A post in the next quarter moves the watermark: `current` is 2025-Q4 now.
    let json = r#"{"platform":"x","page_id":"z","post_id":"z1","published_at":"2025-10-02T00:00:00Z","observed_at":"2025-10-03T00:00:00Z","reactions":1}"#;
    let cx = DecodeContext {
        message_time: None,
        now: parse_rfc3339("2026-01-01T00:00:00Z").expect("valid"),
        max_skew: 0,
        max_payload_bytes: 1 << 16,
    };
    feed.0.apply(&decode(json.as_bytes(), &cx).expect("valid"));
    assert!(d.observe(&feed.view(), true).is_empty());
}
