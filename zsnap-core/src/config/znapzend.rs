//! `zsnap import znapzend`: translate the output of `znapzendzetup export DATASET`
//! (one or more, concatenated) into the equivalent zsnap config.
//!
//! An export is `key=value` lines, one backup set: `src`, `src_plan`, `recursive`,
//! `tsformat`, `enabled`, `pre_znap_cmd`, `post_znap_cmd`, `mbuffer`, `zend_delay`…
//! and for each destination `dst_K` (`[user@]host:pool/path` or a local dataset) with
//! `dst_K_plan`, `dst_K_precmd`, `dst_K_pstcmd`. A key seen again starts the next set.
//!
//! A plan `7days=>1hour,30days=>4hours` means: of the snapshots up to 7 days old keep
//! one per hour, of those up to 30 days old one per 4 hours; older ones go. znapzend
//! (`ZnapZend::Time::getSnapshotsToDestroy`) puts each snapshot in the bracket of the
//! smallest retention at least its age, cuts time into slots of the bracket's interval
//! counted from the epoch (in local time unless `tsformat` ends in `Z`), and keeps the
//! oldest snapshot of each slot. The closest zsnap rule is zrepl's grid, which also
//! keeps the oldest snapshot of each interval: each bracket becomes
//! `⌈(retention − previous retention) / interval⌉` intervals of that length
//! (`24x1h | 138x4h`). Two differences remain, and each translated plan says so in a
//! note: the grid's intervals are counted back from the newest snapshot, not from the
//! epoch, so a slot boundary may fall elsewhere (and a snapshot exactly as old as a
//! retention is in the younger bracket for znapzend, in the older for the grid); and a
//! bracket that is not a whole
//! number of intervals is rounded up (keeps a little longer). Months are 30 days and
//! years 365.25 days, as in current znapzend (versions before 0.20 used 31 and 366).
//! The snapshot interval is the smallest interval of the source plan, as in znapzend.

use std::collections::BTreeMap;

use super::import::{checked, table_name, ImportError, ImportTool, Imported};
use super::model::{
    Adopt, Config, CursorKind, DatasetEntry, Host, KeepRuleSpec, PolicySpec, RetentionSpec,
    RuleSpec, TargetAddress, TargetSpec,
};
use crate::duration::Span;
use crate::hooks::{HookEvent, HookSpec, OnFailure};
use crate::naming::Label;
use crate::schedule::Period;
use crate::zfs_names::DatasetName;

/// The label of the snapshots a translated plan takes.
const LABEL: &str = "periodic";

/// One backup set: its keys with values and lines, in file order.
struct Set {
    keys: Vec<(String, String, usize)>,
}

impl Set {
    fn get(&self, key: &str) -> Option<(&str, usize)> {
        self.keys
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, l)| (v.as_str(), *l))
    }
}

fn parse_sets(text: &str, file: &str) -> Result<Vec<Set>, ImportError> {
    let mut sets: Vec<Set> = Vec::new();
    let mut current = Set { keys: Vec::new() };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (k, v) = l.split_once('=').ok_or_else(|| {
            ImportError::new(
                file,
                line,
                format!("expected `key=value` as `znapzendzetup export` prints, found {l:?}"),
            )
        })?;
        let k = k.trim();
        // `org.znapzend:src=…`, as `zfs get` shows the properties, is the same key.
        let k = k.strip_prefix("org.znapzend:").unwrap_or(k).to_owned();
        let v = v.trim().trim_matches('\'').to_owned();
        if current.keys.iter().any(|(seen, _, _)| seen == &k) {
            sets.push(std::mem::replace(&mut current, Set { keys: Vec::new() }));
        }
        current.keys.push((k, v, line));
    }
    if !current.keys.is_empty() {
        sets.push(current);
    }
    Ok(sets)
}

