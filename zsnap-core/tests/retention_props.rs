//! Property tests of the retention rules: each rule against a deliberately naive oracle
//! (quadratic, buckets by formatting strings, sanoid's loop replayed literally), plus the
//! union, monotonicity and idempotence invariants of policies.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use zsnap_core::duration::Span;
use zsnap_core::retention::{
    evaluate, evaluate_with, Candidate, Grid, GridInterval, GridKeep, KeepRule, NameRegex,
    Replicated, RetentionPolicy, SanoidCounts,
};
use zsnap_core::{Guid, KeepReason, ShortName};

const LABELS: [Option<&str>; 7] = [
    Some("hourly"),
    Some("daily"),
    Some("weekly"),
    Some("monthly"),
    Some("yearly"),
    Some("frequently"),
    None,
];
const PATTERNS: [&str; 4] = ["_1", "daily", "[02468]$", "^zsnap_(hourly|weekly)_"];
const ZONES: [Tz; 4] = [
    chrono_tz::UTC,
    chrono_tz::Europe::Berlin,
    chrono_tz::America::New_York,
    chrono_tz::Australia::Lord_Howe,
];

/// One generated snapshot.
#[derive(Debug, Clone)]
struct Snap {
    secs: i64,
    createtxg: u64,
    label: Option<&'static str>,
    name: ShortName,
}

/// A generated dataset: snapshots in createtxg order, the evaluation instant and zone.
#[derive(Debug, Clone)]
struct World {
    snaps: Vec<Snap>,
    now: i64,
    tz: Tz,
}

impl World {
    fn candidates(&self) -> Vec<Candidate<'_>> {
        self.snaps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Candidate::new(
                    &s.name,
                    Guid(i as u64 + 1),
                    s.createtxg,
                    at(s.secs),
                    s.label,
                )
            })
            .collect()
    }

    fn now(&self) -> DateTime<Utc> {
        at(self.now)
    }

    /// The age order of the implementation's contract: creation, createtxg, position.
    fn key(&self, i: usize) -> (i64, u64, usize) {
        (self.snaps[i].secs, self.snaps[i].createtxg, i)
    }

    /// zrepl's `last_n` order: by creation, equal seconds by name (a larger name is the
    /// newer); the rest only for names that are equal, which zrepl never sees.
    fn last_key(&self, i: usize) -> (i64, &str, u64, usize) {
        let s = &self.snaps[i];
        (s.secs, s.name.as_str(), s.createtxg, i)
    }

    /// zrepl's grid order within an interval, oldest first: by creation, equal seconds
    /// the later listed (higher createtxg, then later position) first.
    fn grid_key(&self, i: usize) -> (i64, std::cmp::Reverse<(u64, usize)>) {
        (
            self.snaps[i].secs,
            std::cmp::Reverse((self.snaps[i].createtxg, i)),
        )
    }

    fn run(&self, policy: &RetentionPolicy) -> Vec<Vec<KeepReason>> {
        evaluate(policy, &self.candidates(), self.now(), self.tz)
    }

    fn kept(&self, policy: &RetentionPolicy) -> Vec<bool> {
        self.run(policy).iter().map(|r| !r.is_empty()).collect()
    }

    /// The same world with only the snapshots where `keep` is true.
    fn subset(&self, keep: &[bool]) -> World {
        World {
            snaps: self
                .snaps
                .iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(s, _)| s.clone())
                .collect(),
            now: self.now,
            tz: self.tz,
        }
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .expect("generated times are in range")
}

fn policy(rules: Vec<KeepRule>) -> RetentionPolicy {
    RetentionPolicy::new(rules)
}

