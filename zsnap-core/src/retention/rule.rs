//! The policy value: [`RetentionPolicy`], its [`KeepRule`]s and the [`Candidate`]s they
//! judge.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::grid::Grid;
use super::pattern::NameRegex;
use crate::duration::Span;
use crate::inventory::Guid;
use crate::zfs_names::ShortName;

/// One snapshot as the retention rules see it.
///
/// `label` is the snapshot's type as its name says (`hourly`, `daily`, …), or `None`
/// when the name carries none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Candidate<'a> {
    /// The part after `@`.
    pub name: &'a ShortName,
    /// Its guid.
    pub guid: Guid,
    /// The transaction group it was created in (orders snapshots within a dataset).
    pub createtxg: u64,
    /// When it was created (ZFS `creation`, whole seconds).
    pub creation: DateTime<Utc>,
    /// Its type from its name (`hourly`, `daily`, …), if any.
    pub label: Option<&'a str>,
}

impl<'a> Candidate<'a> {
    /// A candidate.
    pub fn new(
        name: &'a ShortName,
        guid: Guid,
        createtxg: u64,
        creation: DateTime<Utc>,
        label: Option<&'a str>,
    ) -> Self {
        Candidate {
            name,
            guid,
            createtxg,
            creation,
            label,
        }
    }
}

/// A retention policy: a union of keep rules, plus the optional oldest-snapshot baseline.
///
/// A snapshot is kept when *any* rule keeps it (or it is the oldest and `keep_oldest` is
/// set); with no rules it keeps nothing. Safety rules (the newest snapshot, holds,
/// clones, the newest common snapshot with a target) are not part of a policy: the
/// planner applies them on top.
///
/// Serialized as `{ "rules": [...], "keep_oldest": false }`; each rule is either its
/// text (`"last 3"`, see [`KeepRule`]'s `Display`) or its tagged form
/// (`{ "last": { "count": 3 } }`).
///
/// # Example
/// ```
/// use zsnap_core::retention::{KeepRule, RetentionPolicy};
/// let policy = RetentionPolicy::new(vec![
///     "last 3".parse().unwrap(),
///     "calendar daily = 7, weekly = 4".parse().unwrap(),
/// ])
/// .with_keep_oldest(true);
/// let json = serde_json::to_string(&policy).unwrap();
/// assert_eq!(
///     json,
///     r#"{"rules":[{"last":{"count":3}},{"calendar":{"hourly":0,"daily":7,"weekly":4,"monthly":0,"yearly":0}}],"keep_oldest":true}"#
/// );
/// let back: RetentionPolicy =
///     serde_json::from_str(r#"{"rules":["last 3", "calendar daily = 7, weekly = 4"], "keep_oldest": true}"#).unwrap();
/// assert_eq!(back, policy);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RetentionPolicy {
    /// The keep rules; a snapshot survives if any keeps it.
    pub rules: Vec<KeepRule>,
    /// Always keep the oldest candidate (reason `keep_oldest`): a historical baseline.
    #[serde(default)]
    pub keep_oldest: bool,
}

impl RetentionPolicy {
    /// A policy of these rules, without the oldest-snapshot baseline.
    pub fn new(rules: Vec<KeepRule>) -> Self {
        RetentionPolicy {
            rules,
            keep_oldest: false,
        }
    }

    /// Whether a rule names `label` and so judges its snapshots: per-label counts with
    /// an entry for it, `last N (label L)`, or sanoid's rule when `label` is one of
    /// sanoid's types (filtered by a regex or not).
    pub fn names_label(&self, label: &str) -> bool {
        self.rules.iter().any(|r| match r.unfiltered() {
            KeepRule::LabelCounts(map) => map.contains_key(label),
            KeepRule::Last { label: Some(l), .. } => l == label,
            KeepRule::Sanoid(c) => c.types().iter().any(|(t, _, _)| *t == label),
            _ => false,
        })
    }

    /// Whether one of the rules is sanoid's.
    pub fn has_sanoid(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.unfiltered(), KeepRule::Sanoid(_)))
    }

    /// The same policy, keeping (or not) the oldest candidate as well.
    #[must_use]
    pub fn with_keep_oldest(mut self, keep_oldest: bool) -> Self {
        self.keep_oldest = keep_oldest;
        self
    }
}

