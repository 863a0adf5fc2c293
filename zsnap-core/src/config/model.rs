//! The values a config file holds, after parsing and validation.
//!
//! Every type here serializes back to the TOML it was read from (with every default made
//! explicit), so `Config::from_toml(&config.to_toml(), …)` gives back an equal value.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::duration::Span;
use crate::naming::Label;
use crate::schedule::{weekday_name, At, Period};
use crate::zfs_names::DatasetName;

/// A whole zsnap configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Config {
    /// Where zsnap writes its audit log, journal and lock.
    pub paths: Paths,
    /// Monitoring thresholds for `zsnap check`.
    #[serde(skip_serializing_if = "CheckSpec::is_empty")]
    pub check: CheckSpec,
    /// The datasets zsnap manages, each with its policy (`[[datasets]]`).
    pub datasets: Vec<DatasetEntry>,
    /// Named, reusable policies (`[policies.NAME]`).
    pub policies: BTreeMap<String, PolicySpec>,
    /// Replication targets (`[targets.NAME]`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, TargetSpec>,
    /// Backups of send streams to a directory or an S3-compatible store
    /// (`[backups.NAME]`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub backups: BTreeMap<String, BackupSpec>,
    /// Commands run around snapshots, replications and pruning (`[hooks.NAME]`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hooks: BTreeMap<String, crate::hooks::HookSpec>,
}

/// File locations. Relative paths are relative to the directory of the config file
/// (the CLI resolves them; this crate does no I/O).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Paths {
    /// JSON-lines log of every change zsnap makes.
    pub audit_log: String,
    /// Directory of the per-run journals.
    pub journal_dir: String,
    /// The lock file that makes runs exclusive.
    pub lock_file: String,
    /// An ssh client config file (absolute path) given to every ssh connection zsnap
    /// opens (`ssh -F FILE`): identity, known hosts, jump hosts, ciphers…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_config: Option<String>,
    /// The `zfs` program on this machine: an absolute path, never looked up in `PATH`.
    pub zfs: String,
    /// The `zfs` program on hosts reached over ssh (absolute, on that host).
    pub remote_zfs: String,
    /// The `ssh` program (absolute).
    pub ssh: String,
    /// The `zpool` program on this machine (absolute), for `zsnap check`'s pool health.
    pub zpool: String,
    /// The `zpool` program on hosts reached over ssh (absolute, on that host).
    pub remote_zpool: String,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            audit_log: "/var/log/zsnap/audit.jsonl".to_owned(),
            journal_dir: "/var/lib/zsnap/journal".to_owned(),
            lock_file: "/run/zsnap.lock".to_owned(),
            ssh_config: None,
            zfs: "/usr/sbin/zfs".to_owned(),
            remote_zfs: "/usr/sbin/zfs".to_owned(),
            ssh: "/usr/bin/ssh".to_owned(),
            zpool: "/usr/sbin/zpool".to_owned(),
            remote_zpool: "/usr/sbin/zpool".to_owned(),
        }
    }
}

/// A warning and a critical threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Thresholds {
    /// Older than this is a warning.
    pub warn: Span,
    /// Older than this is critical.
    pub crit: Span,
}

impl Thresholds {
    /// Thresholds; `warn` should not exceed `crit` (the config parser checks it).
    pub fn new(warn: Span, crit: Span) -> Self {
        Thresholds { warn, crit }
    }
}

/// Monitoring thresholds (`[check]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckSpec {
    /// Per label: how old the newest snapshot of that label may get. Labels without an
    /// entry get thresholds derived from their schedule period (see the CLI docs).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub freshness: BTreeMap<Label, Thresholds>,
    /// How far the newest snapshot on a target may lag behind the source's newest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_lag: Option<Thresholds>,
    /// Whether to check the health of the pools the datasets and targets live on
    /// (`zpool status`); on by default.
    #[serde(skip_serializing_if = "is_true")]
    pub pool_health: bool,
    /// How full those pools may get (`zpool list`'s capacity, in percent); by default
    /// sanoid's 80 (warn) and 95 (crit). `None` (`pool_capacity = false`) checks no
    /// capacity.
    #[serde(
        skip_serializing_if = "is_default_capacity",
        serialize_with = "serialize_capacity"
    )]
    pub pool_capacity: Option<CapacityThresholds>,
}

