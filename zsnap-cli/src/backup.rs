//! `zsnap backup`, `zsnap backups …`, `zsnap restore`, and the scheduled backups of
//! `zsnap run`: each command's session and exit status, and rendering what the
//! library did
//! ([`zsnap_exec::backup_job`], [`zsnap_exec::store_ops`], [`zsnap_exec::backup`],
//! [`zsnap_exec::scheduled`]).

use std::io::Write;
use std::sync::Arc;

use serde::Serialize;
use zsnap_core::backup::{plan_backup_prune, Catalog, EntryState, Link};
use zsnap_core::config::Config;
use zsnap_exec::apply::Backends;
use zsnap_exec::backup::{restore, RestoreOptions};
use zsnap_exec::backup_job::{back_up_all, BackupResult};
use zsnap_exec::connect::with_backend_at;
use zsnap_exec::failure::error_chain;
use zsnap_exec::job::Phase;
use zsnap_exec::scheduled::ScheduledBackups;
use zsnap_exec::store::{init_store, BackupStore};
use zsnap_exec::store_ops::{
    delete_logged, interrupted_note, list_backups, open_catalog, save_point, store_settings,
    verify_store, ListedBackup, LoggedDeletions, OpenCatalogError,
};

use crate::exit;
use crate::failure::Failure;
use crate::guards::{audit_of, optional_session};
use crate::load::optional_config;
use crate::output;
use crate::request::{
    BackupCommand, BackupsCommand, Request, RestoreCommand, RestoreTo, StoreArg, Verbosity,
};