fn world() -> impl Strategy<Value = World> {
    // 2025-01-01T00:00:00Z .. two years later: DST changes of every zone fall inside.
    let start = 1_735_689_600i64;
    let windows = prop_oneof![
        Just(3 * 3600i64),
        Just(86_400),
        Just(10 * 86_400),
        Just(60 * 86_400),
        Just(730 * 86_400),
    ];
    (
        windows,
        0..730 * 86_400i64,
        prop::collection::vec((0.0..1.0f64, 0..10u8, 0..7usize, 0..10u8), 0..=60),
        0..ZONES.len(),
        -0.2..1.5f64,
    )
        .prop_map(move |(window, offset, raw, zone, now_frac)| {
            let base = start + offset;
            let mut times: Vec<i64> = Vec::with_capacity(raw.len());
            for &(frac, dup, _, _) in &raw {
                let t = match times.last() {
                    // Snapshots taken in the same second (zfs snapshot of several labels).
                    Some(&prev) if dup < 2 => prev,
                    _ => base + (frac * window as f64) as i64,
                };
                times.push(t);
            }
            times.sort_unstable();
            let mut snaps: Vec<Snap> = Vec::with_capacity(raw.len());
            for (i, (&secs, &(_, dup, label, skew))) in times.iter().zip(&raw).enumerate() {
                let label = LABELS[label];
                let shared_txg = i > 0 && dup == 0 && snaps[i - 1].secs == secs;
                let createtxg = if shared_txg {
                    snaps[i - 1].createtxg
                } else {
                    i as u64 * 2 + 10
                };
                let name = format!("zsnap_{}_{i}", label.unwrap_or("manual"));
                snaps.push(Snap {
                    secs,
                    createtxg,
                    label,
                    name: name.parse().expect("generated names are valid"),
                });
                // A clock that jumped back: creation no longer follows createtxg.
                if skew == 0 && i > 0 {
                    let (a, b) = (snaps[i - 1].secs, snaps[i].secs);
                    snaps[i - 1].secs = b;
                    snaps[i].secs = a;
                }
            }
            let newest = times.last().copied().unwrap_or(base);
            World {
                snaps,
                now: newest + (now_frac * window as f64) as i64,
                tz: ZONES[zone],
            }
        })
}

fn opt_label() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.4,
        (0..6usize).prop_map(|i| LABELS[i].map(str::to_owned).unwrap_or_default()),
    )
}

fn opt_pattern() -> impl Strategy<Value = Option<NameRegex>> {
    prop::option::weighted(
        0.3,
        (0..PATTERNS.len()).prop_map(|i| PATTERNS[i].parse().unwrap()),
    )
}

fn last_rule() -> impl Strategy<Value = KeepRule> {
    (0..8usize, opt_label(), opt_pattern()).prop_map(|(count, label, regex)| KeepRule::Last {
        count,
        label,
        regex,
    })
}

fn labels_rule() -> impl Strategy<Value = KeepRule> {
    prop::collection::btree_map(
        (0..6usize).prop_map(|i| LABELS[i].unwrap().to_owned()),
        0..6usize,
        0..4,
    )
    .prop_map(KeepRule::LabelCounts)
}

fn calendar_rule() -> impl Strategy<Value = KeepRule> {
    [0..6usize, 0..6, 0..6, 0..6, 0..4].prop_map(|[hourly, daily, weekly, monthly, yearly]| {
        KeepRule::Calendar {
            hourly,
            daily,
            weekly,
            monthly,
            yearly,
        }
    })
}

const LENGTHS: [u64; 8] = [
    60,
    600,
    3600,
    3 * 3600,
    86_400,
    7 * 86_400,
    30 * 86_400,
    90 * 86_400,
];

fn keep() -> impl Strategy<Value = GridKeep> {
    prop_oneof![
        Just(GridKeep::All),
        (1..4u32).prop_map(|n| GridKeep::Oldest(n.try_into().unwrap())),
    ]
}

fn grid() -> impl Strategy<Value = Grid> {
    (
        prop::collection::vec((1..6u32, 0..LENGTHS.len(), keep()), 1..4),
        prop::option::weighted(0.3, 0..LENGTHS.len()),
    )
        .prop_map(|(mut parts, lead)| {
            parts.sort_by_key(|p| p.1);
            let mut intervals: Vec<GridInterval> = Vec::new();
            // A leading keep=all window may be longer than what follows (zrepl allows it).
            if let Some(l) = lead {
                intervals.push(GridInterval::new(
                    1,
                    Span::from_secs(LENGTHS[l]),
                    GridKeep::All,
                ));
            }
            intervals.extend(
                parts
                    .into_iter()
                    .map(|(c, l, k)| GridInterval::new(c, Span::from_secs(LENGTHS[l]), k)),
            );
            Grid::new(intervals).expect("sorted lengths after a keep=all lead are valid")
        })
}

fn sanoid_rule() -> impl Strategy<Value = KeepRule> {
    ([0..6usize, 0..6, 0..6, 0..6, 0..6, 0..3], 0..61u32).prop_map(|(c, period)| {
        let mut s = SanoidCounts::zeros();
        [
            s.frequently,
            s.hourly,
            s.daily,
            s.weekly,
            s.monthly,
            s.yearly,
        ] = c;
        s.frequent_period_minutes = period;
        KeepRule::Sanoid(s)
    })
}

