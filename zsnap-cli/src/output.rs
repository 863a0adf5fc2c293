//! Printing: JSON values, human tables, and progress while a plan runs.

use std::io::{IsTerminal as _, Write};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use zsnap_core::Step;
use zsnap_exec::apply::{Observer, StepOutcome};

use crate::request::Verbosity;

/// Writes `value` as pretty JSON and a newline.
///
/// # Errors
/// When stdout is closed or the value does not serialize.
pub fn json(out: &mut dyn Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).context("write JSON to stdout")?;
    writeln!(out).context("write to stdout")?;
    Ok(())
}

/// Writes text.
///
/// # Errors
/// When stdout is closed.
pub fn text(out: &mut dyn Write, s: &str) -> anyhow::Result<()> {
    out.write_all(s.as_bytes()).context("write to stdout")
}

/// Pads columns: every row gets each column as wide as its widest cell. In a row with
/// fewer cells than the widest row, the last cell spans the columns left (a message
/// such as `unreachable: …`) and widens none of them.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() && r.len() < cols {
                continue;
            }
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut s = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(c);
                line.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

/// A duration in words: `3d4h`, `15m`, `40s` (the two largest units; `in 5m` when
/// negative), as the library's status and check messages say it.
pub fn age(d: chrono::TimeDelta) -> String {
    zsnap_exec::status::age(d)
}

/// A spinner on stderr for a restore, when stderr is a terminal and not `-q`: the
/// stream being received (its place in the chain) and its bytes so far.
pub struct RestoreProgress {
    bar: Option<(usize, ProgressBar)>,
    show: bool,
}

impl RestoreProgress {
    /// A reporter at this verbosity.
    pub fn new(verbosity: Verbosity) -> Self {
        RestoreProgress {
            bar: None,
            show: verbosity != Verbosity::Quiet && std::io::stderr().is_terminal(),
        }
    }

    /// Stream `index` of the chain (`total` streams) has moved `bytes`.
    pub fn update(&mut self, index: usize, total: usize, bytes: u64) {
        if !self.show {
            return;
        }
        if self.bar.as_ref().is_none_or(|(i, _)| *i != index) {
            if let Some((_, old)) = self.bar.take() {
                old.finish_and_clear();
            }
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(format!("receive stream {} of {total}", index + 1));
            self.bar = Some((index, bar));
        }
        if let Some((_, bar)) = &self.bar {
            bar.set_position(bytes);
        }
    }
}

impl Drop for RestoreProgress {
    fn drop(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Reports progress on stderr: on a terminal, a bar per transfer (bytes, rate, ETA);
/// otherwise a plain line when a transfer starts and ends. With `-v`, a line per step.
pub struct Progress {
    verbosity: Verbosity,
    terminal: bool,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A reporter at this verbosity.
    pub fn new(verbosity: Verbosity) -> Self {
        Progress {
            verbosity,
            terminal: std::io::stderr().is_terminal(),
            bar: None,
        }
    }

    fn say(&self, line: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }

    fn verbose(&self) -> bool {
        self.verbosity >= Verbosity::Verbose(1)
    }
}

/// What a step that moves a stream moves: `source -> destination`, and how many bytes
/// are expected when that is known.
fn moving(step: &Step) -> Option<(String, Option<u64>)> {
    match step {
        Step::Transfer(t) => Some((format!("{} -> {}", t.source, t.target), t.estimated_bytes)),
        Step::Backup(b) => Some((
            format!("{} -> {}", b.dataset, b.store.url_of(&b.stream.key())),
            None,
        )),
        _ => None,
    }
}

impl Observer for Progress {
    fn step_started(&mut self, index: usize, step: &Step) {
        let quiet = self.verbosity == Verbosity::Quiet;
        match moving(step) {
            Some((what, estimate)) if self.terminal && !quiet => {
                let (bar, template) = match estimate {
                    Some(n) => (
                        ProgressBar::new(n),
                        "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    ),
                    None => (
                        ProgressBar::new_spinner(),
                        "{spinner} {msg} {bytes} {bytes_per_sec}",
                    ),
                };
                bar.set_style(
                    ProgressStyle::with_template(template)
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_message(what);
                self.bar = Some(bar);
            }
            Some((what, estimate)) if !quiet => {
                let verb = if matches!(step, Step::Backup(_)) {
                    "backup"
                } else {
                    "transfer"
                };
                let size = estimate.map_or_else(String::new, |n| format!(" (about {n} bytes)"));
                self.say(&format!("{verb} {what}{size}: {}", step.reason()));
            }
            _ if self.verbose() => self.say(&format!("[{}] {}", index + 1, step.reason())),
            _ => {}
        }
    }

    fn transfer_progress(&mut self, _index: usize, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
        }
    }

    fn step_finished(&mut self, index: usize, step: &Step, outcome: &StepOutcome) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        match moving(step) {
            Some((what, _)) if self.verbosity > Verbosity::Quiet => {
                let bytes = match outcome {
                    StepOutcome::Done { bytes: Some(b) } => format!(" ({b} bytes)"),
                    _ => String::new(),
                };
                let verb = if matches!(step, Step::Backup(_)) {
                    "backup"
                } else {
                    "transfer"
                };
                self.say(&format!("{verb} {what}: {}{bytes}", outcome.word()));
            }
            _ if self.verbose() => self.say(&format!("[{}] {}", index + 1, outcome.word())),
            _ => {}
        }
    }

    fn wants_bytes(&self) -> bool {
        self.terminal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_row_spans_the_columns_left() {
        let row = |cells: &[&str]| cells.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
        let t = table(&[
            row(&["A", "BB", "C"]),
            row(&["aaa", "b", "c"]),
            row(&["x", "unreachable: a long message"]),
        ]);
        assert_eq!(
            t,
            "A    BB  C\naaa  b   c\nx    unreachable: a long message\n"
        );
    }
}
