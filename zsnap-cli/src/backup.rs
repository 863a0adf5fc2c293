//! `zsnap backup`, `zsnap backups …`, `zsnap restore`, and the scheduled backups of
//! `zsnap run`: wiring of `zsnap_exec::backup` and rendering.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use chrono::{DateTime, Utc};
use serde::Serialize;
use zsnap_core::backup::{
    backup_due, parse_since, plan_backup_prune, BackupDue, BackupEntry, BackupId, BackupMode,
    BackupRequest, BackupSchedule, Catalog, Compression, EntryState, Link, RestoreTarget, StoreUrl,
};
use zsnap_core::config::{BackupSpec, Config};
use zsnap_core::naming::Label;
use zsnap_core::retention::RetentionPolicy;
use zsnap_core::{DatasetName, ShortName};
use zsnap_exec::apply::{ApplyOptions, Backends, NoObserver};
use zsnap_exec::backup::{
    delete_objects, restore, save_entry, verify_entry, BackupOptions, RestoreOptions,
    RestoreRunError,
};
use zsnap_exec::backup_job::back_up;
use zsnap_exec::failure::error_chain;
use zsnap_exec::job::{Phase, PhaseKind};
use zsnap_exec::store::{
    init_store, open_initialised, read_catalog, BackupStore, OpenStoreProblem, S3Settings,
};

use crate::exit;
use crate::failure::Failure;
use crate::output;
use crate::request::Request;

/// S3 settings given on the command line (or, for a store a `[backups.NAME]` of the
/// config names, taken from there).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct S3Flags {
    /// S3 endpoint URL (default: `AWS_ENDPOINT_URL`, else AWS).
    #[arg(long, value_name = "URL", global = true)]
    pub s3_endpoint: Option<String>,
    /// S3 region (default: `AWS_REGION`).
    #[arg(long, value_name = "REGION", global = true)]
    pub s3_region: Option<String>,
    /// Allow a plain http:// endpoint.
    #[arg(long, global = true)]
    pub s3_allow_http: bool,
}

/// The S3 settings for `url`: the flags, else the config's `[backups.NAME]` with this
/// store, else the environment (object_store reads `AWS_*` for anything unset).
///
/// # Errors
/// An unreadable secret key file.
pub fn s3_settings(
    url: &StoreUrl,
    flags: &S3Flags,
    config: Option<&Config>,
) -> anyhow::Result<S3Settings> {
    let mut s = S3Settings::new();
    if let Some(spec) = config.and_then(|c| c.backups.values().find(|b| &b.to == url)) {
        s = from_spec(spec)?;
    }
    if let Some(e) = &flags.s3_endpoint {
        s = s.with_endpoint(e.clone());
    }
    if let Some(r) = &flags.s3_region {
        s = s.with_region(r.clone());
    }
    if flags.s3_allow_http {
        s = s.with_allow_http(true);
    }
    Ok(s)
}

fn from_spec(spec: &BackupSpec) -> anyhow::Result<S3Settings> {
    let mut s = S3Settings::new().with_allow_http(spec.s3.allow_http);
    if let Some(e) = &spec.s3.endpoint {
        s = s.with_endpoint(e.clone());
    }
    if let Some(r) = &spec.s3.region {
        s = s.with_region(r.clone());
    }
    if let Some(id) = &spec.s3.access_key_id {
        s = s.with_access_key_id(id.clone());
    }
    if let Some(path) = &spec.s3.secret_access_key_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read the secret key file {path}"))?;
        let secret = text.lines().next().unwrap_or("").trim().to_owned();
        if secret.is_empty() {
            return Err(anyhow!("the secret key file {path} is empty"));
        }
        s = s.with_secret_access_key(secret);
    }
    Ok(s)
}

/// Opens an initialised store (see `zsnap backups init`).
///
/// # Errors
/// A bad URL (usage), a store that cannot be opened, or one without its marker (with
/// the `init` command as the hint).
pub fn open(
    url: &str,
    flags: &S3Flags,
    config: Option<&Config>,
) -> Result<(StoreUrl, Arc<dyn BackupStore>), Failure> {
    let url: StoreUrl = url.parse().map_err(Failure::usage)?;
    let settings = s3_settings(&url, flags, config).map_err(Failure::usage)?;
    let (store, _) = open_initialised(&url, &settings).map_err(|e| {
        let hint = matches!(e.problem, OpenStoreProblem::NotInitialised { .. })
            .then(|| format!("a new store is made once with: zsnap backups init {url}"));
        let f = Failure::from(e);
        match hint {
            Some(h) => f.with_hint(h),
            None => f,
        }
    })?;
    Ok((url, Arc::from(store)))
}

/// The naming scheme of the policy that manages `dataset` on `host` (so a backup's
/// snapshot is named like the dataset's other snapshots, with the policy's prefix).
fn naming_for(
    config: &Config,
    host: &zsnap_core::config::Host,
    dataset: &DatasetName,
) -> Option<zsnap_core::naming::NamingScheme> {
    let entry = config.entry_for(host, dataset)?;
    config.policy(&entry.policy).map(|p| p.naming())
}

