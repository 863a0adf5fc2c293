//! `zsnap backup`, `zsnap backups …`, `zsnap restore`, and the scheduled backups of
//! `zsnap run`: wiring of `zsnap_exec::backup` and rendering.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use chrono::{DateTime, Utc};
use serde::Serialize;
use zsnap_core::backup::{
    parse_since, plan_backup_prune, BackupEntry, BackupId, BackupMode, BackupRequest, Catalog,
    Compression, EntryState, Link, RestoreTarget, StoreUrl,
};
use zsnap_core::config::Config;
use zsnap_core::naming::Label;
use zsnap_core::retention::RetentionPolicy;
use zsnap_core::{DatasetName, ShortName};
use zsnap_exec::apply::Backends;
use zsnap_exec::backup::{
    delete_in_order, restore, save_entry, verify_entry, Deletions, RestoreOptions, RestoreRunError,
};
use zsnap_exec::backup_job::{back_up_reported, BackupResult};
use zsnap_exec::failure::error_chain;
use zsnap_exec::job::Phase;
use zsnap_exec::scheduled::{naming_for, ScheduledBackups};
use zsnap_exec::store::{
    init_store, open_initialised, read_catalog, read_spec_catalog, settings_for_url, BackupStore,
    OpenStoreProblem, S3Settings, SpecSettingsError,
};

use crate::args::{BackupArgs, BackupsCmd, RestoreArgs, S3Flags};
use crate::audit::AuditLog;
use crate::exit;
use crate::failure::Failure;
use crate::guards::{guards_audit, optional_guards, RunGuards};
use crate::load::optional_config;
use crate::output;
use crate::request::{Request, Verbosity};

/// The S3 settings for `url`: the flags, else the config's `[backups.NAME]` with this
/// store, else the environment (object_store reads `AWS_*` for anything unset).
///
/// # Errors
/// An unreadable secret key file.
pub fn s3_settings(
    url: &StoreUrl,
    flags: &S3Flags,
    config: Option<&Config>,
) -> Result<S3Settings, SpecSettingsError> {
    let mut s = settings_for_url(url, config)?;
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
            if req.verbosity >= Verbosity::Verbose(1) || r.plan.iter().any(|p| p.steps.is_empty()) {
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
        results.push(back_up_reported(
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

/// The text of the scheduled backups of a `zsnap run`: per `[backups.NAME]`, each
/// backup, what its keep policy deleted, and what stopped it.
pub fn render_scheduled(backups: &ScheduledBackups) -> String {
    let mut text = String::new();
    for one in &backups.stores {
        text.push_str(&format!("== backup {} → {} ==\n", one.name, one.store));
        for r in &one.backups {
            let what = r.stream.as_deref().unwrap_or("snapshot first");
            if r.errors.is_empty() {
                text.push_str(&format!("{}: {what}\n", r.dataset));
            } else {
                text.push_str(&format!("{}: FAILED\n", r.dataset));
                for e in &r.errors {
                    text.push_str(&format!("  {e}\n"));
                }
            }
        }
        if !one.pruned.is_empty() {
            let verb = if backups.dry_run {
                "would delete"
            } else {
                "deleted"
            };
            text.push_str(&format!("prune: {verb} {} object(s)\n", one.pruned.len()));
        }
        if let Some(e) = &one.error {
            text.push_str(&format!("error: {}\n", error_chain(e)));
        }
        if one.backups.is_empty() && one.pruned.is_empty() && one.error.is_none() {
            text.push_str("nothing due\n");
        }
    }
    text
}

/// One object of a store deleted (or not), as the audit log records it.
#[derive(Debug, Serialize)]
struct StoreChange<'a> {
    action: &'a str,
    store: &'a str,
    key: &'a str,
    reason: &'a str,
}

/// Audits the deletions `done` tried with `log`, and gives its exit status: 0 when
/// all went, 3 when some went before a failure (the store changed), 1 when nothing
/// went.
fn audit_deletions(
    store: &dyn BackupStore,
    done: &Deletions,
    log: &mut dyn FnMut(&StoreChange<'_>, Option<&str>),
) -> u8 {
    let url = store.url().to_string();
    for d in &done.tried {
        let change = StoreChange {
            action: "delete",
            store: &url,
            key: &d.key,
            reason: &d.reason,
        };
        log(&change, d.error.as_deref());
    }
    match (&done.error, done.deleted().is_empty()) {
        (None, _) => exit::OK,
        (Some(_), false) => exit::PARTIAL,
        (Some(_), true) => exit::ERROR,
    }
}

/// An audit logger for store changes of `command`, into `guards`' log (nothing in a
/// dry run or without a config); write errors are kept in `audit_error`.
fn change_logger<'a>(
    guards: &'a mut Option<RunGuards>,
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
    audit: &mut AuditLog,
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
                let done = delete_in_order(&*store, &plan.deletions, req.now);
                let status = audit_deletions(&*store, &done, &mut log);
                Some((done, status))
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
                let done = delete_in_order(&*store, &plan.deletions, req.now);
                let status = audit_deletions(&*store, &done, &mut log);
                Some((done, status))
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
    done: Option<(Deletions, u8)>,
    audit_error: Option<anyhow::Error>,
) -> Result<u8, Failure> {
    let Some((done, status)) = done else {
        return Ok(exit::OK);
    };
    let deleted = done.deleted().len();
    if let Some(e) = done.error {
        let e = anyhow::Error::new(e);
        let e = if status == exit::PARTIAL {
            e.context(format!(
                "{deleted} object(s) were deleted before this failure"
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
            remote = zsnap_exec::connect::connect(other, &paths)?;
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

/// The `[backups.NAME]` part of `zsnap status`: each store opened with its settings
/// and its catalog read ([`read_spec_catalog`]), for
/// [`zsnap_exec::status::backup_status`].
pub fn backup_status(
    config: &Config,
    invs: &std::collections::BTreeMap<zsnap_core::Location, zsnap_core::Inventory>,
    now: DateTime<Utc>,
) -> Vec<zsnap_exec::status::BackupStatus> {
    zsnap_exec::status::backup_status(config, invs, now, &mut |_, spec| {
        read_spec_catalog(spec).map_err(|e| error_chain(&e))
    })
}
