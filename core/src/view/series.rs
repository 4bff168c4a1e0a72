//! A page's series: its figures per day or week of publication inside a
//! window, with running totals, and several pages' series side by side
//! (docs/api.md#series).
//!
//! A post's lifetime figures land in the bucket of its publication day,
//! as they land in the window of its publication time. A series is read
//! from the page's figures per day (kept by the engine, see
//! [`series`](crate::engine::series), or carried by its page record in
//! shard mode): one pass over the page's days, never over its posts.
//!
//! Buckets run from the window's first day to its last day, or to the
//! watermark's day in a window that has not ended; empty buckets are there
//! with zeros. A rolling window starts inside a day: its first bucket holds
//! the window's figures less the later days', which are exactly the posts
//! published from the window's start to the end of that day.
//!
//! Bound: a window spans at most 366 days (the longest calendar period and
//! the longest rolling window), so a series has at most 367 buckets.

use crate::engine::Totals;
use crate::ranking::{Metric, Row};
use crate::window::{DAY_MS, Millis};

use super::{Period, Table, View};

/// How a series groups days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Day,
    /// Monday to Sunday (ISO 8601 weeks), cut at the window's ends.
    Week,
}

impl Bucket {
    pub fn parse(s: &str) -> Option<Bucket> {
        match s {
            "day" => Some(Bucket::Day),
            "week" => Some(Bucket::Week),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Day => "day",
            Bucket::Week => "week",
        }
    }

    /// The first day of the bucket holding day `day` (days since the epoch).
    fn start_of(self, day: i64) -> i64 {
        match self {
            Bucket::Day => day,
            // 1970-01-01 was a Thursday: Mondays are the days ≡ 4 (mod 7).
            Bucket::Week => day - (day + 3).rem_euclid(7),
        }
    }
}

/// Why a series cannot be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeriesError {
    #[error("bucket=week needs a window of at least 7 days")]
    BucketTooLong,
    #[error("a series is only given for a window users can name")]
    NotAWindow,
    #[error("the view has no watermark yet")]
    Empty,
}

/// One bucket: its first and last day inside the window (days since the
/// epoch), the page's figures there and up to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub first: i64,
    pub last: i64,
    pub totals: Totals,
    pub running: Totals,
}

/// The days a series of a window covers, first and last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub first: i64,
    pub last: i64,
    /// Whether the window starts inside its first day (a rolling window).
    partial: bool,
}

impl Span {
    /// The first and last day of each bucket, in order.
    pub fn buckets(self, bucket: Bucket) -> impl Iterator<Item = (i64, i64)> {
        let mut at = self.first;
        std::iter::from_fn(move || {
            if at > self.last {
                return None;
            }
            let first = at;
            let last = match bucket {
                Bucket::Day => at,
                Bucket::Week => (bucket.start_of(at) + 6).min(self.last),
            };
            at = last + 1;
            Some((first, last))
        })
    }
}

impl View {
    /// The days a series of table `t` covers with buckets `bucket`.
    pub fn series_span(&self, t: &Table, bucket: Bucket) -> Result<Span, SeriesError> {
        let wm = self.watermark.ok_or(SeriesError::Empty)?;
        if matches!(t.period, Period::RollingPrevious(_)) {
            return Err(SeriesError::NotAWindow);
        }
        if bucket == Bucket::Week && t.end - t.start < 7 * DAY_MS {
            return Err(SeriesError::BucketTooLong);
        }
        let day = |ms: Millis| ms.div_euclid(DAY_MS);
        Ok(Span { first: day(t.start), last: day(wm).min(day(t.end - 1)), partial: t.start % DAY_MS != 0 })
    }

