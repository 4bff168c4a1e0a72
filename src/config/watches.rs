//! Watches (`[[ranking.watches]]`): which rankings are tracked for
//! alertable changes — leader changes, entries into and exits from a top
//! N, and rank moves of named pages (docs/metrics.md#watches).
//!
//! A TOML array of tables, so it is handled apart from the scalar
//! [`SETTINGS`](super::SETTINGS), like `kafka.properties`; only the file
//! sets it (an environment variable or a flag cannot hold a list of
//! tables, and `ENGAGEMENT_MONITOR_RANKING_WATCHES` is refused as unknown).
//! Without any, [`default_watches`] apply. Every count is bounded, so the
//! series the watches export are bounded too.

use std::time::Duration;

use toml::Value;

use engagement_core::ranking::Metric;
use engagement_core::window::{WindowId, Windows};

use super::settings::{format_duration, parse_duration};

/// The TOML key of the watches.
pub const WATCHES_KEY: &str = "ranking.watches";
/// Most watches.
pub const MAX_WATCHES: usize = 16;
/// Largest `top_n` of one watch.
pub const MAX_WATCH_TOP_N: usize = 100;
/// Most pages named by one watch.
pub const MAX_WATCHED_PAGES: usize = 50;
/// Most platforms a `platform = "*"` watch ranks separately: those with
/// the most pages in the window, ties by name.
pub const MAX_PLATFORM_SCOPES: usize = 16;
/// Longest `hold`.
pub const MAX_HOLD: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_HOLD: Duration = Duration::from_secs(600);
/// Longest `settle`.
pub const MAX_SETTLE: Duration = Duration::from_secs(3600);
const DEFAULT_SETTLE: Duration = Duration::from_secs(60);

/// Which pages a watched ranking takes part in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every platform together (`platform = ""`, the default).
    All,
    /// Each platform apart (`platform = "*"`), at most [`MAX_PLATFORM_SCOPES`].
    EachPlatform,
    /// One platform.
    Platform(String),
}

/// A page a watch follows by name, `platform/page_id` in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey {
    pub platform: String,
    pub page_id: String,
}

/// One watch: a set of rankings (its windows × its scope) tracked for changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// The `watch` label: 1 to 32 of `a-z 0-9 _ -`, unique.
    pub name: String,
    /// Windows that move with the watermark (`current`, `previous-month`,
    /// `rolling`, `rolling-7d`, ...); empty: every one the configuration
    /// keeps ([`Windows::relative`]).
    pub windows: Vec<WindowId>,
    pub metric: Metric,
    pub scope: Scope,
    /// Entries into and exits from the first `top_n` are reported; these
    /// pages are exported with their rank.
    pub top_n: usize,
    /// Pages whose every rank move is reported, wherever they rank.
    pub pages: Vec<PageKey>,
    /// How long a change stays exported as an alertable series.
    pub hold: Duration,
    /// How long a page must stay in (out of) the top N before its entry
    /// (exit) is reported: a page flapping at rank N says nothing.
    pub settle: Duration,
    /// `dimension:value` groups: the watched rankings hold only pages in
    /// all of them (docs/directory.md); empty: every page.
    pub groups: Vec<String>,
}

impl Watch {
    fn new(name: &str, scope: Scope) -> Watch {
        Watch {
            name: name.into(),
            windows: Vec::new(),
            metric: Metric::Interactions,
            scope,
            top_n: 10,
            pages: Vec::new(),
            hold: DEFAULT_HOLD,
            settle: DEFAULT_SETTLE,
            groups: Vec::new(),
        }
    }

    /// The windows it tracks under the specification `spec`.
    pub fn windows_in(&self, spec: &Windows) -> Vec<WindowId> {
        if self.windows.is_empty() { spec.relative() } else { self.windows.clone() }
    }

    /// The `group` label of its series: its groups, comma-separated.
    pub fn group_label(&self) -> String {
        self.groups.join(",")
    }
}

/// Most groups one watch names.
pub const MAX_WATCH_GROUPS: usize = 8;

/// The default watch of group `group` (from `ranking.groups`): its leader
/// and top 10 in every window, named after the group (`country:EG` →
/// `group-country-eg`), with a number added when two names meet.
pub fn group_watch(group: &str, taken: &[Watch]) -> Watch {
    let base: String =
        group.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).take(26).collect();
    let mut name = format!("group-{base}");
    let mut n = 2;
    while taken.iter().any(|w| w.name == name) {
        name = format!("group-{base}-{n}");
        n += 1;
    }
    Watch { groups: vec![group.to_owned()], ..Watch::new(&name, Scope::All) }
}

