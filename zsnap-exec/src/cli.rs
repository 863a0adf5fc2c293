//! [`CliZfs`]: the real `zfs`, run locally or over ssh.
//!
//! - Every command is an argv run through duct, never a local shell string, with
//!   `LC_ALL=C` (so [`crate::failure::classify`] reads English), and every listing uses
//!   `-H -p` with explicit `-o` columns.
//! - Over ssh (`ssh -o BatchMode=yes`, one ControlMaster connection per [`CliZfs`]), the
//!   remote side is a shell: every word is quoted by [`crate::quote`], and options end
//!   with `--` before the host. Positional words that could start with `-` (hold tags)
//!   follow a `--` for `zfs` too.
//! - A destroy re-checks each guid first (one `zfs list -d 1` for all the datasets of
//!   a [`ZfsBackend::destroy_many`]), splits the comma list under the planner's byte
//!   budget (so a plan's destroy step is one `zfs destroy`), and when `zfs destroy`
//!   refuses members, reports them and destroys the others.
//! - Holds and releases of one tag are one `zfs hold` / `zfs release` for many
//!   snapshots ([`ZfsBackend::hold_many`]); only when it fails, one call each, to tell
//!   which snapshot failed.
//! - A transfer between two [`CliZfs`] is a pipeline of two processes joined by an OS
//!   pipe. When progress is wanted, zsnap sits between them and counts: on Linux the
//!   bytes move from one pipe to the other with splice(2), never copied into zsnap;
//!   elsewhere through a 1 MiB buffer. A sender that is not a process (a stream file,
//!   another backend, a bandwidth-limited stream) is read in 1 MiB buffers.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::thread::JoinHandle;

use zsnap_core::zpool::PoolHealth;
use zsnap_core::{
    BookmarkName, DatasetName, Guid, Inventory, SendBase, SendSpec, ShortName, SnapshotName,
    SnapshotRef,
};

use crate::backend::{
    check_property_name, destroy_with_retry, parse_get_value, read_pools, split_batches, split_by,
    split_names, AbortReceiveError, AttemptError, BookmarkError, CommandError,
    DestroyBookmarkError, DestroyError, DestroyReport, EstimateError, GetPropertyError, HoldError,
    HoldsError, ListError, PoolsError, PropertyTarget, ReceiveOutcome, ReceiveRequest, RecvError,
    ReleaseError, ResumeTokenError, SendCommand, SendError, SendRequest, SendStream,
    SetPropertyError, Skipped, SnapshotError, ZfsBackend,
};
use crate::failure::{read_stderr_bounded, Exit, ZfsFailure};
use crate::holds::parse_holds;
use crate::quote::remote_command;
use crate::send_info::{parse_resume_token, parse_send_estimate, ResumeToken, SendEstimate};

/// Default byte budget of one `zfs destroy` argument, and of the names of one `zfs
/// hold`, `release`, `holds` or `list` of named snapshots: one argv word must stay under
/// Linux's `MAX_ARG_STRLEN` of 128 KiB, and over ssh the whole remote command is one.
/// The same budget the planner splits destroys by
/// ([`zsnap_core::DEFAULT_DESTROY_ARG_BUDGET`]), so each destroy step of a plan is one
/// `zfs destroy`.
pub const DEFAULT_DESTROY_BUDGET: usize = zsnap_core::DEFAULT_DESTROY_ARG_BUDGET;

/// The `zfs` [`CliZfs`] runs unless told otherwise, here and on remote hosts: an
/// absolute path, because zsnap runs as root and a `PATH` lookup could find anyone's.
pub const DEFAULT_ZFS: &str = "/usr/sbin/zfs";

/// The `zpool` [`CliZfs`] runs unless told otherwise (absolute, see [`DEFAULT_ZFS`]).
pub const DEFAULT_ZPOOL: &str = "/usr/sbin/zpool";

/// The `ssh` [`CliZfs`] runs unless told otherwise (absolute, see [`DEFAULT_ZFS`]).
pub const DEFAULT_SSH: &str = "/usr/bin/ssh";

/// The buffer size for bytes that pass through zsnap.
pub const COPY_BUFFER: usize = 1024 * 1024;

/// The longest line of `zfs` output zsnap reads (1 MiB; dataset names are at most
/// 255 bytes, and a listing row is a few of them plus numbers). Longer means garbage or
/// hostility: the process is stopped instead of its output held.
pub const MAX_OUTPUT_LINE: usize = 1024 * 1024;

enum LineError {
    TooLong,
    Io(std::io::Error),
}

/// Reads `r` to its end, failing as soon as one line (bytes between newlines) is longer
/// than `limit`.
fn read_lines_bounded(r: &mut impl Read, limit: usize) -> Result<Vec<u8>, LineError> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes of the current line read so far.
    let mut open = 0usize;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LineError::Io(e)),
        };
        let chunk = &buf[..n];
        let mut start = 0;
        for i in memchr_all(chunk) {
            if open + (i - start) > limit {
                return Err(LineError::TooLong);
            }
            open = 0;
            start = i + 1;
        }
        open += n - start;
        if open > limit {
            return Err(LineError::TooLong);
        }
        out.extend_from_slice(chunk);
    }
}

/// Positions of the newlines in `chunk`.
fn memchr_all(chunk: &[u8]) -> impl Iterator<Item = usize> + '_ {
    chunk
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
}

/// How to reach a host over ssh.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SshTarget {
    /// Host name, address, or alias from an ssh config.
    pub host: String,
    /// Remote user (`-l`).
    pub user: Option<String>,
    /// Port (`-p`).
    pub port: Option<u16>,
    /// An ssh config file (`-F`).
    pub config_file: Option<PathBuf>,
    /// An identity file (`-i`).
    pub identity_file: Option<PathBuf>,
    /// More `-o KEY=VALUE` options.
    pub options: Vec<String>,
}

/// An ssh host or user that could be read as an option or is otherwise unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "ssh {what} {value:?} is empty, starts with '-', or contains whitespace or control characters"
)]
#[non_exhaustive]
pub struct SshTargetError {
    /// `host` or `user`.
    pub what: &'static str,
    /// The refused value.
    pub value: String,
}

fn check_ssh_word(what: &'static str, value: &str) -> Result<(), SshTargetError> {
    if value.is_empty()
        || value.starts_with('-')
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(SshTargetError {
            what,
            value: value.to_owned(),
        });
    }
    Ok(())
}

impl SshTarget {
    /// A host with default user and port.
    ///
    /// # Errors
    /// When the host is empty, starts with `-` or contains whitespace.
    pub fn new(host: &str) -> Result<Self, SshTargetError> {
        check_ssh_word("host", host)?;
        Ok(SshTarget {
            host: host.to_owned(),
            user: None,
            port: None,
            config_file: None,
            identity_file: None,
            options: Vec::new(),
        })
    }

    /// Sets the user.
    ///
    /// # Errors
    /// When the user is empty, starts with `-` or contains whitespace.
    pub fn with_user(mut self, user: &str) -> Result<Self, SshTargetError> {
        check_ssh_word("user", user)?;
        self.user = Some(user.to_owned());
        Ok(self)
    }
}

/// Where `zfs` runs.
#[derive(Debug)]
enum Transport {
    Local,
    Ssh {
        target: SshTarget,
        /// Holds the ControlMaster socket; removed on drop.
        control_dir: tempfile::TempDir,
    },
}