impl Default for CheckSpec {
    fn default() -> Self {
        CheckSpec {
            freshness: BTreeMap::new(),
            replication_lag: None,
            pool_health: true,
            pool_capacity: Some(CapacityThresholds::default()),
        }
    }
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_default_capacity(c: &Option<CapacityThresholds>) -> bool {
    *c == Some(CapacityThresholds::default())
}

fn serialize_capacity<S: Serializer>(
    c: &Option<CapacityThresholds>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match c {
        Some(t) => t.serialize(s),
        None => s.serialize_bool(false),
    }
}

impl CheckSpec {
    /// Whether everything is as by default (nothing to write in a `[check]` table).
    pub fn is_empty(&self) -> bool {
        *self == CheckSpec::default()
    }
}

/// How full a pool may get, in whole percent of its size (`zpool list`'s `capacity`):
/// at `warn` or more a check warns, at `crit` or more it is critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CapacityThresholds {
    /// Warning at this percentage or more.
    pub warn: u8,
    /// Critical at this percentage or more.
    pub crit: u8,
}

impl CapacityThresholds {
    /// Thresholds; `warn` should not exceed `crit`, nor either 100 (the config parser
    /// checks it).
    pub fn new(warn: u8, crit: u8) -> Self {
        CapacityThresholds { warn, crit }
    }
}

impl Default for CapacityThresholds {
    /// sanoid's defaults: 80 and 95.
    fn default() -> Self {
        CapacityThresholds { warn: 80, crit: 95 }
    }
}

/// Where a dataset or a target lives: this machine or a host reached over ssh.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Host {
    /// The machine zsnap runs on.
    Local,
    /// `ssh://[user@]host[:port]`.
    Ssh {
        /// Login user, if given.
        user: Option<String>,
        /// Host name or address.
        host: String,
        /// Port, if given.
        port: Option<u16>,
    },
}

impl Host {
    /// The id of this host as a plan [`Location`](crate::plan::Location): `local`, or
    /// `[user@]host[:port]`.
    pub fn location_id(&self) -> String {
        match self {
            Host::Local => "local".to_owned(),
            Host::Ssh { user, host, port } => {
                let mut s = String::new();
                if let Some(u) = user {
                    s.push_str(u);
                    s.push('@');
                }
                if host.contains(':') {
                    s.push('[');
                    s.push_str(host);
                    s.push(']');
                } else {
                    s.push_str(host);
                }
                if let Some(p) = port {
                    s.push(':');
                    s.push_str(&p.to_string());
                }
                s
            }
        }
    }

    /// This host as a plan [`Location`](crate::plan::Location): the location its
    /// datasets are planned at ([`Host::location_id`]).
    pub fn location(&self) -> crate::plan::Location {
        crate::plan::Location(self.location_id())
    }

    /// Whether this is the local machine.
    pub fn is_local(&self) -> bool {
        matches!(self, Host::Local)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Local => f.write_str("local"),
            Host::Ssh { .. } => write!(f, "ssh://{}", self.location_id()),
        }
    }
}

/// Why a host did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ssh address {input:?}: {problem}; expected \"ssh://user@host:port\"")]
#[non_exhaustive]
pub struct HostError {
    /// The input, verbatim.
    pub input: String,
    /// What is wrong.
    pub problem: &'static str,
}

