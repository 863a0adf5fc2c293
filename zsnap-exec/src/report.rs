//! `zsnap status` and `zsnap check` as one call each, for every front-end (the CLI,
//! a daemon's API): list the config's roots, read its stores' catalogs and its run
//! records, and compute the values of [`crate::status`] (which itself reads nothing).

use chrono::{DateTime, Utc};

use crate::failure::error_chain;
use crate::job::{Engine, JobError, Source};
use crate::last_run;
use crate::session::SessionFiles;
use crate::status::{backup_status, check, pool_status, status, CheckReport, Status, StatusError};
use crate::store::read_spec_catalog;

/// The status could not be gathered. Reads after "failed to …".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Listing failed as a whole, or no root at all could be listed (no `zfs`, no
    /// pool, no network): the first root's error says why better than a status of
    /// nothing.
    #[error(transparent)]
    List(Box<JobError>),
    /// The datasets do not fit the config.
    #[error(transparent)]
    Status(#[from] StatusError),
}

/// The status at `now` of everything the config of `engine` manages: each location
/// listed root by root (a root that cannot be listed is reported as unreachable, with
/// what it hides), and each `[backups.NAME]` store's catalog read (a store that cannot
/// be read is reported with its error).
///
/// # Errors
/// See [`ReportError`].
pub fn gather_status(
    engine: &Engine<'_>,
    source: &mut Source<'_>,
    now: DateTime<Utc>,
) -> Result<Status, ReportError> {
    let mut listing = engine
        .list_each(source)
        .map_err(|e| ReportError::List(Box::new(e)))?;
    let roots: usize = engine.roots().values().map(Vec::len).sum();
    if roots > 0 && listing.failed.len() == roots {
        let first = listing.failed.swap_remove(0);
        return Err(ReportError::List(Box::new(JobError::from(first))));
    }
    let mut st = status(engine, &listing, now)?;
    st.backups = backup_status(engine.config(), &listing.invs, now, &mut |_, spec| {
        read_spec_catalog(spec).map_err(|e| error_chain(&e))
    });
    Ok(st)
}

/// `zsnap check` at `now`: the status ([`gather_status`], except that roots that
/// cannot be listed are findings even when none can be) with the health and capacity
/// of the pools under the config's roots (asked of each location's backend, one
/// `zpool list` and one `zpool status` each; none from a saved listing), against the
/// config's `[check]` thresholds and the last runs recorded in `files`.
///
/// # Errors
/// Listing failed as a whole, or the datasets do not fit the config: the check's
/// result is then unknown.
pub fn gather_check(
    engine: &Engine<'_>,
    source: &mut Source<'_>,
    files: &SessionFiles,
    now: DateTime<Utc>,
) -> Result<CheckReport, ReportError> {
    let listing = engine
        .list_each(source)
        .map_err(|e| ReportError::List(Box::new(e)))?;
    let mut st = status(engine, &listing, now)?;
    st.backups = backup_status(engine.config(), &listing.invs, now, &mut |_, spec| {
        read_spec_catalog(spec).map_err(|e| error_chain(&e))
    });
    if let Source::Backends(backends) = source {
        st.pools = pool_status(engine, &mut **backends);
    }
    let runs = last_run::read(&files.run_record());
    Ok(check(engine, &st, runs.as_ref()))
}
