//! One function per command. Each returns the exit status or a [`Failure`].

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use zsnap_core::config::{
    import_sanoid, import_znapzend, import_zrepl, Config, Host, ImportTool, Imported,
};
use zsnap_core::list_argv;
use zsnap_exec::apply::OneBackend;
use zsnap_exec::failure::error_chain;
use zsnap_exec::job::{Engine, Job, JobError, Reporters, Source};
use zsnap_exec::scheduled::{run_with_backups, RunOutcome};
use zsnap_exec::session::{AfterRunError, RunStatus, Session, SessionRunError};

use crate::backends::load_fake;
use crate::exit;
use crate::failure::Failure;
use crate::guards::session;
use crate::load::{load_config, optional_config, read_inventory};
use crate::output::{self, Progress};
use crate::request::{BackendSpec, Command, Request, Verbosity};
use zsnap_exec::connect::connect_config;

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
        Command::Man(None) => {
            let page = crate::man::root_page().context("render the man page")?;
            output::text(out, &page.roff)?;
            Ok(exit::OK)
        }
        Command::Man(Some(dir)) => {
            for page in crate::man::pages().context("render the man pages")? {
                let path = dir.join(&page.file_name);
                std::fs::write(&path, &page.roff)
                    .with_context(|| format!("write {}", path.display()))?;
                output::text(out, &format!("{}\n", path.display()))?;
            }
            Ok(exit::OK)
        }
        Command::Import { tool, file } => import(req, *tool, file, out),
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
                Err(f) => return crate::status::unknown(req, &format!("{:#}", f.error), out),
            };
            crate::status::check(req, &config, out)
        }
        Command::Backup(cmd) => with_one_backend(req, cmd.dry_run, out, |b, out| {
            crate::backup::backup(req, cmd, b, out)
        }),
        Command::Backups(cmd) => crate::backup::backups(req, cmd, out),
        Command::Restore(cmd) => with_one_backend(
            req,
            matches!(cmd.to, crate::request::RestoreTo::Save(_)),
            out,
            |b, out| crate::backup::restore_cmd(req, cmd, b, out),
        ),
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
    let config = optional_config(&req.config)?;
    let paths = config.map(|c| c.paths).unwrap_or_default();
    match &req.backend {
        BackendSpec::Local => {
            let mut z = zsnap_exec::connect::connect(&Host::Local, &paths)?;
            f(&mut OneBackend(&mut z), out)
        }
        BackendSpec::Ssh(host) => {
            let mut z = zsnap_exec::connect::connect(host, &paths)?;
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
            if !read_only {
                // Like a pool, the state keeps each change as it happens, even if the
                // command fails or zsnap is killed before it ends.
                z.persist_to(path);
            }
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

fn import(
    req: &Request,
    tool: ImportTool,
    file: &Path,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("read {}", file.display()))
        .map_err(Failure::usage)?;
    let name = file.display().to_string();
    let what = format!("translate the {} config", tool.as_str());
    // Each importer's own text (sanoid's explains its rule in the header); one shape,
    // with the notes, for --json.
    let (toml, imported): (String, Imported) = match tool {
        ImportTool::Sanoid => {
            let s = import_sanoid(&text, &name)
                .context(what)
                .map_err(Failure::usage)?;
            (s.to_toml(&name), s.into())
        }
        ImportTool::Zrepl | ImportTool::Znapzend => {
            let i = if tool == ImportTool::Zrepl {
                import_zrepl(&text, &name)
            } else {
                import_znapzend(&text, &name)
            }
            .context(what)
            .map_err(Failure::usage)?;
            (i.to_toml(&name), i)
        }
        other => {
            return Err(Failure::usage(anyhow::anyhow!(
                "no importer for {}",
                other.as_str()
            )))
        }
    };
    if req.json {
        output::json(out, &imported)?;
    } else {
        output::text(out, &toml)?;
    }
    Ok(exit::OK)
}

/// A job refused before it runs, as a usage failure: an unknown target, or an expiry
/// (`--expire-in`) for a scheduled label.
fn job_usage(e: JobError) -> Failure {
    match e {
        JobError::Expiry { source, .. } => {
            Failure::usage(anyhow::Error::new(source).context("invalid --expire-in"))
        }
        e => Failure::usage(e),
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
    engine.phases(job).map_err(job_usage)?;
    let mut session = session(req, config, dry_run)?;
    let now = req.now;
    let mut progress = Progress::new(req.verbosity);
    // An error after the engine ran: whatever it did stays done.
    let mut late: Option<anyhow::Error> = None;
    let (outcome, problems) = if let Some(path) = &req.inventory {
        let mut saved = Some(read_inventory(path)?);
        let mut reporters = Reporters::new(&mut progress);
        let outcome = engine.run(job, now, true, Source::Saved(&mut saved), &mut reporters)?;
        (RunOutcome::new(outcome), Vec::new())
    } else {
        match &req.backend {
            BackendSpec::Fake(path) => {
                let (mut z, _fresh) = load_fake(path, config, now)?;
                z.set_now(now);
                if !dry_run {
                    // Each change is kept as it happens, as a pool would.
                    z.persist_to(path);
                }
                let run = run_in(
                    &engine,
                    job,
                    now,
                    session.as_mut(),
                    &mut OneBackend(&mut z),
                    &mut progress,
                );
                // What a failed run did is saved too: a real pool keeps it.
                if !dry_run {
                    if let Err(e) = z.save(path) {
                        late = Some(
                            anyhow::Error::new(e)
                                .context(format!("save the fake pool state {}", path.display())),
                        );
                    }
                }
                run?
            }
            BackendSpec::Local | BackendSpec::Ssh(_) => {
                let host = match &req.backend {
                    BackendSpec::Ssh(host) => host.clone(),
                    _ => Host::Local,
                };
                let mut backends = connect_config(config, &host)?;
                run_in(
                    &engine,
                    job,
                    now,
                    session.as_mut(),
                    &mut backends,
                    &mut progress,
                )?
            }
        }
    };
    drop(progress);
    let status = RunStatus::of(&outcome).code();
    // After the engine ran, a failure says what was done: 3 when something was.
    let after = |e: anyhow::Error| {
        let status = if outcome.did_something() {
            exit::PARTIAL
        } else {
            exit::ERROR
        };
        Failure::from(e).with_status(status)
    };
    if let Some(e) = late {
        return Err(after(e));
    }
    let (audit, record): (Vec<_>, Vec<_>) = problems
        .into_iter()
        .partition(|p| !matches!(p, AfterRunError::Record(_)));
    if let Some(p) = audit.into_iter().next() {
        let e = match p {
            AfterRunError::Audit(e) => anyhow::Error::new(e),
            p => anyhow::Error::new(p),
        };
        return Err(after(
            e.context("the changes were made but could not all be logged"),
        ));
    }
    if let Err(f) = render_outcome(req, &outcome, out) {
        if f.is_broken_pipe() {
            return Err(f);
        }
        return Err(after(f.error));
    }
    if let Some(AfterRunError::Record(e)) = record.into_iter().next() {
        // What the run did is reported either way; only `check` would miss it.
        return Err(Failure::from(
            anyhow::Error::new(e)
                .context("the run ended but its outcome could not be recorded for `zsnap check`"),
        )
        .with_status(if status == exit::OK {
            exit::PARTIAL
        } else {
            status
        }));
    }
    // The process ends right after this: freeing a plan with a million decisions one
    // allocation at a time would only make it end later.
    std::mem::forget(outcome);
    Ok(status)
}

/// Runs `job` in `session` ([`Session::run`]), or as a dry run without one.
fn run_in(
    engine: &Engine<'_>,
    job: &Job,
    now: chrono::DateTime<chrono::Utc>,
    session: Option<&mut Session>,
    backends: &mut dyn zsnap_exec::apply::Backends,
    observer: &mut dyn zsnap_exec::apply::Observer,
) -> Result<(RunOutcome, Vec<AfterRunError>), Failure> {
    let Some(session) = session else {
        let mut reporters = Reporters::new(observer);
        return run_with_backups(engine, job, now, true, backends, &mut reporters)
            .map(|o| (o, Vec::new()))
            .map_err(|e| Failure::from_zfs(e.into()));
    };
    match session.run(engine, job, now, backends, observer) {
        Ok(run) => Ok((run.outcome, run.problems)),
        Err(SessionRunError::Job { source, unrecorded }) => {
            let e = anyhow::Error::new(source);
            Err(Failure::from_zfs(match unrecorded {
                None => e,
                Some(u) => e.context(format!(
                    "and its failure could not be recorded for `zsnap check`: {}",
                    error_chain(&u)
                )),
            }))
        }
        Err(e) => Err(Failure::from(e)),
    }
}

fn render_outcome(req: &Request, run: &RunOutcome, out: &mut dyn Write) -> Result<(), Failure> {
    if req.json {
        output::json(out, run)?;
        return Ok(());
    }
    if req.verbosity == Verbosity::Quiet && !run.failed() {
        return Ok(());
    }
    let outcome = &run.outcome;
    let mut s = String::new();
    for p in &outcome.phases {
        s.push_str(&format!("== {} ==\n", p.phase));
        if let Some(e) = &p.error {
            s.push_str(&format!("error: {e}\n"));
            // A phase planned in part (the roots it could list) still shows its plan
            // and what it did.
            if p.results.is_none() && p.plan.steps.is_empty() && p.plan.notes.is_empty() {
                s.push('\n');
                continue;
            }
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
    if let Some(b) = &run.backups {
        s.push_str(&crate::backup::render_scheduled(b));
    }
    output::text(out, &s)?;
    Ok(())
}
