//! Query-string extractors. [`Strict<Q>`] refuses, with a 400 naming the
//! problem, a malformed query string, a parameter `Q` does not take, and a
//! parameter given twice; then `Q` reads its values, in the order that
//! `docs/api.md` documents for its checks.

use std::collections::HashSet;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use engagement_core::ranking::{Filter, Metric};
use engagement_core::view::series::Bucket;

use super::export::Format;
use super::{ApiError, MAX_LIMIT, MAX_OFFSET};

/// The parameters of one endpoint.
pub(super) trait QueryParams: Sized {
    /// Every parameter the endpoint takes, in the order error messages list them.
    const ALLOWED: &'static [&'static str];
    /// Those that may be given more than once.
    const REPEATABLE: &'static [&'static str] = &[];

    fn read(pairs: &Pairs) -> Result<Self, ApiError>;
}

/// Extracts `Q` from the query string, strictly (see the module doc).
pub(super) struct Strict<Q>(pub Q);

impl<S: Send + Sync, Q: QueryParams> FromRequestParts<S> for Strict<Q> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Query(list) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|_| ApiError::bad("malformed query string"))?;
        Q::read(&Pairs::checked(list, Q::ALLOWED, Q::REPEATABLE)?).map(Strict)
    }
}

/// Decoded `key=value` pairs, each key allowed and present at most once
/// (unless repeatable).
pub(super) struct Pairs(Vec<(String, String)>);

impl Pairs {
    fn checked(list: Vec<(String, String)>, allowed: &[&str], repeatable: &[&str]) -> Result<Pairs, ApiError> {
        let mut seen = HashSet::new();
        for (k, _) in &list {
            if !allowed.contains(&k.as_str()) {
                let allowed = if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") };
                return Err(ApiError::bad(format!("unknown parameter {:?}; allowed: {allowed}", truncate(k))));
            }
            if !seen.insert(k.as_str()) && !repeatable.contains(&k.as_str()) {
                return Err(ApiError::bad(format!("parameter {k} given more than once")));
            }
        }
        Ok(Pairs(list))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The `window` parameter as given (`current` when absent): resolved
    /// against the view's windows by the handler, after "no events yet".
    fn window(&self) -> String {
        self.get("window").unwrap_or("current").to_owned()
    }

    fn number(&self, key: &str, default: usize, max: usize) -> Result<usize, ApiError> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        match v.parse::<usize>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(ApiError::bad(format!("{key} must be an integer from 0 to {max}"))),
        }
    }
}

/// An unknown key is echoed in the error, at most 64 characters of it.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// For endpoints that take no parameter.
pub(super) struct NoParams;

impl QueryParams for NoParams {
    const ALLOWED: &'static [&'static str] = &[];

    fn read(_: &Pairs) -> Result<NoParams, ApiError> {
        Ok(NoParams)
    }
}

/// The parameters of `/v1/pages` (a search).
pub(super) struct SearchQuery {
    pub q: String,
    pub limit: usize,
}

/// Most pages one search lists.
pub(super) const MAX_SEARCH_LIMIT: usize = 100;

impl QueryParams for SearchQuery {
    const ALLOWED: &'static [&'static str] = &["q", "limit"];

    fn read(pairs: &Pairs) -> Result<SearchQuery, ApiError> {
        let q = pairs.get("q").ok_or_else(|| ApiError::bad("q is required: the text to find in page names and ids"))?;
        Ok(SearchQuery { q: q.to_owned(), limit: pairs.number("limit", 20, MAX_SEARCH_LIMIT)? })
    }
}

/// The parameters of `/v1/rankings`.
pub(super) struct RankingQuery {
    /// Its error is reported only after "no events consumed yet" (404),
    /// as documented, so it is kept rather than raised here.
    /// The `window` parameter as given, resolved against the view's windows.
    pub window: String,
    pub metric: Metric,
    pub platform: Option<String>,
    /// `dimension:value` groups the pages must all be in (docs/directory.md).
    pub groups: Vec<String>,
    pub limit: usize,
    pub offset: usize,
    /// `format`, when given (else the `Accept` header decides).
    pub format: Option<Format>,
}

impl RankingQuery {
    pub(super) fn filter(&self) -> Filter<'_> {
        Filter { platform: self.platform.as_deref(), groups: &self.groups }
    }
}

/// Most `group` parameters one ranking takes.
pub(super) const MAX_QUERY_GROUPS: usize = 8;

impl QueryParams for RankingQuery {
    const ALLOWED: &'static [&'static str] = &["window", "metric", "platform", "group", "limit", "offset", "format"];
    const REPEATABLE: &'static [&'static str] = &["group"];

    fn read(pairs: &Pairs) -> Result<RankingQuery, ApiError> {
        let metric = metric(pairs.get("metric").unwrap_or("interactions"))?;
        let platform = pairs.get("platform").map(platform).transpose()?;
        let groups = groups(pairs.all("group"))?;
        Ok(RankingQuery {
            metric,
            platform,
            groups,
            limit: pairs.number("limit", 10, MAX_LIMIT)?,
            offset: pairs.number("offset", 0, MAX_OFFSET)?,
            window: pairs.window(),
            format: Format::parse(pairs.get("format"))?,
        })
    }
}

