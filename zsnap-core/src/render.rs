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
//! - **problems** (what the plan cannot do) and **notes**.
//!
//! The output depends on nothing but the plan, so it is stable and deterministic. It is
//! meant for people and may change between versions; `--json` (serde of [`Plan`]) is
//! the stable form.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::plan::{
    Decision, KeepReason, Location, Plan, SendBase, SendSpec, Step, TransferStep, Verdict,
};
use crate::simulate::action;
use crate::zfs_names::{DatasetName, SnapshotName};

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
        for (title, notes) in [("problems", &self.problems), ("notes", &self.notes)] {
            if notes.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{title}:");
            for note in notes {
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
    let mut s = String::with_capacity(20);
    push_time(&mut s, t);
    s
}

/// Appends `t` as `%Y-%m-%dT%H:%M:%SZ` formats it (`2026-11-23T15:00:00Z`), digit by
/// digit: a plan for a million snapshots prints a million times, and chrono's
/// formatter walks its format items for each one.
fn push_time(out: &mut String, t: DateTime<Utc>) {
    let Ok(year @ 0..=9999) = u32::try_from(t.year()) else {
        // chrono signs years outside 0000-9999 (`+10000`); leave those to it.
        let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%SZ"));
        return;
    };
    // `%S` shows a leap second (nanoseconds past 1e9) as 60.
    let second = t.second() + t.nanosecond() / 1_000_000_000;
    let mut buf = *b"0000-00-00T00:00:00Z";
    for (range, value) in [
        (0..4, year),
        (5..7, t.month()),
        (8..10, t.day()),
        (11..13, t.hour()),
        (14..16, t.minute()),
        (17..19, second),
    ] {
        let mut v = value;
        for b in buf[range].iter_mut().rev() {
            *b = b"0123456789"[(v % 10) as usize];
            v /= 10;
        }
    }
    out.push_str(std::str::from_utf8(&buf).expect("digits, '-', ':', 'T' and 'Z' are ASCII"));
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
    let mut p = String::new();
    push_padded(&mut p, s, w);
    p
}

/// Appends `s` and spaces up to `w` characters.
fn push_padded(out: &mut String, s: &str, w: usize) {
    out.push_str(s);
    for _ in width(s)..w {
        out.push(' ');
    }
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

type GroupKey<'p> = (&'p Location, &'p DatasetName);

/// The decisions per location and dataset, sorted by both; inside a group in plan order.
///
/// Planners emit a dataset's decisions together, so keys are compared once per run of
/// one dataset rather than looked up once per decision.
fn grouped(decisions: &[Decision]) -> Vec<(GroupKey<'_>, Vec<&Decision>)> {
    let mut runs: Vec<(GroupKey<'_>, Vec<&Decision>)> = Vec::new();
    for d in decisions {
        let key = (&d.location, d.snapshot.dataset());
        match runs.last_mut() {
            Some((k, run)) if *k == key => run.push(d),
            _ => runs.push((key, vec![d])),
        }
    }
    // A stable sort: runs of one key stay in plan order.
    runs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut groups: Vec<(GroupKey<'_>, Vec<&Decision>)> = Vec::with_capacity(runs.len());
    for (key, run) in runs {
        match groups.last_mut() {
            Some((k, group)) if *k == key => group.extend(run),
            _ => groups.push((key, run)),
        }
    }
    groups
}

fn render_decisions(out: &mut String, decisions: &[Decision]) {
    for ((location, dataset), group) in grouped(decisions) {
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
            out.push_str("    ");
            push_padded(out, verdict_word(&d.verdict), 7);
            out.push_str("  ");
            push_padded(out, d.snapshot.short().as_str(), name_w);
            out.push_str("  ");
            push_time(out, d.creation);
            push_why(out, &d.verdict);
            out.push('\n');
        }
    }
}

fn verdict_word(v: &Verdict) -> &'static str {
    match v {
        Verdict::Keep { .. } => "keep",
        Verdict::Protect { .. } => "protect",
        Verdict::Destroy => "destroy",
    }
}

/// `  kept: R1; R2` or `  protected: P1, P2[; kept: R1]`; nothing for a destroy.
fn push_why(out: &mut String, v: &Verdict) {
    match v {
        Verdict::Keep { reasons } => {
            out.push_str("  ");
            push_kept(out, reasons);
        }
        Verdict::Protect {
            protections,
            reasons,
        } => {
            out.push_str("  protected: ");
            for (i, p) in protections.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{p}");
            }
            if !reasons.is_empty() {
                out.push_str("; ");
                push_kept(out, reasons);
            }
        }
        Verdict::Destroy => {}
    }
}

fn push_kept(out: &mut String, reasons: &[KeepReason]) {
    out.push_str("kept: ");
    for (i, r) in reasons.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        let _ = write!(out, "{r}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chrono_time(t: DateTime<Utc>) -> String {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, nanos: u32) -> DateTime<Utc> {
        chrono::NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_nano_opt(h, mi, s, nanos))
            .expect("a valid date and time in the test")
            .and_utc()
    }

    #[test]
    fn time_is_chronos_format_at_the_edges() {
        for t in [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            DateTime::<Utc>::UNIX_EPOCH,
            at(0, 1, 1, 0, 0, 0, 0),
            at(-1, 12, 31, 23, 59, 59, 999_999_999),
            at(9999, 12, 31, 23, 59, 59, 999_999_999),
            at(10000, 1, 1, 0, 0, 0, 0),
            at(2016, 12, 31, 23, 59, 59, 1_500_000_000), // a leap second
            at(2026, 11, 23, 15, 0, 0, 0),
        ] {
            assert_eq!(time(t), chrono_time(t), "{t:?}");
        }
        assert_eq!(
            time(at(2016, 12, 31, 23, 59, 59, 1_000_000_000)),
            "2016-12-31T23:59:60Z"
        );
        assert_eq!(time(at(7, 2, 3, 4, 5, 6, 0)), "0007-02-03T04:05:06Z");
    }

    /// The naive grouping: a sorted map from key to the decisions in plan order.
    fn grouped_oracle(decisions: &[Decision]) -> Vec<(GroupKey<'_>, Vec<&Decision>)> {
        let mut groups: std::collections::BTreeMap<GroupKey<'_>, Vec<&Decision>> =
            std::collections::BTreeMap::new();
        for d in decisions {
            groups
                .entry((&d.location, d.snapshot.dataset()))
                .or_default()
                .push(d);
        }
        groups.into_iter().collect()
    }

    proptest! {
        #[test]
        fn grouped_is_a_sorted_map_in_plan_order(
            keys in proptest::collection::vec((0..3usize, 0..4usize), 0..40),
        ) {
            let decisions: Vec<Decision> = keys
                .iter()
                .enumerate()
                .map(|(i, (l, d))| {
                    Decision::new(
                        Location(format!("l{l}")),
                        format!("tank/d{d}@s{i}").parse().expect("a valid name"),
                        crate::inventory::Guid(i as u64),
                        DateTime::<Utc>::UNIX_EPOCH,
                        Verdict::Destroy,
                    )
                })
                .collect();
            let got = grouped(&decisions);
            prop_assert_eq!(&got, &grouped_oracle(&decisions));
            // Plan order inside each group, and every decision once.
            let total: usize = got.iter().map(|(_, g)| g.len()).sum();
            prop_assert_eq!(total, decisions.len());
        }

        #[test]
        fn time_is_chronos_format(
            secs in prop_oneof![
                // 0000-01-01 ..= 9999-12-31, where the digits are written by hand
                -62_167_219_200i64..=253_402_300_799,
                DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
            ],
            nanos in prop_oneof![0u32..1_000_000_000, 1_000_000_000u32..2_000_000_000],
        ) {
            // Nanoseconds past 1e9 (a leap second) are only valid in a minute's last second.
            let secs = if nanos >= 1_000_000_000 { secs - secs.rem_euclid(60) + 59 } else { secs };
            if let Some(t) = DateTime::<Utc>::from_timestamp(secs, nanos) {
                prop_assert_eq!(time(t), chrono_time(t));
            }
        }
    }
}