/// sanoid's per-type counts, with the values of a `sanoid.conf` template.
///
/// [`Default`] is sanoid 2.x's `sanoid.defaults.conf`: `frequently = 0`,
/// `frequent_period = 15`, `hourly = 48`, `daily = 90`, `weekly = 0`, `monthly = 6`,
/// `yearly = 0` — so a template that leaves a type out gets what sanoid would give it.
/// In configs every field is optional and defaults to those values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SanoidCounts {
    /// `frequently`: snapshots labelled `frequently`.
    pub frequently: usize,
    /// `frequent_period`: the length of sanoid's "frequent" period, in minutes.
    #[serde(rename = "frequent_period", alias = "frequent_period_minutes")]
    pub frequent_period_minutes: u32,
    /// `hourly`: snapshots labelled `hourly` (period 1 hour).
    pub hourly: usize,
    /// `daily`: snapshots labelled `daily` (period 24 hours).
    pub daily: usize,
    /// `weekly`: snapshots labelled `weekly` (period 7 days).
    pub weekly: usize,
    /// `monthly`: snapshots labelled `monthly` (period 31 days).
    pub monthly: usize,
    /// `yearly`: snapshots labelled `yearly` (period 365.25 days).
    pub yearly: usize,
}

impl Default for SanoidCounts {
    fn default() -> Self {
        SanoidCounts {
            frequently: 0,
            frequent_period_minutes: 15,
            hourly: 48,
            daily: 90,
            weekly: 0,
            monthly: 6,
            yearly: 0,
        }
    }
}

impl SanoidCounts {
    /// Every count 0 (and `frequent_period = 15`): keeps nothing until counts are set.
    pub fn zeros() -> Self {
        SanoidCounts {
            frequently: 0,
            frequent_period_minutes: 15,
            hourly: 0,
            daily: 0,
            weekly: 0,
            monthly: 0,
            yearly: 0,
        }
    }

