//! One function per command. Each returns the exit status or a [`Failure`].

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use zsnap_core::config::{import_sanoid, Config, Host};
use zsnap_core::{list_argv, parse_list, Inventory};
use zsnap_exec::apply::OneBackend;
use zsnap_exec::journal::Journal;
use zsnap_exec::lock::{Lock, LockError};

use crate::audit::AuditLog;
use crate::backends::{load_fake, real_backends};
use crate::engine::{Engine, Hooks, Outcome, Phase, Source};
use crate::exit;
use crate::failure::Failure;
use crate::output::{self, Progress};
use crate::request::{BackendSpec, Command, Job, Request, Verbosity};

/// Runs the request, writing results to `out`.
///
/// # Errors
/// The command's failure, with its exit status.
pub fn execute(req: &Request, out: &mut dyn Write) -> Result<u8, Failure> {
    match &req.command {
        Command::Completions(shell) => {
            let mut cmd = crate::args::command();
            clap_complete::generate(*shell, &mut cmd, "zsnap", out);
            Ok(exit::OK)
        }
        Command::Man => {
            clap_mangen::Man::new(crate::args::command())
                .render(out)
                .context("write the man page")?;
            Ok(exit::OK)
        }
        Command::ImportSanoid { file } => import(req, file, out),
        Command::ConfigCheck => {
            let config = load_config(&req.config)?;
            if req.json {
                output::json(out, &config)?;
            } else {
                output::text(
                    out,
                    &format!(
                        "# {} is valid; the effective config:\n\n",
                        req.config.display()
                    ),
                )?;
                output::text(out, &config.to_toml())?;
            }
            Ok(exit::OK)
        }
        Command::PrintListCommand => {
            let config = load_config(&req.config)?;
            let engine = Engine::new(&config);
            let roots = engine
                .roots()
                .remove(&zsnap_core::Location::local())
                .unwrap_or_default();
            let mut words = vec!["zfs".to_owned()];
            words.extend(list_argv(&roots));
            let line: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
            output::text(out, &format!("{}\n", line.join(" ")))?;
            Ok(exit::OK)
        }
        Command::Job { job, dry_run } => {
            let config = load_config(&req.config)?;
            run_job(req, &config, job, *dry_run, out)
        }
        Command::Status => {
            let config = load_config(&req.config)?;
            crate::status::status(req, &config, out)
        }
        Command::Check => {
            let config = match load_config(&req.config) {
                Ok(c) => c,
                Err(f) => {
                    let line = format!("ZSNAP UNKNOWN - {:#}\n", f.error);
                    output::text(out, &line)?;
                    return Ok(exit::NAGIOS_UNKNOWN);
                }
            };
            crate::status::check(req, &config, out)
        }
        Command::Backup(args) => with_one_backend(req, args.dry_run, out, |b, out| {
            crate::backup::backup(req, args, b, out)
        }),
        Command::Backups(cmd) => crate::backup::backups(req, cmd, out),
        Command::Restore(args) => with_one_backend(req, args.save.is_some(), out, |b, out| {
            crate::backup::restore_cmd(req, args, b, out)
        }),
        Command::Simulate { days, step } => {
            let config = load_config(&req.config)?;
            crate::simulate::simulate(req, &config, *days, *step, out)
        }
    }
}

/// Runs `f` with the one backend `--backend` names (this machine, a host over ssh, or
/// a fake pool's state file, saved afterwards unless `read_only`), for commands that
/// work on datasets given on the command line.
fn with_one_backend(
    req: &Request,
    read_only: bool,
    out: &mut dyn Write,
    f: impl FnOnce(&mut dyn zsnap_exec::apply::Backends, &mut dyn Write) -> Result<u8, Failure>,
) -> Result<u8, Failure> {
    let config = crate::backup::optional_config(&req.config)?;
    let ssh_config = config.as_ref().and_then(|c| c.paths.ssh_config.clone());
    match &req.backend {
        BackendSpec::Local => {
            let mut z = zsnap_exec::cli::CliZfs::local();
            f(&mut OneBackend(&mut z), out)
        }
        BackendSpec::Ssh(host) => {
            let mut z = crate::backends::ssh_backend(host, ssh_config.as_deref())?;
            f(&mut OneBackend(&mut z), out)
        }
        BackendSpec::Fake(path) => {
            let mut z = zsnap_exec::fake::FakeZfs::load(path)
                .with_context(|| format!("load the fake pool state {}", path.display()))
                .map_err(|e| {
                    Failure::usage(e).with_hint(
                        "create it first, e.g. with `zsnap --backend fake:FILE snapshot` and a config",
                    )
                })?;
            z.set_now(req.now);
            let status = f(&mut OneBackend(&mut z), out)?;
            if !read_only {
                z.save(path)
                    .with_context(|| format!("save the fake pool state {}", path.display()))?;
            }
            Ok(status)
        }
    }
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_quote(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./,:=@%+".contains(c))
    {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// Reads and validates the config.
///
/// # Errors
/// A usage failure: unreadable file (with a hint), or the first config error.
pub fn load_config(path: &Path) -> Result<Config, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(anyhow::Error::new(e).context(format!("read the config {}", path.display())))
            .with_hint("pass --config FILE; commented examples are in the examples/ directory of the source")
    })?;
    Config::from_toml(&text, &path.display().to_string()).map_err(|e| {
        Failure::usage(anyhow::Error::new(e).context(format!("load the config {}", path.display())))
            .with_hint("fix the place shown above; `zsnap config check` validates a config without running anything")
    })
}

