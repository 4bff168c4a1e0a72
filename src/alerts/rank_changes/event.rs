//! The one shape of a rank change outside the daemon: the message on the
//! rank-events topic and each entry of `GET /v1/rank-changes`
//! (docs/api.md#rank-change-events). Its fields are the labels of the
//! held `engagement_watch_change` series the alerts fire on, plus what a
//! label cannot carry: the id, the figures and the watermark.

use serde::{Deserialize, Serialize};

use engagement_core::window::{CalendarKind, WindowId, format_rfc3339};

use super::detect::{Change, scope_label};

/// A change as consumers see it. The fields SPEC §5 names (`window`,
/// `quarter`, `platform`, `page_id`, `old_rank`, `new_rank`,
/// `interactions`, `watermark`) keep their meaning.
#[derive(Debug, Serialize)]
pub struct RankEvent<'a> {
    /// [`id`]: the same for the same change seen in the same state.
    pub id: String,
    pub kind: &'static str,
    pub watch: &'a str,
    pub metric: &'static str,
    pub window: WindowId,
    /// The quarter a quarter window stood for; `None` for other windows.
    pub quarter: Option<String>,
    /// The calendar period a relative window stood for, of any kind
    /// (`2025-Q3`, `2025-09`, ...); `None` for a rolling window.
    pub period: Option<String>,
    /// `all` for the ranking of every platform together, else its platform.
    pub scope: &'a str,
    /// The ranking's groups, comma-separated; empty when it ranks every page.
    pub group: &'a str,
    pub top_n: usize,
    pub platform: &'a str,
    pub page_id: &'a str,
    pub page_name: Option<&'a str>,
    pub old_rank: Option<u32>,
    pub new_rank: Option<u32>,
    pub interactions: u64,
    /// The ranking metric's value (`None` where undefined).
    pub value: Option<f64>,
    pub watermark: Option<String>,
}

impl<'a> RankEvent<'a> {
    pub fn of(c: &'a Change) -> RankEvent<'a> {
        let mut event = RankEvent {
            id: String::new(),
            kind: c.kind.as_str(),
            watch: &c.watch,
            metric: c.metric.as_str(),
            window: c.key.window,
            quarter: c.period.filter(|p| p.kind == CalendarKind::Quarter).map(|p| p.to_string()),
            period: c.period.map(|p| p.to_string()),
            scope: scope_label(c.key.scope.as_deref()),
            group: &c.group,
            top_n: c.top_n,
            platform: &c.page.platform,
            page_id: &c.page.page_id,
            page_name: c.page.page_name.as_deref(),
            old_rank: c.old_rank,
            new_rank: c.new_rank,
            interactions: c.page.interactions,
            value: c.page.value,
            watermark: c.watermark.map(format_rfc3339),
        };
        event.id = event.identity();
        event
    }

    /// The event's Kafka key: the page, so that one page's changes stay in
    /// order on one partition.
    pub fn key(&self) -> String {
        format!("{}/{}", self.platform, self.page_id)
    }

    /// The id: 16 hex digits of the xxh3-64 hash of the ranking (`metric`,
    /// `window`, `period`, `scope`, `group`), the page (`platform`,
    /// `page_id`), `kind`, both ranks and the `watermark`, as they are in
    /// the event, joined by NUL bytes (a missing rank or period is empty).
    /// Two instances that see the same change in the same state give it
    /// the same id, so a consumer can drop the rare repeat; the watch's
    /// name is left out, so two watches of one ranking give one id too.
    fn identity(&self) -> String {
        let rank = |r: Option<u32>| r.map(|r| r.to_string()).unwrap_or_default();
        identity(&[
            self.metric,
            &self.window.to_string(),
            self.period.as_deref().unwrap_or_default(),
            self.scope,
            self.group,
            self.platform,
            self.page_id,
            self.kind,
            &rank(self.old_rank),
            &rank(self.new_rank),
            self.watermark.as_deref().unwrap_or_default(),
        ])
    }
}

/// What an event says happened, whoever saw it and in whichever state:
/// the ranking, the page, the kind and the rank it came to. The instance
/// that takes the publishing over matches what it saw against the topic
/// with it, since another instance's event of the same change may carry
/// another watermark (another id) and another old rank.
#[derive(Debug, Deserialize, PartialEq, Eq, Hash)]
pub struct Fact {
    metric: String,
    window: String,
    period: Option<String>,
    scope: String,
    group: String,
    platform: String,
    page_id: String,
    kind: String,
    new_rank: Option<u32>,
}

impl Fact {
    /// The fact of an event's JSON; `None` when it is not one.
    pub fn of(json: &[u8]) -> Option<Fact> {
        serde_json::from_slice(json).ok()
    }
}

/// The fields an id is made of, in this order.
const ID_FIELDS: [&str; 11] = [
    "metric",
    "window",
    "period",
    "scope",
    "group",
    "platform",
    "page_id",
    "kind",
    "old_rank",
    "new_rank",
    "watermark",
];

fn identity(fields: &[&str; ID_FIELDS.len()]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(fields.join("\0").as_bytes()))
}

/// The id of `change`'s event.
pub fn id(change: &Change) -> String {
    RankEvent::of(change).id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rank_changes::detect::{Kind, Placed, RankingKey};
    use engagement_core::ranking::Metric;
    use serde_json::Value;

    fn change() -> Change {
        Change {
            key: RankingKey { watch: 0, window: WindowId::parse("current").expect("an id"), scope: None },
            watch: "all".into(),
            group: "".into(),
            metric: Metric::Interactions,
            top_n: 10,
            period: "2025-Q3".parse().ok(),
            kind: Kind::Leader,
            page: Placed {
                platform: "facebook".into(),
                page_id: "moi.egy".into(),
                page_name: None,
                rank: 1,
                interactions: 7,
                value: Some(7.0),
            },
            old_rank: Some(2),
            new_rank: Some(1),
            watermark: Some(1_759_268_738_426),
        }
    }

    /// The id an event's JSON carries, recomputed from its other fields.
    fn recomputed(event: &Value) -> String {
        let text = |f: &str| match &event[f] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let fields = ID_FIELDS.map(text);
        identity(&fields.each_ref().map(String::as_str))
    }

    #[test]
    fn the_examples_in_the_api_docs_are_events_with_their_ids() {
        let ours = serde_json::to_value(RankEvent::of(&change())).expect("an event serializes");
        assert_eq!(ours["id"].as_str(), Some(recomputed(&ours).as_str()), "the rule the docs give");
        let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).expect("docs/api.md");
        let section = docs.split("### Rank-change events").nth(1).expect("the section");
        let examples: Vec<Value> = section
            .lines()
            .filter(|l| l.starts_with("{\"id\""))
            .map(|l| serde_json::from_str(l).expect("an example parses"))
            .collect();
        let kinds: Vec<&str> = examples.iter().filter_map(|e| e["kind"].as_str()).collect();
        assert_eq!(kinds, Kind::ALL.map(Kind::as_str), "one example per kind");
        for e in &examples {
            assert_eq!(keys(e), keys(&ours), "{e}");
            assert_eq!(e["id"].as_str(), Some(recomputed(e).as_str()), "{e}");
        }
    }
}
