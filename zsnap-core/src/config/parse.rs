//! The TOML walker: reads a spanned TOML tree into [`Config`], checking every key and
//! value and reporting the first problem with its place in the file.
//!
//! Hand-written rather than `#[derive(Deserialize)]` so that every message can say what
//! was expected, suggest the key that was meant, and point at the exact value.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::bandwidth::Bandwidth;
use super::error::{ConfigError, ConfigProblem};
use super::model::{
    Adopt, BackupSpec, CalendarKeep, CalendarUnit, CapacityThresholds, CheckSpec, Config,
    CursorKind, DatasetEntry, Expiry, Host, KeepRuleSpec, Paths, PolicySpec, RetentionSpec,
    RuleSpec, S3Spec, SanoidKeep, TargetAddress, TargetSpec, Thresholds, Timing,
};
use super::spans::{Cx, PolicySpans};
use super::suggest::closest;
use crate::duration::Span;
use crate::hooks::{HookEvent, HookSpec, OnFailure};
use crate::naming::{FormatZone, Label, NameFormat, NamingScheme};
use crate::retention::{Grid, NameRegex};
use crate::schedule::{parse_weekday, At, LabelSchedule, Period, ScheduleError, WEEKDAYS};
use crate::zfs_names::DatasetName;

type Value<'i> = Spanned<DeValue<'i>>;
type Result<T> = std::result::Result<T, ConfigError>;

/// Tools whose snapshots a policy can adopt (`adopt = [...]`).
pub(crate) const ADOPTABLE: [&str; 4] = ["sanoid", "zfs-auto-snapshot", "zrepl", "iso8601"];

/// Name prefixes other tools use, and the tool: a zsnap prefix equal to one of these
/// would make zsnap treat that tool's snapshots as its own.
pub(crate) const FOREIGN_PREFIXES: [(&str, &str); 3] = [
    ("autosnap", "sanoid"),
    ("zfs-auto-snap", "zfs-auto-snapshot"),
    ("zrepl", "zrepl"),
];

/// A table with its entries in file order.
struct Table<'v, 'i> {
    /// `[policies.x]`, for messages.
    name: String,
    /// Dotted prefix for the paths of values in it (`policies.x.`).
    prefix: String,
    span: Range<usize>,
    entries: Vec<(&'v str, Range<usize>, &'v Value<'i>)>,
}

impl<'v, 'i> Table<'v, 'i> {
    fn get(&self, key: &str) -> Option<&'v Value<'i>> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }

    fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

fn found(v: &DeValue<'_>) -> String {
    match v {
        DeValue::Table(_) => "a table".to_owned(),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Integer(i) => format!("the integer {}", i.as_str()),
        DeValue::Boolean(b) => format!("`{b}`"),
        DeValue::String(s) => format!("the string {s:?}"),
        other => format!("a {}", other.type_str()),
    }
}

impl<'t> Cx<'t> {
    fn err(&self, span: Range<usize>, problem: ConfigProblem) -> ConfigError {
        ConfigError::at(self.file, self.text, span, problem)
    }

    fn invalid(&self, span: Range<usize>, path: &str, message: impl Into<String>) -> ConfigError {
        self.err(
            span,
            ConfigProblem::InvalidValue {
                path: path.to_owned(),
                message: message.into(),
            },
        )
    }

    fn wrong_type(&self, v: &Value<'_>, path: &str, expected: &str) -> ConfigError {
        self.err(
            v.span(),
            ConfigProblem::WrongType {
                path: path.to_owned(),
                expected: expected.to_owned(),
                found: found(v.get_ref()),
            },
        )
    }

    /// The span of byte `pos` of a string value's content, when the string is written
    /// without escapes (otherwise the whole value).
    fn inner_span(&self, v: &Value<'_>, pos: usize, len: usize) -> Range<usize> {
        let span = v.span();
        let raw = self.text.get(span.clone()).unwrap_or("");
        let content = v.get_ref().as_str().unwrap_or("");
        let quote = raw.chars().next();
        if matches!(quote, Some('"' | '\''))
            && raw.len() == content.len() + 2
            && &raw[1..raw.len() - 1] == content
        {
            let start = span.start + 1 + pos.min(content.len());
            start..(start + len).min(span.end - 1).max(start)
        } else {
            span
        }
    }

    fn table<'v, 'i>(
        &self,
        v: &'v Value<'i>,
        name: String,
        prefix: String,
        allowed: &[&str],
    ) -> Result<Table<'v, 'i>> {
        let DeValue::Table(t) = v.get_ref() else {
            return Err(self.wrong_type(v, prefix.trim_end_matches('.'), "a table"));
        };
        self.entries(t, v.span(), name, prefix, allowed)
    }

    fn entries<'v, 'i>(
        &self,
        t: &'v DeTable<'i>,
        span: Range<usize>,
        name: String,
        prefix: String,
        allowed: &[&str],
    ) -> Result<Table<'v, 'i>> {
        let mut entries: Vec<_> = t
            .iter()
            .map(|(k, v)| (k.get_ref().as_ref(), k.span(), v))
            .collect();
        entries.sort_by_key(|(_, span, _)| span.start);
        if !allowed.is_empty() {
            for (k, span, _) in &entries {
                if !allowed.contains(k) {
                    return Err(self.err(
                        span.clone(),
                        ConfigProblem::UnknownKey {
                            key: (*k).to_owned(),
                            table: name,
                            suggestion: closest(k, allowed.iter().copied()),
                            expected: allowed.iter().map(|s| (*s).to_owned()).collect(),
                        },
                    ));
                }
            }
        }
        Ok(Table {
            name,
            prefix,
            span,
            entries,
        })
    }

    fn missing(&self, t: &Table<'_, '_>, key: &str, hint: &str) -> ConfigError {
        self.err(
            t.span.clone(),
            ConfigProblem::MissingKey {
                key: key.to_owned(),
                table: t.name.clone(),
                hint: hint.to_owned(),
            },
        )
    }

    fn string<'v>(&self, v: &'v Value<'_>, path: &str, example: &str) -> Result<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Ok(s.as_ref()),
            _ => Err(self.wrong_type(v, path, &format!("a string, such as {example}"))),
        }
    }

    fn boolean(&self, v: &Value<'_>, path: &str) -> Result<bool> {
        v.get_ref()
            .as_bool()
            .ok_or_else(|| self.wrong_type(v, path, "`true` or `false`"))
    }

    fn count(&self, v: &Value<'_>, path: &str) -> Result<u32> {
        let Some(i) = v.get_ref().as_integer() else {
            return Err(self.wrong_type(v, path, "a whole number, such as 7"));
        };
        i64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                self.invalid(
                    v.span(),
                    path,
                    format!(
                        "{} is not a count; expected a whole number from 0 to {}",
                        i.as_str(),
                        u32::MAX
                    ),
                )
            })
    }

    fn span_value(&self, v: &Value<'_>, path: &str) -> Result<Span> {
        let s = self.string(v, path, "\"15m\"")?;
        s.parse::<Span>().map_err(|e| {
            self.invalid(
                v.span(),
                path,
                format!(
                    "{s:?} is not a duration: {}; expected e.g. \"90s\", \"15m\", \"1h30m\", \"7d\" or \"2w\"",
                    e.problem
                ),
            )
        })
    }

    /// A duration above zero; zero is refused with `zero`.
    fn nonzero_span(&self, v: &Value<'_>, path: &str, zero: &str) -> Result<Span> {
        let span = self.span_value(v, path)?;
        if span.seconds() == 0 {
            return Err(self.invalid(v.span(), path, zero));
        }
        Ok(span)
    }

    fn dataset(&self, v: &Value<'_>, path: &str) -> Result<DatasetName> {
        let s = self.string(v, path, "\"tank/home\"")?;
        s.parse::<DatasetName>().map_err(|e| {
            self.invalid(
                self.inner_span(v, e.position, 1),
                path,
                format!("{s:?} is not a dataset name: {}", e.problem),
            )
        })
    }

    /// A string or an array of strings.
    fn strings<'v>(
        &self,
        v: &'v Value<'_>,
        path: &str,
        example: &str,
    ) -> Result<Vec<(&'v str, &'v Value<'v>)>>
    where
        'v: 'v,
    {
        match v.get_ref() {
            DeValue::String(s) => Ok(vec![(s.as_ref(), v)]),
            DeValue::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let p = format!("{path}[{}]", i + 1);
                    self.string(item, &p, example).map(|s| (s, item))
                })
                .collect(),
            _ => Err(self.wrong_type(
                v,
                path,
                &format!("an array of strings, such as [{example}]"),
            )),
        }
    }
}

