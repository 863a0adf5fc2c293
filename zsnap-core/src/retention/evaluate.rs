//! [`evaluate`]: which candidates a policy keeps, and why.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::grid::{Grid, GridKeep};
use super::pattern::NameRegex;
use super::replicated::Replicated;
use super::rule::{Candidate, KeepRule, RetentionPolicy, SanoidCounts, CALENDAR_UNITS};
use crate::duration::Span;
use crate::plan::KeepReason;

/// Decides which of one dataset's candidates `policy` keeps, and why.
///
/// `candidates` are the snapshots the policy manages, oldest → newest (by `createtxg`).
/// The result has one entry per candidate, in the same order: every (rule, bucket) that
/// keeps it, in the order of the policy's rules (then `keep_oldest`); empty means no rule
/// keeps it. `now` and `tz` are the instant and time zone of the evaluation; see
/// [`KeepRule`] for what each rule does with them.
///
/// Runs in O(n log n) for n candidates (O(n) when they are already in creation order),
/// compiles nothing and allocates only the reasons it returns.
///
/// # Examples
///
/// Equal creation seconds: the later candidate (higher `createtxg`) is the newer one
/// for every rule but `last N`, which ranks them by name, descending, as zrepl's
/// `last_n` does.
/// ```
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::retention::{evaluate, Candidate, KeepRule, RetentionPolicy};
/// use zsnap_core::{Guid, ShortName};
///
/// let (a, b): (ShortName, ShortName) = ("a".parse().unwrap(), "b".parse().unwrap());
/// let t = Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0).unwrap();
/// let cands = [
///     Candidate::new(&a, Guid(1), 100, t, Some("hourly")),
///     Candidate::new(&b, Guid(2), 101, t, Some("hourly")),
/// ];
/// let policy = RetentionPolicy::new(vec![KeepRule::last(1)]);
/// let kept = evaluate(&policy, &cands, t, chrono_tz::UTC);
/// assert!(kept[0].is_empty());
/// assert_eq!(kept[1][0].to_string(), "last 1 [#1 of 1]");
/// ```
///
/// A fall-back day in Berlin: 25 hours, one `daily` bucket, and the repeated hour 02 is
/// one `hourly` bucket.
/// ```
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::retention::{evaluate, Candidate, RetentionPolicy};
/// use zsnap_core::{Guid, ShortName};
///
/// let names: Vec<ShortName> = (0..3).map(|i| format!("s{i}").parse().unwrap()).collect();
/// // 02:30 CEST, 02:30 CET (one real hour later), 03:30 CET on 2026-10-25.
/// let times = [(0, 30), (1, 30), (2, 30)].map(|(h, m)| Utc.with_ymd_and_hms(2026, 10, 25, h, m, 0).unwrap());
/// let cands: Vec<Candidate> = (0..3)
///     .map(|i| Candidate::new(&names[i], Guid(i as u64), i as u64, times[i], None))
///     .collect();
/// let policy = RetentionPolicy::new(vec!["calendar hourly = 5, daily = 5".parse().unwrap()]);
/// let kept = evaluate(&policy, &cands, times[2], chrono_tz::Europe::Berlin);
/// let text: Vec<Vec<String>> = kept.iter().map(|r| r.iter().map(|r| r.to_string()).collect()).collect();
/// assert_eq!(text, [
///     vec![],
///     vec!["hourly = 5 [2026-10-25T02:00+01:00]".to_owned()],
///     vec!["hourly = 5 [2026-10-25T03:00+01:00]".to_owned(), "daily = 5 [2026-10-25]".to_owned()],
/// ]);
/// ```
///
/// ISO week 53: 2026-12-31 (a Thursday) and 2027-01-03 (a Sunday) are both in
/// `2026-W53`; 2027-01-04 starts `2027-W01`.
/// ```
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::retention::{evaluate, Candidate, RetentionPolicy};
/// use zsnap_core::{Guid, ShortName};
///
/// let names: Vec<ShortName> = (0..3).map(|i| format!("s{i}").parse().unwrap()).collect();
/// let days = [(2026, 12, 31), (2027, 1, 3), (2027, 1, 4)];
/// let cands: Vec<Candidate> = (0..3)
///     .map(|i| {
///         let (y, m, d) = days[i];
///         let t = Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap();
///         Candidate::new(&names[i], Guid(i as u64), i as u64, t, None)
///     })
///     .collect();
/// let policy = RetentionPolicy::new(vec!["weekly = 3".parse().unwrap()]);
/// let kept = evaluate(&policy, &cands, cands[2].creation, chrono_tz::UTC);
/// assert!(kept[0].is_empty()); // 2026-W53 is represented by its newest, 2027-01-03
/// assert_eq!(kept[1][0].bucket, "2026-W53");
/// assert_eq!(kept[2][0].bucket, "2027-W01");
/// ```
#[must_use]
pub fn evaluate(
    policy: &RetentionPolicy,
    candidates: &[Candidate<'_>],
    now: DateTime<Utc>,
    tz: Tz,
) -> Vec<Vec<KeepReason>> {
    evaluate_with(policy, candidates, now, tz, &Replicated::new())
}

/// [`evaluate`], knowing what each replication target of the dataset has received, for
/// the rule `not replicated to T` ([`KeepRule::NotReplicated`]).
///
/// # Example
/// ```
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::retention::{evaluate_with, Candidate, KeepRule, Replicated, RetentionPolicy};
/// use zsnap_core::{Guid, ShortName};
///
/// let names: Vec<ShortName> = (0..3).map(|i| format!("s{i}").parse().unwrap()).collect();
/// let t = Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0).unwrap();
/// let cands: Vec<Candidate> = (0..3)
///     .map(|i| Candidate::new(&names[i], Guid(i as u64), 10 + i as u64, t, None))
///     .collect();
/// let policy = RetentionPolicy::new(vec![KeepRule::NotReplicated("offsite".to_owned())]);
/// // offsite has s1 (createtxg 11): only s2 is still to be sent.
/// let replicated = Replicated::new().with_target("offsite", Some(11));
/// let kept = evaluate_with(&policy, &cands, t, chrono_tz::UTC, &replicated);
/// assert!(kept[0].is_empty() && kept[1].is_empty());
/// assert_eq!(
///     kept[2][0].to_string(),
///     "not replicated to offsite [newer than the newest snapshot on offsite (createtxg 11)]"
/// );
/// ```
#[must_use]
pub fn evaluate_with(
    policy: &RetentionPolicy,
    candidates: &[Candidate<'_>],
    now: DateTime<Utc>,
    tz: Tz,
    replicated: &Replicated,
) -> Vec<Vec<KeepReason>> {
    let mut out: Vec<Vec<KeepReason>> = Vec::with_capacity(candidates.len());
    out.resize_with(candidates.len(), Vec::new);
    if candidates.is_empty() {
        return out;
    }
    let order = age_order(candidates);
    let mut ctx = Ctx {
        cands: candidates,
        order: &order,
        tz,
        local: None,
        out: &mut out,
        replicated,
        suffix: String::new(),
    };
    for rule in &policy.rules {
        ctx.apply(rule, now);
    }
    if policy.keep_oldest {
        out[order[0]].push(KeepReason::new("keep_oldest", "oldest"));
    }
    out
}

/// Indices of `cands` from oldest to newest: by creation, then createtxg, then position.
fn age_order(cands: &[Candidate<'_>]) -> Vec<usize> {
    let key = |i: usize| (cands[i].creation, cands[i].createtxg, i);
    let mut order: Vec<usize> = (0..cands.len()).collect();
    // Listings are nearly always in creation order already; only sort when they are not.
    if !order.windows(2).all(|w| key(w[0]) <= key(w[1])) {
        order.sort_unstable_by_key(|&i| key(i));
    }
    order
}

struct Ctx<'c, 'a> {
    cands: &'c [Candidate<'a>],
    /// Oldest → newest.
    order: &'c [usize],
    tz: Tz,
    /// Local wall-clock time and offset of each candidate, computed once when a
    /// calendar rule first needs them.
    local: Option<Vec<(NaiveDateTime, FixedOffset)>>,
    out: &'c mut Vec<Vec<KeepReason>>,
    replicated: &'c Replicated,
    /// Appended to every reason's rule: the filters this rule runs inside
    /// (` (regex ^zrepl_)`).
    suffix: String,
}

impl Ctx<'_, '_> {
    /// Records that `rule` keeps candidate `i` for `bucket`.
    fn keep(&mut self, i: usize, rule: &str, bucket: impl Into<String>) {
        let rule = if self.suffix.is_empty() {
            rule.to_owned()
        } else {
            format!("{rule}{}", self.suffix)
        };
        self.out[i].push(KeepReason::new(rule, bucket));
    }

    fn apply(&mut self, rule: &KeepRule, now: DateTime<Utc>) {
        match rule {
            KeepRule::Last {
                count,
                label,
                regex,
            } => self.last(&rule.to_string(), *count, label.as_deref(), regex.as_ref()),
            KeepRule::LabelCounts(map) => {
                for (label, &n) in map {
                    self.last(&format!("labels {label} = {n}"), n, Some(label), None);
                }
            }
            KeepRule::Calendar { .. } => {
                let counts = rule.calendar_counts().unwrap_or_default();
                for (unit, (name, n)) in CALENDAR_UNITS.iter().zip(counts).enumerate() {
                    if n > 0 {
                        self.calendar(unit, &format!("{name} = {n}"), n);
                    }
                }
            }
            KeepRule::Grid(g) => self.grid(g, &rule.to_string()),
            KeepRule::Sanoid(s) => self.sanoid(s, now),
            KeepRule::NewerThan(span) => self.newer_than(*span, now),
            KeepRule::Regex(p) | KeepRule::NotRegex(p) => {
                let (want, bucket) = match rule {
                    KeepRule::Regex(_) => (true, "name matches"),
                    _ => (false, "name does not match"),
                };
                let text = rule.to_string();
                for i in 0..self.cands.len() {
                    if p.is_match(self.cands[i].name.as_str()) == want {
                        self.keep(i, &text, bucket);
                    }
                }
            }
            KeepRule::NotReplicated(target) => self.not_replicated(&rule.to_string(), target),
            KeepRule::Filtered {
                regex,
                negate,
                rule: inner,
            } => self.filtered(regex, *negate, inner, now),
        }
    }

    fn filtered(&mut self, regex: &NameRegex, negate: bool, inner: &KeepRule, now: DateTime<Utc>) {
        let sub: Vec<usize> = (0..self.cands.len())
            .filter(|&i| regex.is_match(self.cands[i].name.as_str()) != negate)
            .collect();
        if sub.is_empty() {
            return;
        }
        let cands: Vec<Candidate<'_>> = sub.iter().map(|&i| self.cands[i]).collect();
        let order = age_order(&cands);
        let mut out: Vec<Vec<KeepReason>> = Vec::with_capacity(sub.len());
        out.resize_with(sub.len(), Vec::new);
        let not = if negate { "not " } else { "" };
        let mut ctx = Ctx {
            cands: &cands,
            order: &order,
            tz: self.tz,
            local: None,
            out: &mut out,
            replicated: self.replicated,
            suffix: format!(" ({not}regex {regex}){}", self.suffix),
        };
        ctx.apply(inner, now);
        for (i, reasons) in sub.into_iter().zip(out) {
            self.out[i].extend(reasons);
        }
    }

    fn not_replicated(&mut self, text: &str, target: &str) {
        match self.replicated.target(target) {
            None => {}
            Some(None) => {
                for i in 0..self.cands.len() {
                    self.keep(i, text, "nothing received yet");
                }
            }
            Some(Some(txg)) => {
                let bucket =
                    format!("newer than the newest snapshot on {target} (createtxg {txg})");
                for i in 0..self.cands.len() {
                    if self.cands[i].createtxg > txg {
                        self.keep(i, text, bucket.as_str());
                    }
                }
            }
        }
    }

    fn last(&mut self, text: &str, count: usize, label: Option<&str>, regex: Option<&NameRegex>) {
        if count == 0 {
            return;
        }
        let cands = self.cands;
        let mut ranked: Vec<usize> = self
            .order
            .iter()
            .copied()
            .filter(|&i| {
                let c = &cands[i];
                label.is_none_or(|l| c.label == Some(l))
                    && regex.is_none_or(|r| r.is_match(c.name.as_str()))
            })
            .collect();
        // zrepl's `last_n`: newest first by creation, equal seconds by name,
        // descending (then createtxg and position, which zrepl never needs: names
        // are unique within a dataset).
        let key = |i: usize| {
            (
                cands[i].creation,
                cands[i].name.as_str(),
                cands[i].createtxg,
                i,
            )
        };
        if ranked
            .windows(2)
            .any(|w| cands[w[0]].creation == cands[w[1]].creation)
        {
            ranked.sort_unstable_by_key(|&i| key(i));
        }
        for (rank, i) in ranked.into_iter().rev().take(count).enumerate() {
            self.keep(i, text, format!("#{} of {count}", rank + 1));
        }
    }

    fn calendar(&mut self, unit: usize, text: &str, count: usize) {
        let tz = self.tz;
        let cands = self.cands;
        let local = self.local.take().unwrap_or_else(|| {
            cands
                .iter()
                .map(|c| {
                    let t = c.creation.with_timezone(&tz);
                    (t.naive_local(), t.offset().fix())
                })
                .collect()
        });
        let mut last_bucket = None;
        let mut kept = 0;
        for i in self.order.iter().rev().copied() {
            let (t, offset) = local[i];
            let bucket = bucket_key(unit, t);
            // restic compares with the previous snapshot's bucket. Walking newest first,
            // local buckets only decrease unless a clock falls back across a bucket edge
            // it had already passed; fall-backs return into the bucket just left (a whole
            // hour at an hour's edge, or Lord Howe's half hour), so in practice this is
            // "a bucket not seen yet".
            if last_bucket == Some(bucket) {
                continue;
            }
            last_bucket = Some(bucket);
            self.keep(i, text, bucket_text(unit, t, offset));
            kept += 1;
            if kept == count {
                break;
            }
        }
        self.local = Some(local);
    }

    fn grid(&mut self, grid: &Grid, text: &str) {
        let (order, cands) = (self.order, self.cands);
        let n = order.len();
        let anchor = cands[order[n - 1]].creation;
        // Whole seconds suffice: interval edges are whole seconds from the anchor, and for
        // an integer edge e, age < e exactly when floor(age) < e.
        let age = |p: usize| {
            let c = &cands[order[n - 1 - p]];
            u64::try_from((anchor - c.creation).num_seconds()).unwrap_or(0)
        };
        // Positions p count newest first; ages only grow with p, so each interval's
        // candidates form one run of positions.
        let mut p = 0;
        while p < n {
            let Some(at) = locate(grid, age(p)) else {
                break;
            };
            let run_start = p;
            p += 1;
            while p < n && locate(grid, age(p)) == Some(at) {
                p += 1;
            }
            let (g, j) = at;
            let iv = grid.intervals()[g];
            let keep = match iv.keep {
                GridKeep::All => p - run_start,
                GridKeep::Oldest(k) => (p - run_start).min(k.get() as usize),
            };
            let (newer_edge, older_edge) = interval_bounds(grid, g, j);
            let bucket = format!(
                "#{} of {}x{} ({}, {}]",
                j + 1,
                iv.count,
                iv.length,
                instant_text(anchor, older_edge, self.tz),
                instant_text(anchor, newer_edge, self.tz),
            );
            // keep=N keeps the N oldest of the run, as zrepl does: by creation, and
            // among equal seconds the later listed (higher createtxg) first — zrepl
            // stable-sorts its createtxg-ordered listing youngest first and drops the
            // first ones.
            let mut run: Vec<usize> = (run_start..p).map(|q| order[n - 1 - q]).collect();
            if keep < run.len() {
                run.sort_unstable_by_key(|&i| {
                    (
                        cands[i].creation,
                        std::cmp::Reverse(cands[i].createtxg),
                        std::cmp::Reverse(i),
                    )
                });
                run.truncate(keep);
            }
            for i in run {
                self.keep(i, text, bucket.as_str());
            }
        }
    }

    fn sanoid(&mut self, counts: &SanoidCounts, now: DateTime<Utc>) {
        let now_s = i128::from(now.timestamp());
        for (name, n, period) in counts.types() {
            let max_age = now_s - (n as i128) * i128::from(period);
            let text = format!("sanoid {name} = {n}");
            let mut limit_text: Option<String> = None;
            let mut rank = 0;
            for i in self.order.iter().rev().copied() {
                let c = &self.cands[i];
                if c.label != Some(name) {
                    continue;
                }
                rank += 1;
                let young = i128::from(c.creation.timestamp()) >= max_age;
                let bucket = if rank <= n {
                    format!("#{rank} of {n}")
                } else if young {
                    limit_text
                        .get_or_insert_with(|| format!("after {}", seconds_text(max_age, self.tz)))
                        .clone()
                } else {
                    // Older than the limit and beyond the count; so is everything older.
                    break;
                };
                self.keep(i, text.as_str(), bucket);
            }
        }
    }

    fn newer_than(&mut self, span: Span, now: DateTime<Utc>) {
        let text = format!("newer than {span}");
        let cutoff = i64::try_from(span.seconds())
            .ok()
            .and_then(|s| now.checked_sub_signed(chrono::TimeDelta::try_seconds(s)?));
        let bucket = match cutoff {
            Some(c) => format!("after {}", local_text(c, self.tz)),
            None => "after the beginning of time".to_owned(),
        };
        for i in self.order.iter().rev().copied() {
            if cutoff.is_some_and(|c| self.cands[i].creation <= c) {
                break;
            }
            self.keep(i, text.as_str(), bucket.as_str());
        }
    }
}

/// An integer that identifies the calendar bucket of local time `t`; ordered like time.
fn bucket_key(unit: usize, t: NaiveDateTime) -> i64 {
    let d = t.date();
    match unit {
        0 => i64::from(d.num_days_from_ce()) * 24 + i64::from(t.hour()),
        1 => i64::from(d.num_days_from_ce()),
        2 => {
            let w = d.iso_week();
            i64::from(w.year()) * 100 + i64::from(w.week())
        }
        3 => i64::from(d.year()) * 12 + i64::from(d.month0()),
        _ => i64::from(d.year()),
    }
}

fn bucket_text(unit: usize, t: NaiveDateTime, offset: FixedOffset) -> String {
    let d = t.date();
    match unit {
        0 => format!(
            "{:04}-{:02}-{:02}T{:02}:00{offset}",
            d.year(),
            d.month(),
            d.day(),
            t.hour()
        ),
        1 => format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
        2 => {
            let w = d.iso_week();
            format!("{:04}-W{:02}", w.year(), w.week())
        }
        3 => format!("{:04}-{:02}", d.year(), d.month()),
        _ => format!("{:04}", d.year()),
    }
}

/// The grid interval (part, index within the part) holding a candidate `age` seconds
/// older than the anchor, or `None` when it is older than the whole grid. Interval
/// *k* of a part starting at age `s` covers ages `[s + k·len, s + (k+1)·len)`.
fn locate(grid: &Grid, age: u64) -> Option<(usize, u64)> {
    let age = u128::from(age);
    let mut start: u128 = 0;
    for (g, iv) in grid.intervals().iter().enumerate() {
        let len = u128::from(iv.length.seconds());
        let end = start + len * u128::from(iv.count);
        if age < end {
            let j = (age - start) / len;
            return Some((g, u64::try_from(j).expect("j < count, which is a u32")));
        }
        start = end;
    }
    None
}

/// Ages (seconds before the anchor) of the newer and older edges of interval `j` of
/// part `g`.
fn interval_bounds(grid: &Grid, g: usize, j: u64) -> (u128, u128) {
    let start: u128 = grid.intervals()[..g]
        .iter()
        .map(|iv| u128::from(iv.length.seconds()) * u128::from(iv.count))
        .sum();
    let len = u128::from(grid.intervals()[g].length.seconds());
    let s = start + len * u128::from(j);
    (s, s + len)
}

fn instant_text(anchor: DateTime<Utc>, age: u128, tz: Tz) -> String {
    let t = i64::try_from(age)
        .ok()
        .and_then(chrono::TimeDelta::try_seconds)
        .and_then(|d| anchor.checked_sub_signed(d));
    match t {
        Some(t) => local_text(t, tz),
        None => "the beginning of time".to_owned(),
    }
}

fn seconds_text(epoch: i128, tz: Tz) -> String {
    let t = i64::try_from(epoch)
        .ok()
        .and_then(|s| Utc.timestamp_opt(s, 0).single());
    match t {
        Some(t) => local_text(t, tz),
        None => "the beginning of time".to_owned(),
    }
}

/// `2026-11-23T15:00:07+01:00`: the local time of `t` in `tz` with its offset. Written
/// by hand because chrono's `format` re-parses its pattern on every call.
fn local_text(t: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    let n = local.naive_local();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
        n.year(),
        n.month(),
        n.day(),
        n.hour(),
        n.minute(),
        n.second(),
        local.offset().fix()
    )
}