/// The config when its file exists (ad-hoc backup commands work without one).
///
/// # Errors
/// A config file that exists but is invalid.
pub fn optional_config(path: &Path) -> Result<Option<Config>, Failure> {
    if path.exists() {
        crate::commands::load_config(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Arguments of `zsnap backup`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct BackupArgs {
    /// The datasets to back up.
    #[arg(value_name = "DATASET", required = true)]
    pub datasets: Vec<String>,
    /// The store: dir:/absolute/path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    pub to: String,
    /// An incremental from the newest snapshot already backed up in the store (found
    /// by guid), or a full stream when there is none.
    #[arg(long)]
    pub auto_incremental: bool,
    /// An incremental from this snapshot of the dataset (its name after `@`), which
    /// must have a backup in the store. Wins over --auto-incremental.
    #[arg(long, value_name = "SNAPSHOT")]
    pub since: Option<String>,
    /// Back up this existing snapshot instead of taking a new one.
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
    /// The label of the snapshot taken.
    #[arg(long, value_name = "LABEL", default_value = "backup")]
    pub label: String,
    /// Compress the stored stream: none or zstd.
    #[arg(long, value_name = "ALGO", default_value = "none")]
    pub compress: String,
    /// Read the stream back after uploading and compare size and SHA-256 before
    /// writing its sidecar.
    #[arg(long)]
    pub verify: bool,
    /// Show the plan; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// S3 settings.
    #[command(flatten)]
    pub s3: S3Flags,
}

/// `zsnap backups …`
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum BackupsCmd {
    /// Make a store once before its first backup: writes its marker. A directory
    /// store's directory is made (only its last component; its parent must exist, so
    /// an unmounted disk is not filled), an S3 bucket must exist. A store that already
    /// has backups is adopted as it is.
    Init {
        /// The store: dir:/absolute/path or s3://bucket/prefix.
        #[arg(value_name = "STORE")]
        store: String,
        /// S3 settings.
        #[command(flatten)]
        s3: S3Flags,
    },
    /// Every backup in a store with its chain, size and state.
    List {
        /// The store.
        #[arg(long, value_name = "STORE")]
        from: String,
        /// Only this dataset.
        #[arg(long, value_name = "DATASET")]
        dataset: Option<String>,
        /// Only backups of snapshots taken at or after this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only backups of snapshots taken at or before this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// S3 settings.
        #[command(flatten)]
        s3: S3Flags,
    },
    /// Re-read every complete backup (sizes, SHA-256) and check every chain.
    Verify {
        /// The store.
        #[arg(long, value_name = "STORE")]
        from: String,
        /// Only this dataset.
        #[arg(long, value_name = "DATASET")]
        dataset: Option<String>,
        /// S3 settings.
        #[command(flatten)]
        s3: S3Flags,
    },
    /// Delete one backup (by its id, as `backups list` shows it).
    Delete {
        /// The store.
        #[arg(long, value_name = "STORE")]
        from: String,
        /// The backup's id.
        #[arg(value_name = "ID")]
        id: String,
        /// Also delete the incrementals restored through it.
        #[arg(long)]
        with_dependents: bool,
        /// Show what would go; delete nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// S3 settings.
        #[command(flatten)]
        s3: S3Flags,
    },
    /// Apply keep rules to a store's chains (a full stays while a kept incremental
    /// needs it; unfinished uploads older than an hour go).
    Prune {
        /// The store.
        #[arg(long, value_name = "STORE")]
        from: String,
        /// Keep rules, one per flag (e.g. `--keep "last 7" --keep "calendar daily = 14"`):
        /// `last N`, `calendar daily = N, …`, `labels LABEL = N, …`, `grid SPEC`,
        /// `newer than DURATION`.
        #[arg(long = "keep", value_name = "RULE", required = true)]
        keep: Vec<String>,
        /// Show what would go; delete nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// S3 settings.
        #[command(flatten)]
        s3: S3Flags,
    },
}

/// Arguments of `zsnap restore`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct RestoreArgs {
    /// The store.
    #[arg(long, value_name = "STORE")]
    pub from: String,
    /// The dataset whose backups to restore.
    #[arg(value_name = "DATASET")]
    pub dataset: String,
    /// The newest backup of a snapshot taken at or before this time (RFC 3339).
    #[arg(long, value_name = "TIME", conflicts_with_all = ["snapshot", "latest"])]
    pub at: Option<String>,
    /// This snapshot (its name after `@`).
    #[arg(long, value_name = "NAME", conflicts_with = "latest")]
    pub snapshot: Option<String>,
    /// The newest backup (the default).
    #[arg(long)]
    pub latest: bool,
    /// The dataset to receive into: `pool/path` (on --backend's host) or
    /// `ssh://[user@]host[:port]/pool/path`. It must not exist, or hold an earlier part
    /// of the same chain (a restore that stopped continues).
    #[arg(long, value_name = "TARGET", required_unless_present = "save")]
    pub to: Option<String>,
    /// Let the first receive roll the target back (zfs receive -F): it discards the
    /// target's snapshots after the newest one it shares with this restore, or replaces
    /// a target that has no snapshots. A target with snapshots of its own is never
    /// overwritten: restore into a new dataset.
    #[arg(long)]
    pub force: bool,
    /// Restore the newest restorable point even when the store records a newer backup
    /// that cannot be restored (missing, damaged, on a broken chain). Without it,
    /// --latest and --at refuse and name that backup.
    #[arg(long)]
    pub allow_older: bool,
    /// Mount the restored dataset (at the mountpoint it inherits; the stream's own
    /// mountpoint is never taken). By default it is received unmounted.
    #[arg(long)]
    pub mount: bool,
    /// Show what would be received; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Write the chosen backup's own stream (decompressed, checked) to FILE instead of
    /// receiving; `zfs receive` can read it later.
    #[arg(long, value_name = "FILE", conflicts_with = "to")]
    pub save: Option<PathBuf>,
    /// S3 settings.
    #[command(flatten)]
    pub s3: S3Flags,
}

fn dataset_arg(s: &str) -> Result<DatasetName, Failure> {
    s.parse::<DatasetName>()
        .with_context(|| format!("invalid dataset {s:?}"))
        .map_err(Failure::usage)
}

fn time_arg(flag: &str, s: &str) -> Result<DateTime<Utc>, Failure> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| {
            format!("invalid {flag} {s:?}; expected RFC 3339 such as 2026-11-23T15:00:00Z")
        })
        .map_err(Failure::usage)
}

fn catalog(store: &dyn BackupStore) -> Result<Catalog, Failure> {
    let (_, catalog) = read_catalog(store)?;
    Ok(catalog)
}