const TOP_KEYS: [&str; 7] = [
    "paths", "check", "datasets", "policies", "targets", "backups", "hooks",
];
const PATH_KEYS: [&str; 9] = [
    "audit_log",
    "journal_dir",
    "lock_file",
    "ssh_config",
    "zfs",
    "remote_zfs",
    "ssh",
    "zpool",
    "remote_zpool",
];
const CHECK_KEYS: [&str; 4] = [
    "freshness",
    "replication_lag",
    "pool_health",
    "pool_capacity",
];
const THRESHOLD_KEYS: [&str; 2] = ["warn", "crit"];
const DATASET_KEYS: [&str; 6] = [
    "root",
    "host",
    "recursive",
    "children_only",
    "exclude",
    "policy",
];
const POLICY_KEYS: [&str; 16] = [
    "timezone",
    "prefix",
    "adopt",
    "prune",
    "snapshot",
    "on_demand",
    "keep_none",
    "keep",
    "keep_last",
    "keep_newer_than",
    "grid",
    "sanoid",
    "keep_counts",
    "keep_regex",
    "keep_oldest",
    "keep_rules",
];
/// The keys of one `keep_rules` item: its rule (at most one) and its filter.
const RULE_KINDS: [&str; 6] = [
    "grid",
    "last_n",
    "calendar",
    "newer_than",
    "not_replicated",
    "keep_oldest",
];
const RULE_KEYS: [&str; 9] = [
    "grid",
    "last_n",
    "calendar",
    "newer_than",
    "not_replicated",
    "keep_oldest",
    "regex",
    "negate",
    "label",
];
const KEEP_KEYS: [&str; 5] = ["hourly", "daily", "weekly", "monthly", "yearly"];
const SANOID_KEYS: [&str; 7] = [
    "frequently",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "yearly",
    "frequent_period",
];
const TARGET_KEYS: [&str; 7] = [
    "source",
    "to",
    "policy",
    "allow_rollback",
    "cursor",
    "exclude_properties",
    "bandwidth",
];
const BACKUP_KEYS: [&str; 9] = [
    "source",
    "to",
    "every",
    "full_every",
    "policy",
    "label",
    "compression",
    "verify",
    "s3",
];
const S3_KEYS: [&str; 5] = [
    "endpoint",
    "region",
    "access_key_id",
    "secret_access_key_file",
    "allow_http",
];

/// Parses and validates a whole config.
pub(crate) fn parse(cx: &Cx<'_>) -> Result<Config> {
    let doc = DeTable::parse(cx.text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().lines().next().unwrap_or("").trim().to_owned();
        cx.err(span, ConfigProblem::Syntax { message })
    })?;
    let root = cx.entries(
        doc.get_ref(),
        0..0,
        "the top level".to_owned(),
        String::new(),
        &TOP_KEYS,
    )?;

    let paths = match root.get("paths") {
        Some(v) => parse_paths(cx, v)?,
        None => Paths::default(),
    };
    let check = match root.get("check") {
        Some(v) => parse_check(cx, v)?,
        None => CheckSpec::default(),
    };

    let mut policies = BTreeMap::new();
    let mut policy_spans: Vec<(String, PolicySpans)> = Vec::new();
    if let Some(v) = root.get("policies") {
        let t = cx.table(v, "[policies]".to_owned(), "policies.".to_owned(), &[])?;
        for (name, _, pv) in &t.entries {
            let (policy, spans) = parse_policy(cx, name, pv)?;
            policy_spans.push(((*name).to_owned(), spans));
            policies.insert((*name).to_owned(), policy);
        }
    }
    let policy_names: Vec<String> = policies.keys().cloned().collect();
    let check_policy = |v: &Value<'_>, name: &str, path: &str| -> Result<()> {
        if policies.contains_key(name) {
            return Ok(());
        }
        Err(cx.err(
            v.span(),
            ConfigProblem::UnknownName {
                what: "policy".to_owned(),
                name: name.to_owned(),
                path: path.to_owned(),
                suggestion: closest(name, policy_names.iter().map(String::as_str)),
                defined: policy_names.clone(),
            },
        ))
    };

    let mut datasets = Vec::new();
    match root.get("datasets") {
        None => return Err(cx.err(0..0, ConfigProblem::NoDatasets)),
        Some(v) => {
            let DeValue::Array(items) = v.get_ref() else {
                return Err(cx.wrong_type(
                    v,
                    "datasets",
                    "an array of tables, written [[datasets]]",
                ));
            };
            if items.is_empty() {
                return Err(cx.err(v.span(), ConfigProblem::NoDatasets));
            }
            for (i, item) in items.iter().enumerate() {
                let entry = parse_dataset(cx, i + 1, item, &check_policy)?;
                datasets.push((entry, item.span()));
            }
        }
    }
    check_overlaps(cx, &datasets)?;

    let mut targets = BTreeMap::new();
    let mut target_spans: BTreeMap<String, Range<usize>> = BTreeMap::new();
    if let Some(v) = root.get("targets") {
        let t = cx.table(v, "[targets]".to_owned(), "targets.".to_owned(), &[])?;
        let mut placed: Vec<(&str, &TargetSpec)> = Vec::new();
        let mut parsed = Vec::new();
        for (name, _, tv) in &t.entries {
            let target = parse_target(cx, name, tv, &datasets, &check_policy)?;
            parsed.push((*name, tv, target));
        }
        for (name, tv, target) in &parsed {
            check_target_overlap(cx, name, tv, target, &placed)?;
            placed.push((name, target));
        }
        for (name, tv, target) in parsed {
            target_spans.insert(name.to_owned(), value_span(cx, &tv.span(), "to"));
            targets.insert(name.to_owned(), target);
        }
    }

    check_rule_targets(cx, &policy_spans, &targets)?;

    let mut backups = BTreeMap::new();
    if let Some(v) = root.get("backups") {
        let t = cx.table(v, "[backups]".to_owned(), "backups.".to_owned(), &[])?;
        for (name, _, bv) in &t.entries {
            let backup = parse_backup(cx, name, bv, &datasets, &check_policy)?;
            backups.insert((*name).to_owned(), backup);
        }
    }

    let mut hooks = BTreeMap::new();
    if let Some(v) = root.get("hooks") {
        let t = cx.table(v, "[hooks]".to_owned(), "hooks.".to_owned(), &[])?;
        for (name, _, hv) in &t.entries {
            let hook = parse_hook(cx, name, hv, &datasets, &targets)?;
            hooks.insert((*name).to_owned(), hook);
        }
    }

    let root_spans: Vec<Range<usize>> = datasets
        .iter()
        .map(|(_, span)| value_span(cx, span, "root"))
        .collect();
    let datasets: Vec<DatasetEntry> = datasets.into_iter().map(|(d, _)| d).collect();
    super::rules::check_keep_rules(cx, &policies, &policy_spans, &datasets, &targets, &backups)?;
    super::rules::check_name_lengths(
        cx,
        &policies,
        &datasets,
        &root_spans,
        &targets,
        &target_spans,
        &backups,
    )?;

    Ok(Config {
        paths,
        check,
        datasets,
        policies,
        targets,
        backups,
        hooks,
    })
}

fn parse_paths(cx: &Cx<'_>, v: &Value<'_>) -> Result<Paths> {
    let t = cx.table(v, "[paths]".to_owned(), "paths.".to_owned(), &PATH_KEYS)?;
    let mut paths = Paths::default();
    for (key, _, v) in &t.entries {
        let path = t.path(key);
        let s = cx.string(v, &path, "\"/var/log/zsnap/audit.jsonl\"")?;
        if s.is_empty() {
            return Err(cx.invalid(v.span(), &path, "the path is empty"));
        }
        let slot = match *key {
            "audit_log" => &mut paths.audit_log,
            "journal_dir" => &mut paths.journal_dir,
            "lock_file" => &mut paths.lock_file,
            // zsnap runs as root: a program found through PATH could be anyone's.
            "zfs" | "remote_zfs" | "ssh" | "zpool" | "remote_zpool" => {
                if !s.starts_with('/') {
                    let example = match *key {
                        "ssh" => "/usr/bin/ssh",
                        "zpool" | "remote_zpool" => "/usr/sbin/zpool",
                        _ => "/usr/sbin/zfs",
                    };
                    return Err(cx.invalid(
                        v.span(),
                        &path,
                        format!("the program must be an absolute path (zsnap never looks programs up in PATH), as in \"{example}\""),
                    ));
                }
                match *key {
                    "zfs" => &mut paths.zfs,
                    "remote_zfs" => &mut paths.remote_zfs,
                    "zpool" => &mut paths.zpool,
                    "remote_zpool" => &mut paths.remote_zpool,
                    _ => &mut paths.ssh,
                }
            }
            _ => {
                // ssh resolves a relative -F against its own working directory, not the
                // config's: only an absolute path means the same thing everywhere.
                if !s.starts_with('/') {
                    return Err(cx.invalid(
                        v.span(),
                        &path,
                        "the ssh config must be an absolute path, as in \"/etc/zsnap/ssh_config\"",
                    ));
                }
                paths.ssh_config = Some(s.to_owned());
                continue;
            }
        };
        s.clone_into(slot);
    }
    Ok(paths)
}

