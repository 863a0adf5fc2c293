//! The scheduled backups of a run: every `[backups.NAME]` of a config, after the
//! snapshot, replicate and prune phases of `zsnap run` (or of each virtual run of a
//! [rehearsal](crate::rehearsal)).
//!
//! Per `[backups.NAME]`, [`run_scheduled`] opens its store ([`crate::store::open_spec`]),
//! reads its catalog, backs up each dataset its source selects when
//! [`zsnap_core::backup::backup_due`] says a backup is due
//! ([`crate::backup_job::back_up_reported`]), then applies the store's keep policy
//! ([`zsnap_core::backup::plan_backup_prune`], deleted with
//! [`crate::backup::delete_in_order`]). A store that fails is reported in its
//! [`ScheduledStore::error`] and the others still run.
//!
//! [`run_with_backups`] is a whole job as `zsnap run` runs it: the engine's phases, then
//! (for [`Job::Run`]) the scheduled backups, in one [`RunOutcome`].
//!
//! Which datasets a source selects comes from a listing: the caller's, when it has
//! listed the location already, else one `zfs list` of each source (shared by the
//! entries backing up the same source).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use zsnap_core::backup::{backup_due, plan_backup_prune, BackupDue, BackupRequest, BackupSchedule};
use zsnap_core::config::{BackupSpec, Config, Host};
use zsnap_core::{DatasetName, Inventory, Location};

use crate::apply::{Backends, NoObserver};
use crate::backend::ListError;
use crate::backup::{delete_in_order, DeletedObject, DeletionError};
use crate::backup_job::{back_up_reported, naming_for, BackupResult};
use crate::failure::error_chain;
use crate::job::{Engine, Job, JobError, Outcome, Phase, Reporters, Source};
use crate::store::{open_spec, read_catalog, BackupStore, OpenSpecError, StoreError};

/// What a job did ([`Outcome`]) with, for `zsnap run`, its scheduled backups: what
/// the JSON of a job shows (the outcome's fields, then `backups`; see docs/json.md).
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct RunOutcome {
    /// The engine's outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The scheduled backups (`zsnap run` with `[backups.NAME]` in the config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backups: Option<ScheduledBackups>,
}

impl RunOutcome {
    /// A job's outcome without scheduled backups.
    pub fn new(outcome: Outcome) -> Self {
        RunOutcome {
            outcome,
            backups: None,
        }
    }

    /// Whether any phase or scheduled backup failed.
    pub fn failed(&self) -> bool {
        self.outcome.failed() || self.backups_failed()
    }

    /// Whether a scheduled backup failed.
    pub fn backups_failed(&self) -> bool {
        self.backups.as_ref().is_some_and(|b| !b.ok())
    }

    /// Whether any phase or scheduled backup changed something.
    pub fn did_something(&self) -> bool {
        self.outcome.did_something()
            || self
                .backups
                .as_ref()
                .is_some_and(ScheduledBackups::did_something)
    }
}

/// Runs `job` on `backends` ([`Engine::run`]) and, when it is [`Job::Run`] and the
/// config has `[backups.NAME]`, then its scheduled backups ([`run_scheduled`]), whose
/// applied plans also go to the reporters' `applied` callback.
///
/// # Errors
/// What stops the job ([`Engine::run`]); the scheduled backups then do not run.
pub fn run_with_backups(
    engine: &Engine<'_>,
    job: &Job,
    now: DateTime<Utc>,
    dry_run: bool,
    backends: &mut dyn Backends,
    reporters: &mut Reporters<'_>,
) -> Result<RunOutcome, JobError> {
    let mut outcome = engine.run(
        job,
        now,
        dry_run,
        Source::Backends(&mut *backends),
        reporters,
    )?;
    // What the run listed and did, so the backups list nothing again.
    let listed = outcome.inventories.take();
    let config = engine.config();
    let backups = (*job == Job::Run && !config.backups.is_empty()).then(|| {
        let mut nobody = |_: &Phase| {};
        let applied: &mut dyn FnMut(&Phase) = match reporters.applied.as_deref_mut() {
            Some(f) => f,
            None => &mut nobody,
        };
        run_scheduled(config, backends, now, dry_run, listed.as_ref(), applied)
    });
    Ok(RunOutcome { outcome, backups })
}