    /// Page `page`'s series in table `t` over `span` (from
    /// [`series_span`](Self::series_span)).
    pub fn series(&self, t: &Table, page: u32, span: Span, bucket: Bucket) -> Vec<Point> {
        let window = self.row(t, page).map(|r| r.totals).unwrap_or_default();
        let mut points: Vec<Point> = span
            .buckets(bucket)
            .map(|(first, last)| Point { first, last, totals: Totals::default(), running: Totals::default() })
            .collect();
        // The days in order: each lands in the first bucket ending at or after it.
        let mut at = 0;
        for (day, totals) in self.src().days(page) {
            let day = i64::from(day);
            if !(span.first..=span.last).contains(&day) || span.partial && day == span.first {
                continue;
            }
            while points[at].last < day {
                at += 1;
            }
            points[at].totals = points[at].totals.plus(&totals);
        }
        if span.partial {
            // The window's figures less its later days: the posts of the
            // first day published from the window's start on.
            let later = points.iter().fold(Totals::default(), |sum, p| sum.plus(&p.totals));
            points[0].totals = points[0].totals.plus(&window.minus(&later));
        }
        let mut running = Totals::default();
        for p in &mut points {
            running = running.plus(&p.totals);
            p.running = running;
        }
        points
    }

    /// Pages `pages`' series in table `t`, side by side on the same
    /// buckets, and per bucket the pages' positions ordered by `metric` of
    /// their running totals, largest first (a tie keeps the previous
    /// bucket's order; the first bucket's ties keep the order given).
    pub fn compare(&self, t: &Table, pages: &[u32], bucket: Bucket, metric: Metric) -> Result<Comparison, SeriesError> {
        let span = self.series_span(t, bucket)?;
        let series: Vec<Vec<Point>> = pages.iter().map(|p| self.series(t, *p, span, bucket)).collect();
        let followers: Vec<Option<u64>> = pages.iter().map(|p| self.row(t, *p).and_then(|r| r.followers)).collect();
        let mut order: Vec<usize> = (0..pages.len()).collect();
        let mut orders = Vec::new();
        let mut overtakes = Vec::new();
        for (b, _) in series.first().into_iter().flatten().enumerate() {
            let value = |i: usize| {
                let row = Row { page: pages[i], totals: series[i][b].running, followers: followers[i] };
                metric.value(&row).unwrap_or(f64::NEG_INFINITY)
            };
            let before = order.clone();
            order.sort_by(|a, b| value(*b).total_cmp(&value(*a)));
            if b > 0 {
                for (rank, &i) in order.iter().enumerate() {
                    let was = before.iter().position(|x| *x == i).expect("the same pages");
                    for &passed in before[..was].iter().filter(|p| !order[..rank].contains(p)) {
                        overtakes.push(Overtake { bucket: b, page: i, passed });
                    }
                }
            }
            orders.push(order.clone());
        }
        Ok(Comparison { span, series, orders, overtakes })
    }
}

/// Pages' series side by side (see [`View::compare`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub span: Span,
    /// Per page (in the order asked), its series.
    pub series: Vec<Vec<Point>>,
    /// Per bucket, the pages' positions, leader first.
    pub orders: Vec<Vec<usize>>,
    /// Each time a page moves ahead of one it was behind.
    pub overtakes: Vec<Overtake>,
}

/// Page `page` (a position in the pages asked) moved ahead of `passed` in
/// bucket `bucket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overtake {
    pub bucket: usize,
    pub page: usize,
    pub passed: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn week_buckets_run_monday_to_sunday_cut_at_the_window() {
        // 2025-07-01 (day 20270) is a Tuesday; 2025-07-31 is day 20300.
        let span = Span { first: 20_270, last: 20_300, partial: false };
        let weeks: Vec<(i64, i64)> = span.buckets(Bucket::Week).collect();
        assert_eq!(weeks.first(), Some(&(20_270, 20_275)), "Tuesday to Sunday");
        assert_eq!(weeks[1], (20_276, 20_282), "a whole week from Monday");
        assert_eq!(weeks.last(), Some(&(20_297, 20_300)), "Monday to Thursday");
        assert_eq!(weeks.iter().map(|(a, b)| b - a + 1).sum::<i64>(), 31);
        assert_eq!(span.buckets(Bucket::Day).count(), 31);
    }
}