fn parse_thresholds(cx: &Cx<'_>, v: &Value<'_>, path: &str) -> Result<Thresholds> {
    let t = cx.table(v, format!("`{path}`"), format!("{path}."), &THRESHOLD_KEYS)?;
    let hint = "the age at which `zsnap check` reports WARNING (warn) or CRITICAL (crit), e.g. { warn = \"2h\", crit = \"6h\" }";
    let warn = t.get("warn").ok_or_else(|| cx.missing(&t, "warn", hint))?;
    let crit = t.get("crit").ok_or_else(|| cx.missing(&t, "crit", hint))?;
    let w = cx.span_value(warn, &t.path("warn"))?;
    let c = cx.span_value(crit, &t.path("crit"))?;
    if w > c {
        return Err(cx.err(
            v.span(),
            ConfigProblem::ThresholdOrder {
                path: path.to_owned(),
                warn: w.to_string(),
                crit: c.to_string(),
            },
        ));
    }
    Ok(Thresholds::new(w, c))
}

fn parse_check(cx: &Cx<'_>, v: &Value<'_>) -> Result<CheckSpec> {
    let t = cx.table(v, "[check]".to_owned(), "check.".to_owned(), &CHECK_KEYS)?;
    let mut check = CheckSpec::default();
    if let Some(f) = t.get("freshness") {
        let ft = cx.table(
            f,
            "`check.freshness`".to_owned(),
            "check.freshness.".to_owned(),
            &[],
        )?;
        for (label, key_span, lv) in &ft.entries {
            let path = ft.path(label);
            let label = check_label(cx, key_span.clone(), label, &path)?;
            check
                .freshness
                .insert(label, parse_thresholds(cx, lv, &path)?);
        }
    }
    if let Some(l) = t.get("replication_lag") {
        check.replication_lag = Some(parse_thresholds(cx, l, "check.replication_lag")?);
    }
    if let Some(h) = t.get("pool_health") {
        check.pool_health = cx.boolean(h, "check.pool_health")?;
    }
    if let Some(c) = t.get("pool_capacity") {
        check.pool_capacity = parse_capacity(cx, c)?;
    }
    Ok(check)
}

/// `pool_capacity = { warn = 80, crit = 95 }`, `true` (those defaults) or `false`.
fn parse_capacity(cx: &Cx<'_>, v: &Value<'_>) -> Result<Option<CapacityThresholds>> {
    let path = "check.pool_capacity";
    if let Some(b) = v.get_ref().as_bool() {
        return Ok(b.then(CapacityThresholds::default));
    }
    if !matches!(v.get_ref(), DeValue::Table(_)) {
        return Err(cx.wrong_type(
            v,
            path,
            "a table such as { warn = 80, crit = 95 }, or `false`",
        ));
    }
    let t = cx.table(v, format!("`{path}`"), format!("{path}."), &THRESHOLD_KEYS)?;
    let hint = "the percentage of a pool's size in use at which `zsnap check` reports WARNING (warn) or CRITICAL (crit), e.g. { warn = 80, crit = 95 }";
    let percent = |key: &str| -> Result<u8> {
        let pv = t.get(key).ok_or_else(|| cx.missing(&t, key, hint))?;
        let p = t.path(key);
        let n = cx.count(pv, &p)?;
        u8::try_from(n).ok().filter(|n| *n <= 100).ok_or_else(|| {
            cx.invalid(
                pv.span(),
                &p,
                format!("{n} is not a percentage; expected a whole number from 0 to 100"),
            )
        })
    };
    let (warn, crit) = (percent("warn")?, percent("crit")?);
    if warn > crit {
        return Err(cx.err(
            v.span(),
            ConfigProblem::CapacityOrder {
                path: path.to_owned(),
                warn,
                crit,
            },
        ));
    }
    Ok(Some(CapacityThresholds::new(warn, crit)))
}

fn check_label(cx: &Cx<'_>, span: Range<usize>, label: &str, path: &str) -> Result<Label> {
    label
        .parse::<Label>()
        .map_err(|e| cx.invalid(span, path, e.to_string()))
}

fn parse_dataset(
    cx: &Cx<'_>,
    index: usize,
    v: &Value<'_>,
    check_policy: &dyn Fn(&Value<'_>, &str, &str) -> Result<()>,
) -> Result<DatasetEntry> {
    let t = cx.table(
        v,
        format!("[[datasets]] #{index}"),
        format!("datasets[{index}]."),
        &DATASET_KEYS,
    )?;
    let root_v = t.get("root").ok_or_else(|| {
        cx.missing(
            &t,
            "root",
            "the dataset to manage, e.g. root = \"tank/home\"",
        )
    })?;
    let root = cx.dataset(root_v, &t.path("root"))?;
    let host = match t.get("host") {
        None => Host::Local,
        Some(hv) => {
            let p = t.path("host");
            let s = cx.string(hv, &p, "\"ssh://root@server.example:22\"")?;
            s.parse::<Host>()
                .map_err(|e| cx.invalid(hv.span(), &p, e.to_string()))?
        }
    };
    let recursive = match t.get("recursive") {
        Some(b) => cx.boolean(b, &t.path("recursive"))?,
        None => false,
    };
    let children_only = match t.get("children_only") {
        Some(b) => cx.boolean(b, &t.path("children_only"))?,
        None => false,
    };
    if children_only && !recursive {
        return Err(cx.invalid(
            t.get("children_only").map_or(t.span.clone(), Spanned::span),
            &t.path("children_only"),
            "children_only = true needs recursive = true (there are no children to manage otherwise)",
        ));
    }
    let mut exclude = Vec::new();
    if let Some(ev) = t.get("exclude") {
        let p = t.path("exclude");
        let is_empty = matches!(ev.get_ref(), DeValue::Array(a) if a.is_empty());
        if !recursive && !is_empty {
            return Err(cx.invalid(
                ev.span(),
                &p,
                "exclude needs recursive = true (without it only the root is managed)",
            ));
        }
        for (i, (_, item)) in cx
            .strings(ev, &p, "\"tank/home/tmp\"")?
            .into_iter()
            .enumerate()
        {
            let ip = format!("{p}[{}]", i + 1);
            let name = cx.dataset(item, &ip)?;
            if !root.is_ancestor_of(&name) {
                return Err(cx.invalid(
                    item.span(),
                    &ip,
                    format!("{name} is not below the root {root}; exclusions name descendants of the root"),
                ));
            }
            exclude.push(name);
        }
    }
    let policy_v = t.get("policy").ok_or_else(|| {
        cx.missing(
            &t,
            "policy",
            "the name of a [policies.NAME] table, e.g. policy = \"standard\"",
        )
    })?;
    let pp = t.path("policy");
    let policy = cx.string(policy_v, &pp, "\"standard\"")?;
    check_policy(policy_v, policy, &pp)?;
    Ok(DatasetEntry {
        root,
        host,
        recursive,
        children_only,
        exclude,
        policy: policy.to_owned(),
    })
}

/// Nested roots are fine (the most specific root wins, see [`crate::policy`]); the same
/// root twice with different policies is ambiguous.
fn check_overlaps(cx: &Cx<'_>, datasets: &[(DatasetEntry, Range<usize>)]) -> Result<()> {
    // One pass with a map from (host, root) to the entries seen so far: linear in the
    // number of entries (a config may list tens of thousands).
    let mut seen: std::collections::HashMap<(&Host, &DatasetName), Vec<usize>> =
        std::collections::HashMap::new();
    for (j, (b, b_span)) in datasets.iter().enumerate() {
        let earlier = seen.entry((&b.host, &b.root)).or_default();
        for &i in earlier.iter() {
            let a = &datasets[i].0;
            let both_select_something =
                a.selects(&a.root) && b.selects(&b.root) || a.recursive && b.recursive;
            if a.policy != b.policy && both_select_something {
                return Err(cx.err(
                    b_span.clone(),
                    ConfigProblem::Overlap {
                        dataset: a.root.to_string(),
                        first: i + 1,
                        second: j + 1,
                    },
                ));
            }
        }
        earlier.push(j);
    }
    Ok(())
}

fn parse_period(cx: &Cx<'_>, v: &Value<'_>, path: &str) -> Result<Period> {
    let s = cx.string(v, path, "\"hourly\" or \"15m\"")?;
    let words = ["hourly", "daily", "weekly", "monthly", "yearly"];
    match s.parse::<Period>() {
        Ok(Period::Every(span)) if span.seconds() < 60 => Err(cx.invalid(
            v.span(),
            path,
            format!("{s:?} is too short; snapshots can be taken at most once a minute"),
        )),
        Ok(p) => Ok(p),
        Err(_) => {
            let hint = match closest(s, words) {
                Some(w) => format!("; did you mean \"{w}\"?"),
                None => String::new(),
            };
            Err(cx.invalid(
                v.span(),
                path,
                format!("{s:?} is not a period; expected a duration such as \"15m\" or \"4h\", or one of \"hourly\", \"daily\", \"weekly\", \"monthly\", \"yearly\"{hint}"),
            ))
        }
    }
}

const FORMAT_KEYS: [&str; 4] = ["prefix", "format", "timezone", "label"];

/// `adopt`: tool names and `{ prefix, format, timezone, label }` tables.
fn parse_adopt(cx: &Cx<'_>, v: &Value<'_>, p: &str) -> Result<Vec<Adopt>> {
    let expected = "an array of tool names and formats, such as [\"sanoid\", { prefix = \"auto-\", format = \"%Y-%m-%d-%H%M\" }]";
    let items: Vec<&Value<'_>> = match v.get_ref() {
        DeValue::String(_) => vec![v],
        DeValue::Array(a) => a.iter().collect(),
        _ => return Err(cx.wrong_type(v, p, expected)),
    };
    let known: Vec<String> = ADOPTABLE.iter().map(|t| (*t).to_owned()).collect();
    let mut adopt: Vec<Adopt> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let ip = format!("{p}[{}]", i + 1);
        let entry = match item.get_ref() {
            DeValue::String(tool) => {
                let tool: &str = tool.as_ref();
                if !known.iter().any(|k| k == tool) {
                    return Err(cx.err(
                        item.span(),
                        ConfigProblem::UnknownName {
                            what: "tool".to_owned(),
                            name: tool.to_owned(),
                            path: ip,
                            suggestion: closest(tool, known.iter().map(String::as_str)),
                            defined: known.clone(),
                        },
                    ));
                }
                Adopt::Tool(tool.to_owned())
            }
            DeValue::Table(_) => Adopt::Format(parse_format(cx, item, &ip)?),
            _ => return Err(cx.wrong_type(item, &ip, "a tool name such as \"sanoid\", or a table such as { prefix = \"auto-\", format = \"%Y-%m-%d-%H%M\" }")),
        };
        if !adopt.contains(&entry) {
            adopt.push(entry);
        }
    }
    Ok(adopt)
}

