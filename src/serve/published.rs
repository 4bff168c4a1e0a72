//! The one publication of the view: a watch channel holding the latest
//! [`View`] and whether the daemon was ready when it was built. Handlers and
//! the `/metrics` collector read the latest; the rank-change loop awaits
//! each new one. Views reach it through the preparer of the writer
//! (`ingest::Preparer`), which sorts them first.

use std::sync::Arc;

use engagement_core::view::View;
use tokio::sync::watch;

/// A view as published.
#[derive(Debug, Clone)]
pub struct Published {
    pub view: Arc<View>,
    /// Whether the daemon was ready when the view was built: rank changes
    /// are reported only between two such views.
    pub ready: bool,
}

pub type ViewTx = watch::Sender<Published>;
pub type ViewRx = watch::Receiver<Published>;

/// A channel holding the empty view.
pub fn channel() -> (ViewTx, ViewRx) {
    watch::channel(Published { view: Arc::new(View::empty()), ready: false })
}

/// The latest view (the lock inside the channel is held only to clone it).
pub fn latest(rx: &ViewRx) -> Arc<View> {
    rx.borrow().view.clone()
}
