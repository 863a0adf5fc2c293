//! The human table of a [`Plan`], as dry runs print it.
//!
//! Three sections, each printed only when it has something:
//! - **steps**, one line each, numbered from 1 (as [`crate::SimulateError`] counts):
//!   location, action, what it touches (long lists cut to the first
//!   [`LISTED`] names and "… and N more"), and the planner's reason;
//! - **decisions**, grouped per location and dataset (sorted by both; inside a group in
//!   the plan's order, which planners make oldest first): each snapshot with
//!   `keep`/`protect`/`destroy`, its creation time and its reasons
//!   (`kept: daily = 7 [2026-11-23]; hourly = 24 [2026-11-23T14:00+01:00]`);
//! - **notes**.
//!
//! The output depends on nothing but the plan, so it is stable and deterministic. It is
//! meant for people and may change between versions; `--json` (serde of [`Plan`]) is
//! the stable form.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::names::{DatasetName, SnapshotName};
use crate::plan::{
    Decision, KeepReason, Location, Plan, Protection, SendBase, SendSpec, Step, TransferStep,
    Verdict,
};
use crate::simulate::action;

/// How many names a step line lists before "… and N more".
pub const LISTED: usize = 5;

impl Plan {
    /// The plan as a human table (see the [module docs](crate::render)).
    ///
    /// # Example
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use zsnap_core::{DestroyStep, Guid, Location, Plan, SnapshotRef, Step};
    /// let mut plan = Plan::new(Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap());
    /// plan.steps.push(Step::Destroy(DestroyStep::new(
    ///     Location::local(),
    ///     "tank/a".parse().unwrap(),
    ///     vec![SnapshotRef::new("old".parse().unwrap(), Guid(7))],
    ///     "policy default keeps it no longer",
    /// )));
    /// assert_eq!(
    ///     plan.render(),
    ///     "plan for 2026-11-23T15:00:00Z: 1 step\n\
    ///      \n\
    ///      steps:\n  \
    ///        1  local  destroy  tank/a@old  — policy default keeps it no longer\n"
    /// );
    /// ```
    pub fn render(&self) -> String {
        let mut out = String::new();
        let when = self.now.map_or_else(|| "an unknown time".to_owned(), time);
        let n = self.steps.len();
        let what = match n {
            0 => "nothing to do".to_owned(),
            1 => "1 step".to_owned(),
            n => format!("{n} steps"),
        };
        let _ = writeln!(out, "plan for {when}: {what}");
        if !self.steps.is_empty() {
            out.push_str("\nsteps:\n");
            render_steps(&mut out, &self.steps);
        }
        if !self.decisions.is_empty() {
            out.push_str("\ndecisions:\n");
            render_decisions(&mut out, &self.decisions);
        }
        if !self.notes.is_empty() {
            out.push_str("\nnotes:\n");
            for note in &self.notes {
                match &note.dataset {
                    Some(d) => {
                        let _ = writeln!(out, "  {d}: {}", note.message);
                    }
                    None => {
                        let _ = writeln!(out, "  {}", note.message);
                    }
                }
            }
        }
        out
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn render_steps(out: &mut String, steps: &[Step]) {
    let rows: Vec<[String; 4]> = steps
        .iter()
        .map(|s| {
            let (location, action, target) = describe(s);
            [location, action, target, s.reason().to_owned()]
        })
        .collect();
    let num_w = steps.len().to_string().len();
    let loc_w = rows.iter().map(|r| width(&r[0])).max().unwrap_or(0);
    let act_w = rows.iter().map(|r| width(&r[1])).max().unwrap_or(0);
    for (i, [location, action, target, reason]) in rows.iter().enumerate() {
        let _ = write!(
            out,
            "  {:>num_w$}  {}  {}  {target}",
            i + 1,
            pad(location, loc_w),
            pad(action, act_w),
        );
        if !reason.is_empty() {
            let _ = write!(out, "  — {reason}");
        }
        out.push('\n');
    }
}

/// Width in characters (names are ASCII, locations and arrows may not be).
fn width(s: &str) -> usize {
    s.chars().count()
}

fn pad(s: &str, w: usize) -> String {
    let mut p = s.to_owned();
    for _ in width(s)..w {
        p.push(' ');
    }
    p
}

/// `a, b, c … and N more`.
fn listed<I: ExactSizeIterator<Item = String>>(items: I) -> String {
    let total = items.len();
    let mut s = String::new();
    for (i, item) in items.take(LISTED).enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&item);
    }
    if total > LISTED {
        let _ = write!(s, " … and {} more", total - LISTED);
    }
    s
}