    /// Per sanoid type: its name (the label it applies to), its count, and the length of
    /// its period in seconds as sanoid 2.x's `prune_snapshots` has them:
    /// `frequent_period` minutes, 1 hour, 24 hours, 7 days, **31** days and **365.25**
    /// days.
    pub fn types(&self) -> [(&'static str, usize, i64); 6] {
        [
            (
                "frequently",
                self.frequently,
                i64::from(self.frequent_period_minutes) * 60,
            ),
            ("hourly", self.hourly, 3600),
            ("daily", self.daily, 86_400),
            ("weekly", self.weekly, 7 * 86_400),
            ("monthly", self.monthly, 31 * 86_400),
            ("yearly", self.yearly, 31_557_600),
        ]
    }
}

/// One keep rule. A snapshot survives a policy if any of its rules keeps it.
///
/// "Newest" and "oldest" below are by `creation`, ties broken by `createtxg` and then by
/// position in the candidate slice (later = newer). Each rule is evaluated alone, on all
/// candidates: rules never see what another rule kept.
///
/// Rules have a text form (`Display`, parsed back by `FromStr`) that reasons quote and
/// configs may use instead of the tagged serde form:
///
/// | rule | text |
/// |---|---|
/// | [`Last`](KeepRule::Last) | `last 3`, `last 3 (label hourly)`, `last 3 (regex ^manual_)`, `last 3 (label hourly, regex ^zsnap_)` |
/// | [`LabelCounts`](KeepRule::LabelCounts) | `labels daily = 7, hourly = 24` |
/// | [`Calendar`](KeepRule::Calendar) | `calendar hourly = 24, daily = 7, weekly = 4` (or without the word `calendar`) |
/// | [`Grid`](KeepRule::Grid) | `grid 1x1h(keep=all) \| 24x1h \| 14x1d` |
/// | [`Sanoid`](KeepRule::Sanoid) | `sanoid hourly = 36, daily = 30` (unnamed types get sanoid's defaults) |
/// | [`NewerThan`](KeepRule::NewerThan) | `newer than 7d` |
/// | [`Regex`](KeepRule::Regex) | `regex ^manual_` |
/// | [`NotRegex`](KeepRule::NotRegex) | `not regex ^manual_` |
/// | [`NotReplicated`](KeepRule::NotReplicated) | `not replicated to offsite` |
/// | [`Filtered`](KeepRule::Filtered) | `grid 24x1h (regex ^zrepl_)`, `last 3 (not regex ^manual_)` |
///
/// In `last … (regex R)`, `regex R` and `not regex R` the pattern runs to the end of the
/// text (to the final `)` in the first case), so it may contain any character. A
/// filter `(regex R)` or `(not regex R)` is split off at its first occurrence, so
/// the text of a [`Filtered`](KeepRule::Filtered) rule round-trips when its pattern does
/// not itself contain ` (regex ` or ` (not regex `, and its inner rule is neither
/// another filtered rule nor a regex rule (use [`KeepRule::filtered`], which never
/// builds those).
///
/// # Example
/// ```
/// use zsnap_core::retention::KeepRule;
/// let r: KeepRule = "last 3 (label hourly)".parse().unwrap();
/// assert_eq!(r.to_string(), "last 3 (label hourly)");
/// let g: KeepRule = "grid 1x1h(keep=all)|24x1h".parse().unwrap();
/// assert_eq!(g.to_string(), "grid 1x1h(keep=all) | 24x1h");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeepRule {
    /// The newest `count` candidates — among those with label `label` and whose name
    /// matches `regex`, when given (`now` is not used). Candidates created in the same
    /// second rank by name, descending (`b` before `a`), as in zrepl's `last_n`. Reasons: rule
    /// `last 3 (label hourly)`, bucket `#1 of 3` (the newest) … `#3 of 3`.
    Last {
        /// How many.
        count: usize,
        /// Only candidates with this label.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        /// Only candidates whose name matches.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        regex: Option<NameRegex>,
    },
    /// backupd style `[policy] hourly = 24, daily = 7`: for each label, its newest N
    /// candidates (ranked as by [`Last`](KeepRule::Last), equal seconds by name).
    /// Candidates with other labels, or none, are not kept by this rule.
    /// Reasons: rule `labels daily = 7`, bucket `#1 of 7` … `#7 of 7`.
    #[serde(rename = "labels")]
    LabelCounts(BTreeMap<String, usize>),
    /// Calendar buckets in the evaluation's time zone, with restic's `forget` semantics:
    /// for each unit with a count N > 0, walk the candidates newest → oldest and keep
    /// each one whose bucket differs from the previous one's, until N buckets are kept.
    /// So each of the newest N buckets *that have snapshots* keeps its newest snapshot
    /// (buckets without snapshots do not count, and `now` is not used: a dataset whose
    /// snapshots stopped keeps its last N buckets).
    ///
    /// Buckets come from the local wall-clock time of the instant in the zone:
    /// hour (`2026-11-23T14:00+01:00`, shown with the UTC offset of the kept snapshot),
    /// date (`2026-11-23`), ISO 8601 week (`2026-W47`, weeks start on Monday, week-year
    /// as `%G`), month (`2026-11`) and year (`2026`). On a spring-forward day the
    /// skipped hour has no bucket and the day has 23 hours; on a fall-back day the
    /// repeated hour is *one* bucket spanning two real hours (as in restic and Proxmox,
    /// which key hours by local `%Y-%m-%d %H`), and the day has 25 hours. 2026-12-31 is
    /// in week `2026-W53`; 2027-01-01 too.
    ///
    /// Units are independent, as in restic: a snapshot kept as an hourly also counts
    /// for its day. Proxmox differs: there each option skips buckets already covered by
    /// an earlier option and so reaches further back. restic ≥ 0.17 also keeps the
    /// oldest snapshot when there are fewer buckets than asked; here that is
    /// [`RetentionPolicy::keep_oldest`]. Reasons: rule `daily = 7`, bucket `2026-11-23`.
    Calendar {
        /// Local hours.
        #[serde(default)]
        hourly: usize,
        /// Local dates.
        #[serde(default)]
        daily: usize,
        /// ISO weeks.
        #[serde(default)]
        weekly: usize,
        /// Months.
        #[serde(default)]
        monthly: usize,
        /// Years.
        #[serde(default)]
        yearly: usize,
    },
    /// zrepl's retention grid, with zrepl's exact semantics:
    ///
    /// 1. The grid is anchored at the **newest candidate's creation** (not at `now`,
    ///    which this rule ignores; a snapshot from a clock that ran ahead simply moves
    ///    the grid, as in zrepl).
    /// 2. The grid's intervals are laid out back in time from there, adjacent: interval
    ///    *k* holds the candidates with `anchor - end_k < creation <= anchor - start_k`
    ///    (the newer edge inclusive, the older edge exclusive); the newest candidate is
    ///    in the first interval.
    /// 3. In each interval, `keep=all` keeps everything; `keep=N` keeps the N
    ///    **oldest** and drops the younger ones (so with `keep=1` the first interval
    ///    keeps its oldest snapshot, not the newest: lead with `1xD(keep=all)`).
    ///    Among snapshots of the same creation second, the one listed later (higher
    ///    `createtxg`, then later position) counts as the older, exactly as zrepl
    ///    orders them.
    /// 4. Candidates older than the last interval are not kept.
    ///
    /// zrepl's grid also takes a `regex` choosing which snapshots it sees (the others
    /// are not kept by it, and the anchor is the newest *matching* one): that is
    /// [`KeepRule::Filtered`] around a grid, `grid 24x1h (regex ^zrepl_)`.
    ///
    /// Reasons: rule `grid 1x1h(keep=all) | 24x1h`, bucket
    /// `#3 of 24x1h (2026-11-23T11:00:07+01:00, 2026-11-23T12:00:07+01:00]`.
    Grid(Grid),
    /// sanoid 2.x's pruning, per type: for each sanoid type T (`frequently`, `hourly`,
    /// `daily`, `weekly`, `monthly`, `yearly`) with count N and period P
    /// ([`SanoidCounts::types`]), a candidate **labelled T** is kept unless sanoid would
    /// prune it. sanoid walks that type's snapshots oldest first and prunes one when it
    /// is older than `now - N × P` (strictly, in whole seconds) *and* more than N of
    /// the type remain. Equivalently, it keeps a snapshot labelled T iff
    ///
    /// `creation >= now - N × P`  **or**  it is among the newest N labelled T.
    ///
    /// So `daily = 30` keeps at least the newest 30 dailies, and every daily younger
    /// than 30 days; `monthly = 6` means 6 × 31 days, `yearly = 1` means 365.25 days;
    /// a count of 0 keeps only snapshots created at or after `now`. Candidates with
    /// other labels are not kept by this rule (sanoid would not touch them; zsnap only
    /// asks about the candidates the policy manages). Ties at equal seconds: sanoid's
    /// order there is a hash order; here the older by `createtxg` goes first.
    /// Reasons: rule `sanoid daily = 30`, bucket `#1 of 30` … for the newest N, else
    /// `after 2026-10-24T14:00:00+02:00` (the age limit).
    Sanoid(SanoidCounts),
    /// Every candidate created strictly after `now - span` (and any from the future).
    /// Reasons: rule `newer than 7d`, bucket `after 2026-11-16T15:00:00+01:00`.
    NewerThan(Span),
    /// Every candidate whose name matches. Reasons: rule `regex ^manual_`, bucket
    /// `name matches`.
    Regex(NameRegex),
    /// Every candidate whose name does **not** match (zrepl's `type: regex` with
    /// `negate: true`). Reasons: rule `not regex ^manual_`, bucket
    /// `name does not match`.
    NotRegex(NameRegex),
    /// Every candidate the named replication target has not received yet: created in
    /// a later transaction group (higher `createtxg`) than the newest snapshot (or
    /// bookmark) the dataset shares with the target, by guid — zrepl's
    /// `not_replicated`. It needs to know what the target has
    /// ([`Replicated`](super::Replicated), given to
    /// [`evaluate_with`](super::evaluate_with)):
    ///
    /// - the target receives the dataset and shares a snapshot with it at `createtxg`
    ///   X: keeps every candidate with `createtxg > X` (bucket `newer than the newest
    ///   snapshot on offsite (createtxg X)`);
    /// - the target receives the dataset but shares nothing with it yet: keeps every
    ///   candidate (bucket `nothing received yet`);
    /// - the target does not receive the dataset (or nothing is known of it, as in
    ///   [`evaluate`](super::evaluate)): keeps nothing.
    ///
    /// The prune planner never evaluates a dataset whose target could not be listed:
    /// it keeps all of that dataset's snapshots. `now` is not used.
    NotReplicated(String),
    /// Another rule, applied only to the candidates whose name matches `regex` (or,
    /// with `negate`, does not match): zrepl's `regex` (and `negate`) of `grid` and
    /// `last_n`. The inner rule sees nothing else: a grid is anchored at the newest
    /// matching candidate, `last 3` counts matching candidates, calendar buckets hold
    /// matching candidates. Reasons are the inner rule's, with ` (regex R)` (or
    /// ` (not regex R)`) after the rule: `grid 24x1h (regex ^zrepl_)
    /// [#3 of 24x1h (…)]`.
    Filtered {
        /// The pattern.
        regex: NameRegex,
        /// Apply the rule to the candidates that do *not* match instead.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        negate: bool,
        /// The rule applied to the filtered candidates.
        rule: Box<KeepRule>,
    },
}