/// The real `zfs`, locally or over ssh. See the [module docs](self).
#[derive(Debug)]
pub struct CliZfs {
    transport: Transport,
    zfs: String,
    zpool: String,
    ssh: String,
    env: Vec<(String, String)>,
    destroy_budget: usize,
}

impl CliZfs {
    /// `zfs` on this machine.
    pub fn local() -> Self {
        CliZfs {
            transport: Transport::Local,
            zfs: DEFAULT_ZFS.to_owned(),
            zpool: DEFAULT_ZPOOL.to_owned(),
            ssh: DEFAULT_SSH.to_owned(),
            env: Vec::new(),
            destroy_budget: DEFAULT_DESTROY_BUDGET,
        }
    }

    /// `zfs` on a remote host over ssh, with one reused connection.
    ///
    /// # Errors
    /// When the directory for the connection socket cannot be created.
    pub fn ssh(target: SshTarget) -> std::io::Result<Self> {
        let control_dir = tempfile::Builder::new().prefix("zsnap-ssh-").tempdir()?;
        Ok(CliZfs {
            transport: Transport::Ssh {
                target,
                control_dir,
            },
            zfs: DEFAULT_ZFS.to_owned(),
            zpool: DEFAULT_ZPOOL.to_owned(),
            ssh: DEFAULT_SSH.to_owned(),
            env: Vec::new(),
            destroy_budget: DEFAULT_DESTROY_BUDGET,
        })
    }

    /// Runs this program as `zfs` (on the remote host when over ssh); by default
    /// [`DEFAULT_ZFS`]. Give an absolute path: a bare name is looked up in `PATH`.
    #[must_use]
    pub fn with_zfs_program(mut self, program: impl Into<String>) -> Self {
        self.zfs = program.into();
        self
    }

    /// Runs this program as `zpool` (on the remote host when over ssh); by default
    /// [`DEFAULT_ZPOOL`]. Give an absolute path: a bare name is looked up in `PATH`.
    #[must_use]
    pub fn with_zpool_program(mut self, program: impl Into<String>) -> Self {
        self.zpool = program.into();
        self
    }

    /// Runs this program as `ssh`; by default [`DEFAULT_SSH`].
    #[must_use]
    pub fn with_ssh_program(mut self, program: impl Into<String>) -> Self {
        self.ssh = program.into();
        self
    }

    /// Sets an environment variable for every process started here (`zfs` locally, or
    /// `ssh`).
    #[must_use]
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the byte budget of one `zfs destroy` argument.
    #[must_use]
    pub fn with_destroy_budget(mut self, bytes: usize) -> Self {
        self.destroy_budget = bytes.max(1);
        self
    }

    /// The program and arguments that run `zfs ARGV…` (through ssh when remote).
    pub fn command(&self, argv: &[String]) -> (String, Vec<String>) {
        self.command_of(&self.zfs, argv)
    }

    /// The program and arguments that run `zpool ARGV…` (through ssh when remote).
    pub fn zpool_command(&self, argv: &[String]) -> (String, Vec<String>) {
        self.command_of(&self.zpool, argv)
    }

    fn command_of(&self, program: &str, argv: &[String]) -> (String, Vec<String>) {
        match &self.transport {
            Transport::Local => (program.to_owned(), argv.to_vec()),
            Transport::Ssh {
                target,
                control_dir,
            } => {
                let mut args = ssh_options(target, control_dir.path());
                args.push("--".to_owned());
                args.push(target.host.clone());
                let mut words = Vec::with_capacity(argv.len() + 1);
                words.push(program.to_owned());
                words.extend(argv.iter().cloned());
                args.push(remote_command(&words));
                (self.ssh.clone(), args)
            }
        }
    }

    fn envs(&self) -> Vec<(String, String)> {
        let mut env = vec![("LC_ALL".to_owned(), "C".to_owned())];
        env.extend(self.env.iter().cloned());
        env
    }

    fn expression(&self, argv: &[String]) -> (String, duct::Expression) {
        self.expression_of(self.command(argv))
    }

    fn expression_of(&self, (program, args): (String, Vec<String>)) -> (String, duct::Expression) {
        let mut e = duct::cmd(&program, &args);
        for (k, v) in self.envs() {
            e = e.env(k, v);
        }
        (program, e)
    }

    /// Runs `zfs ARGV…`, returning its stdout.
    fn run(&self, argv: &[String]) -> Result<String, CommandError> {
        let (stdout, failure) = self.run_capture(argv)?;
        match failure {
            None => Ok(stdout),
            Some(f) => Err(CommandError::Failed(f)),
        }
    }

    /// Runs `zfs ARGV…`, returning its stdout whether or not it failed, and how it
    /// failed. Its stderr is kept bounded ([`read_stderr_bounded`]); a stdout line longer
    /// than [`MAX_OUTPUT_LINE`] stops it with [`CommandError::LineTooLong`].
    fn run_capture(&self, argv: &[String]) -> Result<(String, Option<ZfsFailure>), CommandError> {
        self.run_expression(self.expression(argv))
    }

    /// Runs `zpool ARGV…`, returning its stdout.
    fn run_zpool(&self, argv: &[String]) -> Result<String, CommandError> {
        let (stdout, failure) =
            self.run_expression(self.expression_of(self.zpool_command(argv)))?;
        match failure {
            None => Ok(stdout),
            Some(f) => Err(CommandError::Failed(f)),
        }
    }

    /// Runs a command built by [`CliZfs::expression_of`]; see [`CliZfs::run_capture`].
    fn run_expression(
        &self,
        (program, e): (String, duct::Expression),
    ) -> Result<(String, Option<ZfsFailure>), CommandError> {
        let spawn = |source| CommandError::Spawn {
            program: program.clone(),
            source,
        };
        let (stderr, stderr_w) = StderrCollector::new().map_err(spawn)?;
        let mut reader = e
            .stdin_null()
            .stderr_file(stderr_w)
            .unchecked()
            .reader()
            .map_err(spawn)?;
        drop(e);
        let stdout = match read_lines_bounded(&mut reader, MAX_OUTPUT_LINE) {
            Ok(out) => out,
            Err(LineError::TooLong) => {
                let _ = reader.kill();
                drop(reader);
                // Not joined: a grandchild may still hold the pipe; the thread ends
                // with it.
                drop(stderr);
                return Err(CommandError::LineTooLong {
                    program,
                    limit: MAX_OUTPUT_LINE,
                });
            }
            Err(LineError::Io(source)) => {
                let _ = reader.kill();
                return Err(spawn(source));
            }
        };
        let status = match reader.try_wait() {
            Ok(Some(out)) => out.status,
            Ok(None) => return Err(spawn(std::io::Error::other("zfs did not exit"))),
            Err(source) => return Err(spawn(source)),
        };
        drop(reader);
        let text = stderr.text();
        let stdout = String::from_utf8_lossy(&stdout).into_owned();
        if status.success() {
            Ok((stdout, None))
        } else {
            Ok((
                stdout,
                Some(ZfsFailure::new(Exit::from_status(status), text)),
            ))
        }
    }

