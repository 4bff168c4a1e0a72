//! History gaps: input partitions whose records were deleted (retention)
//! before the engine applied them. The shell notes a gap when a
//! partition's next offset lies before the first one the broker still
//! holds; the pages whose events come from that partition may lack figures
//! from then on, and views mark them (`history_complete: false`).
//!
//! A gap stays open until the partition has caught up (the shell says
//! when): its records were written before those that remain, so what was
//! lost was observed before the watermark the partition then reaches, its
//! *horizon*. Once every window has moved past the horizon (the cutoff is
//! after it), nothing lost can count in any window and the gap is
//! forgotten.
//!
//! Bound: one entry per input partition ([`MAX_GAPS`]).

use crate::window::Millis;

/// Most gaps held: one per input partition at most.
pub const MAX_GAPS: usize = 1 << 16;

/// One partition's gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub partition: u32,
    /// The watermark when the partition caught up after the gap; `None`
    /// while it is catching up.
    pub horizon: Option<Millis>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gaps(pub(super) Vec<Gap>);

impl Gaps {
    /// Partition `partition` lost records: open (or reopen) its gap.
    pub fn note(&mut self, partition: u32) {
        if let Some(g) = self.0.iter_mut().find(|g| g.partition == partition) {
            g.horizon = None;
        } else if self.0.len() < MAX_GAPS {
            self.0.push(Gap { partition, horizon: None });
        }
    }

    /// Partition `partition` caught up at `watermark`: an open gap gets its horizon.
    pub fn close(&mut self, partition: u32, watermark: Option<Millis>) {
        if let Some(g) = self.0.iter_mut().find(|g| g.partition == partition && g.horizon.is_none()) {
            g.horizon = watermark;
        }
    }

    /// Forgets the gaps every window has moved past.
    pub fn expire(&mut self, cutoff: Millis) {
        self.0.retain(|g| g.horizon.is_none_or(|h| h >= cutoff));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Gap> {
        self.0.iter()
    }

    /// Whether a page whose events came from `partition` (`None`: not
    /// known, such as a page not seen since a restart from an older
    /// format) or from several (`split`) may lack figures.
    pub fn cover(&self, partition: Option<u32>, split: bool) -> bool {
        !self.0.is_empty() && (split || partition.is_none_or(|p| self.0.iter().any(|g| g.partition == p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_opens_closes_at_the_watermark_caught_up_and_expires_past_the_cutoff() {
        let mut g = Gaps::default();
        assert!(!g.cover(Some(1), false) && !g.cover(None, true));
        g.note(1);
        assert!(g.cover(Some(1), false) && !g.cover(Some(2), false) && g.cover(Some(2), true) && g.cover(None, false));
        g.expire(1_000);
        assert!(g.cover(Some(1), false), "an open gap never expires");
        g.close(1, Some(500));
        g.close(1, Some(900));
        assert_eq!(g.iter().next().unwrap().horizon, Some(500), "the first catch-up sets the horizon");
        g.expire(500);
        assert!(g.cover(Some(1), false), "the cutoff must pass the horizon");
        g.expire(501);
        assert!(g.is_empty());
        g.note(3);
        g.close(3, Some(10));
        g.note(3);
        assert_eq!(g.iter().next().unwrap().horizon, None, "a new gap reopens");
    }
}