/// The calendar units in the order reasons list them, with their config keys.
pub(super) const CALENDAR_UNITS: [&str; 5] = ["hourly", "daily", "weekly", "monthly", "yearly"];

impl KeepRule {
    /// The newest `count` candidates.
    pub fn last(count: usize) -> Self {
        KeepRule::Last {
            count,
            label: None,
            regex: None,
        }
    }

    /// `rule`, applied only to the candidates whose name matches `regex` (does not
    /// match, with `negate`), in the canonical form whose text round-trips: a
    /// matching filter on `last N` without a regex becomes its own `(regex R)`; a
    /// filter on a regex rule, or on a rule that is already filtered, is kept as is
    /// (nested), which has no text form of its own.
    ///
    /// # Example
    /// ```
    /// use zsnap_core::retention::KeepRule;
    /// let grid = "grid 24x1h".parse().unwrap();
    /// let r = KeepRule::filtered("^zrepl_".parse().unwrap(), false, grid);
    /// assert_eq!(r.to_string(), "grid 24x1h (regex ^zrepl_)");
    /// let r = KeepRule::filtered("^manual_".parse().unwrap(), false, KeepRule::last(3));
    /// assert_eq!(r, "last 3 (regex ^manual_)".parse().unwrap());
    /// ```
    pub fn filtered(regex: NameRegex, negate: bool, rule: KeepRule) -> Self {
        match rule {
            KeepRule::Last {
                count,
                label,
                regex: None,
            } if !negate => KeepRule::Last {
                count,
                label,
                regex: Some(regex),
            },
            rule => KeepRule::Filtered {
                regex,
                negate,
                rule: Box::new(rule),
            },
        }
    }