fn newer_than_rule() -> impl Strategy<Value = KeepRule> {
    prop_oneof![0..4 * 86_400u64, 0..200 * 86_400u64]
        .prop_map(|s| KeepRule::NewerThan(Span::from_secs(s)))
}

fn regex_rule() -> impl Strategy<Value = KeepRule> {
    (0..PATTERNS.len()).prop_map(|i| KeepRule::Regex(PATTERNS[i].parse().unwrap()))
}

fn not_regex_rule() -> impl Strategy<Value = KeepRule> {
    (0..PATTERNS.len()).prop_map(|i| KeepRule::NotRegex(PATTERNS[i].parse().unwrap()))
}

const TARGETS: [&str; 2] = ["offsite", "usb"];

fn not_replicated_rule() -> impl Strategy<Value = KeepRule> {
    (0..TARGETS.len()).prop_map(|i| KeepRule::NotReplicated(TARGETS[i].to_owned()))
}

/// The rules a regex filter may wrap.
fn inner_rule() -> impl Strategy<Value = KeepRule> {
    prop_oneof![
        last_rule(),
        labels_rule(),
        calendar_rule(),
        grid().prop_map(KeepRule::Grid),
        sanoid_rule(),
        newer_than_rule(),
        not_replicated_rule(),
    ]
}

/// A pattern of [`PATTERNS`], whether it is negated, and the rule it filters.
fn filter_parts() -> impl Strategy<Value = (usize, bool, KeepRule)> {
    (0..PATTERNS.len(), any::<bool>(), inner_rule())
}

fn filtered_rule() -> impl Strategy<Value = KeepRule> {
    filter_parts().prop_map(|(i, negate, rule)| {
        KeepRule::filtered(PATTERNS[i].parse().unwrap(), negate, rule)
    })
}

fn any_rule() -> impl Strategy<Value = KeepRule> {
    prop_oneof![
        last_rule(),
        labels_rule(),
        calendar_rule(),
        grid().prop_map(KeepRule::Grid),
        sanoid_rule(),
        newer_than_rule(),
        regex_rule(),
        not_regex_rule(),
        not_replicated_rule(),
        filtered_rule(),
    ]
}

/// What a target has of the world: absent (it does not receive the dataset), nothing
/// yet, or up to some createtxg.
fn target_state() -> impl Strategy<Value = Option<Option<u64>>> {
    prop_oneof![
        Just(None),
        Just(Some(None)),
        (0..140u64).prop_map(|t| Some(Some(t))),
    ]
}

fn replicated(state: Option<Option<u64>>) -> Replicated {
    match state {
        None => Replicated::new().with_target("usb", Some(0)),
        Some(s) => Replicated::new().with_target("offsite", s),
    }
}

// ---------------------------------------------------------------------------------
// Oracles. Each is written without looking at the implementation's structure.

/// `not replicated to offsite`: nothing when offsite does not receive the dataset,
/// everything when it has nothing yet, else what was created after its newest txg.
fn oracle_not_replicated(w: &World, state: Option<Option<u64>>) -> Vec<bool> {
    w.snaps
        .iter()
        .map(|s| match state {
            None => false,
            Some(None) => true,
            Some(Some(txg)) => s.createtxg > txg,
        })
        .collect()
}

/// Kept iff fewer than `count` matching candidates are newer.
fn oracle_last(w: &World, count: usize, label: Option<&str>, regex: Option<&str>) -> Vec<bool> {
    let re = regex.map(|r| regex::Regex::new(r).unwrap());
    let matches: Vec<bool> = w
        .snaps
        .iter()
        .map(|s| {
            label.is_none_or(|l| s.label == Some(l))
                && re.as_ref().is_none_or(|r| r.is_match(s.name.as_str()))
        })
        .collect();
    (0..w.snaps.len())
        .map(|i| {
            matches[i]
                && (0..w.snaps.len())
                    .filter(|&j| matches[j] && w.last_key(j) > w.last_key(i))
                    .count()
                    < count
        })
        .collect()
}

fn calendar_format(unit: usize) -> &'static str {
    ["%Y-%m-%d %H", "%Y-%m-%d", "%G-W%V", "%Y-%m", "%Y"][unit]
}

