//! The fields several answers share: a page as every answer names it, a
//! window's id and bounds, a page's figures in a window.

use serde::Serialize;

use engagement_core::ranking::Metric;
use engagement_core::view::{Period, Row, Table, View};
use engagement_core::window::{WindowId, Windows, format_rfc3339};

use super::groups::PageGroups;

/// A page as every answer names it.
#[derive(Serialize)]
pub(super) struct PageIdentity<'v> {
    pub(super) platform: &'v str,
    pub(super) page_id: &'v str,
    pub(super) page_name: Option<&'v str>,
    /// The page's groups in the directory, by dimension.
    pub(super) groups: PageGroups<'v>,
    /// False when an input partition the page's events come from lost
    /// records before they were applied: its figures may be short.
    pub(super) history_complete: bool,
}

impl PageIdentity<'_> {
    pub(super) fn of(view: &View, page: u32) -> PageIdentity<'_> {
        let p = view.page(page);
        PageIdentity {
            platform: p.platform,
            page_id: p.id,
            page_name: p.name,
            groups: super::groups::of_page(view, p.platform, p.id),
            history_complete: p.history_complete,
        }
    }
}

/// A window's id and bounds.
#[derive(Serialize)]
pub(super) struct WindowJson {
    pub(super) id: String,
    start: String,
    end: String,
}

impl WindowJson {
    pub(super) fn of(t: &Table, windows: &Windows) -> WindowJson {
        let id = match (t.period, t.period.id(windows)) {
            (_, Some(id)) => id.to_string(),
            (Period::RollingPrevious(d), None) => match Period::Rolling(d).id(windows) {
                Some(WindowId::Rolling(None)) => "rolling_previous".into(),
                _ => format!("rolling-{d}d_previous"),
            },
            (_, None) => String::new(),
        };
        WindowJson { id, start: format_rfc3339(t.start), end: format_rfc3339(t.end) }
    }
}

/// A page's figures in a window.
#[derive(Serialize)]
pub(super) struct Figures {
    pub(super) interactions: u64,
    pub(super) reactions: u64,
    pub(super) comments: u64,
    pub(super) shares: u64,
    pub(super) views: u64,
    pub(super) posts: u64,
    pub(super) followers: Option<u64>,
    pub(super) interactions_per_post: Option<f64>,
    pub(super) interactions_per_1k_followers: Option<f64>,
}

impl Figures {
    pub(super) fn of(r: &Row) -> Figures {
        let t = &r.totals;
        Figures {
            interactions: t.interactions(),
            reactions: t.reactions,
            comments: t.comments,
            shares: t.shares,
            views: t.views,
            posts: t.posts,
            followers: r.followers,
            interactions_per_post: Metric::InteractionsPerPost.value(r),
            interactions_per_1k_followers: Metric::InteractionsPer1kFollowers.value(r),
        }
    }
}