/// What the scheduled backups of one run did (`backups` in the JSON of `zsnap run`).
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct ScheduledBackups {
    /// Per `[backups.NAME]` of the config, in name order.
    pub stores: Vec<ScheduledStore>,
    /// Whether nothing was changed on purpose (deletions are then only planned).
    #[serde(skip)]
    pub dry_run: bool,
}

impl ScheduledBackups {
    /// Whether every backup and deletion succeeded.
    pub fn ok(&self) -> bool {
        self.stores
            .iter()
            .all(|s| s.error.is_none() && s.backups.iter().all(|b| !b.failed()))
    }

    /// Whether a backup was made.
    pub fn did_something(&self) -> bool {
        self.stores.iter().any(|s| s.backups.iter().any(|r| r.ok))
    }
}

/// One `[backups.NAME]` of a run.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct ScheduledStore {
    /// The name.
    pub name: String,
    /// The store's URL.
    pub store: String,
    /// The backups that were due.
    pub backups: Vec<BackupResult>,
    /// Keys deleted by the store's keep policy (or, in a dry run, that would be).
    pub pruned: Vec<String>,
    /// Every deletion tried (none in a dry run), for an audit log.
    #[serde(skip)]
    pub deleted: Vec<DeletedObject>,
    /// What stopped this entry (store unreachable, listing failed, a deletion failed),
    /// rendered in JSON with every cause.
    #[serde(serialize_with = "error_text")]
    pub error: Option<ScheduledError>,
}

fn error_text<S: Serializer>(e: &Option<ScheduledError>, s: S) -> Result<S::Ok, S::Error> {
    e.as_ref().map(|e| error_chain(e)).serialize(s)
}