/// `{ prefix = "zrepl_", format = "%Y%m%d_%H%M%S_000", timezone = "UTC", label = "daily" }`.
fn parse_format(cx: &Cx<'_>, v: &Value<'_>, p: &str) -> Result<NameFormat> {
    let t = cx.table(v, format!("`{p}`"), format!("{p}."), &FORMAT_KEYS)?;
    let prefix = match t.get("prefix") {
        Some(pv) => cx.string(pv, &t.path("prefix"), "\"auto-\"")?,
        None => "",
    };
    let fv = t.get("format").ok_or_else(|| {
        cx.missing(
            &t,
            "format",
            "the strftime format of the names after the prefix, e.g. format = \"%Y-%m-%d-%H%M\" (with {label} where a label is)",
        )
    })?;
    let format = cx.string(fv, &t.path("format"), "\"%Y-%m-%d-%H%M\"")?;
    let zone = match t.get("timezone") {
        None => FormatZone::Local,
        Some(zv) => {
            let zp = t.path("timezone");
            match cx.string(zv, &zp, "\"UTC\"")? {
                "UTC" => FormatZone::Utc,
                "local" => FormatZone::Local,
                _ => FormatZone::Zone(parse_timezone(cx, zv, &zp)?),
            }
        }
    };
    let label = match t.get("label") {
        Some(lv) => {
            let lp = t.path("label");
            let s = cx.string(lv, &lp, "\"daily\"")?;
            Some(check_label(cx, lv.span(), s, &lp)?)
        }
        None => None,
    };
    NameFormat::new(prefix, format, zone, label).map_err(|e| {
        let problem = match &e {
            crate::naming::NamingError::InvalidFormat { problem, .. } => problem.clone(),
            other => other.to_string(),
        };
        let (key, message) = if problem.starts_with("the prefix") {
            ("prefix", problem)
        } else if problem.contains("fixed label") {
            (
                "label",
                format!(
                    "the format {format:?} holds {{label}}, so a fixed label cannot be given too"
                ),
            )
        } else {
            ("format", format!("{format:?}: {problem}"))
        };
        let span = t.get(key).map_or(v.span(), Spanned::span);
        cx.invalid(span, &t.path(key), message)
    })
}

const TIMING_KEYS: [&str; 6] = ["every", "at", "minute", "on", "day", "month"];