/// One backup done (or planned) by `zsnap backup` or `zsnap run`.
#[derive(Debug, Clone, Serialize)]
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
    /// What failed, with causes.
    pub errors: Vec<String>,
}

/// Called with every applied plan of a backup (for the audit log).
pub type Recorder<'a> = &'a mut dyn FnMut(&Phase);

/// Runs one backup request through `zsnap_exec::backup_job::back_up` on `backends`.
#[expect(
    clippy::too_many_arguments,
    reason = "one backup's inputs; a struct would only rename them"
)]
fn run_one(
    request: &BackupRequest,
    backends: &mut dyn Backends,
    store: &Arc<dyn BackupStore>,
    catalog: &Catalog,
    now: DateTime<Utc>,
    dry_run: bool,
    verify: bool,
    record: Recorder<'_>,
    observer: &mut dyn zsnap_exec::apply::Observer,
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
                record(&Phase::applied(
                    PhaseKind::Backup {
                        store: request.store.to_string(),
                    },
                    plan.clone(),
                    zsnap_exec::job::results(report),
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

fn render_results(
    req: &Request,
    results: &[BackupResult],
    out: &mut dyn Write,
) -> Result<(), Failure> {
    if req.json {
        output::json(out, &results)?;
        return Ok(());
    }
    let mut s = String::new();
    for r in results {
        let what = r.stream.as_deref().unwrap_or("(snapshot first)");
        if r.errors.is_empty() {
            if r.plan.iter().all(|p| p.steps.is_empty()) {
                s.push_str(&format!("{}: nothing to do\n", r.dataset));
            } else {
                s.push_str(&format!("{} → {}/{what}: ok\n", r.dataset, r.store));
            }
            if req.verbosity >= crate::request::Verbosity::Verbose(1)
                || r.plan.iter().any(|p| p.steps.is_empty())
            {
                for p in &r.plan {
                    s.push_str(&p.render());
                }
            }
        } else {
            s.push_str(&format!("{} → {}: FAILED\n", r.dataset, r.store));
            for e in &r.errors {
                s.push_str(&format!("  {e}\n"));
            }
        }
    }
    output::text(out, &s)?;
    Ok(())
}

fn status_of(results: &[BackupResult]) -> u8 {
    let failed = results
        .iter()
        .filter(|r| !r.ok && !r.errors.is_empty())
        .count();
    if failed == 0 {
        exit::OK
    } else if failed < results.len() {
        exit::PARTIAL
    } else {
        exit::ERROR
    }
}

/// `zsnap backup DATASET… --to STORE`.
///
/// # Errors
/// Bad arguments (usage), an unusable store, or a backend that cannot be opened.
pub fn backup(
    req: &Request,
    args: &BackupArgs,
    backends: &mut dyn Backends,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let config = optional_config(&req.config)?;
    let datasets = args
        .datasets
        .iter()
        .map(|d| dataset_arg(d))
        .collect::<Result<Vec<_>, _>>()?;
    let compression: Compression = args
        .compress
        .parse()
        .context("invalid --compress")
        .map_err(Failure::usage)?;
    let label: Label = args
        .label
        .parse()
        .context("invalid --label")
        .map_err(Failure::usage)?;
    let (url, store) = open(&args.to, &args.s3, config.as_ref())?;
    let catalog = catalog(&*store)?;
    // With a config, a backup takes the run lock and logs its changes like any run.
    let mut guards = optional_guards(req, config.as_ref(), args.dry_run)?;
    let mut audit_error: Option<anyhow::Error> = None;
    let now = req.now;
    let mut record = |phase: &Phase| {
        if let Some(a) = guards.as_mut().and_then(|g| g.audit.as_mut()) {
            if let Err(e) = a.record(now, "backup", phase) {
                audit_error.get_or_insert(e);
            }
        }
    };
    let mut progress = crate::output::Progress::new(req.verbosity);
    let mut results = Vec::new();
    for dataset in datasets {
        let since = args
            .since
            .as_deref()
            .map(|s| parse_since(&dataset, s))
            .transpose()
            .context("invalid --since")
            .map_err(Failure::usage)?;
        let snapshot = args
            .snapshot
            .as_deref()
            .map(|s| parse_since(&dataset, s).map_err(|e| anyhow!("invalid --snapshot: {e}")))
            .transpose()
            .map_err(Failure::usage)?;
        let request = BackupRequest::new(
            dataset.clone(),
            url.clone(),
            BackupMode::from_flags(since, args.auto_incremental),
        )
        .with_snapshot(snapshot)
        .with_label(label.clone())
        .with_compression(compression);
        let request = match config
            .as_ref()
            .and_then(|c| naming_for(c, &zsnap_core::config::Host::Local, &dataset))
        {
            Some(naming) => request.with_naming(naming),
            None => request,
        };
        results.push(run_one(
            &request,
            backends,
            &store,
            &catalog,
            req.now,
            args.dry_run,
            args.verify,
            &mut record,
            &mut progress,
        ));
    }
    if let Some(e) = audit_error {
        render_results(req, &results, out)?;
        return Err(Failure::from(
            e.context("the backups were made but could not all be logged"),
        ));
    }
    render_results(req, &results, out)?;
    Ok(status_of(&results))
}

/// What the scheduled backups of one `zsnap run` did (`backups` in its JSON).
#[derive(Debug, Clone, Serialize)]
pub struct ScheduledBackups {
    /// Per `[backups.NAME]` in the config.
    pub stores: Vec<ScheduledStore>,
    /// The text rendering.
    #[serde(skip)]
    pub text: String,
}

impl ScheduledBackups {
    /// Whether every backup and deletion succeeded.
    pub fn ok(&self) -> bool {
        self.stores
            .iter()
            .all(|s| s.error.is_none() && s.backups.iter().all(|b| b.errors.is_empty()))
    }
}

/// One deletion from a store tried by a run.
#[derive(Debug, Clone)]
pub struct DeletedObject {
    /// The key.
    pub key: String,
    /// Why.
    pub reason: String,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// One `[backups.NAME]` of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduledStore {
    /// The name.
    pub name: String,
    /// The store.
    pub store: String,
    /// The backups that were due.
    pub backups: Vec<BackupResult>,
    /// Keys deleted by the store's keep policy (or, in a dry run, that would be).
    pub pruned: Vec<String>,
    /// Every deletion tried (none in a dry run), for the audit log.
    #[serde(skip)]
    pub deleted: Vec<DeletedObject>,
    /// What stopped this entry (store unreachable, listing failed, a deletion failed).
    pub error: Option<String>,
}

/// The scheduled backups of `config` that are due at `now` (`zsnap run`): per
/// `[backups.NAME]`, every dataset its source selects, backed up when
/// [`backup_due`] says so; then the store's keep policy, if any. A store that fails
/// is reported and the others still run.
pub fn run_scheduled(
    config: &Config,
    backends: &mut dyn Backends,
    now: DateTime<Utc>,
    dry_run: bool,
    record: Recorder<'_>,
) -> ScheduledBackups {
    let mut open = |spec: &BackupSpec| -> anyhow::Result<Arc<dyn BackupStore>> {
        let settings = from_spec(spec)?;
        Ok(Arc::from(open_initialised(&spec.to, &settings)?.0))
    };
    run_scheduled_in(config, backends, now, dry_run, record, &mut open)
}

/// Opens the store of a `[backups.NAME]`.
pub type StoreOpener<'a> = &'a mut dyn FnMut(&BackupSpec) -> anyhow::Result<Arc<dyn BackupStore>>;

/// [`run_scheduled`] with the stores `open` gives (`zsnap simulate` keeps them in
/// memory).
pub fn run_scheduled_in(
    config: &Config,
    backends: &mut dyn Backends,
    now: DateTime<Utc>,
    dry_run: bool,
    record: Recorder<'_>,
    open: StoreOpener<'_>,
) -> ScheduledBackups {
    let mut all = ScheduledBackups {
        stores: Vec::new(),
        text: String::new(),
    };
    for (name, spec) in &config.backups {
        let mut one = ScheduledStore {
            name: name.clone(),
            store: spec.to.to_string(),
            backups: Vec::new(),
            pruned: Vec::new(),
            deleted: Vec::new(),
            error: None,
        };
        all.text
            .push_str(&format!("== backup {name} → {} ==\n", spec.to));
        let result = open(spec).and_then(|store| {
            scheduled_one(
                config, spec, &store, backends, now, dry_run, &mut one, record,
            )
        });
        if let Err(e) = result {
            one.error = Some(format!("{e:#}"));
        }
        for r in &one.backups {
            let what = r.stream.as_deref().unwrap_or("snapshot first");
            if r.errors.is_empty() {
                all.text.push_str(&format!("{}: {what}\n", r.dataset));
            } else {
                all.text.push_str(&format!("{}: FAILED\n", r.dataset));
                for e in &r.errors {
                    all.text.push_str(&format!("  {e}\n"));
                }
            }
        }
        if !one.pruned.is_empty() {
            let verb = if dry_run { "would delete" } else { "deleted" };
            all.text
                .push_str(&format!("prune: {verb} {} object(s)\n", one.pruned.len()));
        }
        if let Some(e) = &one.error {
            all.text.push_str(&format!("error: {e}\n"));
        }
        if one.backups.is_empty() && one.pruned.is_empty() && one.error.is_none() {
            all.text.push_str("nothing due\n");
        }
        all.stores.push(one);
    }
    all
}

#[expect(
    clippy::too_many_arguments,
    reason = "one scheduled backup's inputs; a struct would only rename them"
)]
fn scheduled_one(
    config: &Config,
    spec: &BackupSpec,
    store: &Arc<dyn BackupStore>,
    backends: &mut dyn Backends,
    now: DateTime<Utc>,
    dry_run: bool,
    one: &mut ScheduledStore,
    record: Recorder<'_>,
) -> anyhow::Result<()> {
    let entry = config
        .datasets
        .iter()
        .find(|d| d.root == spec.source)
        .ok_or_else(|| anyhow!("no [[datasets]] entry has the root {}", spec.source))?;
    let location = entry.host.location();
    let (_, catalog) = read_catalog(&**store)?;
    let backend = backends
        .backend(&location)
        .ok_or_else(|| anyhow!("no backend for {}", entry.host))?;
    let listed = backend
        .list(std::slice::from_ref(&entry.root))
        .with_context(|| format!("list {}", entry.root))?;
    let selected: Vec<DatasetName> = listed
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
            one.backups.push(run_one(
                &request,
                backends,
                store,
                &catalog,
                now,
                dry_run,
                spec.verify,
                &mut *record,
                &mut NoObserver,
            ));
        }
    }
    if let Some(policy) = spec.policy.as_ref().and_then(|p| config.policies.get(p)) {
        let (_, catalog) = read_catalog(&**store)?;
        let plan = plan_backup_prune(&catalog, &policy.retention_policy(), now, policy.timezone);
        if dry_run {
            one.pruned = plan.deletions.iter().map(|d| d.key.clone()).collect();
        } else {
            let mut tried = Vec::new();
            let done = delete_in_order(&**store, &plan.deletions, now, &mut |c, e| {
                tried.push(DeletedObject {
                    key: c.key.to_owned(),
                    reason: c.reason.to_owned(),
                    error: e.map(str::to_owned),
                });
            });
            one.deleted = tried;
            one.pruned = done.keys;
            if let Some(e) = done.error {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// One object of a store deleted (or not), as the audit log records it.
#[derive(Debug, Serialize)]
struct StoreChange<'a> {
    action: &'a str,
    store: &'a str,
    key: &'a str,
    reason: &'a str,
}

/// What [`delete_in_order`] did.
struct Deleted {
    /// The keys deleted.
    keys: Vec<String>,
    /// What stopped it.
    error: Option<anyhow::Error>,
}

impl Deleted {
    /// The exit status: 0 when all went, 3 when some went before a failure (the store
    /// changed), 1 when nothing went.
    fn status(&self) -> u8 {
        match (&self.error, self.keys.is_empty()) {
            (None, _) => exit::OK,
            (Some(_), false) => exit::PARTIAL,
            (Some(_), true) => exit::ERROR,
        }
    }
}

/// Deletes `deletions` in their order (safe to interrupt), stopping at the first
/// failure, and logs every deletion tried with `log` (key, reason, error).
fn delete_in_order(
    store: &dyn BackupStore,
    deletions: &[zsnap_core::backup::Deletion],
    now: DateTime<Utc>,
    log: &mut dyn FnMut(&StoreChange<'_>, Option<&str>),
) -> Deleted {
    let report = delete_objects(store, deletions, now);
    let url = store.url().to_string();
    for key in &report.deleted {
        let reason = deletions
            .iter()
            .find(|d| &d.key == key)
            .map_or("", |d| d.reason.as_str());
        let change = StoreChange {
            action: "delete",
            store: &url,
            key,
            reason,
        };
        log(&change, None);
    }
    let error = report.failed.map(|(key, e)| {
        let e = anyhow::Error::new(e);
        let reason = deletions
            .iter()
            .find(|d| d.key == key)
            .map_or("", |d| d.reason.as_str());
        let change = StoreChange {
            action: "delete",
            store: &url,
            key: &key,
            reason,
        };
        log(&change, Some(&error_chain(e.as_ref())));
        e.context(format!(
            "delete {key}; the deletions after it were left (the next prune finishes them)"
        ))
    });
    Deleted {
        keys: report.deleted,
        error,
    }
}

/// An audit logger for store changes of `command`, into `guards`' log (nothing in a
/// dry run or without a config); write errors are kept in `audit_error`.
fn change_logger<'a>(
    guards: &'a mut Option<crate::commands::RunGuards>,
    now: DateTime<Utc>,
    command: &'a str,
    phase: &'a str,
    audit_error: &'a mut Option<anyhow::Error>,
) -> impl FnMut(&StoreChange<'_>, Option<&str>) + 'a {
    move |change, error| {
        if let Some(a) = guards.as_mut().and_then(|g| g.audit.as_mut()) {
            let result = if error.is_some() { "failed" } else { "done" };
            if let Err(e) = a.record_change(now, command, phase, change, result, error) {
                audit_error.get_or_insert(e);
            }
        }
    }
}

/// Writes the audit lines of the store deletions of a `zsnap run`'s scheduled
/// backups (the backups themselves are logged as phases while they run).
///
/// # Errors
/// When the log cannot be written.
pub fn audit_scheduled(
    audit: &mut crate::audit::AuditLog,
    now: DateTime<Utc>,
    command: &str,
    backups: &ScheduledBackups,
) -> anyhow::Result<()> {
    for st in &backups.stores {
        let phase = format!("prune store {}", st.store);
        for d in &st.deleted {
            let change = StoreChange {
                action: "delete",
                store: &st.store,
                key: &d.key,
                reason: &d.reason,
            };
            let result = if d.error.is_some() { "failed" } else { "done" };
            audit.record_change(now, command, &phase, &change, result, d.error.as_deref())?;
        }
    }
    Ok(())
}

/// `--keep` as the README and `--help` write it: a calendar unit and a count may be
/// given without `=` (`daily 14` means `daily = 14`).
fn keep_rule_arg(rule: &str) -> Result<zsnap_core::retention::KeepRule, Failure> {
    const UNITS: [&str; 5] = ["hourly", "daily", "weekly", "monthly", "yearly"];
    let words: Vec<&str> = rule.split_whitespace().collect();
    let text = match words.as_slice() {
        [unit, n] if UNITS.contains(unit) && n.parse::<usize>().is_ok() => {
            format!("{unit} = {n}")
        }
        _ => rule.to_owned(),
    };
    text.parse()
        .context("invalid --keep")
        .map_err(Failure::usage)
}

/// What an interrupted prune or delete left, when it left something.
fn interrupted_note(catalog: &Catalog) -> Option<String> {
    (!catalog.orphan_sidecars.is_empty()).then(|| {
        format!(
            "{} sidecar(s) left by an interrupted prune or delete (their streams are gone); \
             the next `zsnap backups prune` (or run) finishes the deletion",
            catalog.orphan_sidecars.len()
        )
    })
}

/// A row of `zsnap backups list`.
#[derive(Debug, Serialize)]
struct ListRow<'a> {
    #[serde(flatten)]
    entry: &'a BackupEntry,
    dataset: &'a DatasetName,
    snapshot: &'a ShortName,
    created: DateTime<Utc>,
}

/// The lock, journal and audit log of a command run with a config; none without one
/// (a store named on the command line alone).
fn optional_guards(
    req: &Request,
    config: Option<&Config>,
    dry_run: bool,
) -> Result<Option<crate::commands::RunGuards>, Failure> {
    config
        .map(|c| crate::commands::guards(req, c, dry_run))
        .transpose()
}

/// `zsnap backups …`
///
/// # Errors
/// Bad arguments, an unusable store.
pub fn backups(req: &Request, cmd: &BackupsCmd, out: &mut dyn Write) -> Result<u8, Failure> {
    let config = optional_config(&req.config)?;
    match cmd {
        BackupsCmd::Init { store, s3 } => {
            let url: StoreUrl = store.parse().map_err(Failure::usage)?;
            let settings = s3_settings(&url, s3, config.as_ref()).map_err(Failure::usage)?;
            let done = init_store(&url, &settings, req.now)?;
            if req.json {
                #[derive(Serialize)]
                struct Initialised<'a> {
                    store: String,
                    created: bool,
                    marker: &'a zsnap_core::backup::StoreMarker,
                }
                output::json(
                    out,
                    &Initialised {
                        store: url.to_string(),
                        created: done.created,
                        marker: &done.marker,
                    },
                )?;
            } else if done.created {
                output::text(
                    out,
                    &format!("initialised the store {url} (id {})\n", done.marker.id),
                )?;
            } else {
                output::text(
                    out,
                    &format!(
                        "{url} is already a store (id {}, initialised {}); nothing changed\n",
                        done.marker.id,
                        done.marker.created.format("%Y-%m-%dT%H:%M:%SZ")
                    ),
                )?;
            }
            Ok(exit::OK)
        }
        BackupsCmd::List {
            from,
            dataset,
            since,
            until,
            s3,
        } => {
            let dataset = dataset.as_deref().map(dataset_arg).transpose()?;
            let since = since
                .as_deref()
                .map(|s| time_arg("--since", s))
                .transpose()?;
            let until = until
                .as_deref()
                .map(|s| time_arg("--until", s))
                .transpose()?;
            let (_, store) = open(from, s3, config.as_ref())?;
            let catalog = catalog(&*store)?;
            let mut rows = Vec::new();
            for (name, backups) in &catalog.datasets {
                if dataset.as_ref().is_some_and(|d| d != name) {
                    continue;
                }
                for e in &backups.entries {
                    let created = e.stream.created();
                    if since.is_some_and(|t| created < t) || until.is_some_and(|t| created > t) {
                        continue;
                    }
                    rows.push(ListRow {
                        entry: e,
                        dataset: name,
                        snapshot: e.stream.snapshot(),
                        created,
                    });
                }
            }
            if req.json {
                output::json(out, &rows)?;
                return Ok(exit::OK);
            }
            let mut table = vec![vec![
                "DATASET".to_owned(),
                "SNAPSHOT".to_owned(),
                "KIND".to_owned(),
                "SIZE".to_owned(),
                "STATE".to_owned(),
                "RESTORE".to_owned(),
                "ID".to_owned(),
            ]];
            for r in &rows {
                let e = r.entry;
                let kind = match e.stream.parent() {
                    None => "full".to_owned(),
                    Some(p) => format!("inc from {p}"),
                };
                let state = match &e.state {
                    EntryState::Complete => "complete".to_owned(),
                    EntryState::Unfinished => "UNFINISHED".to_owned(),
                    EntryState::Damaged { problem } => format!("DAMAGED: {problem}"),
                    EntryState::Missing => "MISSING: stream gone, sidecar left".to_owned(),
                    _ => "?".to_owned(),
                };
                let restore = match (&e.link, e.chain_len) {
                    (Some(Link::Full), _) => "full".to_owned(),
                    (Some(Link::Parent { .. }), Some(n)) => format!("{n} streams"),
                    (Some(Link::Broken { parent, .. }), _) => format!("BROKEN (no {parent})"),
                    _ => "-".to_owned(),
                };
                table.push(vec![
                    r.dataset.to_string(),
                    r.snapshot.to_string(),
                    kind,
                    e.size.to_string(),
                    state,
                    restore,
                    e.id.to_string(),
                ]);
            }
            let mut text = output::table(&table);
            if let Some(n) = interrupted_note(&catalog) {
                text.push_str(&format!("note: {n}\n"));
            }
            output::text(out, &text)?;
            Ok(exit::OK)
        }
        BackupsCmd::Verify { from, dataset, s3 } => {
            let dataset = dataset.as_deref().map(dataset_arg).transpose()?;
            let (_, store) = open(from, s3, config.as_ref())?;
            let catalog = catalog(&*store)?;
            let mut problems = Vec::new();
            let mut checked = 0usize;
            let mut bytes = 0u64;
            for (name, backups) in &catalog.datasets {
                if dataset.as_ref().is_some_and(|d| d != name) {
                    continue;
                }
                for e in &backups.entries {
                    match &e.state {
                        EntryState::Complete => match verify_entry(&*store, e) {
                            Ok(n) => {
                                checked += 1;
                                bytes += n;
                            }
                            Err(err) => problems.push(error_chain(&err)),
                        },
                        EntryState::Unfinished => {
                            problems.push(format!("{}: unfinished (no sidecar)", e.id));
                        }
                        EntryState::Damaged { problem } => {
                            problems.push(format!("{}: damaged: {problem}", e.id));
                        }
                        EntryState::Missing => {
                            problems.push(format!(
                                "{}: MISSING: its sidecar is in the store but its stream is gone",
                                e.id
                            ));
                        }
                        _ => {}
                    }
                    if let Some(Link::Broken { parent, guid }) = &e.link {
                        problems.push(format!(
                            "{}: broken chain: no restorable backup of its parent {parent} (guid {guid})",
                            e.id
                        ));
                    }
                }
            }
            let notes = interrupted_note(&catalog).into_iter().collect::<Vec<_>>();
            #[derive(Serialize)]
            struct Verified<'a> {
                checked: usize,
                bytes: u64,
                problems: &'a [String],
                notes: &'a [String],
            }
            if req.json {
                output::json(
                    out,
                    &Verified {
                        checked,
                        bytes,
                        problems: &problems,
                        notes: &notes,
                    },
                )?;
            } else {
                let mut s = format!("{checked} backup(s) checked, {bytes} bytes read\n");
                for p in &problems {
                    s.push_str(&format!("PROBLEM: {p}\n"));
                }
                for n in &notes {
                    s.push_str(&format!("note: {n}\n"));
                }
                if problems.is_empty() {
                    s.push_str("every backup matches its sidecar and every chain is whole\n");
                }
                output::text(out, &s)?;
            }
            Ok(if problems.is_empty() {
                exit::OK
            } else {
                exit::ERROR
            })
        }
        BackupsCmd::Delete {
            from,
            id,
            with_dependents,
            dry_run,
            s3,
        } => {
            let id: BackupId = id
                .parse()
                .with_context(|| format!("invalid backup id {id:?}"))
                .map_err(Failure::usage)?;
            let (_, store) = open(from, s3, config.as_ref())?;
            let catalog = catalog(&*store)?;
            let plan = catalog
                .plan_delete(&id, *with_dependents)
                .map_err(|e| Failure::usage(anyhow::Error::new(e)))?;
            let mut s = String::new();
            for d in &plan.deletions {
                s.push_str(&format!("delete {} ({})\n", d.key, d.reason));
            }
            let mut guards = optional_guards(req, config.as_ref(), *dry_run)?;
            let mut audit_error = None;
            let done = if *dry_run {
                None
            } else {
                let mut log = change_logger(
                    &mut guards,
                    req.now,
                    "backups delete",
                    "delete",
                    &mut audit_error,
                );
                Some(delete_in_order(&*store, &plan.deletions, req.now, &mut log))
            };
            if req.json {
                output::json(
                    out,
                    &plan.deletions.iter().map(|d| &d.key).collect::<Vec<_>>(),
                )?;
            } else {
                output::text(out, &s)?;
            }
            finish_deletions(done, audit_error)
        }
        BackupsCmd::Prune {
            from,
            keep,
            dry_run,
            s3,
        } => {
            let rules = keep
                .iter()
                .map(|r| keep_rule_arg(r))
                .collect::<Result<Vec<_>, _>>()?;
            let (_, store) = open(from, s3, config.as_ref())?;
            let catalog = catalog(&*store)?;
            let plan = plan_backup_prune(
                &catalog,
                &RetentionPolicy::new(rules),
                req.now,
                chrono_tz::UTC,
            );
            let mut guards = optional_guards(req, config.as_ref(), *dry_run)?;
            let mut audit_error = None;
            let done = if *dry_run {
                None
            } else {
                let mut log = change_logger(
                    &mut guards,
                    req.now,
                    "backups prune",
                    "prune",
                    &mut audit_error,
                );
                Some(delete_in_order(&*store, &plan.deletions, req.now, &mut log))
            };
            if req.json {
                output::json(out, &plan)?;
            } else {
                let mut s = String::new();
                for n in &plan.notes {
                    s.push_str(&format!("note: {}\n", n.message));
                }
                for d in &plan.deletions {
                    s.push_str(&format!("delete {} ({})\n", d.key, d.reason));
                }
                if plan.deletions.is_empty() {
                    s.push_str("nothing to delete\n");
                }
                output::text(out, &s)?;
            }
            finish_deletions(done, audit_error)
        }
    }
}

