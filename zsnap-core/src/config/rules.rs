//! The checks of keep rules against the labels a config takes: a rule naming a label
//! nothing takes (a typo keeps nothing), a scheduled label no rule keeps (every one
//! would be destroyed by the next prune), and a count of 0 for a scheduled label. Each
//! is an error unless the policy says it is meant (`keep_none`).
//!
//! Which labels a policy knows: its `snapshot` and `on_demand` labels, the types of
//! the tools it adopts, the label of each `[backups.*]` of its datasets or pruned by
//! it, and, for a policy that prunes a replication target, every label the policies of
//! the replicated datasets know.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{ConfigError, ConfigProblem};
use super::model::{
    BackupSpec, CalendarUnit, DatasetEntry, PolicySpec, RuleSpec, TargetAddress, TargetSpec,
};
use super::spans::{Cx, PolicySpans};
use super::suggest::closest;
use crate::retention::NameRegex;

/// The labels the snapshots of an adopted tool carry.
fn tool_labels(tool: &str) -> &'static [&'static str] {
    match tool {
        "sanoid" => &[
            "frequently",
            "hourly",
            "daily",
            "weekly",
            "monthly",
            "yearly",
        ],
        "zfs-auto-snapshot" => &["frequent", "hourly", "daily", "weekly", "monthly"],
        _ => &[],
    }
}

/// The labels `policy` itself takes or adopts.
fn own_labels(policy: &PolicySpec) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = policy
        .snapshot
        .keys()
        .chain(policy.on_demand.keys())
        .map(|l| l.as_str().to_owned())
        .collect();
    for a in &policy.adopt {
        match a {
            super::model::Adopt::Tool(tool) => {
                out.extend(tool_labels(tool).iter().map(|l| (*l).to_owned()));
            }
            super::model::Adopt::Format(f) => {
                if let Some(l) = f.label() {
                    out.insert(l.as_str().to_owned());
                }
                if f.has_label_placeholder() {
                    out.insert(ANY_LABEL.to_owned());
                }
            }
        }
    }
    out
}

/// In a policy's known labels: an adopted format carries labels in its names
/// (`{label}`), so any label may be meant.
const ANY_LABEL: &str = "{label}";

/// The `[[datasets]]` entries at or below `root`.
fn under<'a>(
    datasets: &'a [DatasetEntry],
    root: &'a crate::zfs_names::DatasetName,
) -> impl Iterator<Item = &'a DatasetEntry> + 'a {
    datasets
        .iter()
        .filter(move |e| &e.root == root || root.is_ancestor_of(&e.root))
}

/// Every label each policy knows (see the module docs).
fn known_labels(
    policies: &BTreeMap<String, PolicySpec>,
    datasets: &[DatasetEntry],
    targets: &BTreeMap<String, TargetSpec>,
    backups: &BTreeMap<String, BackupSpec>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut known: BTreeMap<String, BTreeSet<String>> = policies
        .iter()
        .map(|(n, p)| (n.clone(), own_labels(p)))
        .collect();
    for b in backups.values() {
        let policies_of = under(datasets, &b.source).map(|e| e.policy.clone());
        for p in policies_of.chain(b.policy.clone()) {
            if let Some(k) = known.get_mut(&p) {
                k.insert(b.label.as_str().to_owned());
            }
        }
    }
    for t in targets.values() {
        let TargetAddress::Dataset { .. } = &t.to;
        let mut labels = BTreeSet::new();
        for e in under(datasets, &t.source) {
            if let Some(k) = known.get(&e.policy) {
                labels.extend(k.iter().cloned());
            }
        }
        if let Some(k) = known.get_mut(&t.policy) {
            k.extend(labels);
        }
    }
    known
}

/// Whether a label-agnostic rule of `policy` keeps some snapshot of `label`.
fn agnostic_rule_keeps(policy: &PolicySpec, label: &str) -> bool {
    let r = &policy.retention;
    let calendar = r.keep.is_some_and(|k| {
        CalendarUnit::ALL
            .iter()
            .any(|u| k.count(*u).unwrap_or(0) > 0)
    });
    let regex = || {
        // A regex keeps this label's snapshots when it matches their names.
        let sample = format!("{}_{label}_20260101T000000Z", policy.prefix);
        r.keep_regex
            .iter()
            .filter_map(|re| NameRegex::new(re).ok())
            .any(|p| p.is_match(&sample))
    };
    calendar
        || r.keep_last.is_some_and(|n| n > 0)
        || r.keep_newer_than.is_some_and(|s| s.seconds() > 0)
        || r.grid.is_some()
        || regex()
        || list_rule_keeps(policy, label)
}