    /// Re-lists the snapshots of `datasets` (one `zfs list -d 1` for all of them):
    /// name → (guid, userrefs), per dataset.
    fn recheck(&self, datasets: &[&DatasetName]) -> Result<Recheck, DestroyError> {
        let mut map: Recheck = datasets
            .iter()
            .map(|d| ((*d).clone(), std::collections::HashMap::new()))
            .collect();
        let names: Vec<DatasetName> = map.keys().cloned().collect();
        let first = names.first().cloned();
        for group in split_datasets(&names, self.destroy_budget) {
            let argv: Vec<String> = [
                "list",
                "-H",
                "-p",
                "-t",
                "snapshot",
                "-o",
                "name,guid,userrefs",
                "-s",
                "createtxg",
                "-d",
                "1",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .chain(group.iter().map(ToString::to_string))
            .collect();
            let failed = |source| DestroyError::Recheck {
                dataset: group.first().cloned().or(first.clone()).expect("not empty"),
                source,
            };
            let out = self.run(&argv).map_err(failed)?;
            for line in out.lines() {
                let parsed = (|| {
                    let mut f = line.rsplitn(3, '\t');
                    let userrefs: u64 = f.next()?.parse().ok()?;
                    let guid: u64 = f.next()?.parse().ok()?;
                    let name: SnapshotName = f.next()?.parse().ok()?;
                    Some((name, Guid(guid), userrefs))
                })();
                let entry = parsed.and_then(|(name, guid, userrefs)| {
                    map.get_mut(name.dataset())
                        .map(|m| m.insert(name.short().clone(), (guid, userrefs)))
                });
                if entry.is_none() {
                    return Err(DestroyError::RecheckParse {
                        dataset: group[0].clone(),
                        line: line.chars().take(4096).collect(),
                    });
                }
            }
        }
        Ok(map)
    }

    /// Destroys `snapshots` of `dataset` that still have their planned guid in `current`
    /// (a [`CliZfs::recheck`]), in comma lists under the budget.
    fn destroy_checked(
        &mut self,
        dataset: &DatasetName,
        snapshots: &[SnapshotRef],
        current: &std::collections::HashMap<ShortName, (Guid, u64)>,
    ) -> Result<DestroyReport, DestroyError> {
        let mut report = DestroyReport::default();
        let mut batch = Vec::new();
        for r in snapshots {
            match current.get(&r.name) {
                Some((g, _)) if *g == r.guid => batch.push((r.name.clone(), r.guid)),
                other => report.skipped.push(Skipped {
                    name: r.name.clone(),
                    planned: r.guid,
                    now: other.map(|(g, _)| *g),
                }),
            }
        }
        let userrefs = |n: &ShortName| current.get(n).map_or(0, |(_, u)| *u);
        for chunk in split_batches(dataset, batch, self.destroy_budget) {
            destroy_with_retry(dataset, chunk, &mut report, &userrefs, &mut |names| {
                let list: Vec<&str> = names.iter().map(ShortName::as_str).collect();
                let argv = vec![
                    "destroy".to_owned(),
                    format!("{dataset}@{}", list.join(",")),
                ];
                match self.run(&argv) {
                    Ok(_) => Ok(()),
                    Err(CommandError::Failed(f)) => {
                        Err(AttemptError::from_failure(dataset, names, f))
                    }
                    Err(e) => Err(AttemptError::Whole(e)),
                }
            })?;
        }
        Ok(report)
    }

    /// One `zfs hold` or `zfs release` of `tag` on all of `snapshots` (in groups under
    /// the budget); whether every call succeeded. On `false` the caller tries each
    /// snapshot alone, which tells which failed (what the group call did stays done:
    /// a hold that exists or a release already made is success to the caller).
    fn many(&self, verb: &str, snapshots: &[SnapshotName], tag: &str) -> bool {
        if crate::backend::check_tag(tag).is_err() || snapshots.is_empty() {
            return false;
        }
        split_names(snapshots, self.destroy_budget)
            .into_iter()
            .all(|group| {
                let mut argv = vec![verb.to_owned(), "--".to_owned(), tag.to_owned()];
                argv.extend(group.iter().map(ToString::to_string));
                self.run(&argv).is_ok()
            })
    }

    /// `zfs send -t TOKEN` sends whatever the token names, and the token comes from the
    /// target (another host, maybe another owner): decode it on the source first and
    /// refuse a token that does not decode or that names another dataset, or another
    /// snapshot than the plan's, than `dataset`.
    fn check_resume(
        &self,
        dataset: &DatasetName,
        token: &str,
        snapshot: Option<&SnapshotRef>,
    ) -> Result<(), SendError> {
        let decoded = self
            .resume_token(token)
            .map_err(|source| SendError::ResumeToken {
                dataset: dataset.clone(),
                source: Box::new(source),
            })?;
        let named = &decoded.toname;
        let same = named.dataset() == dataset
            && snapshot.is_none_or(|s| s.guid == decoded.toguid && &s.name == named.short());
        if same {
            Ok(())
        } else {
            Err(SendError::ResumeMismatch {
                dataset: dataset.clone(),
                named: Box::new(named.clone()),
                named_guid: decoded.toguid,
                expected: snapshot
                    .map(|s| format!("{} (guid {})", dataset.snapshot(&s.name), s.guid)),
            })
        }
    }

    fn receive_argv(request: &ReceiveRequest) -> Vec<String> {
        let o = &request.options;
        let mut argv = vec!["receive".to_owned()];
        if o.resumable {
            argv.push("-s".to_owned());
        }
        if o.unmounted {
            argv.push("-u".to_owned());
        }
        if o.force {
            argv.push("-F".to_owned());
        }
        for p in &o.exclude_props {
            argv.push("-x".to_owned());
            argv.push(p.clone());
        }
        for (k, v) in &o.set_props {
            argv.push("-o".to_owned());
            argv.push(format!("{k}={v}"));
        }
        argv.push(request.target.to_string());
        argv
    }
}

/// What [`CliZfs::recheck`] found: per dataset, snapshot name → (guid, userrefs).
type Recheck =
    std::collections::BTreeMap<DatasetName, std::collections::HashMap<ShortName, (Guid, u64)>>;

/// `datasets` in groups whose names add up to at most `budget` bytes (one alone may be
/// longer).
fn split_datasets(datasets: &[DatasetName], budget: usize) -> Vec<&[DatasetName]> {
    split_by(datasets, budget, |d| d.as_str().len() + 1)
}

/// `words` in groups that add up to at most `budget` bytes.
fn split_words(words: &[String], budget: usize) -> Vec<&[String]> {
    split_by(words, budget, |w| w.len() + 1)
}

fn ssh_options(target: &SshTarget, control_dir: &std::path::Path) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "ControlMaster=auto".into(),
        "-o".into(),
        format!("ControlPath={}/%C", control_dir.display()),
        "-o".into(),
        "ControlPersist=60".into(),
    ];
    if let Some(f) = &target.config_file {
        args.push("-F".into());
        args.push(f.display().to_string());
    }
    if let Some(i) = &target.identity_file {
        args.push("-i".into());
        args.push(i.display().to_string());
    }
    if let Some(p) = target.port {
        args.push("-p".into());
        args.push(p.to_string());
    }
    if let Some(u) = &target.user {
        args.push("-l".into());
        args.push(u.clone());
    }
    for o in &target.options {
        args.push("-o".into());
        args.push(o.clone());
    }
    args
}

impl Drop for CliZfs {
    fn drop(&mut self) {
        if let Transport::Ssh {
            target,
            control_dir,
        } = &self.transport
        {
            let has_socket = std::fs::read_dir(control_dir.path())
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
            if has_socket {
                let mut args = ssh_options(target, control_dir.path());
                args.extend(["-O".into(), "exit".into(), "--".into(), target.host.clone()]);
                // Best effort: the master also exits by itself after ControlPersist.
                let _ = duct::cmd(&self.ssh, &args)
                    .stdin_null()
                    .stdout_null()
                    .stderr_null()
                    .unchecked()
                    .run();
            }
        }
    }
}

