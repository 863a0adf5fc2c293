//! [`Replicated`]: how far each replication target has received one dataset, for the
//! rule `not replicated to T`.

use std::collections::BTreeMap;

/// What each replication target of one dataset has received: per target name, the
/// `createtxg` (on the dataset being evaluated) of the newest snapshot or bookmark it
/// shares with that target by guid, or `None` when the target receives the dataset but
/// shares nothing with it yet. A target absent from it does not receive the dataset.
///
/// The prune planner builds it from
/// [`TargetProtection::received`](crate::replicate::TargetProtection::received).
///
/// # Example
/// ```
/// use zsnap_core::retention::Replicated;
/// let r = Replicated::new().with_target("offsite", Some(120)).with_target("usb", None);
/// assert_eq!(r.target("offsite"), Some(Some(120)));
/// assert_eq!(r.target("usb"), Some(None));
/// assert_eq!(r.target("elsewhere"), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Replicated {
    targets: BTreeMap<String, Option<u64>>,
}

impl Replicated {
    /// Nothing known of any target: `not replicated to T` keeps nothing.
    pub fn new() -> Self {
        Replicated::default()
    }

    /// The same, with `target` sharing its newest snapshot at `createtxg` (`None`:
    /// it receives the dataset but shares nothing yet). A target given twice keeps
    /// the later value.
    #[must_use]
    pub fn with_target(mut self, target: impl Into<String>, createtxg: Option<u64>) -> Self {
        self.targets.insert(target.into(), createtxg);
        self
    }

    /// What `target` shares: `None` when it does not receive the dataset, `Some(None)`
    /// when it shares nothing yet, `Some(Some(txg))` when its newest common snapshot
    /// was created in `txg`.
    pub fn target(&self, target: &str) -> Option<Option<u64>> {
        self.targets.get(target).copied()
    }
}