/// The watches with no configuration: the interactions ranking's leader
/// and top 10, over all platforms and per platform, in every window.
pub fn default_watches() -> Vec<Watch> {
    vec![Watch::new("all", Scope::All), Watch::new("per_platform", Scope::EachPlatform)]
}

/// Why a watch was refused: the key (`ranking.watches[1].top_n`) and what
/// was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchError {
    pub key: String,
    pub value: String,
    pub expected: String,
}

fn error(key: impl Into<String>, value: &Value, expected: impl Into<String>) -> WatchError {
    WatchError { key: key.into(), value: value.to_string(), expected: expected.into() }
}

/// Parses the `ranking.watches` array.
pub fn parse_watches(value: &Value) -> Result<Vec<Watch>, WatchError> {
    let Value::Array(items) = value else {
        return Err(error(WATCHES_KEY, value, "an array of tables: [[ranking.watches]]"));
    };
    if items.len() > MAX_WATCHES {
        let expected = format!("at most {MAX_WATCHES} watches");
        return Err(error(WATCHES_KEY, &Value::Integer(items.len() as i64), expected));
    }
    let mut watches: Vec<Watch> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let key = format!("{WATCHES_KEY}[{i}]");
        let watch = parse_watch(&key, item)?;
        if watches.iter().any(|w| w.name == watch.name) {
            return Err(error(format!("{key}.name"), &Value::String(watch.name), "a name no other watch has"));
        }
        watches.push(watch);
    }
    Ok(watches)
}

fn parse_watch(key: &str, item: &Value) -> Result<Watch, WatchError> {
    let Value::Table(table) = item else {
        return Err(error(key, item, "a table"));
    };
    let name = table.get("name").ok_or_else(|| error(format!("{key}.name"), item, "a name: every watch needs one"))?;
    let mut watch = Watch::new(&parse_name(&format!("{key}.name"), name)?, Scope::All);
    for (field, value) in table {
        let at = format!("{key}.{field}");
        match field.as_str() {
            "name" => {}
            "windows" => watch.windows = parse_windows(&at, value)?,
            "metric" => watch.metric = parse_metric(&at, value)?,
            "platform" => watch.scope = parse_scope(&at, value)?,
            "top_n" => watch.top_n = parse_count(&at, value, 1, MAX_WATCH_TOP_N)?,
            "pages" => watch.pages = parse_pages(&at, value)?,
            "hold" => {
                watch.hold =
                    parse_span(&at, value, "a duration from 1s to 24h, like 10m", Duration::from_secs(1), MAX_HOLD)?
            }
            "settle" => {
                watch.settle = parse_span(&at, value, "a duration from 0s to 1h, like 1m", Duration::ZERO, MAX_SETTLE)?
            }
            "groups" => watch.groups = parse_groups(&at, value)?,
            _ => {
                return Err(error(
                    at,
                    value,
                    "one of name, windows, metric, platform, top_n, pages, hold, settle, groups",
                ));
            }
        }
    }
    Ok(watch)
}

fn text<'v>(key: &str, value: &'v Value, expected: &str) -> Result<&'v str, WatchError> {
    value.as_str().ok_or_else(|| error(key, value, expected))
}

fn parse_name(key: &str, value: &Value) -> Result<String, WatchError> {
    const EXPECTED: &str = "1 to 32 characters of a-z 0-9 _ -";
    let s = text(key, value, EXPECTED)?;
    let legal = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
    match (1..=32).contains(&s.len()) && s.bytes().all(legal) {
        true => Ok(s.to_owned()),
        false => Err(error(key, value, EXPECTED)),
    }
}

fn parse_windows(key: &str, value: &Value) -> Result<Vec<WindowId>, WatchError> {
    const EXPECTED: &str = "a non-empty list of windows that move: current, previous, current-month, previous-week, rolling, rolling-7d, ...";
    let items = value.as_array().filter(|a| !a.is_empty()).ok_or_else(|| error(key, value, EXPECTED))?;
    let mut windows = Vec::new();
    for item in items {
        let w = match item.as_str().and_then(WindowId::parse) {
            Some(w @ (WindowId::Relative { .. } | WindowId::Rolling(_))) => w,
            _ => return Err(error(key, value, EXPECTED)),
        };
        if windows.contains(&w) {
            return Err(error(key, value, "each window at most once"));
        }
        windows.push(w);
    }
    Ok(windows)
}

fn parse_metric(key: &str, value: &Value) -> Result<Metric, WatchError> {
    let all: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
    let expected = format!("one of {}", all.join(", "));
    text(key, value, &expected).ok().and_then(Metric::parse).ok_or_else(|| error(key, value, expected))
}