/// `7days`, `1hour`, `30d`, `10min`… in seconds, with znapzend's units.
fn plan_time(s: &str) -> Option<u64> {
    let digits = s.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = s[..digits].parse().ok().filter(|n| *n > 0)?;
    let unit = s[digits..].trim();
    let factor: u64 = match unit {
        "s" | "sec" | "second" | "seconds" => 1,
        "M" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        "m" | "mon" | "mons" | "month" | "months" => 30 * 86_400,
        // 365.25 days.
        "y" | "year" | "years" => 31_557_600,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// A plan as (retention, interval) pairs in seconds, shortest retention first.
fn parse_plan(plan: &str) -> Result<Vec<(u64, u64)>, String> {
    let mut items = Vec::new();
    for item in plan.split(',').map(str::trim) {
        let (keep, every) = item
            .split_once("=>")
            .ok_or_else(|| format!("plan item {item:?} is not RETENTION=>INTERVAL"))?;
        let keep = plan_time(keep.trim())
            .ok_or_else(|| format!("plan item {item:?}: {keep:?} is not a time such as 7days"))?;
        let every = plan_time(every.trim())
            .ok_or_else(|| format!("plan item {item:?}: {every:?} is not a time such as 1hour"))?;
        if items.iter().any(|(k, _)| *k == keep) {
            return Err(format!("plan item {item:?}: this retention is given twice"));
        }
        items.push((keep, every));
    }
    items.sort_unstable();
    Ok(items)
}

/// The grid for a plan, and whether every bracket is a whole number of intervals.
fn plan_grid(plan: &[(u64, u64)]) -> Result<(String, bool), String> {
    let mut parts = Vec::new();
    let mut previous = 0;
    let mut whole = true;
    for &(keep, every) in plan {
        let span = keep - previous;
        let count = span.div_ceil(every);
        whole &= span % every == 0;
        let count = u32::try_from(count)
            .map_err(|_| format!("{count} intervals of {}s is too many", every))?;
        parts.push(format!("{count}x{}", Span::from_secs(every)));
        previous = keep;
    }
    Ok((parts.join(" | "), whole))
}

/// `[user@]host:pool/path` or `pool/path`.
fn destination(v: &str) -> Result<TargetAddress, String> {
    match v.split_once(':') {
        Some((remote, dataset)) if !remote.contains('/') => {
            let (user, host) = match remote.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, remote),
            };
            let address = match user {
                Some(u) => format!("ssh://{u}@{host}/{dataset}"),
                None => format!("ssh://{host}/{dataset}"),
            };
            address.parse().map_err(|e| format!("{e}"))
        }
        _ => v.parse().map_err(|e| format!("{e}")),
    }
}

/// A command string as an argv: split on blanks when it is a plain absolute command
/// with plain arguments, else given to `/bin/sh -c` as znapzend gives it to its shell.
fn argv(cmd: &str) -> Vec<String> {
    let plain = cmd.starts_with('/')
        && cmd.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, ' ' | '/' | '-' | '_' | '.' | ',' | ':' | '@' | '+')
        });
    if plain {
        cmd.split_whitespace().map(str::to_owned).collect()
    } else {
        vec!["/bin/sh".to_owned(), "-c".to_owned(), cmd.to_owned()]
    }
}

fn hook(when: HookEvent, cmd: &str, dataset: &DatasetName, targets: Vec<String>) -> HookSpec {
    HookSpec {
        when,
        run: argv(cmd),
        datasets: vec![dataset.clone()],
        targets,
        // znapzend runs its commands once per backup set, not per dataset.
        once: true,
        timeout: Span::from_secs(30),
        on_failure: if matches!(when, HookEvent::PreSnapshot | HookEvent::PreReplicate) {
            OnFailure::Skip
        } else {
            OnFailure::Continue
        },
        hold: false,
    }
}

fn set_command(v: &str) -> Option<&str> {
    (!v.is_empty() && v != "off").then_some(v)
}