/// Collects a child's stderr on a thread.
struct StderrCollector {
    thread: JoinHandle<String>,
}

impl StderrCollector {
    fn new() -> std::io::Result<(Self, os_pipe::PipeWriter)> {
        let (mut r, w) = os_pipe::pipe()?;
        let thread = std::thread::spawn(move || read_stderr_bounded(&mut r));
        Ok((StderrCollector { thread }, w))
    }

    fn text(self) -> String {
        self.thread.join().unwrap_or_default()
    }
}

struct Running {
    reader: duct::ReaderHandle,
    stderr: StderrCollector,
}

enum SendState {
    NotStarted,
    Running(Box<Running>),
    Taken,
    Failed(std::io::Error),
}

/// The send stream of [`CliZfs`]: a `zfs send` process, started on first read unless a
/// receiver takes its command to run a pipeline.
pub struct CliSendStream {
    command: SendCommand,
    state: SendState,
}

impl CliSendStream {
    fn start(&mut self) -> std::io::Result<()> {
        let (stderr, w) = StderrCollector::new()?;
        let mut e = duct::cmd(&self.command.program, &self.command.args);
        for (k, v) in &self.command.env {
            e = e.env(k, v);
        }
        let reader = e.stdin_null().stderr_file(w).unchecked().reader()?;
        drop(e);
        self.state = SendState::Running(Box::new(Running { reader, stderr }));
        Ok(())
    }

    fn fail(&self, failure: CommandError) -> SendError {
        SendError::Command {
            dataset: self.command.dataset.clone(),
            source: failure,
        }
    }
}

impl Read for CliSendStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let SendState::NotStarted = self.state {
            if let Err(e) = self.start() {
                let kind = e.kind();
                self.state = SendState::Failed(e);
                return Err(std::io::Error::new(kind, "could not start zfs send"));
            }
        }
        match &mut self.state {
            SendState::Running(r) => r.reader.read(buf),
            _ => Ok(0),
        }
    }
}

impl SendStream for CliSendStream {
    fn take_command(&mut self) -> Option<SendCommand> {
        match self.state {
            SendState::NotStarted => {
                self.state = SendState::Taken;
                Some(self.command.clone())
            }
            _ => None,
        }
    }

    fn finish(self: Box<Self>) -> Result<(), SendError> {
        let mut this = *self;
        match std::mem::replace(&mut this.state, SendState::Taken) {
            SendState::NotStarted | SendState::Taken => Ok(()),
            SendState::Failed(source) => Err(this.fail(CommandError::Spawn {
                program: this.command.program.clone(),
                source,
            })),
            SendState::Running(running) => {
                let Running { mut reader, stderr } = *running;
                if !matches!(reader.try_wait(), Ok(Some(_))) {
                    // The receiver stopped reading: stop the sender, then reap it.
                    let _ = reader.kill();
                }
                let mut sink = vec![0u8; 64 * 1024];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                let status = match reader.try_wait() {
                    Ok(Some(out)) => out.status,
                    Ok(None) => {
                        return Err(this.fail(CommandError::Spawn {
                            program: this.command.program.clone(),
                            source: std::io::Error::other("zfs send did not exit"),
                        }))
                    }
                    Err(source) => {
                        return Err(this.fail(CommandError::Spawn {
                            program: this.command.program.clone(),
                            source,
                        }))
                    }
                };
                drop(reader);
                let text = stderr.text();
                if status.success() {
                    Ok(())
                } else {
                    Err(this.fail(CommandError::Failed(ZfsFailure::new(
                        Exit::from_status(status),
                        text,
                    ))))
                }
            }
        }
    }
}

fn spawn_error(program: &str, source: std::io::Error) -> CommandError {
    CommandError::Spawn {
        program: program.to_owned(),
        source,
    }
}

/// Waits for a started process and classifies how it ended.
fn outcome(
    handle: &duct::Handle,
    stderr: StderrCollector,
    program: &str,
) -> Result<(), CommandError> {
    let status = handle.wait().map_err(|e| spawn_error(program, e))?.status;
    let text = stderr.text();
    if status.success() {
        Ok(())
    } else {
        Err(CommandError::Failed(ZfsFailure::new(
            Exit::from_status(status),
            text,
        )))
    }
}

/// A sender and a receiver started as a pipeline.
struct Pair<'a> {
    sender: duct::Handle,
    send_err: StderrCollector,
    send: &'a SendCommand,
    receiver: duct::Handle,
    program: &'a str,
    target: &'a DatasetName,
}

/// Starts `send` writing into `sender_stdout` and the receiver `recv` reading
/// `receiver_stdin`; stops whichever started when the other cannot.
fn start_pair<'a>(
    send: &'a SendCommand,
    sender_stdout: os_pipe::PipeWriter,
    recv: duct::Expression,
    receiver_stdin: os_pipe::PipeReader,
    recv_err_w: os_pipe::PipeWriter,
    program: &'a str,
    target: &'a DatasetName,
) -> Result<Pair<'a>, RecvError> {
    let (send_err, send_err_w) = StderrCollector::new().map_err(|e| RecvError::Command {
        target: target.clone(),
        sender: None,
        source: spawn_error(program, e),
    })?;
    let mut left = duct::cmd(&send.program, &send.args);
    for (k, v) in &send.env {
        left = left.env(k, v);
    }
    let left = left
        .stdin_null()
        .stdout_file(sender_stdout)
        .stderr_file(send_err_w)
        .unchecked();
    let sender = left.start();
    // The expressions hold the pipe ends: drop them so only the children keep them.
    drop(left);
    let right = recv
        .stdin_file(receiver_stdin)
        .stdout_null()
        .stderr_file(recv_err_w)
        .unchecked();
    let receiver = right.start();
    drop(right);
    let sender = match sender {
        Ok(h) => h,
        Err(e) => {
            if let Ok(r) = &receiver {
                let _ = r.kill();
                let _ = r.wait();
            }
            let source = SendError::Command {
                dataset: send.dataset.clone(),
                source: spawn_error(&send.program, e),
            };
            return Err(RecvError::Sender {
                target: target.clone(),
                source,
            });
        }
    };
    let receiver = match receiver {
        Ok(h) => h,
        Err(e) => {
            let _ = sender.kill();
            let _ = sender.wait();
            return Err(RecvError::Command {
                target: target.clone(),
                sender: None,
                source: spawn_error(program, e),
            });
        }
    };
    Ok(Pair {
        sender,
        send_err,
        send,
        receiver,
        program,
        target,
    })
}

impl Pair<'_> {
    /// Waits for both; the receiver's failure first (it says why the stream was bad),
    /// then the sender's, then a failure to move the bytes.
    fn finish(
        self,
        recv_err: StderrCollector,
        bytes: Option<u64>,
        copy_error: Option<std::io::Error>,
    ) -> Result<ReceiveOutcome, RecvError> {
        let target = self.target.clone();
        let recv_result = outcome(&self.receiver, recv_err, self.program);
        if recv_result.is_err() {
            // The sender may be blocked writing to a pipe nobody reads any more.
            let _ = self.sender.kill();
        }
        let send_result =
            outcome(&self.sender, self.send_err, &self.send.program).map_err(|source| {
                SendError::Command {
                    dataset: self.send.dataset.clone(),
                    source,
                }
            });
        match (recv_result, send_result) {
            (Err(source), s) => Err(RecvError::Command {
                target,
                sender: s.err().map(Box::new),
                source,
            }),
            (Ok(()), Err(source)) => Err(RecvError::Sender { target, source }),
            (Ok(()), Ok(())) => match copy_error {
                Some(source) => Err(RecvError::Copy { target, source }),
                None => Ok(ReceiveOutcome { bytes }),
            },
        }
    }
}

