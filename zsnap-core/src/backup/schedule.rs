//! When a scheduled backup is due, and whether it starts a new chain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::catalog::{Catalog, Link};
use super::planner::BackupMode;
use crate::duration::Span;
use crate::zfs_names::DatasetName;

/// The schedule of one `[backups.NAME]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BackupSchedule {
    /// One backup per period of this length (periods are aligned to the Unix epoch, so
    /// `1d` means one per UTC day, whenever the timer fires within it).
    pub every: Span,
    /// A full stream once the newest restorable full backup was taken this long ago.
    pub full_every: Option<Span>,
}

impl BackupSchedule {
    /// A schedule.
    pub fn new(every: Span, full_every: Option<Span>) -> Self {
        BackupSchedule { every, full_every }
    }
}

/// Why a scheduled backup is due, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "due", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackupDue {
    /// Not due: the newest restorable backup is in the current period.
    No {
        /// When the newest restorable backup's snapshot was taken.
        newest: DateTime<Utc>,
    },
    /// Due, with this mode.
    Yes {
        /// Full or automatic incremental.
        mode: BackupMode,
        /// Why, for the user.
        reason: String,
    },
}

fn period(t: DateTime<Utc>, every: Span) -> i64 {
    let secs = i64::try_from(every.seconds().max(1)).unwrap_or(i64::MAX);
    t.timestamp().div_euclid(secs)
}

/// Whether a backup of `dataset` to the store `catalog` describes is due at `now`.
///
/// Due when the store has no restorable backup of the dataset taken in the current
/// period (by the snapshot's creation time). The backup is a full stream when no
/// restorable full exists or the newest one is at least `full_every` old, and an
/// automatic incremental otherwise.
///
/// # Example
/// ```
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::backup::{backup_due, BackupDue, BackupMode, BackupSchedule, Catalog};
/// use zsnap_core::duration::Span;
/// let now = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
/// let daily = BackupSchedule::new(Span::from_secs(86_400), None);
/// let due = backup_due(&Catalog::default(), &"tank/home".parse().unwrap(), &daily, now);
/// assert!(matches!(due, BackupDue::Yes { mode: BackupMode::Full, .. }));
/// ```
pub fn backup_due(
    catalog: &Catalog,
    dataset: &DatasetName,
    schedule: &BackupSchedule,
    now: DateTime<Utc>,
) -> BackupDue {
    let restorable: Vec<_> = catalog
        .dataset(dataset)
        .map(|d| {
            d.entries
                .iter()
                .filter(|e| e.is_restorable())
                .filter_map(|e| e.sidecar.as_ref().map(|s| (s.created, &e.link)))
                .collect()
        })
        .unwrap_or_default();
    let newest = restorable.iter().map(|(t, _)| *t).max();
    let newest_full = restorable
        .iter()
        .filter(|(_, l)| matches!(l, Some(Link::Full)))
        .map(|(t, _)| *t)
        .max();
    if let Some(newest) = newest {
        if period(newest, schedule.every) >= period(now, schedule.every) {
            return BackupDue::No { newest };
        }
    }
    let (mode, reason) = match (newest_full, schedule.full_every) {
        (None, _) => (
            BackupMode::Full,
            "no restorable backup of it in the store: a full stream".to_owned(),
        ),
        (Some(full), Some(limit)) if now - full >= limit.to_chrono() => (
            BackupMode::Full,
            format!("the newest full backup is older than full_every = {limit}: a new chain"),
        ),
        (Some(_), _) => (
            BackupMode::AutoIncremental,
            format!(
                "no backup in the current period of {}: an incremental",
                schedule.every
            ),
        ),
    };
    BackupDue::Yes { mode, reason }
}