/// A config path resolved against the config file's directory.
pub fn resolve(config_path: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_owned()
    } else {
        config_path.parent().unwrap_or(Path::new(".")).join(p)
    }
}

fn import(req: &Request, file: &Path, out: &mut dyn Write) -> Result<u8, Failure> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("read {}", file.display()))
        .map_err(Failure::usage)?;
    let name = file.display().to_string();
    let imported = import_sanoid(&text, &name)
        .context("translate the sanoid config")
        .map_err(Failure::usage)?;
    if req.json {
        output::json(out, &imported.config)?;
    } else {
        output::text(out, &imported.to_toml(&name))?;
    }
    Ok(exit::OK)
}

fn lock_failure(e: LockError) -> Failure {
    let hint = match &e {
        LockError::Held { pid, .. } => {
            format!("another zsnap (process {pid}) is running; try again when it ends")
        }
        LockError::Stale { path, .. } => format!(
            "a zsnap run died holding the lock; if no zsnap is running, remove {}",
            path.display()
        ),
        _ => "check the lock_file path in [paths]".to_owned(),
    };
    Failure::from(e).with_status(exit::LOCKED).with_hint(hint)
}

/// What the changing commands set up around the engine: lock, journal, audit log.
pub struct RunGuards {
    _lock: Option<Lock>,
    journal: Option<Journal>,
    /// The audit log (none in a dry run).
    pub audit: Option<AuditLog>,
}

/// Takes the run lock and opens the journal and audit log of `config` (nothing for a
/// dry run or a saved listing).
///
/// # Errors
/// The lock is held, or a path cannot be created or opened.
pub fn guards(req: &Request, config: &Config, dry_run: bool) -> Result<RunGuards, Failure> {
    if dry_run || req.inventory.is_some() {
        return Ok(RunGuards {
            _lock: None,
            journal: None,
            audit: None,
        });
    }
    let lock_path = resolve(&req.config, &config.paths.lock_file);
    if let Some(dir) = lock_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let lock = Lock::acquire(&lock_path).map_err(lock_failure)?;
    let journal_dir = resolve(&req.config, &config.paths.journal_dir);
    std::fs::create_dir_all(&journal_dir)
        .with_context(|| format!("create the journal directory {}", journal_dir.display()))?;
    let journal_path = journal_dir.join(format!(
        "{}-{}.jsonl",
        req.now.format("%Y%m%dT%H%M%SZ"),
        std::process::id()
    ));
    let journal = Journal::open(&journal_path)
        .with_context(|| format!("open the journal {}", journal_path.display()))?;
    let audit = AuditLog::open(&resolve(&req.config, &config.paths.audit_log))?;
    Ok(RunGuards {
        _lock: Some(lock),
        journal: Some(journal),
        audit: Some(audit),
    })
}

fn job_name(job: &Job) -> &'static str {
    match job {
        Job::Snapshot { .. } => "snapshot",
        Job::Prune => "prune",
        Job::Replicate { .. } => "replicate",
        Job::Run => "run",
    }
}