/// Parses `user@host:port` (the part after `ssh://`, before any `/`).
fn parse_authority(input: &str, authority: &str) -> Result<Host, HostError> {
    let fail = |problem| HostError {
        input: input.to_owned(),
        problem,
    };
    let (user, rest) = match authority.rsplit_once('@') {
        Some((u, r)) => (Some(u), r),
        None => (None, authority),
    };
    if let Some(u) = user {
        if u.is_empty() {
            return Err(fail("the user before '@' is empty"));
        }
        if !u
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(fail(
                "the user may hold only letters, digits, '_', '-' and '.'",
            ));
        }
    }
    let (host, port) = if let Some(h) = rest.strip_prefix('[') {
        // [v6]:port
        let (h, after) = h
            .split_once(']')
            .ok_or_else(|| fail("an IPv6 address needs a closing ']'"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| fail("expected ':' and a port after ']'"))?,
            ),
        };
        (h, port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(fail("the host is empty"));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_'))
    {
        return Err(fail(
            "the host may hold only letters, digits, '-', '.', '_' and ':'",
        ));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| fail("the port is not a number from 1 to 65535"))?,
        ),
    };
    Ok(Host::Ssh {
        user: user.map(str::to_owned),
        host: host.to_owned(),
        port,
    })
}

impl FromStr for Host {
    type Err = HostError;
    /// `local` or `ssh://[user@]host[:port]`.
    fn from_str(s: &str) -> Result<Self, HostError> {
        if s == "local" {
            return Ok(Host::Local);
        }
        let rest = s.strip_prefix("ssh://").ok_or_else(|| HostError {
            input: s.to_owned(),
            problem: "it does not start with \"ssh://\"",
        })?;
        if rest.contains('/') {
            return Err(HostError {
                input: s.to_owned(),
                problem: "a host address has no path",
            });
        }
        parse_authority(s, rest)
    }
}

impl Serialize for Host {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One `[[datasets]]` entry: a dataset (and maybe its descendants) and its policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DatasetEntry {
    /// The dataset.
    pub root: DatasetName,
    /// Where it lives (`local` unless pulling from a server).
    pub host: Host,
    /// Whether descendants of `root` are managed too.
    pub recursive: bool,
    /// With `recursive`: manage the descendants but not `root` itself (sanoid's
    /// `process_children_only`).
    pub children_only: bool,
    /// Descendants skipped, each with everything below it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<DatasetName>,
    /// The name of the policy in `[policies]`.
    pub policy: String,
}

impl DatasetEntry {
    /// Whether this entry selects `ds` (ignoring hosts).
    pub fn selects(&self, ds: &DatasetName) -> bool {
        if self.exclude.iter().any(|e| e.contains(ds)) {
            return false;
        }
        if ds == &self.root {
            return !self.children_only;
        }
        self.recursive && self.root.is_ancestor_of(ds)
    }
}

/// A calendar unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[expect(
    clippy::exhaustive_enums,
    reason = "the calendar units zsnap schedules and buckets by; a new one would change every match"
)]
pub enum CalendarUnit {
    /// An hour.
    Hour,
    /// A day (local midnight to midnight).
    Day,
    /// An ISO week (Monday to Sunday).
    Week,
    /// A month.
    Month,
    /// A year.
    Year,
}

impl CalendarUnit {
    /// Every unit, shortest first.
    pub const ALL: [CalendarUnit; 5] = [
        CalendarUnit::Hour,
        CalendarUnit::Day,
        CalendarUnit::Week,
        CalendarUnit::Month,
        CalendarUnit::Year,
    ];

    /// The adjective used in configs: `hourly`, `daily`, `weekly`, `monthly`, `yearly`.
    pub fn adjective(self) -> &'static str {
        match self {
            CalendarUnit::Hour => "hourly",
            CalendarUnit::Day => "daily",
            CalendarUnit::Week => "weekly",
            CalendarUnit::Month => "monthly",
            CalendarUnit::Year => "yearly",
        }
    }

    /// The unit named by its adjective.
    pub fn from_adjective(s: &str) -> Option<Self> {
        CalendarUnit::ALL.into_iter().find(|u| u.adjective() == s)
    }

    /// A typical length, for thresholds and displays (a month is 31 days, a year 366).
    pub fn nominal(self) -> Span {
        Span::from_secs(match self {
            CalendarUnit::Hour => 3600,
            CalendarUnit::Day => 86_400,
            CalendarUnit::Week => 7 * 86_400,
            CalendarUnit::Month => 31 * 86_400,
            CalendarUnit::Year => 366 * 86_400,
        })
    }
}

