//! Ranking (docs/api.md#ordering): order a window's pages by a metric, descending, ties by
//! platform then page_id ascending.
//!
//! Ratios are compared exactly, as fractions (cross-multiplied in u128), so
//! the order never depends on floating-point rounding; they are rounded to
//! two decimals only for display. A page with no known follower count (or
//! zero followers) has no per-follower ratio and ranks after every page that
//! has one.

use std::cmp::{Ordering, Reverse};

use crate::engine::Totals;

/// One page's figures in one window: what a ranking orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The page's number (see [`View::page`](crate::view::View::page)).
    pub page: u32,
    pub totals: Totals,
    pub followers: Option<u64>,
}

/// What pages are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Interactions,
    Reactions,
    Comments,
    Shares,
    /// Views are not interactions (docs/events.md), but a ranking of their own.
    Views,
    Posts,
    InteractionsPerPost,
    InteractionsPer1kFollowers,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::Interactions,
        Metric::Reactions,
        Metric::Comments,
        Metric::Shares,
        Metric::Views,
        Metric::Posts,
        Metric::InteractionsPerPost,
        Metric::InteractionsPer1kFollowers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Interactions => "interactions",
            Metric::Reactions => "reactions",
            Metric::Comments => "comments",
            Metric::Shares => "shares",
            Metric::Views => "views",
            Metric::Posts => "posts",
            Metric::InteractionsPerPost => "interactions_per_post",
            Metric::InteractionsPer1kFollowers => "interactions_per_1k_followers",
        }
    }

    pub fn parse(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The value as a fraction `numerator / denominator`; `None` when the
    /// metric is undefined for the row.
    fn fraction(self, r: &Row) -> Option<(u128, u128)> {
        let t = &r.totals;
        let whole = |n: u64| Some((u128::from(n), 1));
        match self {
            Metric::Interactions => whole(t.interactions()),
            Metric::Reactions => whole(t.reactions),
            Metric::Comments => whole(t.comments),
            Metric::Shares => whole(t.shares),
            Metric::Views => whole(t.views),
            Metric::Posts => whole(t.posts),
            Metric::InteractionsPerPost => (t.posts > 0).then(|| (u128::from(t.interactions()), u128::from(t.posts))),
            Metric::InteractionsPer1kFollowers => {
                let f = r.followers.filter(|f| *f > 0)?;
                Some((u128::from(t.interactions()) * 1000, u128::from(f)))
            }
        }
    }

    /// The displayed value: integers as they are, ratios rounded half up to
    /// two decimals; `None` when undefined.
    pub fn value(self, r: &Row) -> Option<f64> {
        let (n, d) = self.fraction(r)?;
        if d == 1 {
            return Some(n as f64);
        }
        let cents = (n * 200 + d) / (2 * d);
        Some(cents as f64 / 100.0)
    }

    /// For the integer metrics, the value as a plain key: ranking then sorts
    /// `(Reverse(key), page)` tuples, several times faster than comparing
    /// fractions.
    fn int_key(self) -> Option<fn(&Row) -> u64> {
        match self {
            Metric::Interactions => Some(|r| r.totals.interactions()),
            Metric::Reactions => Some(|r| r.totals.reactions),
            Metric::Comments => Some(|r| r.totals.comments),
            Metric::Shares => Some(|r| r.totals.shares),
            Metric::Views => Some(|r| r.totals.views),
            Metric::Posts => Some(|r| r.totals.posts),
            Metric::InteractionsPerPost | Metric::InteractionsPer1kFollowers => None,
        }
    }

    /// Orders two rows by value: `Less` when `a` ranks before `b`, `Equal`
    /// on a tie (the caller breaks ties by row order).
    pub fn compare(self, a: &Row, b: &Row) -> Ordering {
        match (self.fraction(a), self.fraction(b)) {
            (Some((an, ad)), Some((bn, bd))) => mul_wide(bn, ad).cmp(&mul_wide(an, bd)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
}

/// `a * b` as a (high, low) pair, ordered like the 256-bit product.
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    let (a1, a0) = (a >> 64, a & u128::from(u64::MAX));
    let (b1, b0) = (b >> 64, b & u128::from(u64::MAX));
    let low = a0 * b0;
    let mid1 = a1 * b0;
    let mid2 = a0 * b1;
    let (mid, carry) = mid1.overflowing_add(mid2);
    let (low, c2) = low.overflowing_add(mid << 64);
    let high = a1 * b1 + (mid >> 64) + (u128::from(carry) << 64) + u128::from(c2);
    (high, low)
}

/// Which pages take part in a ranking: those of one platform (`None`:
/// every platform) that are in every one of `groups` (`dimension:value`,
/// per the view's [`Directory`](crate::directory::Directory); none: every
/// page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Filter<'a> {
    pub platform: Option<&'a str>,
    pub groups: &'a [String],
}

impl<'a> Filter<'a> {
    /// Every page.
    pub const ALL: Filter<'static> = Filter { platform: None, groups: &[] };

    /// The pages of one platform.
    pub fn platform(platform: &'a str) -> Filter<'a> {
        Filter { platform: Some(platform), groups: &[] }
    }
}

/// Indices of `rows` in ranking order: by the metric, descending, ties by
/// row index — rows are in (platform, page_id) order, the contract's tie
/// order. A full sort, done once per view and metric (see [`View::order`](crate::view::View::order)).
pub fn order(rows: &[Row], metric: Metric) -> Vec<u32> {
    if let Some(key) = metric.int_key() {
        let mut keyed: Vec<(Reverse<u64>, u32)> =
            rows.iter().enumerate().map(|(i, r)| (Reverse(key(r)), i as u32)).collect();
        keyed.sort_unstable();
        return keyed.into_iter().map(|(_, i)| i).collect();
    }
    let mut idx: Vec<u32> = (0..rows.len() as u32).collect();
    idx.sort_unstable_by(|a, b| metric.compare(&rows[*a as usize], &rows[*b as usize]).then(a.cmp(b)));
    idx
}

/// Entries `offset .. offset + limit` of the ranking of `rows`, with their
/// 1-based ranks. O(n + k log k) for k = offset + limit: a selection, then
/// a sort of the first k only. (A view keeps whole orders instead; this is
/// for rows that are not a view's, and the reference in tests.)
pub fn top(rows: &[Row], metric: Metric, offset: usize, limit: usize) -> Vec<(u32, &Row)> {
    let k = offset.saturating_add(limit).min(rows.len());
    if k == 0 || offset >= k {
        return Vec::new();
    }
    let mut refs: Vec<(usize, &Row)> = rows.iter().enumerate().collect();
    let cmp = |a: &(usize, &Row), b: &(usize, &Row)| metric.compare(a.1, b.1).then(a.0.cmp(&b.0));
    if k < refs.len() {
        refs.select_nth_unstable_by(k - 1, cmp);
        refs.truncate(k);
    }
    refs.sort_unstable_by(cmp);
    refs.into_iter().enumerate().skip(offset).map(|(i, (_, r))| (i as u32 + 1, r)).collect()
}

/// The rank of each of `pages` in `rows` (`None` for a page without a row).
pub fn ranks_of(rows: &[Row], metric: Metric, pages: &[u32]) -> Vec<Option<u32>> {
    let sorted = order(rows, metric);
    let mut rank = vec![0u32; rows.len()];
    for (i, r) in sorted.iter().enumerate() {
        rank[*r as usize] = i as u32 + 1;
    }
    pages.iter().map(|p| rows.iter().position(|r| r.page == *p).map(|i| rank[i])).collect()
}

#[cfg(test)]
mod tests;