/// A platform as events name it: 1 to 32 of `a-z 0-9 _`.
fn is_platform(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn parse_scope(key: &str, value: &Value) -> Result<Scope, WatchError> {
    const EXPECTED: &str = "\"\" (all platforms together), \"*\" (each platform apart) or a platform";
    match text(key, value, EXPECTED)? {
        "" => Ok(Scope::All),
        "*" => Ok(Scope::EachPlatform),
        p if is_platform(p) => Ok(Scope::Platform(p.to_owned())),
        _ => Err(error(key, value, EXPECTED)),
    }
}

fn parse_count(key: &str, value: &Value, min: usize, max: usize) -> Result<usize, WatchError> {
    let n = value.as_integer().and_then(|n| usize::try_from(n).ok());
    n.filter(|n| (min..=max).contains(n)).ok_or_else(|| error(key, value, format!("an integer from {min} to {max}")))
}

fn parse_pages(key: &str, value: &Value) -> Result<Vec<PageKey>, WatchError> {
    const EXPECTED: &str = "a list of \"platform/page_id\"";
    let items = value.as_array().ok_or_else(|| error(key, value, EXPECTED))?;
    if items.len() > MAX_WATCHED_PAGES {
        return Err(error(key, &Value::Integer(items.len() as i64), format!("at most {MAX_WATCHED_PAGES} pages")));
    }
    let mut pages = Vec::with_capacity(items.len());
    for item in items {
        let page = item
            .as_str()
            .and_then(|s| s.split_once('/'))
            .filter(|(p, id)| is_platform(p) && (1..=128).contains(&id.len()))
            .map(|(p, id)| PageKey { platform: p.to_owned(), page_id: id.to_owned() })
            .ok_or_else(|| error(key, item, EXPECTED))?;
        if !pages.contains(&page) {
            pages.push(page);
        }
    }
    Ok(pages)
}

fn parse_groups(key: &str, value: &Value) -> Result<Vec<String>, WatchError> {
    let expected = format!("a list of at most {MAX_WATCH_GROUPS} \"dimension:value\" groups");
    let items = value.as_array().filter(|a| a.len() <= MAX_WATCH_GROUPS).ok_or_else(|| error(key, value, &expected))?;
    let mut groups: Vec<String> = Vec::new();
    for item in items {
        let g = item
            .as_str()
            .filter(|g| engagement_core::directory::parse_group(g).is_some())
            .ok_or_else(|| error(key, item, &expected))?;
        if !groups.iter().any(|x| x == g) {
            groups.push(g.to_owned());
        }
    }
    Ok(groups)
}

fn parse_span(key: &str, value: &Value, expected: &str, min: Duration, max: Duration) -> Result<Duration, WatchError> {
    let d = text(key, value, expected)?;
    parse_duration(d).ok().filter(|d| (min..=max).contains(d)).ok_or_else(|| error(key, value, expected))
}

/// The watches as `check-config` prints them: `[[ranking.watches]]` tables.
pub fn render_watches(watches: &[Watch], source: &str) -> String {
    let mut out = String::new();
    for w in watches {
        let windows: Vec<String> = w.windows.iter().map(|w| format!("{:?}", w.to_string())).collect();
        let platform = match &w.scope {
            Scope::All => "",
            Scope::EachPlatform => "*",
            Scope::Platform(p) => p,
        };
        let pages: Vec<String> = w.pages.iter().map(|p| format!("\"{}/{}\"", p.platform, p.page_id)).collect();
        out.push_str(&format!("\n{:<40} # {source}\n", format!("[[{WATCHES_KEY}]]")));
        out.push_str(&format!("name = {:?}\n", w.name));
        match windows.is_empty() {
            true => out.push_str("# windows: every window that moves with the watermark\n"),
            false => out.push_str(&format!("windows = [{}]\n", windows.join(", "))),
        }
        out.push_str(&format!("metric = {:?}\n", w.metric.as_str()));
        out.push_str(&format!("platform = {platform:?}\n"));
        out.push_str(&format!("top_n = {}\n", w.top_n));
        out.push_str(&format!("pages = [{}]\n", pages.join(", ")));
        out.push_str(&format!("hold = {:?}\n", format_duration(w.hold)));
        out.push_str(&format!("settle = {:?}\n", format_duration(w.settle)));
        let groups: Vec<String> = w.groups.iter().map(|g| format!("{g:?}")).collect();
        out.push_str(&format!("groups = [{}]\n", groups.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Watch>, WatchError> {
        let table: toml::Table = text.parse().expect("valid TOML");
        parse_watches(&table["ranking"]["watches"])
    }

    fn refused(text: &str) -> (String, String) {
        let e = parse(text).expect_err("refused");
        (e.key, e.expected)
    }

    #[test]
    fn a_watch_takes_every_field() {
        let w = parse(
            "[[ranking.watches]]\nname = \"fb\"\nwindows = [\"current\"]\nmetric = \"shares\"\nplatform = \"facebook\"\n\
             top_n = 3\npages = [\"facebook/whitehouse\", \"x/a/b\"]\nhold = \"30s\"\n",
        )
        .expect("valid");
        assert_eq!(w.len(), 1);
        let w = &w[0];
        assert_eq!(
            (w.name.as_str(), w.windows.as_slice(), w.metric),
            ("fb", &[WindowId::parse("current").unwrap()][..], Metric::Shares)
        );
        assert_eq!(
            (w.scope.clone(), w.top_n, w.hold),
            (Scope::Platform("facebook".into()), 3, Duration::from_secs(30))
        );
        assert_eq!(w.pages[1], PageKey { platform: "x".into(), page_id: "a/b".into() }, "ids may hold a slash");
    }

    #[test]
    fn omitted_fields_take_the_defaults_of_a_watch() {
        let w = &parse("[[ranking.watches]]\nname = \"w\"\nplatform = \"*\"\n").expect("valid")[0];
        assert_eq!(w.windows_in(&Windows::default()), Windows::default().relative());
        assert_eq!(
            (w.metric, w.scope.clone(), w.top_n, w.hold),
            (Metric::Interactions, Scope::EachPlatform, 10, DEFAULT_HOLD)
        );
    }

    #[test]
    fn bounds_are_enforced_naming_the_key() {
        let seventeen: String = (0..=MAX_WATCHES).map(|i| format!("[[ranking.watches]]\nname = \"w{i}\"\n")).collect();
        assert_eq!(refused(&seventeen), (WATCHES_KEY.into(), "at most 16 watches".into()));
        let sixteen: String = (0..MAX_WATCHES).map(|i| format!("[[ranking.watches]]\nname = \"w{i}\"\n")).collect();
        assert_eq!(parse(&sixteen).expect("16 watches").len(), MAX_WATCHES);
        let top = |n: usize| format!("[[ranking.watches]]\nname = \"w\"\ntop_n = {n}\n");
        assert!(parse(&top(MAX_WATCH_TOP_N)).is_ok());
        assert_eq!(
            refused(&top(MAX_WATCH_TOP_N + 1)),
            ("ranking.watches[0].top_n".into(), "an integer from 1 to 100".into())
        );
        assert_eq!(refused(&top(0)).0, "ranking.watches[0].top_n");
        let pages = |n: usize| {
            let list: Vec<String> = (0..n).map(|i| format!("\"facebook/p{i}\"")).collect();
            format!("[[ranking.watches]]\nname = \"w\"\npages = [{}]\n", list.join(","))
        };
        assert_eq!(parse(&pages(MAX_WATCHED_PAGES)).expect("50 pages")[0].pages.len(), MAX_WATCHED_PAGES);
        assert_eq!(
            refused(&pages(MAX_WATCHED_PAGES + 1)),
            ("ranking.watches[0].pages".into(), "at most 50 pages".into())
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let one = |field: &str| format!("[[ranking.watches]]\nname = \"w\"\n{field}\n");
        for (field, key) in [
            ("windows = [\"2025-Q3\"]", "windows"),
            ("windows = []", "windows"),
            ("windows = [\"current\", \"current\"]", "windows"),
            ("metric = \"likes\"", "metric"),
            ("platform = \"Face Book\"", "platform"),
            ("pages = [\"whitehouse\"]", "pages"),
            ("hold = \"0s\"", "hold"),
            ("hold = \"25h\"", "hold"),
            ("settle = \"2h\"", "settle"),
            ("top = 5", "top"),
        ] {
            assert_eq!(refused(&one(field)).0, format!("ranking.watches[0].{key}"), "{field}");
        }
        assert_eq!(refused("[[ranking.watches]]\ntop_n = 5\n").0, "ranking.watches[0].name");
        assert_eq!(refused("[[ranking.watches]]\nname = \"A b\"\n").0, "ranking.watches[0].name");
        let twice = "[[ranking.watches]]\nname = \"w\"\n[[ranking.watches]]\nname = \"w\"\n";
        assert_eq!(refused(twice), ("ranking.watches[1].name".into(), "a name no other watch has".into()));
        assert_eq!(refused("[ranking]\nwatches = 3\n").0, WATCHES_KEY);
    }

    #[test]
    fn rendered_watches_parse_back() {
        let mut watches = default_watches();
        watches[0].pages.push(PageKey { platform: "facebook".into(), page_id: "moi.egy".into() });
        let text = render_watches(&watches, "file");
        let table: toml::Table = text.parse().expect("valid TOML");
        assert_eq!(parse_watches(&table["ranking"]["watches"]), Ok(watches));
    }
}