fn run_job(
    req: &Request,
    config: &Config,
    job: &Job,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let engine = Engine::new(config);
    // A target name that is not in the config is a usage error, found before anything
    // runs (or takes the lock).
    engine.phases(job).map_err(Failure::usage)?;
    let mut g = guards(req, config, dry_run)?;
    let mut progress = Progress::new(req.verbosity);
    let mut audit_error: Option<anyhow::Error> = None;
    let command = job_name(job);
    let now = req.now;
    let mut record = |phase: &Phase| {
        if let Some(a) = g.audit.as_mut() {
            if let Err(e) = a.record(now, command, phase) {
                audit_error.get_or_insert(e);
            }
        }
    };
    let mut hooks = Hooks {
        observer: &mut progress,
        journal: g.journal.as_mut(),
        applied: &mut record,
    };
    // The scheduled backups of `zsnap run`.
    let mut backups: Option<crate::backup::ScheduledBackups> = None;
    let outcome = if let Some(path) = &req.inventory {
        let mut saved = Some(read_inventory(path)?);
        engine.run(job, now, true, Source::Saved(&mut saved), &mut hooks)?
    } else {
        match &req.backend {
            BackendSpec::Fake(path) => {
                let (mut z, _fresh) = load_fake(path, config, now)?;
                z.set_now(now);
                let outcome = engine.run(
                    job,
                    now,
                    dry_run,
                    Source::Backends(&mut OneBackend(&mut z)),
                    &mut hooks,
                )?;
                backups = scheduled_backups(
                    job,
                    config,
                    &mut OneBackend(&mut z),
                    now,
                    dry_run,
                    &mut record,
                );
                if !dry_run {
                    z.save(path)
                        .with_context(|| format!("save the fake pool state {}", path.display()))?;
                }
                outcome
            }
            BackendSpec::Local | BackendSpec::Ssh(_) => {
                let host = match &req.backend {
                    BackendSpec::Ssh(host) => host.clone(),
                    _ => Host::Local,
                };
                let mut backends = real_backends(config, &host)?;
                let outcome = engine
                    .run(
                        job,
                        now,
                        dry_run,
                        Source::Backends(&mut backends),
                        &mut hooks,
                    )
                    .map_err(Failure::from_zfs)?;
                backups = scheduled_backups(job, config, &mut backends, now, dry_run, &mut record);
                outcome
            }
        }
    };
    // The store deletions of the scheduled backups are not plan steps: logged here.
    if let (Some(a), Some(b)) = (g.audit.as_mut(), &backups) {
        if let Err(e) = crate::backup::audit_scheduled(a, now, command, b) {
            audit_error.get_or_insert(e);
        }
    }
    if let Some(e) = audit_error {
        return Err(Failure::from(
            e.context("the changes were made but could not all be logged"),
        ));
    }
    let mut outcome = outcome;
    outcome.backups = backups;
    render_outcome(req, &outcome, out)?;
    let status = if !outcome.failed() {
        exit::OK
    } else if outcome.did_something() {
        exit::PARTIAL
    } else {
        exit::ERROR
    };
    // The process ends right after this: freeing a plan with a million decisions one
    // allocation at a time would only make it end later.
    std::mem::forget(outcome);
    Ok(status)
}

/// The scheduled backups of a `zsnap run` (none for other jobs, or without
/// `[backups.NAME]` in the config).
fn scheduled_backups(
    job: &Job,
    config: &Config,
    backends: &mut dyn zsnap_exec::apply::Backends,
    now: chrono::DateTime<chrono::Utc>,
    dry_run: bool,
    record: crate::backup::Recorder<'_>,
) -> Option<crate::backup::ScheduledBackups> {
    (*job == Job::Run && !config.backups.is_empty())
        .then(|| crate::backup::run_scheduled(config, backends, now, dry_run, record))
}

/// Reads a saved `zfs list` output.
///
/// # Errors
/// Unreadable or unparsable files.
pub fn read_inventory(path: &Path) -> Result<Inventory, Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read the saved listing {}", path.display()))
        .map_err(Failure::usage)?;
    parse_list(&text)
        .with_context(|| format!("parse the saved listing {}", path.display()))
        .map_err(|e| {
            Failure::usage(e).with_hint(
                "save it with the exact command `zsnap plan --print-list-command` prints",
            )
        })
}

fn render_outcome(req: &Request, outcome: &Outcome, out: &mut dyn Write) -> Result<(), Failure> {
    if req.json {
        output::json(out, outcome)?;
        return Ok(());
    }
    if req.verbosity == Verbosity::Quiet && !outcome.failed() {
        return Ok(());
    }
    let mut s = String::new();
    for p in &outcome.phases {
        s.push_str(&format!("== {} ==\n", p.phase));
        if let Some(e) = &p.error {
            s.push_str(&format!("error: {e}\n\n"));
            continue;
        }
        match &p.results {
            None => s.push_str(&p.plan.render()),
            Some(results) => {
                if req.verbosity >= Verbosity::Verbose(1) {
                    s.push_str(&p.plan.render());
                }
                let done = results.iter().filter(|r| r.outcome == "done").count();
                let partial = results.iter().filter(|r| r.outcome == "partial").count();
                let failed = results.iter().filter(|r| r.outcome == "failed").count();
                let skipped = results.iter().filter(|r| r.outcome == "skipped").count();
                if results.is_empty() {
                    s.push_str("nothing to do\n");
                } else {
                    s.push_str(&format!(
                        "{done} done, {partial} partial, {failed} failed, {skipped} skipped\n"
                    ));
                }
                for r in results {
                    if let Some(e) = &r.error {
                        let what = p.plan.steps.get(r.index).map_or("", |st| st.reason());
                        s.push_str(&format!("  step {} ({what}) failed: {e}\n", r.index + 1));
                    }
                }
            }
        }
        s.push('\n');
    }
    if let Some(b) = &outcome.backups {
        s.push_str(&b.text);
    }
    output::text(out, &s)?;
    Ok(())
}