fn describe(step: &Step) -> (String, String, String) {
    let act = action(step).to_owned();
    match step {
        Step::Snapshot(s) => (
            s.location.to_string(),
            act,
            listed(s.names.iter().map(SnapshotName::to_string)),
        ),
        Step::Destroy(s) => {
            // `tank/a@x, @y, @z`: the dataset once, then the short names.
            let names = s.snapshots.iter().enumerate().map(|(i, r)| {
                if i == 0 {
                    format!("{}@{}", s.dataset, r.name)
                } else {
                    format!("@{}", r.name)
                }
            });
            (s.location.to_string(), act, listed(names))
        }
        Step::Hold(s) | Step::Release(s) => (
            s.location.to_string(),
            act,
            format!("{} (tag {:?})", s.snapshot, s.tag),
        ),
        Step::Bookmark(s) => (
            s.location.to_string(),
            act,
            format!("{} → {}", s.snapshot, s.bookmark),
        ),
        Step::DestroyBookmark(s) => (s.location.to_string(), act, s.bookmark.to_string()),
        Step::Transfer(t) => {
            let location = if t.from == t.to {
                t.from.to_string()
            } else {
                format!("{} → {}", t.from, t.to)
            };
            let (kind, what) = transfer(t);
            (location, format!("{act} {kind}"), what)
        }
        Step::AbortReceive(s) => (s.location.to_string(), act, s.dataset.to_string()),
        Step::Backup(b) => {
            let kind = match &b.send {
                SendSpec::Incremental { .. } => "incremental",
                _ => "full",
            };
            let what = format!(
                "{}@{} → {}",
                b.dataset,
                b.stream.snapshot(),
                b.store.url_of(&b.stream.key())
            );
            (b.location.to_string(), format!("{act} {kind}"), what)
        }
    }
}

fn transfer(t: &TransferStep) -> (&'static str, String) {
    let (kind, mut what) = match &t.send {
        SendSpec::Full { snapshot } => (
            "full",
            format!("{}@{} → {}", t.source, snapshot.name, t.target),
        ),
        SendSpec::Incremental {
            base,
            snapshot,
            intermediates,
            expected,
        } => {
            let base = match base {
                SendBase::Snapshot { name, .. } => format!("@{name}"),
                SendBase::Bookmark { name, .. } => format!("#{name}"),
            };
            let mut s = format!("{}{base} .. @{} → {}", t.source, snapshot.name, t.target);
            if *intermediates {
                let n = expected.len();
                let _ = write!(s, " ({n} snapshot{})", if n == 1 { "" } else { "s" });
            }
            (if *intermediates { "-I" } else { "-i" }, s)
        }
        SendSpec::Resume { snapshot, .. } => {
            let s = match snapshot {
                Some(r) => format!("{}@{} → {}", t.source, r.name, t.target),
                None => format!("{} → {}", t.source, t.target),
            };
            ("resume", s)
        }
    };
    let mut flags = Vec::new();
    if t.raw {
        flags.push("raw".to_owned());
    }
    if t.recv.force {
        flags.push("force (-F)".to_owned());
    }
    if let Some(b) = t.estimated_bytes {
        flags.push(format!("~{}", bytes(b)));
    }
    if !flags.is_empty() {
        let _ = write!(what, " [{}]", flags.join(", "));
    }
    (kind, what)
}

/// Binary units with one decimal: `512 B`, `1.5 KiB`, `2.0 GiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn render_decisions(out: &mut String, decisions: &[Decision]) {
    let mut groups: BTreeMap<(&Location, &DatasetName), Vec<&Decision>> = BTreeMap::new();
    for d in decisions {
        groups
            .entry((&d.location, d.snapshot.dataset()))
            .or_default()
            .push(d);
    }
    for ((location, dataset), group) in groups {
        let (mut keep, mut protect, mut destroy) = (0, 0, 0);
        for d in &group {
            match d.verdict {
                Verdict::Keep { .. } => keep += 1,
                Verdict::Protect { .. } => protect += 1,
                Verdict::Destroy => destroy += 1,
            }
        }
        let _ = writeln!(
            out,
            "  {dataset} (at {location}): {keep} kept, {protect} protected, {destroy} destroyed"
        );
        let name_w = group
            .iter()
            .map(|d| width(d.snapshot.short().as_str()))
            .max()
            .unwrap_or(0);
        for d in group {
            let (word, why) = verdict(&d.verdict);
            let _ = write!(
                out,
                "    {}  {}  {}",
                pad(word, 7),
                pad(d.snapshot.short().as_str(), name_w),
                time(d.creation),
            );
            if !why.is_empty() {
                let _ = write!(out, "  {why}");
            }
            out.push('\n');
        }
    }
}

fn verdict(v: &Verdict) -> (&'static str, String) {
    match v {
        Verdict::Keep { reasons } => ("keep", kept(reasons)),
        Verdict::Protect {
            protections,
            reasons,
        } => {
            let mut s = String::from("protected: ");
            s.push_str(&joined(protections.iter().map(Protection::to_string), ", "));
            if !reasons.is_empty() {
                s.push_str("; ");
                s.push_str(&kept(reasons));
            }
            ("protect", s)
        }
        Verdict::Destroy => ("destroy", String::new()),
    }
}

fn kept(reasons: &[KeepReason]) -> String {
    format!(
        "kept: {}",
        joined(reasons.iter().map(KeepReason::to_string), "; ")
    )
}

fn joined(items: impl Iterator<Item = String>, sep: &str) -> String {
    let mut s = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            s.push_str(sep);
        }
        s.push_str(&item);
    }
    s
}