/// The parameters of `/v1/pages/{platform}/{page_id}/series`.
pub(super) struct SeriesQuery {
    /// As [`RankingQuery::window`].
    pub window: String,
    pub bucket: Bucket,
    pub format: Option<Format>,
}

impl QueryParams for SeriesQuery {
    const ALLOWED: &'static [&'static str] = &["window", "bucket", "format"];

    fn read(pairs: &Pairs) -> Result<SeriesQuery, ApiError> {
        Ok(SeriesQuery {
            bucket: bucket(pairs.get("bucket"))?,
            window: pairs.window(),
            format: Format::parse(pairs.get("format"))?,
        })
    }
}

/// Fewest and most pages one comparison takes.
pub(super) const COMPARED_PAGES: std::ops::RangeInclusive<usize> = 2..=8;

/// The parameters of `/v1/compare`.
pub(super) struct CompareQuery {
    /// (platform, page_id) of each page, in the order given.
    pub pages: Vec<(String, String)>,
    /// As [`RankingQuery::window`].
    pub window: String,
    pub bucket: Bucket,
    pub metric: Metric,
    pub format: Option<Format>,
}

impl QueryParams for CompareQuery {
    const ALLOWED: &'static [&'static str] = &["page", "window", "bucket", "metric", "format"];
    const REPEATABLE: &'static [&'static str] = &["page"];

    fn read(pairs: &Pairs) -> Result<CompareQuery, ApiError> {
        let mut pages: Vec<(String, String)> = Vec::new();
        for given in pairs.all("page") {
            if pages.len() == *COMPARED_PAGES.end() {
                return Err(ApiError::bad(format!("at most {} page parameters", COMPARED_PAGES.end())));
            }
            let page = page_ref(given)?;
            if pages.contains(&page) {
                return Err(ApiError::bad(format!("page {:?} given twice", truncate(given))));
            }
            pages.push(page);
        }
        if pages.len() < *COMPARED_PAGES.start() {
            return Err(ApiError::bad(format!(
                "compare takes {} to {} page parameters, each platform/page_id",
                COMPARED_PAGES.start(),
                COMPARED_PAGES.end()
            )));
        }
        Ok(CompareQuery {
            pages,
            metric: metric(pairs.get("metric").unwrap_or("interactions"))?,
            bucket: bucket(pairs.get("bucket"))?,
            window: pairs.window(),
            format: Format::parse(pairs.get("format"))?,
        })
    }
}

/// A `page` parameter: `platform/page_id` (the id may hold `/`; at most
/// 128 bytes, as an event's).
fn page_ref(given: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::bad(format!("page {:?} is not platform/page_id", truncate(given)));
    let (p, id) = given.split_once('/').ok_or_else(bad)?;
    let valid_id = (1..=128).contains(&id.len()) && !id.chars().any(char::is_control);
    if !valid_id {
        return Err(bad());
    }
    Ok((platform(p).map_err(|_| bad())?, id.to_owned()))
}

fn bucket(given: Option<&str>) -> Result<Bucket, ApiError> {
    given.map_or(Ok(Bucket::Day), |b| Bucket::parse(b).ok_or_else(|| ApiError::bad("bucket must be day or week")))
}

fn metric(name: &str) -> Result<Metric, ApiError> {
    Metric::parse(name).ok_or_else(|| {
        let all: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
        ApiError::bad(format!("metric must be one of {}", all.join(", ")))
    })
}

fn platform(p: &str) -> Result<String, ApiError> {
    let valid =
        (1..=32).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid { Ok(p.to_owned()) } else { Err(ApiError::bad("platform must be 1 to 32 characters of [a-z0-9_]")) }
}

/// The `group` parameters: each `dimension:value`, at most [`MAX_QUERY_GROUPS`].
fn groups<'a>(given: impl Iterator<Item = &'a str>) -> Result<Vec<String>, ApiError> {
    let mut groups = Vec::new();
    for g in given {
        if engagement_core::directory::parse_group(g).is_none() {
            let shown = truncate(g);
            return Err(ApiError::bad(format!(
                "group {shown:?} is not dimension:value (dimension [a-z][a-z0-9_]{{0,31}}, value 1 to 64 bytes without control characters)"
            )));
        }
        if groups.len() == MAX_QUERY_GROUPS {
            return Err(ApiError::bad(format!("at most {MAX_QUERY_GROUPS} group parameters")));
        }
        groups.push(g.to_owned());
    }
    Ok(groups)
}