/// Calendar keep counts: the newest snapshot of each of the last N hours, days, ISO
/// weeks, months and years, in the policy's time zone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CalendarKeep {
    /// Hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hourly: Option<u32>,
    /// Days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily: Option<u32>,
    /// ISO weeks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weekly: Option<u32>,
    /// Months.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly: Option<u32>,
    /// Years.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yearly: Option<u32>,
}

impl CalendarKeep {
    /// The count for one unit.
    pub fn count(&self, unit: CalendarUnit) -> Option<u32> {
        match unit {
            CalendarUnit::Hour => self.hourly,
            CalendarUnit::Day => self.daily,
            CalendarUnit::Week => self.weekly,
            CalendarUnit::Month => self.monthly,
            CalendarUnit::Year => self.yearly,
        }
    }

    /// Sets the count for one unit.
    pub fn set(&mut self, unit: CalendarUnit, n: u32) {
        let slot = match unit {
            CalendarUnit::Hour => &mut self.hourly,
            CalendarUnit::Day => &mut self.daily,
            CalendarUnit::Week => &mut self.weekly,
            CalendarUnit::Month => &mut self.monthly,
            CalendarUnit::Year => &mut self.yearly,
        };
        *slot = Some(n);
    }
}

/// sanoid-compatible retention: per snapshot type (label), keep while BOTH the count
/// and the age allow it, with sanoid's period lengths. Types left out of the config get
/// sanoid's defaults (see [`Default`]), as in a `sanoid.conf` template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SanoidKeep {
    /// `frequently` count.
    pub frequently: u32,
    /// `hourly` count.
    pub hourly: u32,
    /// `daily` count.
    pub daily: u32,
    /// `weekly` count.
    pub weekly: u32,
    /// `monthly` count.
    pub monthly: u32,
    /// `yearly` count.
    pub yearly: u32,
    /// `frequent_period` (sanoid's minutes, here a span; default 15m).
    pub frequent_period: Span,
}

/// sanoid 2.x's `sanoid.defaults.conf`: a type a template leaves out gets these.
impl Default for SanoidKeep {
    fn default() -> Self {
        SanoidKeep {
            frequently: 0,
            hourly: 48,
            daily: 90,
            weekly: 0,
            monthly: 6,
            yearly: 0,
            frequent_period: Span::from_secs(15 * 60),
        }
    }
}

impl SanoidKeep {
    /// The count per sanoid type name, in sanoid's order.
    pub fn counts(&self) -> [(&'static str, u32); 6] {
        [
            ("frequently", self.frequently),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ]
    }
}

/// The keep rules of a policy; a snapshot is destroyed only if no rule keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RetentionSpec {
    /// Calendar buckets (`keep = { daily = 7 }`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<CalendarKeep>,
    /// The newest N snapshots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Everything newer than this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_newer_than: Option<Span>,
    /// zrepl's grid (`"1x1h(keep=all) | 24x1h | 14x1d"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
    /// sanoid-compatible counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sanoid: Option<SanoidKeep>,
    /// The newest N snapshots of each label (`keep_counts = { hourly = 24 }`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub keep_counts: BTreeMap<Label, u32>,
    /// Snapshots whose short name matches any of these regular expressions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keep_regex: Vec<String>,
    /// Also keep the oldest snapshot of each dataset (a historical baseline).
    pub keep_oldest: bool,
    /// zrepl-style list of keep rules, each with its own filter on snapshot names
    /// (`keep_rules = [{ grid = "24x1h", regex = "^zrepl_" }, { last_n = 10 }]`). The
    /// keys above are short forms of items of this list.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keep_rules: Vec<KeepRuleSpec>,
}

/// One item of a policy's `keep_rules`: at most one rule, and a filter on the names of
/// the snapshots it judges.
///
/// Without a rule, the item is zrepl's `regex` rule: it keeps every snapshot whose
/// name matches `regex` (with `negate`, every one whose name does not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeepRuleSpec {
    /// The rule, or `None` for a rule that is only its regex.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleSpec>,
    /// Only snapshots whose name matches (unanchored, like zrepl's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Only snapshots whose name does *not* match `regex` instead.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub negate: bool,
    /// For `last_n`: only snapshots of this label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<Label>,
}

