//! Backing up one dataset as a job: list it, plan the backup (taking a snapshot first
//! when the request asks for a new one), and apply the plan through the same runner
//! as every other plan ([`mod@crate::apply`]): the stream ([`crate::backup::run_backup`]),
//! then the bookmark that keeps the next incremental possible.
//!
//! [`back_up_reported`] runs one request on a location's backend and reports it as a
//! [`BackupResult`] (what `zsnap backup` and the scheduled backups of `zsnap run`
//! show); [`crate::scheduled`] runs the `[backups.NAME]` of a config.

use std::sync::Arc;

use serde::Serialize;
use zsnap_core::DatasetName;

use crate::apply::{ApplyOptions, Backends, Observer};
use crate::backend::{ListError, ZfsBackend};
use crate::backup::BackupOptions;
use crate::failure::error_chain;
use crate::job::{Phase, PhaseKind};
use crate::store::BackupStore;

/// What [`back_up`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct BackupRun {
    /// The plans made, in order: a snapshot plan first when the snapshot had to be
    /// taken, then the send plan.
    pub plans: Vec<zsnap_core::Plan>,
    /// The report of each applied plan (none in a dry run).
    pub reports: Vec<crate::apply::Report>,
    /// The stream written (or that would be).
    pub stream: Option<zsnap_core::backup::StreamName>,
}

impl BackupRun {
    /// Whether every applied step succeeded.
    pub fn is_success(&self) -> bool {
        self.reports.iter().all(crate::apply::Report::is_success)
    }
}

/// Why [`back_up`] could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackUpError {
    /// The source could not be listed.
    #[error("back up {dataset}: list it")]
    List {
        /// The dataset.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: ListError,
    },
    /// The source listing has no such dataset.
    #[error("back up {dataset}: no such dataset")]
    NoDataset {
        /// The dataset.
        dataset: DatasetName,
    },
    /// The backup cannot be planned.
    #[error("back up {dataset}")]
    Plan {
        /// The dataset.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: zsnap_core::backup::BackupPlanError,
    },
}

/// Backs up one dataset: plans ([`zsnap_core::backup::plan_backup`]), takes the
/// snapshot first when the request asks for a new one (then lists and plans again, so
/// the backup names the snapshot by its real guid), and applies the send plan: the
/// stream, then the bookmark that keeps the next incremental possible.
///
/// With `dry_run`, plans only (a snapshot still to take is shown, not taken).
///
/// # Errors
/// When the source cannot be listed or the backup cannot be planned; failures of the
/// steps are in the [`BackupRun`]'s reports.
#[expect(
    clippy::too_many_arguments,
    reason = "one run's inputs; a struct would only rename them"
)]
pub fn back_up(
    request: &zsnap_core::backup::BackupRequest,
    backend: &mut dyn ZfsBackend,
    store: &Arc<dyn BackupStore>,
    catalog: &zsnap_core::backup::Catalog,
    now: chrono::DateTime<chrono::Utc>,
    dry_run: bool,
    options: &crate::apply::ApplyOptions,
    observer: &mut dyn crate::apply::Observer,
) -> Result<BackupRun, BackUpError> {
    use zsnap_core::backup::{plan_backup, BackupPlan};
    let dataset = request.dataset.clone();
    let mut run = BackupRun {
        plans: Vec::new(),
        reports: Vec::new(),
        stream: None,
    };
    let mut request = request.clone();
    for _ in 0..2 {
        let inventory = backend
            .list(std::slice::from_ref(&dataset))
            .map_err(|source| BackUpError::List {
                dataset: dataset.clone(),
                source,
            })?;
        let Some(source) = inventory.dataset(&dataset) else {
            return Err(BackUpError::NoDataset { dataset });
        };
        let planned =
            plan_backup(&request, source, catalog, now).map_err(|source| BackUpError::Plan {
                dataset: dataset.clone(),
                source,
            })?;
        match planned {
            BackupPlan::TakeSnapshot { plan, snapshot } => {
                run.plans.push(plan.clone());
                if dry_run {
                    return Ok(run);
                }
                let report = crate::apply::apply_with(
                    &plan,
                    &mut crate::apply::OneBackend(&mut *backend),
                    observer,
                    None,
                    options,
                );
                let ok = report.is_success();
                run.reports.push(report);
                if !ok {
                    return Ok(run);
                }
                request = request.with_snapshot(Some(snapshot.short().clone()));
            }
            BackupPlan::Send { plan, stream } => {
                run.plans.push(plan.clone());
                run.stream = Some(stream);
                if dry_run {
                    return Ok(run);
                }
                let mut with = crate::apply::WithStores {
                    inner: &mut crate::apply::OneBackend(&mut *backend),
                    stores: std::collections::BTreeMap::from([(
                        request.store.clone(),
                        Arc::clone(store),
                    )]),
                };
                run.reports.push(crate::apply::apply_with(
                    &plan, &mut with, observer, None, options,
                ));
                return Ok(run);
            }
            _ => return Ok(run),
        }
    }
    Ok(run)
}