/// Per unit: the bucket texts the implementation should print for each kept candidate.
fn oracle_calendar(w: &World, counts: [usize; 5]) -> Vec<Vec<String>> {
    let n = w.snaps.len();
    let mut out = vec![Vec::new(); n];
    for (unit, &count) in counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let bucket: Vec<String> = (0..n)
            .map(|i| {
                at(w.snaps[i].secs)
                    .with_timezone(&w.tz)
                    .format(calendar_format(unit))
                    .to_string()
            })
            .collect();
        for i in 0..n {
            let newest_of_bucket = (0..n).all(|j| bucket[j] != bucket[i] || w.key(j) <= w.key(i));
            let newer_buckets: HashSet<&String> = (0..n)
                .filter(|&j| w.key(j) > w.key(i))
                .map(|j| &bucket[j])
                .collect();
            if newest_of_bucket && newer_buckets.len() < count {
                let local = at(w.snaps[i].secs).with_timezone(&w.tz);
                let text = match unit {
                    0 => local.format("%Y-%m-%dT%H:00%:z").to_string(),
                    _ => bucket[i].clone(),
                };
                let name = ["hourly", "daily", "weekly", "monthly", "yearly"][unit];
                out[i].push(format!("{name} = {count} [{text}]"));
            }
        }
    }
    out
}

/// zrepl's grid, intervals expanded one by one, membership tested on dates.
fn oracle_grid(w: &World, grid: &Grid) -> Vec<bool> {
    let n = w.snaps.len();
    if n == 0 {
        return Vec::new();
    }
    let anchor = w.snaps.iter().map(|s| s.secs).max().unwrap();
    let mut intervals: Vec<(i64, i64, GridKeep)> = Vec::new(); // (youngerThan, olderThanOrEq)
    let mut edge = anchor;
    for iv in grid.intervals() {
        for _ in 0..iv.count {
            let older = edge - iv.length.seconds() as i64;
            intervals.push((older, edge, iv.keep));
            edge = older;
        }
    }
    let slot = |i: usize| {
        let t = w.snaps[i].secs;
        intervals
            .iter()
            .position(|&(younger_than, older_or_eq, _)| t <= older_or_eq && t > younger_than)
    };
    (0..n)
        .map(|i| match slot(i) {
            None => false,
            Some(k) => match intervals[k].2 {
                GridKeep::All => true,
                GridKeep::Oldest(keep) => {
                    let older = (0..n)
                        .filter(|&j| slot(j) == Some(k) && w.grid_key(j) < w.grid_key(i))
                        .count();
                    older < keep.get() as usize
                }
            },
        })
        .collect()
}

/// sanoid 2.x's prune loop, replayed: per type, oldest first, prune while older than the
/// age limit and more than the count remain.
fn oracle_sanoid(w: &World, s: &SanoidCounts) -> Vec<bool> {
    let mut kept = vec![false; w.snaps.len()];
    for (name, count, period) in [
        (
            "frequently",
            s.frequently,
            60 * i64::from(s.frequent_period_minutes),
        ),
        ("hourly", s.hourly, 60 * 60),
        ("daily", s.daily, 60 * 60 * 24),
        ("weekly", s.weekly, 60 * 60 * 24 * 7),
        ("monthly", s.monthly, 60 * 60 * 24 * 31),
        ("yearly", s.yearly, (60.0 * 60.0 * 24.0 * 365.25) as i64),
    ] {
        let mut sorted: Vec<usize> = (0..w.snaps.len())
            .filter(|&i| w.snaps[i].label == Some(name))
            .collect();
        sorted.sort_by_key(|&i| w.key(i));
        let maxage = w.now - count as i64 * period;
        let mut left = sorted.len();
        for i in sorted {
            if w.snaps[i].secs < maxage && left > count {
                left -= 1;
            } else {
                kept[i] = true;
            }
        }
    }
    kept
}

/// The regex filters around a grid rule (innermost first), or `None` for other rules.
fn grid_filters(rule: &KeepRule) -> Option<Vec<(String, bool)>> {
    match rule {
        KeepRule::Grid(_) => Some(Vec::new()),
        KeepRule::Filtered {
            regex,
            negate,
            rule,
        } => grid_filters(rule).map(|mut v| {
            v.push((regex.as_str().to_owned(), *negate));
            v
        }),
        _ => None,
    }
}

/// The creation of the newest snapshot of `w` that passes every filter.
fn grid_anchor(w: &World, filters: &[(String, bool)]) -> Option<i64> {
    w.snaps
        .iter()
        .filter(|s| {
            filters
                .iter()
                .all(|(re, neg)| regex::Regex::new(re).unwrap().is_match(s.name.as_str()) != *neg)
        })
        .map(|s| s.secs)
        .max()
}