impl KeepRuleSpec {
    /// An item of this rule without a filter.
    pub fn new(rule: Option<RuleSpec>) -> Self {
        KeepRuleSpec {
            rule,
            regex: None,
            negate: false,
            label: None,
        }
    }
}

/// The rule of a [`KeepRuleSpec`], named by its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RuleSpec {
    /// `grid = "1x1h(keep=all) | 24x1h | 14x1d"`: zrepl's grid.
    Grid(String),
    /// `last_n = 10`: the newest N.
    LastN(u32),
    /// `calendar = { daily = 7, weekly = 4 }`: calendar buckets.
    Calendar(CalendarKeep),
    /// `newer_than = "7d"`: everything newer.
    NewerThan(Span),
    /// `not_replicated = "offsite"`: everything the target has not received yet.
    NotReplicated(String),
    /// `keep_oldest = true`: the oldest snapshot.
    KeepOldest(bool),
}

impl RetentionSpec {
    /// Whether at least one rule keeps something (`keep_oldest` alone counts).
    pub fn has_rules(&self) -> bool {
        !self.keep_rules.is_empty()
            || self.keep.is_some()
            || self.keep_last.is_some()
            || self.keep_newer_than.is_some()
            || self.grid.is_some()
            || self.sanoid.is_some()
            || !self.keep_counts.is_empty()
            || !self.keep_regex.is_empty()
            || self.keep_oldest
    }
}

/// A named policy (`[policies.NAME]`): when to take snapshots and which to keep.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PolicySpec {
    /// Time zone of calendar periods and buckets (IANA name; default `UTC`).
    pub timezone: chrono_tz::Tz,
    /// First part of zsnap's snapshot names (`<prefix>_<label>_<timestamp>`).
    pub prefix: String,
    /// Other tools whose snapshots this policy manages too (`"sanoid"`, or
    /// `{ prefix = "pyznap_", format = "%Y-%m-%d_%H:%M:%S_{label}" }`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adopt: Vec<Adopt>,
    /// Whether the policy prunes at all (`prune = false` only takes snapshots).
    pub prune: bool,
    /// Labels and when each is taken (`snapshot = { hourly = "hourly", daily = { every =
    /// "daily", at = "23:59" } }`); empty for policies that only prune (e.g. on a
    /// replication target).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub snapshot: BTreeMap<Label, Timing>,
    /// Labels taken on demand (`zsnap snapshot --label L`), each with the expiry a new
    /// snapshot of it gets (`on_demand = { pre-upgrade = "30d", manual = "never" }`).
    /// Declaring a label lets keep rules name it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub on_demand: BTreeMap<Label, Expiry>,
    /// Labels taken on purpose that no rule keeps (`keep_none = ["hourly"]`): taken only
    /// to be replicated, say, or sanoid's deliberate `hourly = 0`. Without this, a
    /// scheduled label no rule keeps is a config error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keep_none: Vec<Label>,
    /// Keep rules.
    #[serde(flatten)]
    pub retention: RetentionSpec,
}

/// Whose snapshots a policy adopts: a tool zsnap knows by name, or names of a prefix
/// and a `strftime` format.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Adopt {
    /// One of [`ADOPTABLE_TOOLS`](crate::config::ADOPTABLE_TOOLS) (`"sanoid"`).
    Tool(String),
    /// `{ prefix = "zrepl_", format = "%Y%m%d_%H%M%S_000", timezone = "UTC" }`.
    Format(crate::naming::NameFormat),
}

impl Adopt {
    /// The tool's name, for [`Adopt::Tool`].
    pub fn tool(&self) -> Option<&str> {
        match self {
            Adopt::Tool(t) => Some(t),
            Adopt::Format(_) => None,
        }
    }
}

impl Serialize for Adopt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Adopt::Tool(t) => s.serialize_str(t),
            Adopt::Format(f) => f.serialize(s),
        }
    }
}