/// Whether an item of `keep_rules` keeps some snapshot of `label`: a rule that keeps
/// something (`last_n` of this label or of any), whose filter lets zsnap's names of
/// this label through. `keep_oldest` alone does not count, as above.
fn list_rule_keeps(policy: &PolicySpec, label: &str) -> bool {
    let sample = format!("{}_{label}_20260101T000000Z", policy.prefix);
    policy.retention.keep_rules.iter().any(|item| {
        let passes = match &item.regex {
            None => true,
            Some(re) => NameRegex::new(re).is_ok_and(|p| p.is_match(&sample) != item.negate),
        };
        let keeps = match &item.rule {
            None => true,
            Some(RuleSpec::LastN(n)) => {
                *n > 0 && item.label.as_ref().is_none_or(|l| l.as_str() == label)
            }
            Some(RuleSpec::NewerThan(s)) => s.seconds() > 0,
            Some(RuleSpec::KeepOldest(_)) => false,
            Some(_) => true,
        };
        passes && keeps
    })
}

/// The count a label rule gives `label`, if one names it.
fn label_count(policy: &PolicySpec, label: &str) -> Option<u32> {
    let r = &policy.retention;
    let counted = r
        .keep_counts
        .iter()
        .find(|(l, _)| l.as_str() == label)
        .map(|(_, n)| *n);
    let sanoid = r.sanoid.and_then(|s| {
        s.counts()
            .into_iter()
            .find(|(t, _)| *t == label)
            .map(|(_, n)| n)
    });
    match (counted, sanoid) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Whether some rule of `policy` keeps snapshots of `label`.
fn keeps(policy: &PolicySpec, label: &str) -> bool {
    agnostic_rule_keeps(policy, label) || label_count(policy, label).is_some_and(|n| n > 0)
}

/// Whether `label` is one of the usual words (a calendar period or a sanoid or
/// zfs-auto-snapshot type), so rather the right spelling than a typo.
fn is_common(label: &str) -> bool {
    tool_labels("sanoid").contains(&label) || tool_labels("zfs-auto-snapshot").contains(&label)
}

/// Runs the checks of the module docs on every policy, in file order.
pub(crate) fn check_keep_rules(
    cx: &Cx<'_>,
    policies: &BTreeMap<String, PolicySpec>,
    spans: &[(String, PolicySpans)],
    datasets: &[DatasetEntry],
    targets: &BTreeMap<String, TargetSpec>,
    backups: &BTreeMap<String, BackupSpec>,
) -> Result<(), ConfigError> {
    let known = known_labels(policies, datasets, targets, backups);
    for (name, sp) in spans {
        let policy = &policies[name];
        let known = &known[name];
        let unknown = |path: String, label: &str, span| {
            let mut sorted: Vec<String> = known.iter().cloned().collect();
            sorted.sort();
            ConfigError::at(
                cx.file,
                cx.text,
                span,
                ConfigProblem::UnknownLabel {
                    path,
                    label: label.to_owned(),
                    policy: name.clone(),
                    suggestion: closest(label, known.iter().map(String::as_str)),
                    known: sorted,
                },
            )
        };
        for (label, span) in &sp.keep_counts {
            if !known.contains(label.as_str()) && !known.contains(ANY_LABEL) {
                // `snapshot = { dayly = … }` with `keep_counts = { daily = 7 }`: the
                // common word is probably right and the scheduled label the typo.
                let near = closest(label.as_str(), policy.snapshot.keys().map(|l| l.as_str()));
                if let Some(near) = near.filter(|n| is_common(label.as_str()) && !is_common(n)) {
                    if let Some((_, sched_span)) =
                        sp.snapshot.iter().find(|(l, _)| l.as_str() == near)
                    {
                        if policy.prune && !keeps(policy, &near) {
                            return Err(ConfigError::at(
                                cx.file,
                                cx.text,
                                sched_span.clone(),
                                ConfigProblem::UnkeptLabel {
                                    policy: name.clone(),
                                    label: near,
                                    suggestion: Some(label.to_string()),
                                },
                            ));
                        }
                    }
                }
                return Err(unknown(
                    format!("policies.{name}.keep_counts.{label}"),
                    label.as_str(),
                    span.clone(),
                ));
            }
        }
        for (index, label, span) in &sp.rule_labels {
            if !known.contains(label.as_str()) {
                return Err(unknown(
                    format!("policies.{name}.keep_rules[{index}].label"),
                    label.as_str(),
                    span.clone(),
                ));
            }
        }
        for (i, (label, span)) in sp.keep_none.iter().enumerate() {
            if !known.contains(label.as_str()) && !known.contains(ANY_LABEL) {
                return Err(unknown(
                    format!("policies.{name}.keep_none[{}]", i + 1),
                    label.as_str(),
                    span.clone(),
                ));
            }
        }
        if !policy.prune {
            continue;
        }
        let meant = |label: &str| policy.keep_none.iter().any(|l| l.as_str() == label);
        for (label, span) in &sp.keep_counts {
            let n = policy.retention.keep_counts[label];
            if n == 0 && policy.snapshot.contains_key(label) && !meant(label.as_str()) {
                return Err(ConfigError::at(
                    cx.file,
                    cx.text,
                    span.clone(),
                    ConfigProblem::ZeroCount {
                        path: format!("policies.{name}.keep_counts.{label}"),
                        label: label.to_string(),
                        policy: name.clone(),
                    },
                ));
            }
        }
        for (ty, span, n) in &sp.sanoid {
            let scheduled = policy.snapshot.keys().any(|l| l.as_str() == *ty);
            if *n == 0 && scheduled && !meant(ty) {
                return Err(ConfigError::at(
                    cx.file,
                    cx.text,
                    span.clone(),
                    ConfigProblem::ZeroCount {
                        path: format!("policies.{name}.sanoid.{ty}"),
                        label: (*ty).to_owned(),
                        policy: name.clone(),
                    },
                ));
            }
        }
        for (label, span) in &sp.snapshot {
            let l = label.as_str();
            let kept =
                agnostic_rule_keeps(policy, l) || label_count(policy, l).is_some_and(|n| n > 0);
            if kept || meant(l) {
                continue;
            }
            // The probable typo: a label some rule names that nothing schedules.
            let named: Vec<&str> = policy
                .retention
                .keep_counts
                .keys()
                .map(|l| l.as_str())
                .chain(policy.retention.sanoid.iter().flat_map(|s| {
                    s.counts()
                        .into_iter()
                        .filter(|(_, n)| *n > 0)
                        .map(|(t, _)| t)
                }))
                .filter(|n| !policy.snapshot.keys().any(|s| s.as_str() == *n))
                .collect();
            return Err(ConfigError::at(
                cx.file,
                cx.text,
                span.clone(),
                ConfigProblem::UnkeptLabel {
                    policy: name.clone(),
                    label: l.to_owned(),
                    suggestion: closest(l, named),
                },
            ));
        }
        let _ = &sp.table;
    }
    Ok(())
}

/// The length of the timestamp in zsnap's names (`20261123T150000Z`).
pub(crate) const TIMESTAMP_LEN: usize = 16;

/// The longest label each dataset entry's snapshots may carry: its policy's scheduled
/// and on-demand labels and the labels of the backups taken of it.
pub(crate) fn longest_label(
    entry: &DatasetEntry,
    policies: &BTreeMap<String, PolicySpec>,
    backups: &BTreeMap<String, BackupSpec>,
) -> Option<(String, String)> {
    let policy = policies.get(&entry.policy)?;
    let labels = policy
        .snapshot
        .keys()
        .chain(policy.on_demand.keys())
        .map(|l| l.as_str())
        .chain(
            backups
                .values()
                .filter(|b| b.source.contains(&entry.root))
                .map(|b| b.label.as_str()),
        );
    let longest = labels.max_by_key(|l| l.len())?;
    Some((policy.prefix.clone(), longest.to_owned()))
}

/// OpenZFS refuses names of 256 bytes or more (`ZFS_MAX_DATASET_NAME_LEN` counts the
/// NUL): every root, and every target dataset a root lands on, must leave room for
/// `@<prefix>_<label>_<timestamp>` with the longest label its policy takes.
pub(crate) fn check_name_lengths(
    cx: &Cx<'_>,
    policies: &BTreeMap<String, PolicySpec>,
    datasets: &[DatasetEntry],
    root_spans: &[std::ops::Range<usize>],
    targets: &BTreeMap<String, TargetSpec>,
    target_spans: &BTreeMap<String, std::ops::Range<usize>>,
    backups: &BTreeMap<String, BackupSpec>,
) -> Result<(), ConfigError> {
    let too_long = |dataset: String, path: String, prefix: &str, label: &str, span| {
        let name = format!("{dataset}@{prefix}_{label}_{}", "0".repeat(TIMESTAMP_LEN));
        if name.len() <= crate::zfs_names::MAX_NAME_LEN {
            return Ok(());
        }
        Err(ConfigError::at(
            cx.file,
            cx.text,
            span,
            ConfigProblem::NameTooLong {
                path,
                dataset,
                label: label.to_owned(),
                length: name.len(),
                limit: crate::zfs_names::MAX_NAME_LEN,
            },
        ))
    };
    for (i, (entry, span)) in datasets.iter().zip(root_spans).enumerate() {
        if let Some((prefix, label)) = longest_label(entry, policies, backups) {
            too_long(
                entry.root.to_string(),
                format!("datasets[{}].root", i + 1),
                &prefix,
                &label,
                span.clone(),
            )?;
        }
    }
    for (name, t) in targets {
        let TargetAddress::Dataset { dataset, .. } = &t.to;
        for entry in under(datasets, &t.source) {
            let Some((prefix, label)) = longest_label(entry, policies, backups) else {
                continue;
            };
            let rel = &entry.root.as_str()[t.source.as_str().len()..];
            too_long(
                format!("{dataset}{rel}"),
                format!("targets.{name}.to"),
                &prefix,
                &label,
                target_spans.get(name).cloned().unwrap_or(0..0),
            )?;
        }
    }
    Ok(())
}