/// The exit status of a deleting command, or its error: deletions that stopped
/// half-way changed the store (exit 3, [`exit::PARTIAL`]); a failure before any
/// deletion changed nothing (exit 1).
fn finish_deletions(
    done: Option<Deleted>,
    audit_error: Option<anyhow::Error>,
) -> Result<u8, Failure> {
    let Some(done) = done else {
        return Ok(exit::OK);
    };
    let status = done.status();
    if let Some(e) = done.error {
        let e = if status == exit::PARTIAL {
            e.context(format!(
                "{} object(s) were deleted before this failure",
                done.keys.len()
            ))
        } else {
            e
        };
        return Err(Failure::from(e).with_status(status));
    }
    if let Some(e) = audit_error {
        return Err(Failure::from(
            e.context("the objects were deleted but could not all be logged"),
        )
        .with_status(exit::PARTIAL));
    }
    Ok(status)
}

/// `zsnap restore`.
///
/// # Errors
/// Bad arguments, an unusable store, a refused or failed restore.
pub fn restore_cmd(
    req: &Request,
    args: &RestoreArgs,
    backends: &mut dyn Backends,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let config = optional_config(&req.config)?;
    let dataset = dataset_arg(&args.dataset)?;
    let point = match (&args.at, &args.snapshot) {
        (Some(at), _) => RestoreTarget::At(time_arg("--at", at)?),
        (None, Some(s)) => RestoreTarget::Snapshot(
            parse_since(&dataset, s)
                .map_err(|e| Failure::usage(anyhow!("invalid --snapshot: {e}")))?,
        ),
        (None, None) => RestoreTarget::Latest,
    };
    let (_, store) = open(&args.from, &args.s3, config.as_ref())?;
    let catalog = catalog(&*store)?;
    if let Some(path) = &args.save {
        let chain =
            zsnap_core::backup::resolve_restore_with(&catalog, &dataset, &point, args.allow_older)
                .map_err(|e| Failure::from(anyhow::Error::new(e)))?;
        if args.dry_run {
            let entry = chain.last().expect("a resolved chain is not empty");
            output::text(
                out,
                &format!("would save {} as {}\n", entry.id, path.display()),
            )?;
            return Ok(exit::OK);
        }
        let entry = chain.last().expect("a resolved chain is not empty");
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("create a temporary file in {}", dir.display()))?;
        let n = save_entry(&*store, entry, tmp.as_file_mut(), &mut |_| {})
            .map_err(|e| Failure::from(anyhow::Error::new(e)))?;
        tmp.as_file().sync_all().context("sync the saved stream")?;
        tmp.persist(path)
            .with_context(|| format!("save the stream as {}", path.display()))?;
        let needs = chain.len() - 1;
        output::text(
            out,
            &format!(
                "saved {} ({n} bytes) as {}{}\n",
                entry.id,
                path.display(),
                if needs == 0 {
                    String::new()
                } else {
                    format!("; it is an incremental: receive the {needs} stream(s) before it first")
                }
            ),
        )?;
        return Ok(exit::OK);
    }
    let to = args
        .to
        .as_deref()
        .expect("clap requires --to without --save");
    // `pool/path` on --backend's host, or `ssh://[user@]host[:port]/pool/path`.
    let address: zsnap_core::config::TargetAddress = to
        .parse()
        .with_context(|| format!("invalid --to {to:?}"))
        .map_err(Failure::usage)?;
    let zsnap_core::config::TargetAddress::Dataset {
        host,
        dataset: target,
    } = address
    else {
        return Err(Failure::usage(anyhow!(
            "invalid --to {to:?}: not a dataset"
        )));
    };
    let mut remote;
    let backend: &mut dyn zsnap_exec::ZfsBackend = match &host {
        zsnap_core::config::Host::Local => {
            let Some(b) = backends.backend(&zsnap_core::Location::local()) else {
                return Err(Failure::from(anyhow!("no backend for the local host")));
            };
            b
        }
        other => {
            // The config's [paths] (ssh, remote zfs, ssh_config), or their defaults.
            let paths = config.as_ref().map(|c| c.paths.clone()).unwrap_or_default();
            remote = crate::backends::backend_for(other, &paths)?;
            &mut remote
        }
    };
    let mut guards = optional_guards(req, config.as_ref(), args.dry_run)?;
    let options = RestoreOptions::default()
        .with_force(args.force)
        .with_allow_older(args.allow_older)
        .with_mount(args.mount)
        .with_dry_run(args.dry_run);
    let mut progress = crate::output::RestoreProgress::new(req.verbosity);
    let run = restore(
        &*store,
        &catalog,
        &dataset,
        &point,
        &target,
        backend,
        &options,
        &mut |index, total, bytes| progress.update(index, total, bytes),
    );
    drop(progress);
    let mut audit_error = None;
    {
        let url = store.url().to_string();
        let target_text = target.to_string();
        #[derive(Serialize)]
        struct Received<'a> {
            action: &'a str,
            store: &'a str,
            key: &'a str,
            target: &'a str,
        }
        if let Some(a) = guards_audit(&mut guards) {
            let received: Vec<String> = match &run {
                Ok(r) if !args.dry_run => r.received.clone(),
                _ => Vec::new(),
            };
            for key in &received {
                let change = Received {
                    action: "receive",
                    store: &url,
                    key,
                    target: &target_text,
                };
                if let Err(e) =
                    a.record_change(req.now, "restore", "restore", &change, "done", None)
                {
                    audit_error.get_or_insert(e);
                }
            }
            if let Err(e) = &run {
                let change = Received {
                    action: "receive",
                    store: &url,
                    key: "",
                    target: &target_text,
                };
                let msg = error_chain(e);
                if let Err(e) =
                    a.record_change(req.now, "restore", "restore", &change, "failed", Some(&msg))
                {
                    audit_error.get_or_insert(e);
                }
            }
        }
    }
    let run = match run {
        Ok(run) => run,
        Err(e) => {
            // Streams received before the failure changed the target: exit 3.
            let changed = matches!(
                &e,
                RestoreRunError::Receive { received, .. }
                    | RestoreRunError::Damaged { received, .. } if *received > 0
            ) || matches!(e, RestoreRunError::Arrived { .. });
            let f = Failure::from(anyhow::Error::new(e));
            return Err(if changed {
                f.with_status(exit::PARTIAL)
            } else {
                f
            });
        }
    };
    if req.json {
        #[derive(Serialize)]
        struct Restored<'a> {
            plan: &'a zsnap_core::backup::RestorePlan,
            received: &'a [String],
            bytes: u64,
            dry_run: bool,
            mounted: bool,
        }
        output::json(
            out,
            &Restored {
                plan: &run.plan,
                received: &run.received,
                bytes: run.bytes,
                dry_run: args.dry_run,
                mounted: !run.unmounted,
            },
        )?;
    } else {
        let mut s = String::new();
        for n in &run.plan.notes {
            s.push_str(&format!("{n}\n"));
        }
        let point = run
            .plan
            .chain
            .last()
            .map(|e| e.stream.snapshot().to_string())
            .unwrap_or_default();
        if args.dry_run {
            for e in run.plan.remaining() {
                s.push_str(&format!("would receive {}\n", e.id));
            }
            s.push_str(&format!(
                "{target} would be at {point} ({} stream(s) to receive); nothing was changed\n",
                run.plan.remaining().len()
            ));
        } else {
            for k in &run.received {
                s.push_str(&format!("received {k}\n"));
            }
            s.push_str(&format!(
                "{target} is at {point} ({} stream(s), {} bytes received)\n",
                run.received.len(),
                run.bytes
            ));
            if run.unmounted && !run.received.is_empty() {
                s.push_str(&format!(
                    "{target} is not mounted (received with -u); mount it with: zfs mount {target}\n"
                ));
            }
        }
        output::text(out, &s)?;
    }
    if let Some(e) = audit_error {
        return Err(
            Failure::from(e.context("the restore was made but could not be logged"))
                .with_status(exit::PARTIAL),
        );
    }
    Ok(exit::OK)
}

/// The audit log of `guards`, if any.
fn guards_audit(
    guards: &mut Option<crate::commands::RunGuards>,
) -> Option<&mut crate::audit::AuditLog> {
    guards.as_mut().and_then(|g| g.audit.as_mut())
}

/// The `[backups.NAME]` part of `zsnap status`: each store opened with its settings
/// and its catalog read, for [`zsnap_exec::status::backup_status`].
pub fn backup_status(
    config: &Config,
    invs: &std::collections::BTreeMap<zsnap_core::Location, zsnap_core::Inventory>,
    now: DateTime<Utc>,
) -> Vec<zsnap_exec::status::BackupStatus> {
    zsnap_exec::status::backup_status(config, invs, now, &mut |_, spec| {
        from_spec(spec)
            .and_then(|s| Ok(open_initialised(&spec.to, &s)?.0))
            .and_then(|store| Ok(read_catalog(&*store)?.1))
            .map_err(|e| format!("{e:#}"))
    })
}