/// When a scheduled label is taken: how often, and where in the period.
///
/// In a config, a period alone (`"daily"`) or a table with `every` and the fields its
/// period uses: `minute` (hourly), `at = "HH:MM"` (daily and longer), `on = "sunday"`
/// (weekly), `day` (monthly, yearly), `month` (yearly). Written back in the short form
/// when [`Timing::at`] is [`At::START`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Timing {
    /// The period.
    pub every: Period,
    /// Where in the period the label is due.
    pub at: At,
}

impl Timing {
    /// Every `every`, at the natural boundary.
    pub fn new(every: Period) -> Self {
        Timing {
            every,
            at: At::START,
        }
    }

    /// The same at `at` (the caller checks that `every` uses its fields, as
    /// [`LabelSchedule::with_at`](crate::schedule::LabelSchedule::with_at) does).
    #[must_use]
    pub fn with_at(self, at: At) -> Self {
        Timing { at, ..self }
    }
}

impl From<Period> for Timing {
    fn from(every: Period) -> Self {
        Timing::new(every)
    }
}

impl Serialize for Timing {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if self.at.is_start() {
            return self.every.serialize(s);
        }
        let a = self.at;
        let time = format!("{:02}:{:02}", a.hour(), a.minute());
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("every", &self.every)?;
        match self.every {
            Period::Hourly => m.serialize_entry("minute", &a.minute())?,
            Period::Daily => m.serialize_entry("at", &time)?,
            Period::Weekly => {
                m.serialize_entry("on", weekday_name(a.weekday()))?;
                m.serialize_entry("at", &time)?;
            }
            Period::Monthly => {
                m.serialize_entry("day", &a.day())?;
                m.serialize_entry("at", &time)?;
            }
            _ => {
                m.serialize_entry("month", &a.month())?;
                m.serialize_entry("day", &a.day())?;
                m.serialize_entry("at", &time)?;
            }
        }
        m.end()
    }
}

/// How long an on-demand snapshot is kept when nothing else keeps it: `"never"`
/// expires, or a duration from when it is taken (`"30d"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[expect(
    clippy::exhaustive_enums,
    reason = "a snapshot either expires after a span or never"
)]
pub enum Expiry {
    /// Kept until destroyed by hand.
    Never,
    /// Expires this long after it is taken.
    After(Span),
}

impl Expiry {
    /// The span, or `None` for [`Expiry::Never`].
    pub fn span(self) -> Option<Span> {
        match self {
            Expiry::Never => None,
            Expiry::After(s) => Some(s),
        }
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expiry::Never => f.write_str("never"),
            Expiry::After(s) => write!(f, "{s}"),
        }
    }
}

impl Serialize for Expiry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How a target protects the newest snapshot it shares with its source, so source
/// pruning can never remove the last common base.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[expect(
    clippy::exhaustive_enums,
    reason = "ZFS offers exactly these two ways to pin an incremental base"
)]
pub enum CursorKind {
    /// A user hold on the source snapshot.
    #[default]
    Hold,
    /// A bookmark of the source snapshot.
    Bookmark,
}

impl CursorKind {
    /// `hold` or `bookmark`.
    pub fn as_str(self) -> &'static str {
        match self {
            CursorKind::Hold => "hold",
            CursorKind::Bookmark => "bookmark",
        }
    }
}

impl Serialize for CursorKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Where a target stores what it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetAddress {
    /// A dataset, locally or over ssh: `pool/path` or `ssh://user@host:port/pool/path`.
    Dataset {
        /// Where.
        host: Host,
        /// The dataset that receives the source root.
        dataset: DatasetName,
    },
}

impl fmt::Display for TargetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetAddress::Dataset {
                host: Host::Local,
                dataset,
            } => write!(f, "{dataset}"),
            TargetAddress::Dataset { host, dataset } => write!(f, "{host}/{dataset}"),
        }
    }
}