/// Asks for 1 MiB pipe buffers (fewer wake-ups per byte); the default stays when the
/// system refuses.
fn enlarge_pipe(pipe: &os_pipe::PipeWriter) {
    #[cfg(target_os = "linux")]
    {
        let _ = rustix::pipe::fcntl_setpipe_size(pipe, COPY_BUFFER);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pipe;
}

/// Moves one chunk from `from` to `to` without copying it into zsnap (splice(2)).
#[cfg(target_os = "linux")]
fn splice_chunk(from: &os_pipe::PipeReader, to: &os_pipe::PipeWriter) -> std::io::Result<usize> {
    rustix::pipe::splice(
        from,
        None,
        to,
        None,
        COPY_BUFFER,
        rustix::pipe::SpliceFlags::MOVE,
    )
    .map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn splice_chunk(_: &os_pipe::PipeReader, _: &os_pipe::PipeWriter) -> std::io::Result<usize> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Moves every byte from pipe `from` to pipe `to`, reporting the running total to
/// `progress`: with splice(2) when `spliced` and the system has it, else through a
/// 1 MiB buffer. Stops quietly when the reader of `to` is gone (its exit status says
/// why); returns the bytes moved and an error reading `from`, if any.
fn pump(
    from: &mut os_pipe::PipeReader,
    to: &mut os_pipe::PipeWriter,
    progress: &mut dyn FnMut(u64),
    spliced: bool,
) -> (u64, Option<std::io::Error>) {
    use std::io::ErrorKind;
    let mut total = 0u64;
    let mut spliced = spliced;
    let mut buf = Vec::new();
    loop {
        let n = if spliced {
            match splice_chunk(from, to) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e)
                    if total == 0
                        && matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported) =>
                {
                    spliced = false;
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::BrokenPipe => break,
                Err(e) => return (total, Some(e)),
            }
        } else {
            if buf.is_empty() {
                buf = vec![0u8; COPY_BUFFER];
            }
            let n = match from.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return (total, Some(e)),
            };
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            n
        };
        if n == 0 {
            break;
        }
        total += n as u64;
        progress(total);
    }
    (total, None)
}

impl ZfsBackend for CliZfs {
    fn list(&self, roots: &[DatasetName]) -> Result<Inventory, ListError> {
        let argv = zsnap_core::zfs_list::list_argv(roots);
        let out = self.run(&argv).map_err(|e| ListError::command(roots, e))?;
        zsnap_core::zfs_list::parse_list(&out).map_err(|e| ListError::parse(roots, &out, e))
    }

    fn snapshot(
        &mut self,
        names: &[SnapshotName],
        properties: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), SnapshotError> {
        if names.is_empty() {
            return Err(SnapshotError::Empty);
        }
        let mut argv = vec!["snapshot".to_owned()];
        for (k, v) in properties {
            check_property_name(k).map_err(|source| SnapshotError::Property {
                names: names
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                source,
            })?;
            argv.push("-o".to_owned());
            argv.push(format!("{k}={v}"));
        }
        argv.extend(names.iter().map(ToString::to_string));
        self.run(&argv)
            .map(drop)
            .map_err(|e| SnapshotError::command(names, e))
    }

    fn destroy(
        &mut self,
        dataset: &DatasetName,
        snapshots: &[SnapshotRef],
    ) -> Result<DestroyReport, DestroyError> {
        let mut current = self.recheck(&[dataset])?;
        let current = current.remove(dataset).unwrap_or_default();
        self.destroy_checked(dataset, snapshots, &current)
    }

    fn destroy_many(
        &mut self,
        batches: &[(&DatasetName, &[SnapshotRef])],
    ) -> Vec<Result<DestroyReport, DestroyError>> {
        let datasets: Vec<&DatasetName> = batches.iter().map(|(d, _)| *d).collect();
        match self.recheck(&datasets) {
            Ok(current) => batches
                .iter()
                .map(|(dataset, snapshots)| {
                    let empty = std::collections::HashMap::new();
                    let now = current.get(*dataset).unwrap_or(&empty);
                    self.destroy_checked(dataset, snapshots, now)
                })
                .collect(),
            // One listing for all failed (a dataset gone, say): each on its own, so
            // the others still go and each failure names its dataset.
            Err(_) => batches
                .iter()
                .map(|(dataset, snapshots)| self.destroy(dataset, snapshots))
                .collect(),
        }
    }

    fn hold_many(&mut self, snapshots: &[SnapshotName], tag: &str) -> Vec<Result<(), HoldError>> {
        if self.many("hold", snapshots, tag) {
            return snapshots.iter().map(|_| Ok(())).collect();
        }
        snapshots.iter().map(|s| self.hold(s, tag)).collect()
    }

    fn release_many(
        &mut self,
        snapshots: &[SnapshotName],
        tag: &str,
    ) -> Vec<Result<(), ReleaseError>> {
        if self.many("release", snapshots, tag) {
            return snapshots.iter().map(|_| Ok(())).collect();
        }
        snapshots.iter().map(|s| self.release(s, tag)).collect()
    }

    fn list_named(
        &self,
        datasets: &[DatasetName],
        snapshots: &[SnapshotName],
    ) -> Result<Inventory, ListError> {
        let mut names: Vec<String> = datasets.iter().map(ToString::to_string).collect();
        for s in snapshots {
            let d = s.dataset().to_string();
            if !names.contains(&d) {
                names.push(d);
            }
        }
        names.extend(snapshots.iter().map(ToString::to_string));
        let mut roots: Vec<DatasetName> = datasets.to_vec();
        roots.extend(snapshots.iter().map(|s| s.dataset().clone()));
        roots.dedup();
        let mut inv = Inventory::new();
        for group in split_words(&names, self.destroy_budget) {
            let mut argv = zsnap_core::zfs_list::list_argv(&[]);
            argv.extend(group.iter().cloned());
            let out = self.run(&argv).map_err(|e| ListError::command(&roots, e))?;
            let part = zsnap_core::zfs_list::parse_list(&out)
                .map_err(|e| ListError::parse(&roots, &out, e))?;
            for (_, d) in part.datasets {
                match inv.datasets.get_mut(&d.name) {
                    Some(have) => have.snapshots.extend(d.snapshots),
                    None => inv.insert(d),
                }
            }
        }
        Ok(inv)
    }

    fn hold(&mut self, snapshot: &SnapshotName, tag: &str) -> Result<(), HoldError> {
        HoldError::check_args(snapshot, tag)?;
        let argv = ["hold", "--", tag, &snapshot.to_string()].map(str::to_owned);
        self.run(&argv)
            .map(drop)
            .map_err(|source| HoldError::Command {
                snapshot: snapshot.clone(),
                tag: tag.to_owned(),
                source,
            })
    }

    fn release(&mut self, snapshot: &SnapshotName, tag: &str) -> Result<(), ReleaseError> {
        ReleaseError::check_args(snapshot, tag)?;
        let argv = ["release", "--", tag, &snapshot.to_string()].map(str::to_owned);
        self.run(&argv)
            .map(drop)
            .map_err(|source| ReleaseError::Command {
                snapshot: snapshot.clone(),
                tag: tag.to_owned(),
                source,
            })
    }

