//! Running the calls [`zsnap_core::hooks::hook_calls`] decides: each as its own process
//! group (argv, never a shell string), with zsnap's environment variables added to the
//! inherited ones, standard error merged into standard output and kept (bounded), and a
//! timeout that kills the whole group — a hook's children included.
//!
//! A hook that holds over the snapshots ([`HookCall::hold`]) is started with
//! [`start_held`]: zsnap waits for its first line of output, takes the snapshots, and
//! [`Held::release`] closes its standard input and waits for it to end.

use std::io::Read;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use zsnap_core::hooks::{HookCall, HookEvent};
use zsnap_core::DatasetName;

/// At most this much of a call's output is kept (its start; the rest is counted).
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024;

/// How long a killed hook's process group is given to go before zsnap stops waiting.
const AFTER_KILL: Duration = Duration::from_secs(5);

/// How one call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
#[non_exhaustive]
pub enum HookOutcome {
    /// It exited with status 0 (a held hook: it got ready, and then exited 0).
    Ok,
    /// It exited with another status, or was killed by a signal (`code` absent).
    Failed {
        /// The exit status, if it exited.
        code: Option<i32>,
    },
    /// It ran past its timeout (or, held, printed no line before it); its process
    /// group was killed.
    TimedOut,
    /// It could not be started.
    NotStarted {
        /// Why, with every cause.
        error: String,
    },
}

/// What one call did: the value the phase, the audit log and `--json` show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HookRun {
    /// The hook's name.
    pub hook: String,
    /// When it ran.
    pub event: HookEvent,
    /// The datasets of the call.
    pub datasets: Vec<DatasetName>,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: HookOutcome,
    /// Its output (standard output and error, in order), at most
    /// [`MAX_OUTPUT_BYTES`] of it, lossily decoded.
    pub output: String,
    /// How long it ran, in milliseconds.
    pub millis: u64,
    /// Whether its failure left its datasets out of the phase.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

impl HookRun {
    /// Whether it ended otherwise than [`HookOutcome::Ok`].
    pub fn failed(&self) -> bool {
        self.outcome != HookOutcome::Ok
    }

    /// One line for a phase's error: `hook db (pre_snapshot, tank/db) exited with
    /// status 1: <last line of output>`.
    pub fn describe(&self) -> String {
        let what = match &self.outcome {
            HookOutcome::Ok => "succeeded".to_owned(),
            HookOutcome::Failed { code: Some(c) } => format!("exited with status {c}"),
            HookOutcome::Failed { code: None } => "was killed by a signal".to_owned(),
            HookOutcome::TimedOut => "timed out and was killed".to_owned(),
            HookOutcome::NotStarted { error } => format!("could not be started: {error}"),
        };
        let datasets: Vec<String> = self.datasets.iter().map(ToString::to_string).collect();
        let mut s = format!(
            "hook {} ({}, {}) {what}",
            self.hook,
            self.event,
            datasets.join(" ")
        );
        if let Some(last) = self.output.lines().rev().find(|l| !l.trim().is_empty()) {
            s.push_str(": ");
            s.push_str(last.trim());
        }
        if self.skipped {
            s.push_str("; its datasets were left out of this phase");
        }
        s
    }
}

/// A started call: its process, the thread reading its output, and the channel that
/// says when the first line came and when the output ended.
struct Started {
    handle: Arc<duct::ReaderHandle>,
    pgid: Option<u32>,
    output: Arc<Mutex<Vec<u8>>>,
    events: mpsc::Receiver<Event>,
    stdin: Option<os_pipe::PipeWriter>,
    started: Instant,
}

enum Event {
    FirstLine,
    End,
}

fn start(call: &HookCall, keep_stdin: bool) -> Result<Started, String> {
    let (program, args) = call
        .argv
        .split_first()
        .ok_or_else(|| "the command is empty".to_owned())?;
    let mut expr = duct::cmd(program, args)
        .stderr_to_stdout()
        .unchecked()
        .before_spawn(|c| {
            // Its own process group, so a timeout kills its children too.
            std::os::unix::process::CommandExt::process_group(c, 0);
            Ok(())
        });
    for (k, v) in &call.env {
        expr = expr.env(k, v);
    }
    let stdin = if keep_stdin {
        let (r, w) = os_pipe::pipe().map_err(|e| format!("make a pipe: {e}"))?;
        expr = expr.stdin_file(r);
        Some(w)
    } else {
        expr = expr.stdin_null();
        None
    };
    let handle = Arc::new(expr.reader().map_err(|e| e.to_string())?);
    let pgid = handle.pids().first().copied();
    let output = Arc::new(Mutex::new(Vec::new()));
    let (tx, events) = mpsc::channel();
    {
        let handle = Arc::clone(&handle);
        let output = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut reader = &*handle;
            let mut buf = [0_u8; 8192];
            let mut ready = false;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if let Ok(mut out) = output.lock() {
                    let room = MAX_OUTPUT_BYTES.saturating_sub(out.len());
                    out.extend_from_slice(&buf[..n.min(room)]);
                }
                if !ready && buf[..n].contains(&b'\n') {
                    ready = true;
                    let _ = tx.send(Event::FirstLine);
                }
            }
            let _ = tx.send(Event::End);
        });
    }
    Ok(Started {
        handle,
        pgid,
        output,
        events,
        stdin,
        started: Instant::now(),
    })
}