fn reasons_text(r: &[Vec<KeepReason>]) -> Vec<Vec<String>> {
    r.iter()
        .map(|v| v.iter().map(ToString::to_string).collect())
        .collect()
}

fn is_subset(a: &[bool], b: &[bool]) -> bool {
    a.iter().zip(b).all(|(x, y)| !*x || *y)
}

proptest! {
    #[test]
    fn last_matches_oracle(w in world(), rule in last_rule()) {
        let KeepRule::Last { count, label, regex } = &rule else { unreachable!() };
        let expected = oracle_last(&w, *count, label.as_deref(), regex.as_ref().map(NameRegex::as_str));
        let got = w.run(&policy(vec![rule.clone()]));
        prop_assert_eq!(got.iter().map(|r| !r.is_empty()).collect::<Vec<_>>(), expected);
        // Reasons number the kept ones newest first: #1 of N, #2 of N, …
        let mut kept: Vec<usize> = (0..got.len()).filter(|&i| !got[i].is_empty()).collect();
        kept.sort_by_key(|&i| std::cmp::Reverse(w.last_key(i)));
        for (rank, i) in kept.into_iter().enumerate() {
            prop_assert_eq!(&got[i], &vec![KeepReason::new(rule.to_string(), format!("#{} of {count}", rank + 1))]);
        }
    }

    #[test]
    fn label_counts_match_oracle(w in world(), rule in labels_rule()) {
        let KeepRule::LabelCounts(map) = &rule else { unreachable!() };
        let mut expected = vec![false; w.snaps.len()];
        for (label, &n) in map {
            for (e, k) in expected.iter_mut().zip(oracle_last(&w, n, Some(label), None)) {
                *e |= k;
            }
        }
        prop_assert_eq!(w.kept(&policy(vec![rule.clone()])), expected);
    }

    #[test]
    fn calendar_matches_oracle(w in world(), rule in calendar_rule()) {
        let KeepRule::Calendar { hourly, daily, weekly, monthly, yearly } = rule else { unreachable!() };
        let expected = oracle_calendar(&w, [hourly, daily, weekly, monthly, yearly]);
        prop_assert_eq!(reasons_text(&w.run(&policy(vec![rule]))), expected);
    }

    #[test]
    fn grid_matches_oracle(w in world(), g in grid()) {
        let expected = oracle_grid(&w, &g);
        prop_assert_eq!(w.kept(&policy(vec![KeepRule::Grid(g)])), expected);
    }

    #[test]
    fn sanoid_matches_oracle(w in world(), rule in sanoid_rule()) {
        let KeepRule::Sanoid(s) = &rule else { unreachable!() };
        let expected = oracle_sanoid(&w, s);
        prop_assert_eq!(w.kept(&policy(vec![rule.clone()])), expected);
    }

    /// The same, with `now` put exactly on a snapshot's age limit (`ctime == now - N × P`
    /// is kept: sanoid prunes only `ctime < maxage`).
    #[test]
    fn sanoid_matches_oracle_on_the_age_limit(mut w in world(), rule in sanoid_rule(), pick in any::<prop::sample::Index>()) {
        let KeepRule::Sanoid(s) = &rule else { unreachable!() };
        let labelled: Vec<usize> = (0..w.snaps.len()).filter(|&i| w.snaps[i].label.is_some()).collect();
        if !labelled.is_empty() {
            let i = labelled[pick.index(labelled.len())];
            let (_, n, period) = s.types().into_iter().find(|t| Some(t.0) == w.snaps[i].label).unwrap();
            w.now = w.snaps[i].secs + n as i64 * period;
        }
        let expected = oracle_sanoid(&w, s);
        prop_assert_eq!(w.kept(&policy(vec![rule.clone()])), expected);
    }

    #[test]
    fn newer_than_matches_oracle(w in world(), rule in newer_than_rule()) {
        let KeepRule::NewerThan(span) = rule else { unreachable!() };
        let expected: Vec<bool> = w.snaps.iter().map(|s| s.secs > w.now - span.seconds() as i64).collect();
        prop_assert_eq!(w.kept(&policy(vec![rule])), expected);
    }

    #[test]
    fn regex_matches_oracle(w in world(), rule in regex_rule()) {
        let KeepRule::Regex(p) = &rule else { unreachable!() };
        let re = regex::Regex::new(p.as_str()).unwrap();
        let expected: Vec<bool> = w.snaps.iter().map(|s| re.is_match(s.name.as_str())).collect();
        prop_assert_eq!(w.kept(&policy(vec![rule.clone()])), expected);
    }

    #[test]
    fn not_regex_matches_oracle(w in world(), rule in not_regex_rule()) {
        let KeepRule::NotRegex(p) = &rule else { unreachable!() };
        let re = regex::Regex::new(p.as_str()).unwrap();
        let got = w.run(&policy(vec![rule.clone()]));
        for (s, reasons) in w.snaps.iter().zip(&got) {
            if re.is_match(s.name.as_str()) {
                prop_assert!(reasons.is_empty());
            } else {
                prop_assert_eq!(reasons, &vec![KeepReason::new(format!("not regex {p}"), "name does not match")]);
            }
        }
    }

    /// A filtered rule is its rule evaluated on the matching snapshots alone, whose
    /// reasons name the filter after the rule.
    #[test]
    fn a_filtered_rule_is_its_rule_on_the_matching_subset(w in world(), (i, negate, inner) in filter_parts(), state in target_state()) {
        let re = regex::Regex::new(PATTERNS[i]).unwrap();
        let passes: Vec<bool> = w.snaps.iter().map(|s| re.is_match(s.name.as_str()) != negate).collect();
        let rule = KeepRule::Filtered { regex: PATTERNS[i].parse().unwrap(), negate, rule: Box::new(inner.clone()) };
        let r = replicated(state);
        let got = evaluate_with(&policy(vec![rule]), &w.candidates(), w.now(), w.tz, &r);
        let sub = w.subset(&passes);
        let on_sub = evaluate_with(&policy(vec![inner]), &sub.candidates(), sub.now(), sub.tz, &r);
        let not = if negate { "not " } else { "" };
        let suffix = format!(" ({not}regex {})", PATTERNS[i]);
        let mut j = 0;
        for (k, pass) in passes.iter().enumerate() {
            if *pass {
                let expected: Vec<KeepReason> = on_sub[j].iter().map(|r| KeepReason::new(format!("{}{suffix}", r.rule), r.bucket.clone())).collect();
                prop_assert_eq!(&got[k], &expected);
                j += 1;
            } else {
                prop_assert!(got[k].is_empty());
            }
        }
    }

    /// zrepl's grid with a regex, against the naive grid on the matching snapshots.
    #[test]
    fn filtered_grid_matches_oracle(w in world(), g in grid(), i in 0..PATTERNS.len(), negate in any::<bool>()) {
        let re = regex::Regex::new(PATTERNS[i]).unwrap();
        let passes: Vec<bool> = w.snaps.iter().map(|s| re.is_match(s.name.as_str()) != negate).collect();
        let rule = KeepRule::filtered(PATTERNS[i].parse().unwrap(), negate, KeepRule::Grid(g.clone()));
        let got = w.kept(&policy(vec![rule]));
        let mut on_sub = oracle_grid(&w.subset(&passes), &g).into_iter();
        let expected: Vec<bool> = passes.iter().map(|p| *p && on_sub.next().unwrap()).collect();
        prop_assert_eq!(got, expected);
    }

    /// zrepl's last_n with a regex and negate, against the naive count.
    #[test]
    fn filtered_last_matches_oracle(w in world(), count in 0..8usize, label in opt_label(), i in 0..PATTERNS.len(), negate in any::<bool>()) {
        let re = regex::Regex::new(PATTERNS[i]).unwrap();
        let passes: Vec<bool> = w.snaps.iter().map(|s| re.is_match(s.name.as_str()) != negate).collect();
        let inner = KeepRule::Last { count, label: label.clone(), regex: None };
        let rule = KeepRule::filtered(PATTERNS[i].parse().unwrap(), negate, inner);
        let got = w.kept(&policy(vec![rule]));
        let mut on_sub = oracle_last(&w.subset(&passes), count, label.as_deref(), None).into_iter();
        let expected: Vec<bool> = passes.iter().map(|p| *p && on_sub.next().unwrap()).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn not_replicated_matches_oracle(w in world(), state in target_state()) {
        let rule = KeepRule::NotReplicated("offsite".to_owned());
        let got = evaluate_with(&policy(vec![rule]), &w.candidates(), w.now(), w.tz, &replicated(state));
        prop_assert_eq!(got.iter().map(|r| !r.is_empty()).collect::<Vec<_>>(), oracle_not_replicated(&w, state));
        // Without replication state, the rule keeps nothing.
        prop_assert!(w.kept(&policy(vec![KeepRule::NotReplicated("offsite".to_owned())])).iter().all(|k| !k));
    }

    /// Adding `not replicated to offsite` keeps what the other rules keep plus exactly
    /// what the target has not received: nothing the oracle would not keep on its own.
    #[test]
    fn not_replicated_adds_exactly_the_unreceived(w in world(), rules in prop::collection::vec(any_rule(), 0..4), state in target_state()) {
        let r = replicated(state);
        let run = |p: &RetentionPolicy| -> Vec<bool> {
            evaluate_with(p, &w.candidates(), w.now(), w.tz, &r).iter().map(|x| !x.is_empty()).collect()
        };
        let before = run(&policy(rules.clone()));
        let mut more = rules;
        more.push(KeepRule::NotReplicated("offsite".to_owned()));
        let after = run(&policy(more));
        let oracle = oracle_not_replicated(&w, state);
        for k in 0..w.snaps.len() {
            prop_assert_eq!(after[k], before[k] || oracle[k]);
        }
    }

    #[test]
    fn keep_oldest_keeps_exactly_the_oldest(w in world()) {
        let kept = w.kept(&RetentionPolicy::new(Vec::new()).with_keep_oldest(true));
        let oldest = (0..w.snaps.len()).min_by_key(|&i| w.key(i));
        let expected: Vec<bool> = (0..w.snaps.len()).map(|i| Some(i) == oldest).collect();
        prop_assert_eq!(kept, expected);
    }

    /// A policy's reasons are its rules' reasons, concatenated in rule order: so its kept
    /// set is the union of theirs.
    #[test]
    fn policy_is_the_union_of_its_rules(w in world(), rules in prop::collection::vec(any_rule(), 0..5), oldest in any::<bool>()) {
        let got = w.run(&RetentionPolicy::new(rules.clone()).with_keep_oldest(oldest));
        let mut expected: Vec<Vec<KeepReason>> = vec![Vec::new(); w.snaps.len()];
        for r in &rules {
            for (e, part) in expected.iter_mut().zip(w.run(&policy(vec![r.clone()]))) {
                e.extend(part);
            }
        }
        if oldest {
            for (e, part) in expected.iter_mut().zip(w.run(&RetentionPolicy::new(Vec::new()).with_keep_oldest(true))) {
                e.extend(part);
            }
        }
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn adding_a_rule_never_drops_a_snapshot(w in world(), rules in prop::collection::vec(any_rule(), 0..4), extra in any_rule(), at in 0..5usize) {
        let before = w.kept(&policy(rules.clone()));
        let mut more = rules;
        more.insert(at.min(more.len()), extra);
        prop_assert!(is_subset(&before, &w.kept(&policy(more))));
    }

    /// Raising a count, lengthening a span or appending grid intervals keeps a superset.
    #[test]
    fn larger_parameters_keep_a_superset(w in world(), rule in any_rule(), bump in 1..4usize, tail in (1..4u32, keep())) {
        let bigger = match rule.clone() {
            KeepRule::Last { count, label, regex } => KeepRule::Last { count: count + bump, label, regex },
            KeepRule::LabelCounts(m) => KeepRule::LabelCounts(m.into_iter().map(|(k, v)| (k, v + bump)).collect()),
            KeepRule::Calendar { hourly, daily, weekly, monthly, yearly } => KeepRule::Calendar {
                hourly: hourly + bump, daily, weekly: weekly + bump, monthly, yearly: yearly + bump,
            },
            KeepRule::Grid(g) => {
                let mut ivs = g.intervals().to_vec();
                let last = ivs.last().unwrap().length;
                ivs.push(GridInterval::new(tail.0, last, tail.1));
                KeepRule::Grid(Grid::new(ivs).unwrap())
            }
            KeepRule::Sanoid(mut s) => { s.daily += bump; s.hourly += bump; s.frequently += 1; KeepRule::Sanoid(s) }
            KeepRule::NewerThan(s) => KeepRule::NewerThan(Span::from_secs(s.seconds() + bump as u64 * 3600)),
            other => other,
        };
        prop_assert!(is_subset(&w.kept(&policy(vec![rule])), &w.kept(&policy(vec![bigger]))));
    }

    /// Evaluating a policy again on what it kept keeps all of it — for every rule as long
    /// as the newest creation survives (the grid is anchored there), and without that
    /// condition for policies without a grid.
    #[test]
    fn evaluating_the_kept_set_again_keeps_it(w in world(), rules in prop::collection::vec(any_rule(), 1..4), oldest in any::<bool>()) {
        let p = RetentionPolicy::new(rules.clone()).with_keep_oldest(oldest);
        let kept = w.kept(&p);
        let sub = w.subset(&kept);
        // Each grid is anchored at the newest snapshot its filters let through.
        let anchors_survive = rules.iter().all(|r| {
            grid_filters(r).is_none_or(|filters| grid_anchor(&sub, &filters) == grid_anchor(&w, &filters))
        });
        if anchors_survive {
            prop_assert!(sub.kept(&p).iter().all(|k| *k), "{:?}", reasons_text(&sub.run(&p)));
        }
    }

    /// With its anchor kept (here by `last 1`), a grid keeps everything it kept again.
    #[test]
    fn grid_is_idempotent_when_its_anchor_survives(w in world(), g in grid()) {
        let p = policy(vec![KeepRule::Grid(g), KeepRule::last(1)]);
        let kept = w.kept(&p);
        let sub = w.subset(&kept);
        prop_assert!(sub.kept(&p).iter().all(|k| *k));
    }

    #[test]
    fn rule_text_round_trips(rule in any_rule()) {
        let text = rule.to_string();
        let back: KeepRule = text.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(&back, &rule);
        let json = serde_json::to_string(&rule).unwrap();
        prop_assert_eq!(serde_json::from_str::<KeepRule>(&json).unwrap(), rule.clone());
        prop_assert_eq!(serde_json::from_str::<KeepRule>(&serde_json::to_string(&text).unwrap()).unwrap(), rule);
    }

    #[test]
    fn grid_text_round_trips(g in grid()) {
        prop_assert_eq!(g.to_string().parse::<Grid>().unwrap(), g);
    }

    /// Candidates given in any order are judged by age, not by position.
    #[test]
    fn order_of_the_slice_does_not_matter_for_distinct_keys(w in world(), rules in prop::collection::vec(any_rule(), 1..4), seed in any::<u64>()) {
        let p = policy(rules);
        let straight = w.run(&p);
        // Reverse-rotate the slice, keeping each snapshot's key distinct from its
        // neighbours' by createtxg (position is the last tie-breaker, and it moves).
        let n = w.snaps.len();
        if n > 0 && (0..n).all(|i| (0..n).all(|j| i == j || (w.snaps[i].secs, w.snaps[i].createtxg) != (w.snaps[j].secs, w.snaps[j].createtxg))) {
            let r = (seed as usize) % n;
            let perm: Vec<usize> = (0..n).map(|i| (i + r) % n).rev().collect();
            let shuffled = World { snaps: perm.iter().map(|&i| w.snaps[i].clone()).collect(), now: w.now, tz: w.tz };
            let got = shuffled.run(&p);
            for (k, &i) in perm.iter().enumerate() {
                prop_assert_eq!(&got[k], &straight[i]);
            }
        }
    }
}

#[test]
fn label_counts_equal_last_with_label() {
    // A fixed sanity check of the oracle-free identity used in the docs.
    let names: Vec<ShortName> = (0..6).map(|i| format!("s{i}").parse().unwrap()).collect();
    let labels = ["daily", "hourly", "daily", "daily", "hourly", "daily"];
    let cands: Vec<Candidate> = (0..6)
        .map(|i| {
            Candidate::new(
                &names[i],
                Guid(i as u64),
                i as u64,
                at(1_800_000_000 + i as i64 * 60),
                Some(labels[i]),
            )
        })
        .collect();
    let now = at(1_800_000_000);
    let a = evaluate(
        &policy(vec![KeepRule::LabelCounts(BTreeMap::from([(
            "daily".to_owned(),
            2,
        )]))]),
        &cands,
        now,
        chrono_tz::UTC,
    );
    let b = evaluate(
        &policy(vec!["last 2 (label daily)".parse().unwrap()]),
        &cands,
        now,
        chrono_tz::UTC,
    );
    let kept = |r: &[Vec<KeepReason>]| r.iter().map(|r| !r.is_empty()).collect::<Vec<_>>();
    assert_eq!(kept(&a), kept(&b));
    assert_eq!(kept(&a), [false, false, false, true, false, true]);
}
