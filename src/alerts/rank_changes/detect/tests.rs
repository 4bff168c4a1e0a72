use engagement_core::engine::{Engine, Limits};
use engagement_core::event::{DecodeContext, decode};
use engagement_core::window::parse_rfc3339;

use std::time::{Duration, Instant};

use super::*;
use crate::config::{PageKey, default_watches};

/// An engine fed with snapshots; each view is built on demand.
struct Feed(Engine);

impl Feed {
    fn new() -> Feed {
        // The rollover test jumps the watermark by two months in one event.
        Feed(Engine::new(Limits { max_watermark_jump: std::time::Duration::ZERO, ..Limits::default() }))
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
    w.settle = Duration::ZERO;
    w
}

fn detector(watches: Vec<Watch>) -> Detector {
    Detector::new(watches.into())
}

/// The changes `d` sees in `feed`'s view.
fn observe(d: &mut Detector, feed: &Feed, ready: bool) -> Vec<Change> {
    d.observe(&feed.view(), ready, Instant::now()).changes
}

/// (kind, page_id, old, new) of each change, in order.
fn summary(changes: &[Change]) -> Vec<(&'static str, String, Option<u32>, Option<u32>)> {
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
    assert!(observe(&mut d, &feed, true).is_empty(), "the first view is a baseline");
    feed.post("tiktok", "c", "c1", 900, 2);
    let changes = observe(&mut d, &feed, true);
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
fn a_ready_view_is_compared_with_the_last_ready_one() {
    let mut feed = three_pages();
    let mut d = detector(vec![watch("all", Scope::All, 3)]);
    assert!(observe(&mut d, &feed, false).is_empty(), "catching up: no baseline yet");
    feed.post("tiktok", "c", "c1", 5000, 2);
    assert!(observe(&mut d, &feed, true).is_empty(), "the first ready view is the baseline");
    feed.post("tiktok", "b", "b1", 6000, 3);
    assert!(observe(&mut d, &feed, false).is_empty(), "not ready: quiet");
    feed.post("tiktok", "a", "a1", 7000, 4);
    assert_eq!(
        summary(&observe(&mut d, &feed, true)),
        [
            ("leader", "a".into(), Some(3), Some(1)),
            ("entered", "b".into(), None, Some(2)),
            ("exited", "f".into(), Some(2), None)
        ],
        "ready again: the net change since the last ready view (c, f, a), once"
    );
    assert!(observe(&mut d, &feed, true).is_empty(), "and not again");
}

#[test]
fn an_id_names_the_ranking_the_page_the_ranks_and_the_state() {
    let mut feed = three_pages();
    let (mut one, mut two) = (detector(vec![watch("one", Scope::All, 3)]), detector(vec![watch("two", Scope::All, 3)]));
    observe(&mut one, &feed, true);
    observe(&mut two, &feed, true);
    feed.post("tiktok", "c", "c1", 5000, 2);
    let (a, b) = (observe(&mut one, &feed, true), observe(&mut two, &feed, true));
    let ids = |cs: &[Change]| cs.iter().map(crate::alerts::rank_changes::id).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b), "the same change in the same state, whichever watch saw it");
    assert_eq!(ids(&a).len(), 3);
    assert!(ids(&a).iter().all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    let mut later = a[0].clone();
    later.watermark = later.watermark.map(|w| w + 1);
    assert_ne!(crate::alerts::rank_changes::id(&later), ids(&a)[0], "another state is another id");
    let mut other_scope = a[0].clone();
    other_scope.key.scope = Some("tiktok".into());
    assert_ne!(crate::alerts::rank_changes::id(&other_scope), ids(&a)[0], "another ranking is another id");
}

#[test]
fn watched_pages_report_every_move_wherever_they_rank() {
    let mut feed = three_pages();
    let mut w = watch("mine", Scope::Platform("tiktok".into()), 1);
    w.pages = vec![PageKey { platform: "tiktok".into(), page_id: "c".into() }];
    let mut d = detector(vec![w]);
    observe(&mut d, &feed, true);
    feed.post("tiktok", "c", "c1", 450, 2);
    assert_eq!(summary(&observe(&mut d, &feed, true)), [("moved", "c".into(), Some(3), Some(2))]);
    feed.post("tiktok", "c", "c1", 100, 3);
    let changes = observe(&mut d, &feed, true);
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
    observe(&mut d, &feed, true);
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
    observe(&mut d, &feed, true);
    // A post in the next quarter moves the watermark: `current` is 2025-Q4 now.
    let json = r#"{"platform":"x","page_id":"z","post_id":"z1","published_at":"2025-10-02T00:00:00Z","observed_at":"2025-10-03T00:00:00Z","reactions":1}"#;
    let cx = DecodeContext {
        message_time: None,
        now: parse_rfc3339("2026-01-01T00:00:00Z").expect("valid"),
        max_skew: 0,
        max_payload_bytes: 1 << 16,
    };
    feed.0.apply(&decode(json.as_bytes(), &cx).expect("valid"));
    let seen = d.observe(&feed.view(), true, Instant::now());
    assert!(seen.changes.is_empty());
    assert_eq!(seen.rolled_over, [WindowId::parse("current").expect("an id")]);
}

#[test]
fn entries_and_exits_wait_to_settle_so_a_page_flapping_at_rank_n_is_quiet() {
    let mut feed = three_pages();
    let mut w = watch("all", Scope::All, 3);
    w.settle = Duration::from_secs(60);
    let mut d = detector(vec![w]);
    let t0 = Instant::now();
    let mut at = |feed: &Feed, secs: u64| d.observe(&feed.view(), true, t0 + Duration::from_secs(secs)).changes;
    assert!(at(&feed, 0).is_empty(), "baseline: f, a, b");
    // c (300) and b (400) swap places at rank 3 and back, within a minute.
    feed.post("tiktok", "c", "c1", 450, 2);
    assert!(at(&feed, 10).is_empty(), "c in, b out: not settled");
    feed.post("tiktok", "c", "c1", 350, 3);
    assert!(at(&feed, 20).is_empty(), "back as reported: nothing to say");
    feed.post("tiktok", "c", "c1", 460, 4);
    assert!(at(&feed, 30).is_empty(), "in again: it waits anew");
    assert!(at(&feed, 89).is_empty(), "59 s in");
    assert_eq!(
        summary(&at(&feed, 90)),
        [("entered", "c".into(), None, Some(3)), ("exited", "b".into(), Some(3), None)],
        "a minute in (out): settled, reported once"
    );
    assert!(at(&feed, 200).is_empty());
    // A new leader is reported at once.
    feed.post("tiktok", "c", "c1", 5000, 5);
    assert_eq!(summary(&at(&feed, 201)), [("leader", "c".into(), Some(3), Some(1))]);
}