/// Translates the output of `znapzendzetup export` (one backup set, or several
/// concatenated).
///
/// # Errors
/// A line that is not `key=value`, a set without `src` or `src_plan`, a plan, dataset
/// or destination zsnap cannot read, a value that is not `on`/`off`, no enabled set, or
/// a translation zsnap would refuse (the message says why).
pub fn import_znapzend(text: &str, file: &str) -> Result<Imported, ImportError> {
    let sets = parse_sets(text, file)?;
    let mut notes: Vec<String> = Vec::new();
    let mut note = |n: String| {
        if !notes.contains(&n) {
            notes.push(n);
        }
    };
    let mut config = Config::empty();
    for set in &sets {
        let first = set.keys.first().map_or(0, |(_, _, l)| *l);
        let (src, src_line) = set.get("src").ok_or_else(|| {
            ImportError::new(file, first, "a backup set without `src` (the dataset)")
        })?;
        let root: DatasetName = src
            .parse()
            .map_err(|e| ImportError::new(file, src_line, format!("src={src}: {e}")))?;
        let on = |key: &str, default: bool| -> Result<bool, ImportError> {
            match set.get(key) {
                None => Ok(default),
                Some(("on" | "yes" | "1", _)) => Ok(true),
                Some(("off" | "no" | "0", _)) => Ok(false),
                Some((v, l)) => Err(ImportError::new(
                    file,
                    l,
                    format!("{key}={v}: expected on or off"),
                )),
            }
        };
        if !on("enabled", true)? {
            note(format!("{src} has enabled=off: left out"));
            continue;
        }
        let recursive = on("recursive", false)?;
        let (plan_text, plan_line) = set
            .get("src_plan")
            .ok_or_else(|| ImportError::new(file, src_line, format!("{src}: no `src_plan`")))?;
        let plan = parse_plan(plan_text)
            .map_err(|p| ImportError::new(file, plan_line, format!("src_plan: {p}")))?;
        let (grid, whole) = plan_grid(&plan)
            .map_err(|p| ImportError::new(file, plan_line, format!("src_plan: {p}")))?;
        let interval = plan.iter().map(|(_, every)| *every).min().unwrap_or(3600);
        if interval < 60 {
            return Err(ImportError::new(
                file,
                plan_line,
                "src_plan: zsnap takes snapshots at most once a minute",
            ));
        }
        let name = table_name(src);
        if config.policies.contains_key(&name) {
            return Err(ImportError::new(
                file,
                src_line,
                format!("{src} is exported twice"),
            ));
        }
        let plan_note = |what: &str, plan_text: &str, grid: &str, whole: bool| {
            format!(
                "{src}: {what} `{plan_text}` is the grid `{grid}` (the oldest snapshot of each \
                 interval, as znapzend keeps the oldest of each slot); znapzend counts its \
                 slots from the epoch, the grid from the newest snapshot, and keeps a \
                 snapshot exactly as old as a retention in the younger bracket{}",
                if whole {
                    ""
                } else {
                    ", and a retention that is not a whole number of intervals was rounded up"
                }
            )
        };
        note(plan_note("src_plan", plan_text, &grid, whole));

        let mut policy = PolicySpec {
            timezone: chrono_tz::UTC,
            prefix: "zsnap".to_owned(),
            adopt: Vec::new(),
            prune: true,
            snapshot: BTreeMap::new(),
            on_demand: BTreeMap::new(),
            keep_none: Vec::new(),
            retention: RetentionSpec {
                keep_rules: vec![KeepRuleSpec::new(Some(RuleSpec::Grid(grid)))],
                ..RetentionSpec::default()
            },
        };
        let label: Label = LABEL.parse().expect("`periodic` is a valid label");
        policy.snapshot.insert(
            label.clone(),
            Period::Every(Span::from_secs(interval)).into(),
        );
        let tsformat = set.get("tsformat").map_or("%Y-%m-%d-%H%M%S", |(v, _)| v);
        if ["%Y-%m-%dT%H:%M:%SZ", "%Y%m%dT%H%M%SZ", "%Y-%m-%dT%H%M%SZ"]
            .iter()
            .any(|f| tsformat.ends_with(f))
        {
            policy.adopt.push(Adopt::Tool("iso8601".to_owned()));
            note(format!(
                "{src}: znapzend's snapshots (tsformat={tsformat}) are adopted as ISO 8601 names \
                 in UTC, and so is any other ISO 8601-named snapshot of these datasets"
            ));
        } else if let Ok(f) = crate::naming::NameFormat::new(
            "",
            tsformat,
            crate::naming::FormatZone::Local,
            Some(label.clone()),
        ) {
            // znapzend names its snapshots in the host's local time.
            policy.adopt.push(Adopt::Format(f));
            note(format!(
                "{src}: znapzend's snapshots (tsformat={tsformat}) are adopted, read in the \
                 policy's `timezone`: set it to this host's zone (znapzend names in local time)"
            ));
        } else {
            note(format!(
                "{src}: znapzend's snapshots (tsformat={tsformat}) cannot be adopted (zsnap cannot \
                 read that format back): zsnap leaves them alone and never destroys them; destroy \
                 them by hand once zsnap's own cover the plan"
            ));
        }

        for (key, value, line) in &set.keys {
            match key.as_str() {
                "src" | "src_plan" | "enabled" | "recursive" | "tsformat" => {}
                "pre_znap_cmd" | "post_znap_cmd" => {
                    if let Some(cmd) = set_command(value) {
                        let (when, suffix) = if key == "pre_znap_cmd" {
                            (HookEvent::PreSnapshot, "pre-snapshot")
                        } else {
                            (HookEvent::PostSnapshot, "post-snapshot")
                        };
                        config.hooks.insert(
                            format!("{name}-{suffix}"),
                            hook(when, cmd, &root, Vec::new()),
                        );
                    }
                }
                k if k.starts_with("dst_") => {}
                k => note(format!(
                    "{src}: `{k}` (line {line}) has no zsnap equivalent and was left out"
                )),
            }
        }

        // Destinations: `dst_K` and its `dst_K_*` keys.
        let dests: Vec<(&str, &str, usize)> = set
            .keys
            .iter()
            .filter_map(|(k, v, l)| {
                let id = k.strip_prefix("dst_")?;
                (!id.contains('_')).then_some((id, v.as_str(), *l))
            })
            .collect();
        for (key, _, line) in &set.keys {
            if let Some(rest) = key.strip_prefix("dst_") {
                let known = dests.iter().any(|(id, _, _)| {
                    rest == *id
                        || rest
                            .strip_prefix(id)
                            .and_then(|r| r.strip_prefix('_'))
                            .is_some_and(|r| matches!(r, "plan" | "precmd" | "pstcmd"))
                });
                if !known {
                    note(format!(
                        "{src}: `{key}` (line {line}) has no zsnap equivalent and was left out"
                    ));
                }
            }
        }
        for (id, value, line) in dests {
            let to = destination(value)
                .map_err(|p| ImportError::new(file, line, format!("dst_{id}={value}: {p}")))?;
            let tname = format!("{name}-{}", table_name(id));
            let (dplan_text, dplan_line) = set.get(&format!("dst_{id}_plan")).ok_or_else(|| {
                ImportError::new(file, line, format!("dst_{id} has no dst_{id}_plan"))
            })?;
            let dplan = parse_plan(dplan_text)
                .map_err(|p| ImportError::new(file, dplan_line, format!("dst_{id}_plan: {p}")))?;
            let (dgrid, dwhole) = plan_grid(&dplan)
                .map_err(|p| ImportError::new(file, dplan_line, format!("dst_{id}_plan: {p}")))?;
            note(plan_note(
                &format!("dst_{id}_plan"),
                dplan_text,
                &dgrid,
                dwhole,
            ));
            let mut dpolicy = policy.clone();
            dpolicy.snapshot.clear();
            dpolicy.retention.keep_rules = vec![KeepRuleSpec::new(Some(RuleSpec::Grid(dgrid)))];
            config.policies.insert(tname.clone(), dpolicy);
            config.targets.insert(
                tname.clone(),
                TargetSpec {
                    source: root.clone(),
                    to,
                    policy: tname.clone(),
                    allow_rollback: false,
                    cursor: CursorKind::Hold,
                    exclude_properties: vec!["mountpoint".to_owned()],
                    bandwidth: None,
                },
            );
            for (suffix, when, hname) in [
                ("precmd", HookEvent::PreReplicate, "pre-replicate"),
                ("pstcmd", HookEvent::PostReplicate, "post-replicate"),
            ] {
                if let Some(cmd) = set
                    .get(&format!("dst_{id}_{suffix}"))
                    .and_then(|(v, _)| set_command(v))
                {
                    config.hooks.insert(
                        format!("{tname}-{hname}"),
                        hook(when, cmd, &root, vec![tname.clone()]),
                    );
                }
            }
        }
        config.policies.insert(name.clone(), policy);
        config.datasets.push(DatasetEntry {
            root,
            host: Host::Local,
            recursive,
            children_only: false,
            exclude: Vec::new(),
            policy: name,
        });
    }
    if config.datasets.is_empty() {
        return Err(ImportError::new(
            file,
            0,
            "no enabled backup set: nothing to translate",
        ));
    }
    if !config.hooks.is_empty() {
        note(
            "znapzend's commands become hooks run once per backup set; they get zsnap's \
             ZSNAP_* environment, not znapzend's, and a 30s timeout"
                .to_owned(),
        );
    }
    checked(ImportTool::Znapzend, config, notes, file)
}