/// Why a target address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetAddressError {
    /// Bad `ssh://` part.
    #[error(transparent)]
    Host(#[from] HostError),
    /// Bad dataset part.
    #[error(transparent)]
    Dataset(#[from] crate::zfs_names::NameError),
    /// Something else.
    #[error("invalid target {input:?}: {problem}")]
    Other {
        /// The input.
        input: String,
        /// What is wrong.
        problem: &'static str,
    },
}

impl FromStr for TargetAddress {
    type Err = TargetAddressError;
    fn from_str(s: &str) -> Result<Self, TargetAddressError> {
        let other = |problem| TargetAddressError::Other {
            input: s.to_owned(),
            problem,
        };
        if let Some(rest) = s.strip_prefix("ssh://") {
            let (authority, path) = rest.split_once('/').ok_or_else(|| {
                other("an ssh target needs a dataset after the host, as in ssh://host/pool/path")
            })?;
            let host = parse_authority(s, authority)?;
            Ok(TargetAddress::Dataset {
                host,
                dataset: path.parse()?,
            })
        } else if s.starts_with("dir:") || s.starts_with("s3://") || s.starts_with("file://") {
            Err(other(
                "a backup store is not a replication target: back up to it with a [backups.NAME] table",
            ))
        } else if s.contains("://") {
            Err(other(
                "unknown scheme (use ssh://host/pool/path or a local dataset name)",
            ))
        } else {
            Ok(TargetAddress::Dataset {
                host: Host::Local,
                dataset: s.parse()?,
            })
        }
    }
}

impl Serialize for TargetAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A replication target (`[targets.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TargetSpec {
    /// The root of the `[[datasets]]` entry replicated; each selected dataset below it
    /// lands at the same relative path below the target dataset.
    pub source: DatasetName,
    /// Where it goes.
    pub to: TargetAddress,
    /// The policy that prunes the target (its schedule is ignored).
    pub policy: String,
    /// Allow `zfs recv -F` (rolling back a diverged target). Off unless set.
    pub allow_rollback: bool,
    /// How the newest common snapshot is pinned on the source.
    pub cursor: CursorKind,
    /// `zfs recv -x PROP` for each of these properties (default `["mountpoint"]`, so a
    /// received filesystem never mounts over the target host's own directories).
    pub exclude_properties: Vec<String>,
    /// The rate each transfer to this target may move at; `None` (the default) for no
    /// limit. A limited transfer's bytes pass through zsnap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<super::Bandwidth>,
}

/// A scheduled backup of send streams to a store (`[backups.NAME]`).
///
/// Every dataset the `[[datasets]]` entry `source` selects is backed up on its own
/// chain: a full stream, then incrementals from the newest backed-up snapshot (found by
/// guid, through a bookmark kept on the source) until `full_every` has passed, then a
/// new full stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BackupSpec {
    /// The root of the `[[datasets]]` entry backed up.
    pub source: DatasetName,
    /// The store: `dir:/absolute/path` or `s3://bucket/prefix`.
    pub to: crate::backup::StoreUrl,
    /// How often a backup is due, per dataset (default one day).
    pub every: Span,
    /// Start a new chain with a full stream once the newest full backup of a dataset is
    /// this old; `None` (the default) sends incrementals for as long as a base exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_every: Option<Span>,
    /// The policy whose keep rules prune the store (applied to chains, so a full stream
    /// stays as long as a kept incremental needs it); `None` keeps every backup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The label of the snapshot a backup takes (default `backup`).
    pub label: Label,
    /// Compression of the stored streams (default `none`).
    pub compression: crate::backup::Compression,
    /// Read every stream back after uploading it and compare size and SHA-256 before
    /// writing its sidecar (default off).
    pub verify: bool,
    /// The S3-compatible service, for `s3://` stores.
    #[serde(skip_serializing_if = "S3Spec::is_empty")]
    pub s3: S3Spec,
}

/// How to reach an S3-compatible service. Anything unset comes from the usual
/// `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_REGION`, `AWS_ENDPOINT_URL`…). The secret key is never written in the config
/// itself, only the path of a file holding it, so configs can be shown and shared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct S3Spec {
    /// The service's URL, e.g. `https://s3.eu-central-003.backblazeb2.com`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The region (`garage` for Garage, `us-east-1` when the service does not care).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The access key id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// A file holding the secret access key (its first line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key_file: Option<String>,
    /// Allow a plain `http://` endpoint (a store on the local network).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_http: bool,
}

impl S3Spec {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &S3Spec::default()
    }
}