/// Opens an initialised store (see `zsnap backups init`) and reads its catalog
/// ([`open_catalog`]).
///
/// # Errors
/// Unusable S3 settings (usage), a store that cannot be opened, one without its marker
/// (with the `init` command as the hint), or a catalog that cannot be read.
pub fn open(
    store: &StoreArg,
    config: Option<&Config>,
) -> Result<(Arc<dyn BackupStore>, Catalog), Failure> {
    open_catalog(&store.url, &store.s3, config).map_err(|e| match e {
        OpenCatalogError::Settings(_) => Failure::usage(e),
        e if e.not_initialised() => Failure::from(e).with_hint(format!(
            "a new store is made once with: zsnap backups init {}",
            store.url
        )),
        e => Failure::from(e),
    })
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
/// An unusable store or config.
pub fn backup(
    req: &Request,
    cmd: &BackupCommand,
    backends: &mut dyn Backends,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let config = optional_config(&req.config)?;
    let (store, catalog) = open(&cmd.store, config.as_ref())?;
    // With a config, a backup takes the run lock and logs its changes like any run.
    let mut session = optional_session(req, config.as_ref(), cmd.dry_run)?;
    let mut audit_error: Option<anyhow::Error> = None;
    let now = req.now;
    let mut record = |phase: &Phase| {
        if let Some(a) = audit_of(&mut session) {
            if let Err(e) = a.record(now, "backup", phase) {
                audit_error.get_or_insert(e.into());
            }
        }
    };
    let mut progress = crate::output::Progress::new(req.verbosity);
    let results = back_up_all(
        &cmd.requests,
        config.as_ref(),
        backends,
        &store,
        &catalog,
        now,
        cmd.dry_run,
        cmd.verify,
        &mut record,
        &mut progress,
    );
    render_results(req, &results, out)?;
    if let Some(e) = audit_error {
        return Err(Failure::from(
            e.context("the backups were made but could not all be logged"),
        ));
    }
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

/// `zsnap backups …`
///
/// # Errors
/// An unusable store or config, a refused deletion.
pub fn backups(req: &Request, cmd: &BackupsCommand, out: &mut dyn Write) -> Result<u8, Failure> {
    let config = optional_config(&req.config)?;
    match cmd {
        BackupsCommand::Init(store) => {
            let url = &store.url;
            let settings =
                store_settings(url, &store.s3, config.as_ref()).map_err(Failure::usage)?;
            let done = init_store(url, &settings, req.now)?;
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
        BackupsCommand::List { store, filter } => {
            let (_, catalog) = open(store, config.as_ref())?;
            let rows = list_backups(&catalog, filter);
            if req.json {
                output::json(out, &rows)?;
            } else {
                output::text(out, &render_list(&rows, &catalog))?;
            }
            Ok(exit::OK)
        }
        BackupsCommand::Verify { store, dataset } => {
            let (store, catalog) = open(store, config.as_ref())?;
            let v = verify_store(&*store, &catalog, dataset.as_ref());
            if req.json {
                output::json(out, &v)?;
            } else {
                let mut s = format!("{} backup(s) checked, {} bytes read\n", v.checked, v.bytes);
                for p in &v.problems {
                    s.push_str(&format!("PROBLEM: {}\n", error_chain(p)));
                }
                for n in &v.notes {
                    s.push_str(&format!("note: {n}\n"));
                }
                if v.ok() {
                    s.push_str("every backup matches its sidecar and every chain is whole\n");
                }
                output::text(out, &s)?;
            }
            Ok(if v.ok() { exit::OK } else { exit::ERROR })
        }
        BackupsCommand::Delete {
            store,
            id,
            with_dependents,
            dry_run,
        } => {
            let (store, catalog) = open(store, config.as_ref())?;
            let plan = catalog
                .plan_delete(id, *with_dependents)
                .map_err(|e| Failure::usage(anyhow::Error::new(e)))?;
            let done = delete_in_session(
                req,
                config.as_ref(),
                &*store,
                &plan.deletions,
                *dry_run,
                ("backups delete", "delete"),
            )?;
            if req.json {
                output::json(
                    out,
                    &plan.deletions.iter().map(|d| &d.key).collect::<Vec<_>>(),
                )?;
            } else {
                let mut s = String::new();
                for d in &plan.deletions {
                    s.push_str(&format!("delete {} ({})\n", d.key, d.reason));
                }
                output::text(out, &s)?;
            }
            finish_deletions(done)
        }
        BackupsCommand::Prune {
            store,
            keep,
            dry_run,
        } => {
            let (store, catalog) = open(store, config.as_ref())?;
            let plan = plan_backup_prune(&catalog, keep, req.now, chrono_tz::UTC);
            let done = delete_in_session(
                req,
                config.as_ref(),
                &*store,
                &plan.deletions,
                *dry_run,
                ("backups prune", "prune"),
            )?;
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
            finish_deletions(done)
        }
    }
}

/// The table of `zsnap backups list`.
fn render_list(rows: &[ListedBackup<'_>], catalog: &Catalog) -> String {
    let mut table = vec![vec![
        "DATASET".to_owned(),
        "SNAPSHOT".to_owned(),
        "KIND".to_owned(),
        "SIZE".to_owned(),
        "STATE".to_owned(),
        "RESTORE".to_owned(),
        "ID".to_owned(),
    ]];
    for r in rows {
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
    if let Some(n) = interrupted_note(catalog) {
        text.push_str(&format!("note: {n}\n"));
    }
    text
}

/// What a deleting command did: the deletions, their exit status (0 when all went, 3
/// when some went before a failure, 1 when nothing went), and why their audit lines
/// could not be written (none in a dry run).
type Deleted = Option<(LoggedDeletions, u8)>;

/// Deletes `deletions` unless `dry_run` ([`delete_logged`]), in the config's session.
///
/// # Errors
/// The lock is held, or the session cannot be opened.
fn delete_in_session(
    req: &Request,
    config: Option<&Config>,
    store: &dyn BackupStore,
    deletions: &[zsnap_core::backup::Deletion],
    dry_run: bool,
    what: (&str, &str),
) -> Result<Deleted, Failure> {
    let mut session = optional_session(req, config, dry_run)?;
    if dry_run {
        return Ok(None);
    }
    let done = delete_logged(store, deletions, req.now, audit_of(&mut session), what);
    let status = match (&done.done.error, done.done.deleted().is_empty()) {
        (None, _) => exit::OK,
        (Some(_), false) => exit::PARTIAL,
        (Some(_), true) => exit::ERROR,
    };
    Ok(Some((done, status)))
}

/// The exit status of a deleting command, or its error: deletions that stopped
/// half-way changed the store (exit 3, [`exit::PARTIAL`]); a failure before any
/// deletion changed nothing (exit 1).
fn finish_deletions(done: Deleted) -> Result<u8, Failure> {
    let Some((LoggedDeletions { done, unlogged, .. }, status)) = done else {
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
    if let Some(e) = unlogged {
        return Err(Failure::from(
            anyhow::Error::new(e).context("the objects were deleted but could not all be logged"),
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
    cmd: &RestoreCommand,
    backends: &mut dyn Backends,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let config = optional_config(&req.config)?;
    let dataset = &cmd.dataset;
    let (store, catalog) = open(&cmd.store, config.as_ref())?;
    let (host, target) = match &cmd.to {
        RestoreTo::Save(path) => {
            let saved = save_point(
                &*store,
                &catalog,
                dataset,
                &cmd.point,
                cmd.allow_older,
                path,
                cmd.dry_run,
            )?;
            let text = match saved.bytes {
                None => format!("would save {} as {}\n", saved.id, path.display()),
                Some(n) => format!(
                    "saved {} ({n} bytes) as {}{}\n",
                    saved.id,
                    path.display(),
                    match saved.earlier {
                        0 => String::new(),
                        needs => format!(
                            "; it is an incremental: receive the {needs} stream(s) before it first"
                        ),
                    }
                ),
            };
            output::text(out, &text)?;
            return Ok(exit::OK);
        }
        RestoreTo::Dataset { host, dataset } => (host, dataset),
    };
    let mut session = optional_session(req, config.as_ref(), cmd.dry_run)?;
    let options = RestoreOptions::default()
        .with_force(cmd.force)
        .with_allow_older(cmd.allow_older)
        .with_mount(cmd.mount)
        .with_dry_run(cmd.dry_run);
    let mut progress = crate::output::RestoreProgress::new(req.verbosity);
    // The config's [paths] (ssh, remote zfs, ssh_config), or their defaults.
    let paths = config.as_ref().map(|c| c.paths.clone()).unwrap_or_default();
    let run = with_backend_at(host, &paths, backends, |backend| {
        restore(
            &*store,
            &catalog,
            dataset,
            &cmd.point,
            target,
            backend,
            &options,
            &mut |index, total, bytes| progress.update(index, total, bytes),
        )
        .map_err(Box::new)
    })?
    .map_err(|e| *e);
    drop(progress);
    let audit_error = audit_of(&mut session).and_then(|a| {
        a.record_restore(
            req.now,
            "restore",
            &store.url().to_string(),
            &target.to_string(),
            &run,
            cmd.dry_run,
        )
        .err()
    });
    let run = match run {
        Ok(run) => run,
        Err(e) => {
            // Streams received before the failure changed the target: exit 3.
            let status = if e.changed_target() {
                exit::PARTIAL
            } else {
                exit::ERROR
            };
            return Err(Failure::from(anyhow::Error::new(e)).with_status(status));
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
                dry_run: cmd.dry_run,
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
        if cmd.dry_run {
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
        return Err(Failure::from(
            anyhow::Error::new(e).context("the restore was made but could not be logged"),
        )
        .with_status(exit::PARTIAL));
    }
    Ok(exit::OK)
}