    /// The rule inside any [`Filtered`](KeepRule::Filtered) wrappers.
    pub fn unfiltered(&self) -> &KeepRule {
        match self {
            KeepRule::Filtered { rule, .. } => rule.unfiltered(),
            other => other,
        }
    }

    /// Calendar counts per unit, in [`CALENDAR_UNITS`] order.
    pub(super) fn calendar_counts(&self) -> Option<[usize; 5]> {
        match *self {
            KeepRule::Calendar {
                hourly,
                daily,
                weekly,
                monthly,
                yearly,
            } => Some([hourly, daily, weekly, monthly, yearly]),
            _ => None,
        }
    }
}

fn write_assignments<'a>(
    f: &mut fmt::Formatter<'_>,
    items: impl IntoIterator<Item = (&'a str, usize)>,
) -> fmt::Result {
    for (i, (k, v)) in items.into_iter().enumerate() {
        f.write_str(if i == 0 { " " } else { ", " })?;
        write!(f, "{k} = {v}")?;
    }
    Ok(())
}

impl fmt::Display for KeepRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepRule::Last {
                count,
                label,
                regex,
            } => {
                write!(f, "last {count}")?;
                match (label, regex) {
                    (None, None) => Ok(()),
                    (Some(l), None) => write!(f, " (label {l})"),
                    (None, Some(r)) => write!(f, " (regex {r})"),
                    (Some(l), Some(r)) => write!(f, " (label {l}, regex {r})"),
                }
            }
            KeepRule::LabelCounts(map) => {
                f.write_str("labels")?;
                write_assignments(f, map.iter().map(|(k, v)| (k.as_str(), *v)))
            }
            KeepRule::Calendar { .. } => {
                f.write_str("calendar")?;
                let counts = self.calendar_counts().unwrap_or_default();
                write_assignments(
                    f,
                    CALENDAR_UNITS
                        .iter()
                        .zip(counts)
                        .filter(|(_, n)| *n > 0)
                        .map(|(u, n)| (*u, n)),
                )
            }
            KeepRule::Grid(g) => write!(f, "grid {g}"),
            KeepRule::Sanoid(s) => {
                write!(
                    f,
                    "sanoid frequently = {}, frequent_period = {}",
                    s.frequently, s.frequent_period_minutes
                )?;
                for (name, n, _) in s.types().into_iter().skip(1) {
                    write!(f, ", {name} = {n}")?;
                }
                Ok(())
            }
            KeepRule::NewerThan(span) => write!(f, "newer than {span}"),
            KeepRule::Regex(p) => write!(f, "regex {p}"),
            KeepRule::NotRegex(p) => write!(f, "not regex {p}"),
            KeepRule::NotReplicated(t) => write!(f, "not replicated to {t}"),
            KeepRule::Filtered {
                regex,
                negate,
                rule,
            } => {
                let not = if *negate { "not " } else { "" };
                write!(f, "{rule} ({not}regex {regex})")
            }
        }
    }
}