impl Started {
    fn kill(&self) {
        if let Some(pid) = self
            .pgid
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.handle.kill();
    }

    /// Waits for the end of the output until `deadline`, kills the group past it, and
    /// returns how the call ended.
    fn finish(self, call: &HookCall, deadline: Instant, timed_out_already: bool) -> HookRun {
        let mut timed_out = timed_out_already;
        if !timed_out {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.events.recv_timeout(left) {
                    Ok(Event::End) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Ok(Event::FirstLine) => {}
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        timed_out = true;
                        break;
                    }
                }
            }
        }
        if timed_out {
            self.kill();
            let until = Instant::now() + AFTER_KILL;
            while let Ok(e) = self
                .events
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                if matches!(e, Event::End) {
                    break;
                }
            }
        }
        let outcome = if timed_out {
            HookOutcome::TimedOut
        } else {
            match self.handle.try_wait() {
                Ok(Some(out)) if out.status.success() => HookOutcome::Ok,
                Ok(Some(out)) => HookOutcome::Failed {
                    code: out.status.code(),
                },
                Ok(None) => {
                    // The output ended but the process did not (it closed it): wait
                    // for it within the deadline.
                    return self.wait_exit(call, deadline);
                }
                Err(e) => HookOutcome::NotStarted {
                    error: e.to_string(),
                },
            }
        };
        self.into_run(call, outcome)
    }

    fn wait_exit(self, call: &HookCall, deadline: Instant) -> HookRun {
        loop {
            match self.handle.try_wait() {
                Ok(Some(out)) => {
                    let outcome = if out.status.success() {
                        HookOutcome::Ok
                    } else {
                        HookOutcome::Failed {
                            code: out.status.code(),
                        }
                    };
                    return self.into_run(call, outcome);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => {
                    self.kill();
                    return self.into_run(call, HookOutcome::TimedOut);
                }
                Err(e) => {
                    let error = e.to_string();
                    return self.into_run(call, HookOutcome::NotStarted { error });
                }
            }
        }
    }

    fn into_run(self, call: &HookCall, outcome: HookOutcome) -> HookRun {
        let output = self
            .output
            .lock()
            .map(|o| String::from_utf8_lossy(&o).into_owned())
            .unwrap_or_default();
        HookRun {
            hook: call.hook.clone(),
            event: call.event,
            datasets: call.datasets.clone(),
            outcome,
            output,
            millis: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            skipped: false,
        }
    }
}

fn not_started(call: &HookCall, error: String) -> HookRun {
    HookRun {
        hook: call.hook.clone(),
        event: call.event,
        datasets: call.datasets.clone(),
        outcome: HookOutcome::NotStarted { error },
        output: String::new(),
        millis: 0,
        skipped: false,
    }
}

fn timeout_of(call: &HookCall) -> Duration {
    Duration::from_secs(call.timeout.seconds())
}

/// Runs `call` to its end, or kills its process group at its timeout.
pub fn run_call(call: &HookCall) -> HookRun {
    match start(call, false) {
        Err(e) => not_started(call, e),
        Ok(s) => {
            let deadline = s.started + timeout_of(call);
            s.finish(call, deadline, false)
        }
    }
}

/// A hook holding over the snapshots: started, and ready.
pub struct Held {
    started: Started,
    call: HookCall,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("hook", &self.call.hook)
            .finish()
    }
}

/// Starts a holding call and waits for its first line of output (it is ready).
///
/// # Errors
/// It could not be started, ended or printed nothing before its timeout (its group is
/// then killed): the run says how.
pub fn start_held(call: &HookCall) -> Result<Held, HookRun> {
    let started = start(call, true).map_err(|e| not_started(call, e))?;
    let deadline = started.started + timeout_of(call);
    match started
        .events
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        Ok(Event::FirstLine) => Ok(Held {
            started,
            call: call.clone(),
        }),
        // It ended without a line: how it ended says why.
        Ok(Event::End) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            let mut run = started.finish(call, deadline, false);
            if run.outcome == HookOutcome::Ok {
                run.outcome = HookOutcome::Failed { code: Some(0) };
                run.output
                    .push_str("(ended without printing the line that says it is ready)");
            }
            Err(run)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => Err(started.finish(call, deadline, true)),
    }
}

impl Held {
    /// Closes the hook's standard input (its signal to let go) and waits for it to
    /// end, at most its timeout again.
    pub fn release(mut self) -> HookRun {
        drop(self.started.stdin.take());
        let deadline = Instant::now() + timeout_of(&self.call);
        self.started.finish(&self.call, deadline, false)
    }
}