/// A `snapshot` entry: a period (`"daily"`), or a table with `every` and where in the
/// period (`{ every = "weekly", on = "sunday", at = "23:30" }`).
fn parse_timing(cx: &Cx<'_>, label: &Label, v: &Value<'_>, path: &str) -> Result<Timing> {
    if let DeValue::String(_) = v.get_ref() {
        return parse_period(cx, v, path).map(Timing::new);
    }
    if !matches!(v.get_ref(), DeValue::Table(_)) {
        return Err(cx.wrong_type(
            v,
            path,
            "a period such as \"hourly\" or \"15m\", or a table such as { every = \"daily\", at = \"23:59\" }",
        ));
    }
    let t = cx.table(v, format!("`{path}`"), format!("{path}."), &TIMING_KEYS)?;
    let ev = t.get("every").ok_or_else(|| {
        cx.missing(
            &t,
            "every",
            "the period, e.g. { every = \"daily\", at = \"23:59\" }",
        )
    })?;
    let every = parse_period(cx, ev, &t.path("every"))?;
    // Which keys each period takes, for the message about one it does not.
    let uses: &[&str] = match every {
        Period::Every(_) => &[],
        Period::Hourly => &["minute"],
        Period::Daily => &["at"],
        Period::Weekly => &["on", "at"],
        Period::Monthly => &["day", "at"],
        Period::Yearly => &["month", "day", "at"],
    };
    let mut at = At::START;
    for (key, key_span, kv) in &t.entries {
        if *key == "every" {
            continue;
        }
        let kp = t.path(key);
        if !uses.contains(key) {
            let what = match every {
                Period::Every(_) => format!("a label taken every {every}"),
                _ => format!("a {every} label"),
            };
            let takes = if uses.is_empty() {
                "takes none: it runs on fixed spans of absolute time".to_owned()
            } else {
                format!(
                    "takes {}",
                    uses.iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(cx.invalid(
                key_span.clone(),
                &kp,
                format!("`{key}` does not apply to {what}, which {takes}"),
            ));
        }
        let range = |e: ScheduleError| cx.invalid(kv.span(), &kp, e.to_string());
        at = match *key {
            "at" => {
                let s = cx.string(kv, &kp, "\"23:59\"")?;
                let Some((h, m)) = s.split_once(':').filter(|(h, m)| {
                    (1..=2).contains(&h.len())
                        && m.len() == 2
                        && h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())
                }) else {
                    return Err(cx.invalid(
                        kv.span(),
                        &kp,
                        format!("{s:?} is not a time of day; expected \"HH:MM\" on a 24-hour clock, such as \"23:59\""),
                    ));
                };
                let (hour, minute): (u32, u32) = (
                    h.parse().expect("one or two ASCII digits"),
                    m.parse().expect("two ASCII digits"),
                );
                match at.with_time(hour, at.minute()) {
                    Err(e) => {
                        return Err(cx.invalid(cx.inner_span(kv, 0, h.len()), &kp, e.to_string()))
                    }
                    Ok(a) => a.with_time(hour, minute).map_err(|e| {
                        cx.invalid(cx.inner_span(kv, h.len() + 1, 2), &kp, e.to_string())
                    })?,
                }
            }
            "on" => {
                let s = cx.string(kv, &kp, "\"sunday\"")?;
                let day = parse_weekday(s).map_err(|_| {
                    cx.err(
                        kv.span(),
                        ConfigProblem::UnknownName {
                            what: "weekday".to_owned(),
                            name: s.to_owned(),
                            path: kp.clone(),
                            suggestion: closest(&s.to_ascii_lowercase(), WEEKDAYS),
                            defined: WEEKDAYS.iter().map(|w| (*w).to_owned()).collect(),
                        },
                    )
                })?;
                at.with_weekday(day)
            }
            _ => {
                let n = cx.count(kv, &kp)?;
                match *key {
                    "minute" => at.with_minute(n).map_err(range)?,
                    "day" => at.with_day(n).map_err(range)?,
                    _ => at.with_month(n).map_err(range)?,
                }
            }
        };
    }
    // The same check the schedule makes, so converting the config cannot fail.
    LabelSchedule::new(label.clone(), every)
        .with_at(at)
        .map_err(|e| cx.invalid(v.span(), path, e.to_string()))?;
    Ok(Timing::new(every).with_at(at))
}

fn parse_policy(cx: &Cx<'_>, name: &str, v: &Value<'_>) -> Result<(PolicySpec, PolicySpans)> {
    let prefix_path = format!("policies.{name}.");
    let t = cx.table(v, format!("[policies.{name}]"), prefix_path, &POLICY_KEYS)?;
    let timezone = match t.get("timezone") {
        None => chrono_tz::Tz::UTC,
        Some(zv) => parse_timezone(cx, zv, &t.path("timezone"))?,
    };
    let prefix = match t.get("prefix") {
        None => "zsnap".to_owned(),
        Some(pv) => {
            let p = t.path("prefix");
            let s = cx.string(pv, &p, "\"zsnap\"")?;
            NamingScheme::new(s).map_err(|e| cx.invalid(pv.span(), &p, e.to_string()))?;
            s.to_owned()
        }
    };
    let mut adopt: Vec<Adopt> = Vec::new();
    if let Some(av) = t.get("adopt") {
        adopt = parse_adopt(cx, av, &t.path("adopt"))?;
    }
    let prune = match t.get("prune") {
        Some(b) => cx.boolean(b, &t.path("prune"))?,
        None => true,
    };
    let mut snapshot = BTreeMap::new();
    let mut snapshot_spans = Vec::new();
    if let Some(sv) = t.get("snapshot") {
        let st = cx.table(
            sv,
            format!("`policies.{name}.snapshot`"),
            format!("policies.{name}.snapshot."),
            &[],
        )?;
        for (label, key_span, pv) in &st.entries {
            let p = st.path(label);
            let label = check_label(cx, key_span.clone(), label, &p)?;
            snapshot_spans.push((label.clone(), key_span.clone()));
            let timing = parse_timing(cx, &label, pv, &p)?;
            snapshot.insert(label, timing);
        }
    }
    let mut on_demand = BTreeMap::new();
    if let Some(ov) = t.get("on_demand") {
        let ot = cx.table(
            ov,
            format!("`policies.{name}.on_demand`"),
            format!("policies.{name}.on_demand."),
            &[],
        )?;
        for (label, key_span, ev) in &ot.entries {
            let p = ot.path(label);
            let label = check_label(cx, key_span.clone(), label, &p)?;
            if snapshot.contains_key(&label) {
                return Err(cx.invalid(
                    key_span.clone(),
                    &p,
                    format!("label `{label}` is scheduled in `policies.{name}.snapshot`; a label is either scheduled or taken on demand"),
                ));
            }
            let expiry = match cx.string(ev, &p, "\"30d\" or \"never\"")? {
                "never" => Expiry::Never,
                _ => {
                    let span = cx.span_value(ev, &p)?;
                    if span.seconds() == 0 {
                        return Err(cx.invalid(
                            ev.span(),
                            &p,
                            "an expiry of 0 would let the next run destroy the snapshot; give a duration such as \"30d\", or \"never\"",
                        ));
                    }
                    Expiry::After(span)
                }
            };
            on_demand.insert(label, expiry);
        }
    }
    let mut keep_none = Vec::new();
    let mut keep_none_spans = Vec::new();
    if let Some(kv) = t.get("keep_none") {
        let p = t.path("keep_none");
        for (i, (label, item)) in cx.strings(kv, &p, "\"hourly\"")?.into_iter().enumerate() {
            let ip = format!("{p}[{}]", i + 1);
            let label = check_label(cx, item.span(), label, &ip)?;
            keep_none_spans.push((label.clone(), item.span()));
            keep_none.push(label);
        }
    }
    let RetentionParts {
        spec: retention,
        keep_counts: keep_counts_spans,
        sanoid: sanoid_spans,
        rule_labels,
        rule_targets,
    } = parse_retention(cx, &t)?;
    if prune && !retention.has_rules() {
        return Err(cx.err(
            t.span.clone(),
            ConfigProblem::NoKeepRule {
                policy: name.to_owned(),
            },
        ));
    }
    for (tool_prefix, tool) in FOREIGN_PREFIXES {
        if prefix.eq_ignore_ascii_case(tool_prefix) && !adopt.iter().any(|a| a.tool() == Some(tool))
        {
            let span = t.get("prefix").map_or(t.span.clone(), Spanned::span);
            return Err(cx.err(
                span,
                ConfigProblem::ForeignPrefix {
                    policy: name.to_owned(),
                    prefix: prefix.clone(),
                    tool: tool.to_owned(),
                },
            ));
        }
    }
    let spans = PolicySpans {
        table: t.span.clone(),
        snapshot: snapshot_spans,
        keep_counts: keep_counts_spans,
        sanoid: sanoid_spans,
        keep_none: keep_none_spans,
        rule_labels,
        rule_targets,
    };
    Ok((
        PolicySpec {
            timezone,
            prefix,
            adopt,
            prune,
            snapshot,
            on_demand,
            keep_none,
            retention,
        },
        spans,
    ))
}

fn parse_timezone(cx: &Cx<'_>, v: &Value<'_>, path: &str) -> Result<chrono_tz::Tz> {
    let s = cx.string(v, path, "\"Europe/Berlin\"")?;
    if let Ok(tz) = s.parse::<chrono_tz::Tz>() {
        return Ok(tz);
    }
    let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
    match closest(s, names) {
        Some(suggestion) => Err(cx.err(
            v.span(),
            ConfigProblem::UnknownName {
                what: "time zone".to_owned(),
                name: s.to_owned(),
                path: path.to_owned(),
                suggestion: Some(suggestion),
                defined: Vec::new(),
            },
        )),
        None => Err(cx.invalid(
            v.span(),
            path,
            format!("unknown time zone {s:?}; expected an IANA name such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\""),
        )),
    }
}

/// The keep rules, the span of each `keep_counts` key, each count written in
/// `sanoid`, and where the labels and targets of `keep_rules` items are.
struct RetentionParts {
    spec: RetentionSpec,
    keep_counts: Vec<(Label, Range<usize>)>,
    sanoid: Vec<(&'static str, Range<usize>, u32)>,
    rule_labels: Vec<(usize, Label, Range<usize>)>,
    rule_targets: Vec<(usize, String, Range<usize>)>,
}

/// A regular expression of a keep rule, or the error at its value. The regex crate is
/// RE2-like: the hint names what it lacks and what to write instead.
fn keep_regex(cx: &Cx<'_>, v: &Value<'_>, path: &str, re: &str) -> Result<NameRegex> {
    NameRegex::new(re).map_err(|e| {
        let lacks = ["look-around", "backreferences"]
            .iter()
            .any(|w| e.problem.contains(w));
        let hint = if lacks {
            "; zsnap's regexes (Rust's regex crate, like RE2 and the Go regexp zrepl uses) have no look-around and no backreferences; instead of a negative look-ahead, give a keep_rules item `negate = true`"
        } else {
            ""
        };
        cx.invalid(v.span(), path, format!("{e}{hint}"))
    })
}

fn parse_calendar_keep(cx: &Cx<'_>, kv: &Value<'_>, kp: &str) -> Result<CalendarKeep> {
    let kt = cx.table(kv, format!("`{kp}`"), format!("{kp}."), &KEEP_KEYS)?;
    let mut keep = CalendarKeep::default();
    for (key, _, v) in &kt.entries {
        let unit = CalendarUnit::from_adjective(key)
            .expect("the key was checked against KEEP_KEYS, which are the adjectives");
        keep.set(unit, cx.count(v, &kt.path(key))?);
    }
    if CalendarUnit::ALL
        .iter()
        .all(|u| keep.count(*u).unwrap_or(0) == 0)
    {
        return Err(cx.invalid(
            kv.span(),
            kp,
            format!("keeps nothing (no calendar count above 0), so every snapshot but the newest would be destroyed; give a count such as `{} = {{ daily = 7 }}`, or remove it", kp.rsplit('.').next().unwrap_or(kp)),
        ));
    }
    Ok(keep)
}

/// One item of `keep_rules` (`index` is 1-based).
fn parse_keep_rule(
    cx: &Cx<'_>,
    parts: &mut RetentionParts,
    path: &str,
    index: usize,
    v: &Value<'_>,
) -> Result<KeepRuleSpec> {
    let ip = format!("{path}[{index}]");
    let t = cx.table(v, format!("`{ip}`"), format!("{ip}."), &RULE_KEYS)?;
    let kinds: Vec<&str> = t
        .entries
        .iter()
        .map(|(k, _, _)| *k)
        .filter(|k| RULE_KINDS.contains(k))
        .collect();
    if let [first, second, ..] = kinds[..] {
        let span = t
            .entries
            .iter()
            .find(|(k, _, _)| *k == second)
            .map_or(t.span.clone(), |(_, s, _)| s.clone());
        return Err(cx.invalid(
            span,
            &t.path(second),
            format!("one rule per item: this item already has `{first}`; put `{second}` in an item of its own"),
        ));
    }
    let mut item = KeepRuleSpec::new(None);
    if let Some(rv) = t.get("regex") {
        let rp = t.path("regex");
        let re = cx.string(rv, &rp, "\"^zrepl_\"")?;
        keep_regex(cx, rv, &rp, re)?;
        item.regex = Some(re.to_owned());
    }
    if let Some(nv) = t.get("negate") {
        let np = t.path("negate");
        item.negate = cx.boolean(nv, &np)?;
        if item.regex.is_none() {
            return Err(cx.invalid(
                nv.span(),
                &np,
                "negate needs a regex to negate, e.g. { regex = \"^manual_\", negate = true }",
            ));
        }
    }
    let Some(kind) = kinds.first().copied() else {
        if item.regex.is_none() {
            return Err(cx.invalid(
                t.span.clone(),
                &ip,
                "the item has no rule; give one of grid, last_n, calendar, newer_than, not_replicated or keep_oldest, or a regex alone, e.g. { last_n = 10 } or { regex = \"^manual_\" }",
            ));
        }
        if let Some(lv) = t.get("label") {
            return Err(cx.invalid(
                lv.span(),
                &t.path("label"),
                "label only filters last_n; a regex rule keeps by name alone",
            ));
        }
        return Ok(item);
    };
    let kv = t.get(kind).expect("the kind is one of the item's keys");
    let kp = t.path(kind);
    let rule = match kind {
        "grid" => {
            let g = cx.string(kv, &kp, "\"1x1h(keep=all) | 24x1h | 14x1d\"")?;
            if let Err(e) = g.parse::<Grid>() {
                return Err(cx.invalid(kv.span(), &kp, e.to_string()));
            }
            RuleSpec::Grid(g.to_owned())
        }
        "last_n" => {
            let n = cx.count(kv, &kp)?;
            if n == 0 {
                return Err(cx.invalid(
                    kv.span(),
                    &kp,
                    "last_n = 0 keeps nothing; give a count above 0, or remove the item",
                ));
            }
            RuleSpec::LastN(n)
        }
        "calendar" => RuleSpec::Calendar(parse_calendar_keep(cx, kv, &kp)?),
        "newer_than" => RuleSpec::NewerThan(cx.span_value(kv, &kp)?),
        "not_replicated" => {
            let target = cx.string(kv, &kp, "\"offsite\"")?;
            parts
                .rule_targets
                .push((index, target.to_owned(), kv.span()));
            RuleSpec::NotReplicated(target.to_owned())
        }
        _ => {
            let b = cx.boolean(kv, &kp)?;
            if item.regex.is_some() {
                let span = t.get("regex").map_or(kv.span(), Spanned::span);
                return Err(cx.invalid(
                    span,
                    &t.path("regex"),
                    "keep_oldest keeps the oldest snapshot of the dataset and takes no regex",
                ));
            }
            RuleSpec::KeepOldest(b)
        }
    };
    if let Some(lv) = t.get("label") {
        let lp = t.path("label");
        if kind != "last_n" {
            return Err(cx.invalid(
                lv.span(),
                &lp,
                format!(
                    "label only filters last_n, not {kind}; filter {kind} by name with a regex"
                ),
            ));
        }
        let l = cx.string(lv, &lp, "\"hourly\"")?;
        let label = check_label(cx, lv.span(), l, &lp)?;
        parts.rule_labels.push((index, label.clone(), lv.span()));
        item.label = Some(label);
    }
    item.rule = Some(rule);
    Ok(item)
}

fn parse_retention(cx: &Cx<'_>, t: &Table<'_, '_>) -> Result<RetentionParts> {
    let mut parts = RetentionParts {
        spec: RetentionSpec::default(),
        keep_counts: Vec::new(),
        sanoid: Vec::new(),
        rule_labels: Vec::new(),
        rule_targets: Vec::new(),
    };
    if let Some(v) = t.get("keep_rules") {
        let p = t.path("keep_rules");
        let DeValue::Array(items) = v.get_ref() else {
            return Err(cx.wrong_type(
                v,
                &p,
                "an array of tables, such as [{ grid = \"24x1h | 14x1d\", regex = \"^zrepl_\" }, { last_n = 10 }]",
            ));
        };
        let mut rules = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            rules.push(parse_keep_rule(cx, &mut parts, &p, i + 1, item)?);
        }
        parts.spec.keep_rules = rules;
    }
    let mut r = std::mem::take(&mut parts.spec);
    let mut keep_counts_spans = Vec::new();
    let mut sanoid_spans = Vec::new();
    if let Some(kv) = t.get("keep") {
        r.keep = Some(parse_calendar_keep(cx, kv, &t.path("keep"))?);
    }
    if let Some(v) = t.get("keep_last") {
        let p = t.path("keep_last");
        let n = cx.count(v, &p)?;
        if n == 0 {
            return Err(cx.invalid(
                v.span(),
                &p,
                "keep_last = 0 keeps nothing, so every snapshot but the newest would be destroyed; give a count above 0, or remove it",
            ));
        }
        r.keep_last = Some(n);
    }
    if let Some(v) = t.get("keep_newer_than") {
        r.keep_newer_than = Some(cx.span_value(v, &t.path("keep_newer_than"))?);
    }
    if let Some(v) = t.get("grid") {
        let p = t.path("grid");
        let s = cx.string(v, &p, "\"1x1h(keep=all) | 24x1h | 14x1d\"")?;
        if let Err(e) = s.parse::<Grid>() {
            return Err(cx.invalid(v.span(), &p, e.to_string()));
        }
        r.grid = Some(s.to_owned());
    }
    if let Some(v) = t.get("sanoid") {
        let p = t.path("sanoid");
        let st = cx.table(v, format!("`{p}`"), format!("{p}."), &SANOID_KEYS)?;
        let mut s = SanoidKeep::default();
        for (key, _, v) in &st.entries {
            let kp = st.path(key);
            let (ty, slot) = match *key {
                "frequently" => ("frequently", &mut s.frequently),
                "hourly" => ("hourly", &mut s.hourly),
                "daily" => ("daily", &mut s.daily),
                "weekly" => ("weekly", &mut s.weekly),
                "monthly" => ("monthly", &mut s.monthly),
                "yearly" => ("yearly", &mut s.yearly),
                _ => {
                    let span = cx.span_value(v, &kp)?;
                    if span.seconds() < 60 || span.seconds() % 60 != 0 {
                        return Err(cx.invalid(
                            v.span(),
                            &kp,
                            "sanoid's frequent_period is a whole number of minutes, e.g. \"15m\"",
                        ));
                    }
                    s.frequent_period = span;
                    continue;
                }
            };
            let n = cx.count(v, &kp)?;
            *slot = n;
            sanoid_spans.push((ty, v.span(), n));
        }
        r.sanoid = Some(s);
    }
    if let Some(v) = t.get("keep_counts") {
        let p = t.path("keep_counts");
        let kt = cx.table(v, format!("`{p}`"), format!("{p}."), &[])?;
        for (label, key_span, lv) in &kt.entries {
            let lp = kt.path(label);
            let label = check_label(cx, key_span.clone(), label, &lp)?;
            keep_counts_spans.push((label.clone(), key_span.clone()));
            r.keep_counts.insert(label, cx.count(lv, &lp)?);
        }
    }
    if let Some(v) = t.get("keep_regex") {
        let p = t.path("keep_regex");
        for (i, (re, item)) in cx.strings(v, &p, "\"^manual-\"")?.into_iter().enumerate() {
            keep_regex(cx, item, &format!("{p}[{}]", i + 1), re)?;
            r.keep_regex.push(re.to_owned());
        }
    }
    if let Some(v) = t.get("keep_oldest") {
        r.keep_oldest = cx.boolean(v, &t.path("keep_oldest"))?;
    }
    parts.spec = r;
    parts.keep_counts = keep_counts_spans;
    parts.sanoid = sanoid_spans;
    Ok(parts)
}

/// Every `not_replicated = "T"` of a `keep_rules` item names a `[targets.T]`.
fn check_rule_targets(
    cx: &Cx<'_>,
    policy_spans: &[(String, PolicySpans)],
    targets: &BTreeMap<String, TargetSpec>,
) -> Result<()> {
    for (policy, spans) in policy_spans {
        for (index, target, span) in &spans.rule_targets {
            if targets.contains_key(target) {
                continue;
            }
            let defined: Vec<String> = targets.keys().cloned().collect();
            return Err(cx.err(
                span.clone(),
                ConfigProblem::UnknownName {
                    what: "target".to_owned(),
                    name: target.clone(),
                    path: format!("policies.{policy}.keep_rules[{index}].not_replicated"),
                    suggestion: closest(target, defined.iter().map(String::as_str)),
                    defined,
                },
            ));
        }
    }
    Ok(())
}

fn parse_target(
    cx: &Cx<'_>,
    name: &str,
    v: &Value<'_>,
    datasets: &[(DatasetEntry, Range<usize>)],
    check_policy: &dyn Fn(&Value<'_>, &str, &str) -> Result<()>,
) -> Result<TargetSpec> {
    let t = cx.table(
        v,
        format!("[targets.{name}]"),
        format!("targets.{name}."),
        &TARGET_KEYS,
    )?;
    let source = source_root(cx, &t, datasets, "replicate")?;
    let to_v = t.get("to").ok_or_else(|| {
        cx.missing(
            &t,
            "to",
            "where to replicate: \"pool/path\" or \"ssh://user@host:port/pool/path\"",
        )
    })?;
    let tp = t.path("to");
    let to_s = cx.string(to_v, &tp, "\"ssh://backup@nas.example/backup/home\"")?;
    let to: TargetAddress = to_s
        .parse()
        .map_err(|e: super::model::TargetAddressError| {
            cx.invalid(to_v.span(), &tp, e.to_string())
        })?;
    {
        let TargetAddress::Dataset { host, dataset } = &to;
        for (d, _) in datasets {
            // Inside a source root (unless excluded from it), or containing one: the
            // source's policy and the target's would both prune it.
            let inside = d.root.contains(dataset) && !d.exclude.iter().any(|e| e.contains(dataset));
            if &d.host == host && (inside || dataset.is_ancestor_of(&d.root)) {
                return Err(cx.invalid(
                    to_v.span(),
                    &tp,
                    format!(
                        "{to} overlaps the source datasets under {} on {}; a target must lie outside every [[datasets]] root",
                        d.root, d.host
                    ),
                ));
            }
        }
    }
    let policy_v = t.get("policy").ok_or_else(|| {
        cx.missing(
            &t,
            "policy",
            "the policy that prunes the target, e.g. policy = \"longterm\"",
        )
    })?;
    let pp = t.path("policy");
    let policy = cx.string(policy_v, &pp, "\"longterm\"")?;
    check_policy(policy_v, policy, &pp)?;
    let allow_rollback = match t.get("allow_rollback") {
        Some(b) => cx.boolean(b, &t.path("allow_rollback"))?,
        None => false,
    };
    let cursor = match t.get("cursor") {
        None => CursorKind::Hold,
        Some(cv) => {
            let p = t.path("cursor");
            match cx.string(cv, &p, "\"hold\"")? {
                "hold" => CursorKind::Hold,
                "bookmark" => CursorKind::Bookmark,
                other => {
                    return Err(cx.err(
                        cv.span(),
                        ConfigProblem::UnknownName {
                            what: "cursor".to_owned(),
                            name: other.to_owned(),
                            path: p,
                            suggestion: closest(other, ["hold", "bookmark"]),
                            defined: vec!["hold".to_owned(), "bookmark".to_owned()],
                        },
                    ))
                }
            }
        }
    };
    let mut exclude_properties = vec!["mountpoint".to_owned()];
    if let Some(ev) = t.get("exclude_properties") {
        exclude_properties.clear();
        let p = t.path("exclude_properties");
        for (i, (prop, item)) in cx
            .strings(ev, &p, "\"mountpoint\"")?
            .into_iter()
            .enumerate()
        {
            if prop.is_empty()
                || !prop
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-'))
            {
                return Err(cx.invalid(
                    item.span(),
                    &format!("{p}[{}]", i + 1),
                    format!("{prop:?} is not a property name"),
                ));
            }
            exclude_properties.push(prop.to_owned());
        }
    }
    let bandwidth = match t.get("bandwidth") {
        None => None,
        Some(bv) => {
            let p = t.path("bandwidth");
            let s = cx.string(bv, &p, "\"10MiB/s\"")?;
            Some(
                s.parse::<Bandwidth>()
                    .map_err(|e| cx.invalid(bv.span(), &p, e.to_string()))?,
            )
        }
    };
    Ok(TargetSpec {
        source,
        to,
        policy: policy.to_owned(),
        allow_rollback,
        cursor,
        exclude_properties,
        bandwidth,
    })
}

/// The span of the value of `key` in the table at `table` (found in the text, as the
/// first `key =` inside it), or the table's span.
fn value_span(cx: &Cx<'_>, table: &Range<usize>, key: &str) -> Range<usize> {
    // The span of an array-of-tables item may cover only its header: read on from its
    // start to the next table header.
    let body = cx.text.get(table.start..).unwrap_or("");
    let mut offset = 0;
    for (i, line) in body.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_start();
        if i > 0 && trimmed.starts_with('[') {
            break;
        }
        if let Some(rest) = trimmed.strip_prefix(key) {
            if let Some(value) = rest.trim_start().strip_prefix('=') {
                let value = value.trim_start();
                let start = table.start + offset + (line.len() - value.len());
                let len = value.trim_end().len();
                return start..start + len;
            }
        }
        offset += line.len();
    }
    table.clone()
}

/// Two targets on one host writing into one dataset, or one inside the other, would
/// prune each other's history by their own policies.
fn check_target_overlap(
    cx: &Cx<'_>,
    name: &str,
    v: &Value<'_>,
    target: &TargetSpec,
    earlier: &[(&str, &TargetSpec)],
) -> Result<()> {
    let TargetAddress::Dataset { host, dataset } = &target.to;
    for (other_name, other) in earlier {
        let TargetAddress::Dataset {
            host: other_host,
            dataset: other_dataset,
        } = &other.to;
        if other_host == host
            && (other_dataset.contains(dataset) || dataset.contains(other_dataset))
        {
            let span = match v.get_ref() {
                DeValue::Table(t) => t
                    .iter()
                    .find(|(k, _)| k.get_ref().as_ref() == "to")
                    .map_or(v.span(), |(_, tv)| tv.span()),
                _ => v.span(),
            };
            return Err(cx.err(
                span,
                ConfigProblem::TargetOverlap {
                    first: (*other_name).to_owned(),
                    first_to: other.to.to_string(),
                    second: name.to_owned(),
                    second_to: target.to.to_string(),
                },
            ));
        }
    }
    Ok(())
}

/// The `source` of a target or backup: a `[[datasets]]` root, optional when there is
/// only one.
fn source_root(
    cx: &Cx<'_>,
    t: &Table<'_, '_>,
    datasets: &[(DatasetEntry, Range<usize>)],
    verb: &str,
) -> Result<DatasetName> {
    let roots: Vec<String> = datasets.iter().map(|(d, _)| d.root.to_string()).collect();
    match t.get("source") {
        Some(sv) => {
            let p = t.path("source");
            let root = cx.dataset(sv, &p)?;
            if !datasets.iter().any(|(d, _)| d.root == root) {
                return Err(cx.err(
                    sv.span(),
                    ConfigProblem::UnknownName {
                        what: "dataset root".to_owned(),
                        name: root.to_string(),
                        path: p,
                        suggestion: closest(root.as_str(), roots.iter().map(String::as_str)),
                        defined: roots,
                    },
                ));
            }
            Ok(root)
        }
        None if datasets.len() == 1 => Ok(datasets[0].0.root.clone()),
        None => Err(cx.missing(
            t,
            "source",
            &format!("which [[datasets]] root to {verb}, e.g. source = \"tank/home\" (needed when there is more than one)"),
        )),
    }
}

fn parse_backup(
    cx: &Cx<'_>,
    name: &str,
    v: &Value<'_>,
    datasets: &[(DatasetEntry, Range<usize>)],
    check_policy: &dyn Fn(&Value<'_>, &str, &str) -> Result<()>,
) -> Result<BackupSpec> {
    let t = cx.table(
        v,
        format!("[backups.{name}]"),
        format!("backups.{name}."),
        &BACKUP_KEYS,
    )?;
    let source = source_root(cx, &t, datasets, "back up")?;
    let to_v = t.get("to").ok_or_else(|| {
        cx.missing(
            &t,
            "to",
            "the store to back up to: \"dir:/absolute/path\" or \"s3://bucket/prefix\"",
        )
    })?;
    let tp = t.path("to");
    let to_s = cx.string(to_v, &tp, "\"dir:/srv/zsnap\"")?;
    let to: crate::backup::StoreUrl = to_s
        .parse()
        .map_err(|e: crate::backup::StoreUrlError| cx.invalid(to_v.span(), &tp, e.to_string()))?;
    let every = match t.get("every") {
        Some(ev) => cx.nonzero_span(ev, &t.path("every"), "the period must be longer than zero")?,
        None => Span::from_secs(86_400),
    };
    let full_every = match t.get("full_every") {
        Some(fv) => {
            let p = t.path("full_every");
            let span = cx.span_value(fv, &p)?;
            if span < every {
                return Err(cx.invalid(
                    fv.span(),
                    &p,
                    format!("{span} is shorter than every = {every}: every backup would be full"),
                ));
            }
            Some(span)
        }
        None => None,
    };
    let policy = match t.get("policy") {
        Some(pv) => {
            let pp = t.path("policy");
            let policy = cx.string(pv, &pp, "\"offsite\"")?;
            check_policy(pv, policy, &pp)?;
            Some(policy.to_owned())
        }
        None => None,
    };
    let label = match t.get("label") {
        Some(lv) => {
            let p = t.path("label");
            let s = cx.string(lv, &p, "\"backup\"")?;
            check_label(cx, lv.span(), s, &p)?
        }
        None => crate::backup::DEFAULT_BACKUP_LABEL
            .parse()
            .expect("the default backup label is valid"),
    };
    let compression = match t.get("compression") {
        Some(cv) => {
            let p = t.path("compression");
            let s = cx.string(cv, &p, "\"zstd\"")?;
            s.parse().map_err(|e: crate::backup::CompressionError| {
                cx.invalid(cv.span(), &p, e.to_string())
            })?
        }
        None => crate::backup::Compression::None,
    };
    let verify = match t.get("verify") {
        Some(b) => cx.boolean(b, &t.path("verify"))?,
        None => false,
    };
    let s3 = match t.get("s3") {
        Some(sv) => {
            if !matches!(to, crate::backup::StoreUrl::S3 { .. }) {
                return Err(cx.invalid(
                    sv.span(),
                    &t.path("s3"),
                    "s3 settings apply only to s3:// stores",
                ));
            }
            parse_s3(cx, name, sv)?
        }
        None => S3Spec::default(),
    };
    Ok(BackupSpec {
        source,
        to,
        every,
        full_every,
        policy,
        label,
        compression,
        verify,
        s3,
    })
}

fn parse_s3(cx: &Cx<'_>, name: &str, v: &Value<'_>) -> Result<S3Spec> {
    let t = cx.table(
        v,
        format!("[backups.{name}.s3]"),
        format!("backups.{name}.s3."),
        &S3_KEYS,
    )?;
    let mut s3 = S3Spec::default();
    for (key, _, v) in &t.entries {
        let p = t.path(key);
        if *key == "allow_http" {
            s3.allow_http = cx.boolean(v, &p)?;
            continue;
        }
        let s = cx.string(v, &p, "\"http://127.0.0.1:3900\"")?;
        if s.is_empty() || s.chars().any(char::is_control) {
            return Err(cx.invalid(v.span(), &p, "empty, or has control characters"));
        }
        match *key {
            "endpoint" => {
                let scheme_ok = s.starts_with("https://") || s.starts_with("http://");
                if !scheme_ok {
                    return Err(cx.invalid(
                        v.span(),
                        &p,
                        format!("{s:?} is not an http:// or https:// URL"),
                    ));
                }
                s3.endpoint = Some(s.to_owned());
            }
            "region" => s3.region = Some(s.to_owned()),
            "access_key_id" => s3.access_key_id = Some(s.to_owned()),
            _ => {
                if !s.starts_with('/') {
                    return Err(cx.invalid(
                        v.span(),
                        &p,
                        "the secret key file must be an absolute path",
                    ));
                }
                s3.secret_access_key_file = Some(s.to_owned());
            }
        }
    }
    if let Some(e) = &s3.endpoint {
        if e.starts_with("http://") && !s3.allow_http {
            let ev = t
                .get("endpoint")
                .expect("endpoint was read from this table");
            return Err(cx.invalid(
                ev.span(),
                &t.path("endpoint"),
                "a plain http:// endpoint needs allow_http = true (credentials and data travel unencrypted)",
            ));
        }
    }
    Ok(s3)
}

const HOOK_KEYS: [&str; 8] = [
    "when",
    "run",
    "datasets",
    "targets",
    "once",
    "timeout",
    "on_failure",
    "hold",
];

/// The default time a hook call may run.
const HOOK_TIMEOUT: Span = Span::from_secs(30);

/// One `[hooks.NAME]` table. Its datasets must be managed ones (or above them), its
/// targets defined: a typo would otherwise leave a hook that never runs.
fn parse_hook(
    cx: &Cx<'_>,
    name: &str,
    v: &Value<'_>,
    datasets: &[(DatasetEntry, Range<usize>)],
    targets: &BTreeMap<String, TargetSpec>,
) -> Result<HookSpec> {
    let t = cx.table(
        v,
        format!("[hooks.{name}]"),
        format!("hooks.{name}."),
        &HOOK_KEYS,
    )?;
    let events: Vec<&str> = HookEvent::ALL.iter().map(|e| e.as_str()).collect();
    let wv = t.get("when").ok_or_else(|| {
        cx.missing(
            &t,
            "when",
            "say when it runs, e.g. `when = \"pre_snapshot\"`",
        )
    })?;
    let wp = t.path("when");
    let word = cx.string(wv, &wp, "\"pre_snapshot\"")?;
    let when = HookEvent::from_word(word).ok_or_else(|| {
        cx.err(
            wv.span(),
            ConfigProblem::UnknownName {
                what: "hook event".to_owned(),
                name: word.to_owned(),
                path: wp.clone(),
                suggestion: closest(word, events.iter().copied()),
                defined: events.iter().map(|e| (*e).to_owned()).collect(),
            },
        )
    })?;
    let rv = t.get("run").ok_or_else(|| {
        cx.missing(
            &t,
            "run",
            "give the command as an array, e.g. `run = [\"/usr/local/bin/checkpoint\", \"--fast\"]`",
        )
    })?;
    let rp = t.path("run");
    let DeValue::Array(_) = rv.get_ref() else {
        return Err(cx.wrong_type(
            rv,
            &rp,
            "an array: the program and its arguments, such as [\"/usr/local/bin/checkpoint\", \"--fast\"]",
        ));
    };
    let run: Vec<String> = cx
        .strings(rv, &rp, "\"/usr/local/bin/checkpoint\"")?
        .into_iter()
        .map(|(s, _)| s.to_owned())
        .collect();
    match run.first() {
        None => return Err(cx.invalid(rv.span(), &rp, "the command is empty")),
        Some(p) if !p.starts_with('/') => {
            return Err(cx.invalid(
                rv.span(),
                &rp,
                format!(
                    "the program {p:?} is not an absolute path: zsnap runs as root and never looks a program up in PATH; write e.g. \"/usr/bin/{p}\""
                ),
            ))
        }
        Some(_) => {}
    }
    let mut hook_datasets = Vec::new();
    if let Some(dv) = t.get("datasets") {
        let dp = t.path("datasets");
        for (i, (_, item)) in cx.strings(dv, &dp, "\"tank/db\"")?.into_iter().enumerate() {
            let p = format!("{dp}[{}]", i + 1);
            let ds = cx.dataset(item, &p)?;
            let managed = datasets
                .iter()
                .any(|(e, _)| e.root.contains(&ds) || ds.contains(&e.root));
            if !managed {
                let roots: Vec<String> = datasets.iter().map(|(e, _)| e.root.to_string()).collect();
                return Err(cx.err(
                    item.span(),
                    ConfigProblem::UnknownName {
                        what: "dataset (no [[datasets]] entry manages it)".to_owned(),
                        name: ds.to_string(),
                        path: p,
                        suggestion: closest(ds.as_str(), roots.iter().map(String::as_str)),
                        defined: roots,
                    },
                ));
            }
            hook_datasets.push(ds);
        }
    }
    let mut hook_targets = Vec::new();
    if let Some(tv) = t.get("targets") {
        let tp = t.path("targets");
        if !matches!(when, HookEvent::PreReplicate | HookEvent::PostReplicate) {
            return Err(cx.invalid(
                tv.span(),
                &tp,
                format!("only replicate hooks have targets; this one runs at {when}"),
            ));
        }
        let names: Vec<&str> = targets.keys().map(String::as_str).collect();
        for (i, (target, item)) in cx.strings(tv, &tp, "\"offsite\"")?.into_iter().enumerate() {
            if !targets.contains_key(target) {
                return Err(cx.err(
                    item.span(),
                    ConfigProblem::UnknownName {
                        what: "target".to_owned(),
                        name: target.to_owned(),
                        path: format!("{tp}[{}]", i + 1),
                        suggestion: closest(target, names.iter().copied()),
                        defined: names.iter().map(|n| (*n).to_owned()).collect(),
                    },
                ));
            }
            hook_targets.push(target.to_owned());
        }
    }
    let once = match t.get("once") {
        Some(v) => cx.boolean(v, &t.path("once"))?,
        None => false,
    };
    let timeout = match t.get("timeout") {
        Some(v) => cx.nonzero_span(
            v,
            &t.path("timeout"),
            "a hook needs some time; give e.g. \"30s\"",
        )?,
        None => HOOK_TIMEOUT,
    };
    let on_failure = match t.get("on_failure") {
        None if when.is_pre() => OnFailure::Skip,
        None => OnFailure::Continue,
        Some(v) => {
            let p = t.path("on_failure");
            match cx.string(v, &p, "\"skip\"")? {
                "skip" if when.is_pre() => OnFailure::Skip,
                "skip" => {
                    return Err(cx.invalid(
                        v.span(),
                        &p,
                        format!("a {when} hook runs after the work, so there is nothing to skip; remove it (failures are reported and the run goes on)"),
                    ))
                }
                "continue" => OnFailure::Continue,
                other => {
                    return Err(cx.err(
                        v.span(),
                        ConfigProblem::UnknownName {
                            what: "failure policy".to_owned(),
                            name: other.to_owned(),
                            path: p,
                            suggestion: closest(other, ["skip", "continue"]),
                            defined: vec!["skip".to_owned(), "continue".to_owned()],
                        },
                    ))
                }
            }
        }
    };
    let hold = match t.get("hold") {
        Some(v) => {
            let p = t.path("hold");
            let hold = cx.boolean(v, &p)?;
            if hold && when != HookEvent::PreSnapshot {
                return Err(cx.invalid(
                    v.span(),
                    &p,
                    format!("only a pre_snapshot hook can hold over the snapshots; this one runs at {when}"),
                ));
            }
            hold
        }
        None => false,
    };
    Ok(HookSpec {
        when,
        run,
        datasets: hook_datasets,
        targets: hook_targets,
        once,
        timeout,
        on_failure,
        hold,
    })
}