/// The tagged serde form, mirrored so that [`KeepRule`] can accept its text form too.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum TaggedRule {
    Last {
        count: usize,
        #[serde(default)]
        label: Option<String>,
        #[serde(default)]
        regex: Option<NameRegex>,
    },
    #[serde(rename = "labels")]
    LabelCounts(BTreeMap<String, usize>),
    Calendar {
        #[serde(default)]
        hourly: usize,
        #[serde(default)]
        daily: usize,
        #[serde(default)]
        weekly: usize,
        #[serde(default)]
        monthly: usize,
        #[serde(default)]
        yearly: usize,
    },
    Grid(Grid),
    Sanoid(SanoidCounts),
    NewerThan(Span),
    Regex(NameRegex),
    NotRegex(NameRegex),
    NotReplicated(String),
    Filtered {
        regex: NameRegex,
        #[serde(default)]
        negate: bool,
        rule: Box<KeepRule>,
    },
}

impl From<TaggedRule> for KeepRule {
    fn from(t: TaggedRule) -> Self {
        match t {
            TaggedRule::Last {
                count,
                label,
                regex,
            } => KeepRule::Last {
                count,
                label,
                regex,
            },
            TaggedRule::LabelCounts(m) => KeepRule::LabelCounts(m),
            TaggedRule::Calendar {
                hourly,
                daily,
                weekly,
                monthly,
                yearly,
            } => KeepRule::Calendar {
                hourly,
                daily,
                weekly,
                monthly,
                yearly,
            },
            TaggedRule::Grid(g) => KeepRule::Grid(g),
            TaggedRule::Sanoid(s) => KeepRule::Sanoid(s),
            TaggedRule::NewerThan(s) => KeepRule::NewerThan(s),
            TaggedRule::Regex(p) => KeepRule::Regex(p),
            TaggedRule::NotRegex(p) => KeepRule::NotRegex(p),
            TaggedRule::NotReplicated(t) => KeepRule::NotReplicated(t),
            TaggedRule::Filtered {
                regex,
                negate,
                rule,
            } => KeepRule::Filtered {
                regex,
                negate,
                rule,
            },
        }
    }
}

impl<'de> Deserialize<'de> for KeepRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RuleVisitor;
        impl<'de> Visitor<'de> for RuleVisitor {
            type Value = KeepRule;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a keep rule: its text (\"last 3\") or a table ({ last = { count = 3 } })",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeepRule, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<KeepRule, A::Error> {
                TaggedRule::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(KeepRule::from)
            }
        }
        d.deserialize_any(RuleVisitor)
    }
}