    fn bookmark(
        &mut self,
        snapshot: &SnapshotName,
        bookmark: &BookmarkName,
    ) -> Result<(), BookmarkError> {
        BookmarkError::check_args(snapshot, bookmark)?;
        let argv = [
            "bookmark".to_owned(),
            snapshot.to_string(),
            bookmark.to_string(),
        ];
        self.run(&argv)
            .map(drop)
            .map_err(|source| BookmarkError::Command {
                snapshot: snapshot.clone(),
                bookmark: bookmark.clone(),
                source,
            })
    }

    fn destroy_bookmark(&mut self, bookmark: &BookmarkName) -> Result<(), DestroyBookmarkError> {
        let argv = ["destroy".to_owned(), bookmark.to_string()];
        self.run(&argv)
            .map(drop)
            .map_err(|source| DestroyBookmarkError::Command {
                bookmark: bookmark.clone(),
                source,
            })
    }

    fn set_property(
        &mut self,
        target: &PropertyTarget,
        name: &str,
        value: &str,
    ) -> Result<(), SetPropertyError> {
        check_property_name(name).map_err(|source| SetPropertyError::Name {
            target: target.clone(),
            source,
        })?;
        let argv = [
            "set".to_owned(),
            format!("{name}={value}"),
            target.to_string(),
        ];
        self.run(&argv)
            .map(drop)
            .map_err(|source| SetPropertyError::Command {
                target: target.clone(),
                name: name.to_owned(),
                source,
            })
    }

    fn property(
        &self,
        target: &PropertyTarget,
        name: &str,
    ) -> Result<Option<String>, GetPropertyError> {
        check_property_name(name).map_err(|source| GetPropertyError::Name {
            target: target.clone(),
            source,
        })?;
        let argv = [
            "get",
            "-H",
            "-p",
            "-o",
            "value,source",
            name,
            &target.to_string(),
        ]
        .map(str::to_owned);
        let out = self
            .run(&argv)
            .map_err(|source| GetPropertyError::Command {
                target: target.clone(),
                name: name.to_owned(),
                source,
            })?;
        parse_get_value(&out).ok_or_else(|| GetPropertyError::Parse {
            target: target.clone(),
            name: name.to_owned(),
            output: out,
        })
    }

    fn send(&self, request: &SendRequest) -> Result<Box<dyn SendStream>, SendError> {
        let ds = &request.dataset;
        if let zsnap_core::SendSpec::Resume { token, snapshot } = &request.spec {
            self.check_resume(ds, token, snapshot.as_ref())?;
        }
        let argv = send_argv(request, false).map_err(|e| SendError::Unsupported {
            dataset: ds.clone(),
            problem: e.to_string(),
        })?;
        let (program, args) = self.command(&argv);
        Ok(Box::new(CliSendStream {
            command: SendCommand::new(program, args, self.envs(), ds.clone()),
            state: SendState::NotStarted,
        }))
    }

    fn receive(
        &mut self,
        request: &ReceiveRequest,
        mut stream: Box<dyn SendStream>,
        progress: Option<&mut dyn FnMut(u64)>,
    ) -> Result<ReceiveOutcome, RecvError> {
        let target = request.target.clone();
        let argv = Self::receive_argv(request);
        let (program, recv) = self.expression(&argv);
        let cmd_err = |source, sender: Option<SendError>| RecvError::Command {
            target: target.clone(),
            sender: sender.map(Box::new),
            source,
        };
        let (recv_err, recv_err_w) =
            StderrCollector::new().map_err(|e| cmd_err(spawn_error(&program, e), None))?;

        if let Some(send) = stream.take_command() {
            let Some(progress) = progress else {
                // A native pipeline: `zfs send … | zfs recv …`, joined by an OS pipe.
                let (pipe_r, pipe_w) =
                    os_pipe::pipe().map_err(|e| cmd_err(spawn_error(&program, e), None))?;
                enlarge_pipe(&pipe_w);
                let p = start_pair(&send, pipe_w, recv, pipe_r, recv_err_w, &program, &target)?;
                return p.finish(recv_err, None, None);
            };
            // Counted: `zfs send` → pipe → zsnap → pipe → `zfs recv`, the bytes moved
            // between the pipes by splice(2) where it works (never copied into zsnap).
            let pipes = os_pipe::pipe().and_then(|a| Ok((a, os_pipe::pipe()?)));
            let ((mut a_r, a_w), (b_r, mut b_w)) =
                pipes.map_err(|e| cmd_err(spawn_error(&program, e), None))?;
            enlarge_pipe(&a_w);
            enlarge_pipe(&b_w);
            let p = start_pair(&send, a_w, recv, b_r, recv_err_w, &program, &target)?;
            let (total, copy_error) = pump(&mut a_r, &mut b_w, progress, true);
            // Whoever is still writing or reading learns that zsnap is done.
            drop(a_r);
            drop(b_w);
            return p.finish(recv_err, Some(total), copy_error);
        }

        // Bytes pass through zsnap: from the stream into the receiver's stdin. A large
        // pipe keeps the receiver fed while zsnap reads and checks the next chunk.
        let (pipe_r, mut pipe_w) =
            os_pipe::pipe().map_err(|e| cmd_err(spawn_error(&program, e), None))?;
        enlarge_pipe(&pipe_w);
        let right = recv
            .stdin_file(pipe_r)
            .stdout_null()
            .stderr_file(recv_err_w)
            .unchecked();
        let receiver = right.start();
        drop(right);
        let receiver = match receiver {
            Ok(h) => h,
            Err(e) => {
                let sender = stream.finish().err();
                return Err(cmd_err(spawn_error(&program, e), sender));
            }
        };
        let mut progress = progress;
        let mut total: u64 = 0;
        let mut buf = vec![0u8; COPY_BUFFER];
        let mut copy_error = None;
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    copy_error = Some(e);
                    break;
                }
            };
            if pipe_w.write_all(&buf[..n]).is_err() {
                // The receiver quit; its exit status says why.
                break;
            }
            total += n as u64;
            if let Some(p) = progress.as_mut() {
                p(total);
            }
        }
        drop(pipe_w);
        let recv_result = outcome(&receiver, recv_err, &program);
        let send_result = stream.finish();
        match (recv_result, send_result) {
            (Err(source), s) => Err(cmd_err(source, s.err())),
            (Ok(()), Err(source)) => Err(RecvError::Sender { target, source }),
            (Ok(()), Ok(())) => match copy_error {
                Some(source) => Err(RecvError::Copy { target, source }),
                None => Ok(ReceiveOutcome { bytes: Some(total) }),
            },
        }
    }

    fn abort_receive(&mut self, dataset: &DatasetName) -> Result<(), AbortReceiveError> {
        let argv = ["receive".to_owned(), "-A".to_owned(), dataset.to_string()];
        self.run(&argv)
            .map(drop)
            .map_err(|source| AbortReceiveError::Command {
                dataset: dataset.clone(),
                source,
            })
    }

    fn estimate_send(&self, request: &SendRequest) -> Result<SendEstimate, EstimateError> {
        let dataset = &request.dataset;
        let argv = send_argv(request, true).map_err(|e| EstimateError::Unsupported {
            dataset: dataset.clone(),
            problem: e.to_string(),
        })?;
        let out = self.run(&argv).map_err(|source| EstimateError::Command {
            dataset: dataset.clone(),
            source,
        })?;
        parse_send_estimate(&out).map_err(|source| EstimateError::Parse {
            dataset: dataset.clone(),
            output: out.chars().take(4096).collect(),
            source,
        })
    }

    fn holds(&self, snapshots: &[SnapshotName]) -> Result<Vec<(SnapshotName, String)>, HoldsError> {
        let mut out = Vec::new();
        for group in split_names(snapshots, self.destroy_budget) {
            let mut argv = vec!["holds".to_owned(), "-H".to_owned(), "-p".to_owned()];
            argv.extend(group.iter().map(ToString::to_string));
            let text = self.run(&argv).map_err(|e| HoldsError::command(group, e))?;
            out.extend(parse_holds(&text, group).map_err(|e| HoldsError::parse(group, e))?);
        }
        Ok(out)
    }

    fn pools(&self, pools: &[DatasetName]) -> Result<Vec<PoolHealth>, PoolsError> {
        let list = self
            .run_zpool(&zsnap_core::zpool::list_argv())
            .map_err(|source| PoolsError::Command {
                command: "list",
                source,
            })?;
        let status = self
            .run_zpool(&zsnap_core::zpool::status_argv())
            .map_err(|source| PoolsError::Command {
                command: "status",
                source,
            })?;
        read_pools(&list, &status, pools)
    }

    fn resume_token(&self, token: &str) -> Result<ResumeToken, ResumeTokenError> {
        let argv = ["send", "-n", "-v", "-P", "-t", token].map(str::to_owned);
        let (out, failure) = self
            .run_capture(&argv)
            .map_err(|source| ResumeTokenError::command(token, None, source))?;
        let decoded = parse_resume_token(&out);
        match (decoded, failure) {
            (Ok(t), None) => Ok(t),
            (decoded, Some(f)) => Err(ResumeTokenError::command(
                token,
                decoded.ok(),
                CommandError::Failed(f),
            )),
            (Err(source), None) => Err(ResumeTokenError::parse(token, &out, source)),
        }
    }
}

