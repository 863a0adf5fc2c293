//! From config values to the engine's own types: retention policies, schedules, naming
//! schemes, recognizers, replication mappings and options.
//!
//! Every conversion here is infallible: the parser already checked each value with the
//! same constructors, so a failure would be a bug (the `expect`s say which invariant).

use std::collections::{BTreeMap, BTreeSet};

use super::model::{
    Adopt, CalendarKeep, Config, CursorKind, DatasetEntry, Host, KeepRuleSpec, PolicySpec,
    RuleSpec, TargetAddress, TargetSpec,
};
use crate::naming::{Label, NamingScheme, Recognizer};
use crate::policy::{DatasetSelection, Policy};
use crate::replicate::{Cursor, DatasetMapping, ReplicationOptions};
use crate::retention::{Grid, KeepRule, NameRegex, RetentionPolicy, SanoidCounts};
use crate::schedule::{LabelSchedule, Schedule};

fn usize_of(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Config {
    /// Every policy, converted ([`PolicySpec::to_policy`]).
    ///
    /// The label of each `[backups.*]` counts as scheduled for the policy of the
    /// datasets it backs up ([`Policy::also_scheduled`]), so its snapshots are not taken
    /// for on-demand ones.
    pub fn core_policies(&self) -> BTreeMap<String, Policy> {
        let mut backup_labels: BTreeMap<&str, BTreeSet<Label>> = BTreeMap::new();
        for b in self.backups.values() {
            for e in self
                .datasets
                .iter()
                .filter(|e| e.root == b.source || b.source.is_ancestor_of(&e.root))
            {
                backup_labels
                    .entry(e.policy.as_str())
                    .or_default()
                    .insert(b.label.clone());
            }
        }
        self.policies
            .iter()
            .map(|(name, p)| {
                let also = backup_labels.remove(name.as_str()).unwrap_or_default();
                (name.clone(), p.to_policy().with_also_scheduled(also))
            })
            .collect()
    }

    /// The dataset selections of one host, in config order.
    pub fn selections(&self, host: &Host) -> Vec<DatasetSelection> {
        self.datasets
            .iter()
            .filter(|e| &e.host == host)
            .map(DatasetEntry::selection)
            .collect()
    }

    /// Every host that has `[[datasets]]`, local first.
    pub fn source_hosts(&self) -> Vec<Host> {
        let mut hosts: Vec<Host> = Vec::new();
        for e in &self.datasets {
            if !hosts.contains(&e.host) {
                hosts.push(e.host.clone());
            }
        }
        hosts.sort_by_key(|h| !h.is_local());
        hosts
    }
}

impl DatasetEntry {
    /// The entry as the engine's [`DatasetSelection`].
    pub fn selection(&self) -> DatasetSelection {
        DatasetSelection::new(self.root.clone(), self.policy.clone())
            .with_recursive(self.recursive)
            .with_children_only(self.children_only)
            .with_exclude(self.exclude.clone())
    }
}

fn calendar_rule(k: CalendarKeep) -> KeepRule {
    KeepRule::Calendar {
        hourly: usize_of(k.hourly.unwrap_or(0)),
        daily: usize_of(k.daily.unwrap_or(0)),
        weekly: usize_of(k.weekly.unwrap_or(0)),
        monthly: usize_of(k.monthly.unwrap_or(0)),
        yearly: usize_of(k.yearly.unwrap_or(0)),
    }
}

/// One `keep_rules` item as an engine rule, or `None` for `keep_oldest`, which is the
/// policy's baseline flag rather than a rule.
fn list_rule(item: &KeepRuleSpec) -> Option<KeepRule> {
    let regex = item.regex.as_ref().map(|re| {
        NameRegex::new(re).expect("the config parser accepted this regex with the same constructor")
    });
    let rule = match &item.rule {
        None => {
            let regex = regex.expect("the parser refuses an item with neither rule nor regex");
            return Some(if item.negate {
                KeepRule::NotRegex(regex)
            } else {
                KeepRule::Regex(regex)
            });
        }
        Some(RuleSpec::Grid(g)) => KeepRule::Grid(
            g.parse::<Grid>()
                .expect("the config parser accepted this grid with the same parser"),
        ),
        Some(RuleSpec::LastN(n)) => KeepRule::Last {
            count: usize_of(*n),
            label: item.label.as_ref().map(|l| l.as_str().to_owned()),
            regex: None,
        },
        Some(RuleSpec::Calendar(k)) => calendar_rule(*k),
        Some(RuleSpec::NewerThan(span)) => KeepRule::NewerThan(*span),
        Some(RuleSpec::NotReplicated(t)) => KeepRule::NotReplicated(t.clone()),
        Some(RuleSpec::KeepOldest(_)) => return None,
    };
    Some(match regex {
        Some(regex) => KeepRule::filtered(regex, item.negate, rule),
        None => rule,
    })
}

impl PolicySpec {
    /// The engine's [`Policy`]: schedule, retention, time zone, naming, adoption and
    /// whether it prunes at all.
    pub fn to_policy(&self) -> Policy {
        Policy::new(self.schedule(), self.retention_policy(), self.timezone)
            .with_prune(self.prune)
            .with_naming(self.naming())
            .with_adopt(self.recognizers())
            .with_on_demand(
                self.on_demand
                    .iter()
                    .map(|(l, e)| (l.clone(), e.span()))
                    .collect(),
            )
    }

    /// The keep rules as a [`RetentionPolicy`], in a fixed order: calendar, last,
    /// per-label counts, grid, sanoid, newer than, regexes, then the items of
    /// `keep_rules` in their order.
    pub fn retention_policy(&self) -> RetentionPolicy {
        let r = &self.retention;
        let mut rules = Vec::new();
        if let Some(k) = r.keep {
            rules.push(calendar_rule(k));
        }
        if let Some(n) = r.keep_last {
            rules.push(KeepRule::last(usize_of(n)));
        }
        if !r.keep_counts.is_empty() {
            rules.push(KeepRule::LabelCounts(
                r.keep_counts
                    .iter()
                    .map(|(l, n)| (l.as_str().to_owned(), usize_of(*n)))
                    .collect(),
            ));
        }
        if let Some(g) = &r.grid {
            let grid: Grid = g
                .parse()
                .expect("the config parser accepted this grid with the same parser");
            rules.push(KeepRule::Grid(grid));
        }
        if let Some(s) = r.sanoid {
            let mut c = SanoidCounts::zeros();
            c.frequently = usize_of(s.frequently);
            c.hourly = usize_of(s.hourly);
            c.daily = usize_of(s.daily);
            c.weekly = usize_of(s.weekly);
            c.monthly = usize_of(s.monthly);
            c.yearly = usize_of(s.yearly);
            c.frequent_period_minutes =
                u32::try_from(s.frequent_period.seconds() / 60).unwrap_or(u32::MAX);
            rules.push(KeepRule::Sanoid(c));
        }
        if let Some(span) = r.keep_newer_than {
            rules.push(KeepRule::NewerThan(span));
        }
        for re in &r.keep_regex {
            let p = NameRegex::new(re)
                .expect("the config parser accepted this regex with the same constructor");
            rules.push(KeepRule::Regex(p));
        }
        let mut keep_oldest = r.keep_oldest;
        for item in &r.keep_rules {
            if let Some(RuleSpec::KeepOldest(b)) = item.rule {
                keep_oldest |= b;
            }
            rules.extend(list_rule(item));
        }
        RetentionPolicy::new(rules).with_keep_oldest(keep_oldest)
    }

    /// The snapshot schedule (empty for policies that only prune).
    pub fn schedule(&self) -> Schedule {
        Schedule::new(
            self.snapshot
                .iter()
                .map(|(label, t)| {
                    LabelSchedule::new(label.clone(), t.every)
                        .with_at(t.at)
                        .expect(
                        "the config parser accepted this time of period with the same constructor",
                    )
                })
                .collect(),
        )
        .expect("labels come from the keys of a map, so they are unique")
    }

    /// How this policy names the snapshots it takes.
    pub fn naming(&self) -> NamingScheme {
        NamingScheme::new(self.prefix.clone())
            .expect("the config parser accepted this prefix with the same constructor")
    }

    /// Recognizers for the other tools' snapshots this policy adopts.
    pub fn recognizers(&self) -> Vec<Recognizer> {
        self.adopt
            .iter()
            .filter_map(|a| match a {
                Adopt::Tool(tool) => match tool.as_str() {
                    "sanoid" => Some(Recognizer::sanoid()),
                    "zfs-auto-snapshot" => Some(Recognizer::zfs_auto_snapshot()),
                    "zrepl" => Some(Recognizer::zrepl()),
                    "iso8601" => Some(Recognizer::iso8601()),
                    _ => None,
                },
                Adopt::Format(f) => Some(Recognizer::Format(f.clone())),
            })
            .collect()
    }
}

impl TargetSpec {
    /// The replication options this target asks for (the planner's defaults otherwise).
    pub fn replication_options(&self) -> ReplicationOptions {
        let defaults = ReplicationOptions::default();
        ReplicationOptions {
            allow_rollback: self.allow_rollback,
            cursor: match self.cursor {
                CursorKind::Hold => Cursor::Hold,
                CursorKind::Bookmark => Cursor::Bookmark,
            },
            exclude_props: self.exclude_properties.clone(),
            ..defaults
        }
    }

    /// How the datasets of `entry` (the `[[datasets]]` entry named by `source`) map
    /// onto this target, or `None` for a target that is not a dataset.
    pub fn mapping(&self, entry: &DatasetEntry) -> Option<DatasetMapping> {
        let TargetAddress::Dataset { dataset, .. } = &self.to;
        Some(if entry.recursive {
            DatasetMapping::recursive(entry.root.clone(), dataset.clone(), entry.exclude.clone())
        } else {
            DatasetMapping::new(entry.root.clone(), dataset.clone())
        })
    }
}