/// One backup done (or planned), as `zsnap backup` and the scheduled backups of
/// `zsnap run` report it (its `--json`, see docs/json.md).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BackupResult {
    /// The dataset.
    pub dataset: DatasetName,
    /// The store.
    pub store: String,
    /// The stream object's key (`None` when only its snapshot was planned).
    pub stream: Option<String>,
    /// The plans made: the snapshot's, then the send's.
    pub plan: Vec<zsnap_core::Plan>,
    /// Every applied step succeeded.
    pub ok: bool,
    /// What failed, each with its causes: a step (`step N (reason): …`), or why the
    /// backup could not run at all.
    pub errors: Vec<String>,
}

impl BackupResult {
    /// Whether something failed.
    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// Runs `request` ([`back_up`]) on the backend of its location in `backends`, and
/// reports it: each applied plan goes to `applied` as a [`PhaseKind::Backup`] phase
/// (for an audit log), each failure into [`BackupResult::errors`]. `verify` reads the
/// stream back before its sidecar is written.
#[expect(
    clippy::too_many_arguments,
    reason = "one backup's inputs; a struct would only rename them"
)]
pub fn back_up_reported(
    request: &zsnap_core::backup::BackupRequest,
    backends: &mut dyn Backends,
    store: &Arc<dyn BackupStore>,
    catalog: &zsnap_core::backup::Catalog,
    now: chrono::DateTime<chrono::Utc>,
    dry_run: bool,
    verify: bool,
    applied: &mut dyn FnMut(&Phase),
    observer: &mut dyn Observer,
) -> BackupResult {
    let mut result = BackupResult {
        dataset: request.dataset.clone(),
        store: request.store.to_string(),
        stream: None,
        plan: Vec::new(),
        ok: false,
        errors: Vec::new(),
    };
    let Some(backend) = backends.backend(&request.location) else {
        result
            .errors
            .push(format!("no backend for {}", request.location));
        return result;
    };
    let options = ApplyOptions::default().with_backup(BackupOptions::default().with_verify(verify));
    match back_up(
        request, backend, store, catalog, now, dry_run, &options, observer,
    ) {
        Ok(run) => {
            result.ok = run.is_success();
            for (plan, report) in run.plans.iter().zip(&run.reports) {
                applied(&Phase::applied(
                    PhaseKind::Backup {
                        store: request.store.to_string(),
                    },
                    plan.clone(),
                    crate::job::results(report),
                ));
            }
            result.stream = run.stream.as_ref().map(ToString::to_string);
            for report in &run.reports {
                for (i, e) in report.failures() {
                    let what = run
                        .plans
                        .iter()
                        .flat_map(|p| p.steps.get(i))
                        .next()
                        .map_or("", |s| s.reason());
                    result
                        .errors
                        .push(format!("step {} ({what}): {}", i + 1, error_chain(e)));
                }
            }
            result.plan = run.plans;
        }
        Err(e) => result.errors.push(error_chain(&e)),
    }
    result
}

/// Backs up each of `requests` ([`back_up_reported`]) to one store, as `zsnap backup`
/// does: with a config, each dataset's snapshot is named by the policy that manages
/// it on this machine ([`naming_for`]).
#[expect(
    clippy::too_many_arguments,
    reason = "the backups' inputs; a struct would only rename them"
)]
pub fn back_up_all(
    requests: &[zsnap_core::backup::BackupRequest],
    config: Option<&zsnap_core::config::Config>,
    backends: &mut dyn Backends,
    store: &Arc<dyn BackupStore>,
    catalog: &zsnap_core::backup::Catalog,
    now: chrono::DateTime<chrono::Utc>,
    dry_run: bool,
    verify: bool,
    applied: &mut dyn FnMut(&Phase),
    observer: &mut dyn Observer,
) -> Vec<BackupResult> {
    requests
        .iter()
        .map(|request| {
            let naming = config
                .and_then(|c| naming_for(c, &zsnap_core::config::Host::Local, &request.dataset));
            let request = match naming {
                Some(naming) => request.clone().with_naming(naming),
                None => request.clone(),
            };
            back_up_reported(
                &request, backends, store, catalog, now, dry_run, verify, applied, observer,
            )
        })
        .collect()
}

/// The naming scheme of the policy that manages `dataset` on `host`, so a backup's
/// snapshot is named like the dataset's other snapshots (with the policy's prefix).
pub fn naming_for(
    config: &zsnap_core::config::Config,
    host: &zsnap_core::config::Host,
    dataset: &zsnap_core::DatasetName,
) -> Option<zsnap_core::naming::NamingScheme> {
    let entry = config.entry_for(host, dataset)?;
    config.policy(&entry.policy).map(|p| p.naming())
}