/// Why a send request has no `zfs send` command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this kind of send is not supported by this version")]
#[non_exhaustive]
pub struct UnsupportedSend;

/// The `zfs` arguments of a send: `send [-w] [-i|-I BASE] DATASET@SNAP` or
/// `send -t TOKEN`; with `dry_run`, `-n -v -P` first (nothing is sent; the streams and
/// their sizes are printed, and for `-t` the token contents).
///
/// # Errors
/// A send spec this version does not know.
///
/// # Example
/// ```
/// use zsnap_core::{Guid, SendBase, SendSpec, SnapshotRef};
/// use zsnap_exec::{cli::send_argv, SendRequest};
/// let spec = SendSpec::Incremental {
///     base: SendBase::Bookmark { name: "b1".parse().unwrap(), guid: Guid(1) },
///     snapshot: SnapshotRef::new("s 2".parse().unwrap(), Guid(2)),
///     intermediates: false,
///     expected: vec![],
/// };
/// let r = SendRequest::new("src/a".parse().unwrap(), spec, true);
/// assert_eq!(send_argv(&r, true).unwrap(), ["send", "-n", "-v", "-P", "-w", "-i", "src/a#b1", "src/a@s 2"]);
/// ```
pub fn send_argv(request: &SendRequest, dry_run: bool) -> Result<Vec<String>, UnsupportedSend> {
    let ds = &request.dataset;
    let mut argv = vec!["send".to_owned()];
    if dry_run {
        argv.extend(["-n", "-v", "-P"].map(str::to_owned));
    }
    match &request.spec {
        SendSpec::Resume { token, .. } => {
            // The token says whether the send was raw; `-w` with `-t` is refused.
            argv.push("-t".to_owned());
            argv.push(token.clone());
        }
        SendSpec::Full { snapshot } => {
            if request.raw {
                argv.push("-w".to_owned());
            }
            argv.push(ds.snapshot(&snapshot.name).to_string());
        }
        SendSpec::Incremental {
            base,
            snapshot,
            intermediates,
            ..
        } => {
            if request.raw {
                argv.push("-w".to_owned());
            }
            argv.push(if *intermediates { "-I" } else { "-i" }.to_owned());
            argv.push(match base {
                SendBase::Snapshot { name, .. } => ds.snapshot(name).to_string(),
                SendBase::Bookmark { name, .. } => format!("{ds}#{name}"),
            });
            argv.push(ds.snapshot(&snapshot.name).to_string());
        }
        _ => return Err(UnsupportedSend),
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    #[test]
    fn argv_for_resume_ignores_raw() {
        let r = super::SendRequest::new(
            "src/a".parse().expect("valid"),
            zsnap_core::SendSpec::Resume {
                token: "1-abc".to_owned(),
                snapshot: None,
            },
            true,
        );
        assert_eq!(
            super::send_argv(&r, false).expect("known"),
            ["send", "-t", "1-abc"]
        );
    }

    use super::*;

    #[test]
    fn ssh_command_line() {
        let mut t = SshTarget::new("backup-host").expect("valid");
        t.port = Some(2222);
        t.config_file = Some(PathBuf::from("/etc/zsnap/ssh_config"));
        let z = CliZfs::ssh(t.with_user("zsnap").expect("valid")).expect("a temp dir");
        let (program, args) = z.command(&["list".to_owned(), "tank/a b".to_owned()]);
        assert_eq!(program, "/usr/bin/ssh");
        let dir = match &z.transport {
            Transport::Ssh { control_dir, .. } => control_dir.path().display().to_string(),
            Transport::Local => unreachable!("built over ssh"),
        };
        let shown = args.join(" ").replace(&dir, "<dir>");
        insta::assert_snapshot!(shown, @"-o BatchMode=yes -o ControlMaster=auto -o ControlPath=<dir>/%C -o ControlPersist=60 -F /etc/zsnap/ssh_config -p 2222 -l zsnap -- backup-host LC_ALL=C '/usr/sbin/zfs' 'list' 'tank/a b'");
    }

    #[test]
    fn refuses_option_like_hosts() {
        for bad in ["-oProxyCommand=touch x", "", "a b", "h\n"] {
            assert!(SshTarget::new(bad).is_err(), "{bad:?}");
        }
        assert!(SshTarget::new("h").expect("valid").with_user("-x").is_err());
        insta::assert_snapshot!(SshTarget::new("-x").unwrap_err(), @r#"ssh host "-x" is empty, starts with '-', or contains whitespace or control characters"#);
    }

    #[test]
    fn local_command_is_plain_argv() {
        let z = CliZfs::local().with_zfs_program("/sbin/zfs");
        let (program, args) = z.command(&["hold".to_owned(), "--".to_owned(), "-r".to_owned()]);
        assert_eq!(program, "/sbin/zfs");
        assert_eq!(args, ["hold", "--", "-r"]);
    }

    #[test]
    fn pump_moves_every_byte_spliced_or_copied() {
        for spliced in [true, false] {
            let (mut a_r, mut a_w) = os_pipe::pipe().expect("a pipe");
            let (mut b_r, mut b_w) = os_pipe::pipe().expect("a pipe");
            let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
            let sent = data.clone();
            let writer = std::thread::spawn(move || a_w.write_all(&sent));
            let reader = std::thread::spawn(move || {
                let mut got = Vec::new();
                b_r.read_to_end(&mut got).map(|_| got)
            });
            let mut seen = Vec::new();
            let (total, error) = pump(&mut a_r, &mut b_w, &mut |n| seen.push(n), spliced);
            drop(b_w);
            assert!(error.is_none(), "{error:?}");
            assert_eq!(total, data.len() as u64);
            assert_eq!(seen.last(), Some(&total));
            assert!(seen.windows(2).all(|w| w[0] < w[1]));
            writer.join().expect("joined").expect("written");
            assert_eq!(reader.join().expect("joined").expect("read"), data);
        }
        // A reader that quits: the pump stops without an error of its own.
        let (mut a_r, mut a_w) = os_pipe::pipe().expect("a pipe");
        let (b_r, mut b_w) = os_pipe::pipe().expect("a pipe");
        drop(b_r);
        let writer = std::thread::spawn(move || a_w.write_all(&[1u8; 100_000]));
        let (total, error) = pump(&mut a_r, &mut b_w, &mut |_| {}, true);
        assert_eq!((total, error.is_none()), (0, true));
        drop(a_r);
        assert!(
            writer.join().expect("joined").is_err(),
            "the writer sees the pipe close"
        );
    }

    /// A `zfs` that answers like a real one for resumes: `send -nvP -t TOKEN` decodes
    /// the token (`good` names `src/a@s`, `other` names `other/secret@s`, anything else
    /// is corrupt), and every invocation is logged. Real `zfs send -t` sends whatever
    /// the token names, whatever the caller meant.
    fn resume_double(dir: &std::path::Path) -> (String, PathBuf) {
        let log = dir.join("log");
        let script = dir.join("zfs");
        std::fs::write(
            &script,
            format!(
                r#"#!/bin/sh
echo "$*" >> '{log}'
case "$*" in
  "send -n -v -P -t good") printf 'resume token contents:\nnvlist version: 0\n\ttoguid = 0x10\n\ttoname = src/a@s\n';;
  "send -n -v -P -t other") printf 'resume token contents:\nnvlist version: 0\n\ttoguid = 0x20\n\ttoname = other/secret@s\n';;
  "send -n -v -P -t "*) echo "cannot resume send: resume token is corrupt (invalid format)" >&2; exit 255;;
  *) printf 'stream';;
esac
"#,
                log = log.display()
            ),
        )
        .expect("writable");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        (script.display().to_string(), log)
    }

    #[test]
    fn a_resume_token_is_checked_before_zfs_send_runs_it() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (zfs, log) = resume_double(dir.path());
        let z = CliZfs::local().with_zfs_program(zfs);
        let a: DatasetName = "src/a".parse().expect("valid");
        let resume = |token: &str, snapshot: Option<SnapshotRef>| {
            SendRequest::new(
                a.clone(),
                zsnap_core::SendSpec::Resume {
                    token: token.to_owned(),
                    snapshot,
                },
                false,
            )
        };
        let shown = |e: SendError| crate::failure::error_chain(&e);
        let other = z.send(&resume("other", None)).err().expect("refused");
        insta::assert_snapshot!(shown(other), @"resume the send from src/a: the target's resume token names other/secret@s (guid 32), not a snapshot of this dataset");
        let planned = SnapshotRef::new("s".parse().expect("valid"), Guid(0x99));
        let wrong_guid = z
            .send(&resume("good", Some(planned)))
            .err()
            .expect("refused");
        insta::assert_snapshot!(shown(wrong_guid), @"resume the send from src/a: the target's resume token names src/a@s (guid 16), not src/a@s (guid 153)");
        let corrupt = z.send(&resume("garbage", None)).err().expect("refused");
        let text = shown(corrupt);
        assert!(text.starts_with("resume the send from src/a: the target's resume token cannot be checked: decode resume token garbage"), "{text}");
        let log_text = std::fs::read_to_string(&log).expect("logged");
        assert!(
            log_text.lines().all(|l| l.starts_with("send -n -v -P -t ")),
            "no zfs send -t ran: {log_text}"
        );
        // A token that names the planned snapshot is sent.
        let planned = SnapshotRef::new("s".parse().expect("valid"), Guid(0x10));
        let mut stream = z.send(&resume("good", Some(planned))).expect("checked");
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).expect("read");
        assert_eq!(bytes, b"stream");
        stream.finish().expect("sent");
        let log_text = std::fs::read_to_string(&log).expect("logged");
        assert!(log_text.lines().any(|l| l == "send -t good"), "{log_text}");
    }

    fn script(dir: &std::path::Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join("zfs");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("writable");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path.display().to_string()
    }

    #[test]
    fn lines_longer_than_the_bound_are_refused_across_chunks() {
        let ok = |data: &[u8], limit| read_lines_bounded(&mut &data[..], limit).is_ok();
        assert!(ok(b"abc\nde\n", 3));
        assert!(!ok(b"abc\nabcd\n", 3));
        assert!(!ok(b"abcd", 3), "an unterminated last line counts");
        let mut big = vec![b'a'; 200_000];
        big.push(b'\n');
        assert!(ok(&big, 200_000));
        assert!(!ok(&big, 199_999));
        // A chunked reader: 64 KiB reads split the line.
        let mut r = std::io::BufReader::with_capacity(1000, &big[..]);
        assert!(matches!(
            read_lines_bounded(&mut r, 150_000),
            Err(LineError::TooLong)
        ));
    }

    #[test]
    fn a_huge_listing_line_is_refused_not_held() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let zfs = script(
            dir.path(),
            "head -c 3000000 /dev/zero | tr '\\0' a; echo; sleep 30",
        );
        let z = CliZfs::local().with_zfs_program(zfs);
        let started = std::time::Instant::now();
        let err = z.list(&["tank".parse().expect("valid")]).unwrap_err();
        let text = crate::failure::error_chain(&err);
        assert!(
            text.contains("an output line is longer than 1048576 bytes"),
            "{text}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the process was stopped, not waited for"
        );
    }

    #[test]
    fn stderr_is_bounded_and_its_control_characters_escaped() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let zfs = script(
            dir.path(),
            "printf 'cannot open \\033[2J\\033]0;owned\\007' >&2; head -c 5000000 /dev/zero | tr '\\0' x >&2; echo ' the end' >&2; exit 1",
        );
        let z = CliZfs::local().with_zfs_program(zfs);
        let err = z.list(&["tank".parse().expect("valid")]).unwrap_err();
        let failure = err.failure().expect("zfs ran and failed").clone();
        assert!(failure.stderr.len() < 2 * crate::failure::STDERR_KEEP + 100);
        assert!(
            failure.stderr.starts_with("cannot open \u{1b}[2J"),
            "kept verbatim"
        );
        assert!(failure.stderr.contains("bytes of stderr not kept"));
        assert!(failure.stderr.trim_end().ends_with("x the end"));
        let shown = crate::failure::error_chain(&err);
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\n'),
            "{:?}",
            &shown[..200]
        );
        assert!(
            shown.contains("cannot open \\u{1b}[2J\\u{1b}]0;owned\\u{7}"),
            "{:?}",
            &shown[..200]
        );
    }

    #[test]
    fn receive_options() {
        let mut o = zsnap_core::RecvOptions::safe();
        o.force = true;
        o.exclude_props.push("mountpoint".to_owned());
        o.set_props.insert("canmount".to_owned(), "off".to_owned());
        let r = ReceiveRequest::new("dst/a b".parse().expect("valid"), o);
        assert_eq!(
            CliZfs::receive_argv(&r),
            [
                "receive",
                "-s",
                "-u",
                "-F",
                "-x",
                "mountpoint",
                "-o",
                "canmount=off",
                "dst/a b"
            ]
        );
    }
}