/// What stopped one `[backups.NAME]` of a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduledError {
    /// Its store cannot be opened.
    #[error(transparent)]
    Open(#[from] OpenSpecError),
    /// Its source is the root of no `[[datasets]]` entry.
    #[error("no [[datasets]] entry has the root {root}")]
    NoEntry {
        /// The source.
        root: DatasetName,
    },
    /// The store's catalog cannot be read.
    #[error(transparent)]
    Catalog(#[from] StoreError),
    /// No backend was given for the source's host.
    #[error("no backend for {host}")]
    NoBackend {
        /// The host.
        host: Host,
    },
    /// The source cannot be listed.
    #[error("list {root}")]
    List {
        /// The source.
        root: DatasetName,
        /// The cause.
        #[source]
        source: ListError,
    },
    /// A deletion of the store's keep policy failed.
    #[error(transparent)]
    Delete(#[from] DeletionError),
}

/// Opens the store of a `[backups.NAME]`.
pub type StoreOpener<'a> =
    &'a mut dyn FnMut(&BackupSpec) -> Result<Arc<dyn BackupStore>, OpenSpecError>;

/// The scheduled backups of `config` due at `now`, with the stores opened from the
/// config ([`open_spec`]). `listed` is a listing of locations the caller already made
/// (each backup still lists its own dataset to plan it); for a location it lacks, each
/// source is listed once. Each applied plan goes to `applied` (for
/// an audit log). A dry run plans the backups and the deletions and changes nothing.
pub fn run_scheduled(
    config: &Config,
    backends: &mut dyn Backends,
    now: DateTime<Utc>,
    dry_run: bool,
    listed: Option<&BTreeMap<Location, Inventory>>,
    applied: &mut dyn FnMut(&Phase),
) -> ScheduledBackups {
    run_scheduled_in(
        config,
        backends,
        now,
        dry_run,
        listed,
        applied,
        &mut |spec| Ok(Arc::from(open_spec(spec)?)),
    )
}

/// [`run_scheduled`] with the stores `open` gives (a rehearsal keeps them in memory).
pub fn run_scheduled_in(
    config: &Config,
    backends: &mut dyn Backends,
    now: DateTime<Utc>,
    dry_run: bool,
    listed: Option<&BTreeMap<Location, Inventory>>,
    applied: &mut dyn FnMut(&Phase),
    open: StoreOpener<'_>,
) -> ScheduledBackups {
    let mut all = ScheduledBackups {
        stores: Vec::new(),
        dry_run,
    };
    // The sources listed here (once each), where the caller's listing has no location.
    let mut own: BTreeMap<(Location, DatasetName), Inventory> = BTreeMap::new();
    for (name, spec) in &config.backups {
        let mut one = ScheduledStore {
            name: name.clone(),
            store: spec.to.to_string(),
            backups: Vec::new(),
            pruned: Vec::new(),
            deleted: Vec::new(),
            error: None,
        };
        let mut run = Scheduled {
            config,
            spec,
            backends: &mut *backends,
            now,
            dry_run,
            applied: &mut *applied,
        };
        let result = open(spec)
            .map_err(ScheduledError::from)
            .and_then(|store| run.one(&store, listed, &mut own, &mut one));
        one.error = result.err();
        all.stores.push(one);
    }
    all
}

/// One `[backups.NAME]` being run.
struct Scheduled<'r, 'b> {
    config: &'r Config,
    spec: &'r BackupSpec,
    backends: &'r mut (dyn Backends + 'b),
    now: DateTime<Utc>,
    dry_run: bool,
    applied: &'r mut dyn FnMut(&Phase),
}

impl Scheduled<'_, '_> {
    fn one(
        &mut self,
        store: &Arc<dyn BackupStore>,
        listed: Option<&BTreeMap<Location, Inventory>>,
        own: &mut BTreeMap<(Location, DatasetName), Inventory>,
        one: &mut ScheduledStore,
    ) -> Result<(), ScheduledError> {
        let (config, spec, now) = (self.config, self.spec, self.now);
        let entry = config
            .datasets
            .iter()
            .find(|d| d.root == spec.source)
            .ok_or_else(|| ScheduledError::NoEntry {
                root: spec.source.clone(),
            })?;
        let location = entry.host.location();
        let (_, catalog) = read_catalog(&**store)?;
        let inventory = match listed.and_then(|invs| invs.get(&location)) {
            Some(inv) => inv,
            None => {
                let key = (location.clone(), entry.root.clone());
                if !own.contains_key(&key) {
                    let backend = self.backends.backend(&location).ok_or_else(|| {
                        ScheduledError::NoBackend {
                            host: entry.host.clone(),
                        }
                    })?;
                    let inv =
                        backend
                            .list(std::slice::from_ref(&entry.root))
                            .map_err(|source| ScheduledError::List {
                                root: entry.root.clone(),
                                source,
                            })?;
                    own.insert(key.clone(), inv);
                }
                &own[&key]
            }
        };
        let selected: Vec<DatasetName> = inventory
            .datasets
            .keys()
            .filter(|d| entry.selects(d))
            .cloned()
            .collect();
        let schedule = BackupSchedule::new(spec.every, spec.full_every);
        for dataset in selected {
            if let BackupDue::Yes { mode, .. } = backup_due(&catalog, &dataset, &schedule, now) {
                let mut request = BackupRequest::new(dataset.clone(), spec.to.clone(), mode)
                    .with_location(location.clone())
                    .with_label(spec.label.clone())
                    .with_compression(spec.compression);
                if let Some(naming) = naming_for(config, &entry.host, &dataset) {
                    request = request.with_naming(naming);
                }
                one.backups.push(back_up_reported(
                    &request,
                    &mut *self.backends,
                    store,
                    &catalog,
                    now,
                    self.dry_run,
                    spec.verify,
                    &mut *self.applied,
                    &mut NoObserver,
                ));
            }
        }
        if let Some(policy) = spec.policy.as_ref().and_then(|p| config.policies.get(p)) {
            let (_, catalog) = read_catalog(&**store)?;
            let plan =
                plan_backup_prune(&catalog, &policy.retention_policy(), now, policy.timezone);
            if self.dry_run {
                one.pruned = plan.deletions.iter().map(|d| d.key.clone()).collect();
            } else {
                let done = delete_in_order(&**store, &plan.deletions, now);
                one.pruned = done.deleted();
                one.deleted = done.tried;
                if let Some(e) = done.error {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }
}
