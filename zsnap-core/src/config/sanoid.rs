//! `zsnap import sanoid`: translate a `sanoid.conf` into the equivalent zsnap config.
//!
//! sanoid's model, as its `init_config` reads it: every section whose name does not
//! start with `template_` is a dataset; its values are, in order of precedence, its
//! own keys, then those of each template in `use_template` (a comma list; later
//! templates override earlier ones), then `[template_default]` of the file, then
//! sanoid's built-in defaults (`hourly = 48`, `daily = 90`, `monthly = 6`, the rest 0,
//! `frequent_period = 15`, `autosnap = yes`, `autoprune = yes`). `recursive = yes` (or
//! `zfs`) applies the section to every descendant, and a descendant with its own
//! section uses that one instead; `process_children_only = yes` skips the dataset itself.
//!
//! The translation gives each distinct set of values one policy that takes snapshots
//! for every type with a count above 0 (when `autosnap`), prunes with the
//! sanoid-compatible rule (when `autoprune`), and adopts sanoid's `autosnap_*`
//! snapshots, so the ones sanoid already made age out exactly as under sanoid.
//! sanoid's times of period (`hourly_min`, `daily_hour`, `weekly_wday`, `monthly_mday`,
//! `yearly_mon`…, with the defaults of `sanoid.defaults.conf`: hourly at :00, daily at
//! 23:59, weekly on Monday at 23:30, monthly on day 1 and yearly on January 1 at 00:00)
//! become each label's [`At`], so snapshots keep being taken when sanoid took them.
//! Hooks and monitoring keys have no zsnap equivalent and are listed as notes.

use std::collections::BTreeMap;

use super::model::{
    Adopt, Config, DatasetEntry, Host, PolicySpec, RetentionSpec, SanoidKeep, Timing,
};
use crate::duration::Span;
use crate::naming::Label;
use crate::schedule::{At, Period};
use crate::zfs_names::DatasetName;
use chrono::Weekday;

/// Why a `sanoid.conf` could not be translated: the error every importer returns.
pub type SanoidImportError = super::import::ImportError;

impl From<SanoidImport> for super::import::Imported {
    fn from(s: SanoidImport) -> Self {
        super::import::Imported {
            tool: super::import::ImportTool::Sanoid,
            notes: s.notes,
            config: s.config,
        }
    }
}

/// The result of a translation: the config and what the user should know about it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SanoidImport {
    /// The translated config.
    pub config: Config,
    /// Keys that were read but have no zsnap equivalent, and other remarks.
    pub notes: Vec<String>,
}

impl SanoidImport {
    /// The config as commented TOML, ready to save as `/etc/zsnap/zsnap.toml`.
    pub fn to_toml(&self, source: &str) -> String {
        let mut out = format!(
            "# Translated from {source} by `zsnap import sanoid`.\n\
             # Each policy adopts sanoid's autosnap_* snapshots and prunes them (and zsnap's\n\
             # own) with sanoid's rule: a snapshot of a type goes when more than N of that\n\
             # type exist AND it is older than N periods.\n"
        );
        for n in &self.notes {
            out.push_str("# note: ");
            out.push_str(n);
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.config.to_toml());
        out
    }
}

/// One section: its name, the line of its header, and its keys with their lines.
struct Section {
    name: String,
    line: usize,
    keys: Vec<(String, String, usize)>,
}

const COUNT_KEYS: [&str; 6] = [
    "frequently",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "yearly",
];
/// sanoid's times of period: key, `sanoid.defaults.conf`'s value, lowest, highest.
/// `weekly_wday` counts from Sunday = 0, as Perl's `localtime` does.
const TIMING_KEYS: [(&str, u32, u32, u32); 13] = [
    ("hourly_min", 0, 0, 59),
    ("daily_hour", 23, 0, 23),
    ("daily_min", 59, 0, 59),
    ("weekly_wday", 1, 0, 6),
    ("weekly_hour", 23, 0, 23),
    ("weekly_min", 30, 0, 59),
    ("monthly_mday", 1, 1, 31),
    ("monthly_hour", 0, 0, 23),
    ("monthly_min", 0, 0, 59),
    ("yearly_mon", 1, 1, 12),
    ("yearly_mday", 1, 1, 31),
    ("yearly_hour", 0, 0, 23),
    ("yearly_min", 0, 0, 59),
];

/// Keys about hooks and monitoring.
const NOTED_KEYS: [&str; 12] = [
    "pre_snapshot_script",
    "post_snapshot_script",
    "pruning_script",
    "script_timeout",
    "no_inconsistent_snapshot",
    "force_post_snapshot_script",
    "monitor",
    "monitor_dont_warn",
    "monitor_dont_crit",
    "skip_children",
    "min_percent_free",
    "capacity_warn",
];

/// `<type>_warn`, `<type>_crit` (monitoring) and `<type>_min`, `_hour`, `_mday`… (when
/// in the period to snapshot).
fn is_timing_or_monitoring(key: &str) -> bool {
    key.split_once('_').is_some_and(|(ty, what)| {
        COUNT_KEYS.contains(&ty)
            && matches!(
                what,
                "warn" | "crit" | "min" | "hour" | "mday" | "wday" | "mon"
            )
    })
}

fn parse_sections(text: &str, file: &str) -> Result<Vec<Section>, SanoidImportError> {
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(rest) = l.strip_prefix('[') {
            let name = rest.strip_suffix(']').ok_or_else(|| SanoidImportError {
                file: file.to_owned(),
                line,
                problem: format!("section header {l:?} has no closing ']'"),
            })?;
            let name = name.trim();
            // sanoid's ini reader wants unique section names; taking either copy (or a
            // merge) would be a guess, and two [[datasets]] entries for one root with
            // different policies are a config zsnap refuses.
            if let Some(first) = sections.iter().find(|s| s.name == name) {
                return Err(SanoidImportError {
                    file: file.to_owned(),
                    line,
                    problem: format!(
                        "section [{name}] appears again (first on line {}); sections must be unique",
                        first.line
                    ),
                });
            }
            sections.push(Section {
                name: name.to_owned(),
                line,
                keys: Vec::new(),
            });
            continue;
        }
        let (k, v) = l.split_once('=').ok_or_else(|| SanoidImportError {
            file: file.to_owned(),
            line,
            problem: format!("expected `key = value` or `[section]`, found {l:?}"),
        })?;
        let section = sections.last_mut().ok_or_else(|| SanoidImportError {
            file: file.to_owned(),
            line,
            problem: "a key before the first [section]".to_owned(),
        })?;
        let v = v.split(" #").next().unwrap_or("").trim();
        section
            .keys
            .push((k.trim().to_ascii_lowercase(), v.to_owned(), line));
    }
    Ok(sections)
}

/// The values that decide snapshots and pruning for one dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Values {
    counts: [u32; 6],
    frequent_period: u32,
    autosnap: bool,
    autoprune: bool,
    recursive: bool,
    children_only: bool,
    /// The values of [`TIMING_KEYS`], in order.
    timing: [u32; 13],
}

impl Default for Values {
    fn default() -> Self {
        let d = SanoidKeep::default();
        Values {
            counts: [
                d.frequently,
                d.hourly,
                d.daily,
                d.weekly,
                d.monthly,
                d.yearly,
            ],
            frequent_period: 15,
            autosnap: true,
            autoprune: true,
            recursive: false,
            children_only: false,
            timing: TIMING_KEYS.map(|(_, default, _, _)| default),
        }
    }
}

struct Reader<'a> {
    file: &'a str,
    templates: BTreeMap<&'a str, &'a Section>,
    notes: Vec<String>,
}

impl Reader<'_> {
    fn err(&self, line: usize, problem: String) -> SanoidImportError {
        SanoidImportError {
            file: self.file.to_owned(),
            line,
            problem,
        }
    }

    fn yes(&self, v: &str, key: &str, line: usize) -> Result<bool, SanoidImportError> {
        match v.to_ascii_lowercase().as_str() {
            "yes" | "1" | "true" | "zfs" => Ok(true),
            "no" | "0" | "false" => Ok(false),
            _ => Err(self.err(line, format!("`{key} = {v}`: expected yes or no"))),
        }
    }

    /// Applies `section` (after its own templates) onto `v`.
    fn apply(
        &mut self,
        v: &mut Values,
        section: &Section,
        depth: usize,
        templates_used: &mut Vec<String>,
    ) -> Result<(), SanoidImportError> {
        if depth > 8 {
            return Err(self.err(
                section.line,
                "templates include each other in a loop".to_owned(),
            ));
        }
        for (key, value, line) in &section.keys {
            if key == "use_template" {
                for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    let Some(tpl) = self.templates.get(t).copied() else {
                        let known: Vec<&str> = self.templates.keys().copied().collect();
                        return Err(self.err(
                            *line,
                            format!(
                                "use_template names `{t}`, but there is no [template_{t}] (templates: {})",
                                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                            ),
                        ));
                    };
                    templates_used.push(t.to_owned());
                    self.apply(v, tpl, depth + 1, &mut Vec::new())?;
                }
            }
        }
        for (key, value, line) in &section.keys {
            let line = *line;
            if let Some(i) = COUNT_KEYS.iter().position(|k| k == key) {
                v.counts[i] = value
                    .parse()
                    .map_err(|_| self.err(line, format!("`{key} = {value}`: expected a count")))?;
            } else {
                match key.as_str() {
                    "use_template" => {}
                    "frequent_period" => {
                        v.frequent_period =
                            value.parse().ok().filter(|m| *m > 0).ok_or_else(|| {
                                self.err(
                                    line,
                                    format!("`frequent_period = {value}`: expected minutes"),
                                )
                            })?;
                    }
                    "autosnap" => v.autosnap = self.yes(value, key, line)?,
                    "autoprune" => v.autoprune = self.yes(value, key, line)?,
                    "recursive" => v.recursive = self.yes(value, key, line)?,
                    "process_children_only" => v.children_only = self.yes(value, key, line)?,
                    k if TIMING_KEYS.iter().any(|(t, ..)| *t == k) => {
                        let i = TIMING_KEYS
                            .iter()
                            .position(|(t, ..)| *t == k)
                            .expect("the guard found it");
                        let (_, _, lo, hi) = TIMING_KEYS[i];
                        v.timing[i] = value
                            .parse()
                            .ok()
                            .filter(|n| (lo..=hi).contains(n))
                            .ok_or_else(|| {
                                self.err(
                                    line,
                                    format!("`{k} = {value}`: expected a whole number from {lo} to {hi}"),
                                )
                            })?;
                    }
                    k if NOTED_KEYS.contains(&k) || is_timing_or_monitoring(k) => {
                        let note =
                            format!("`{k}` (line {line}) has no zsnap equivalent and was left out");
                        if !self.notes.contains(&note) {
                            self.notes.push(note);
                        }
                    }
                    k => {
                        return Err(self.err(line, format!("unknown sanoid key `{k}`")));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The time of period of each sanoid type, in sanoid's order (`frequently` first).
fn timing_of(t: &[u32; 13]) -> [At; 6] {
    let ok = "the reader checked every timing value against sanoid's ranges";
    let weekday = if t[3] == 0 {
        Weekday::Sun
    } else {
        Weekday::try_from(u8::try_from(t[3] - 1).expect(ok)).expect(ok)
    };
    [
        At::START,
        At::START.with_minute(t[0]).expect(ok),
        At::START.with_time(t[1], t[2]).expect(ok),
        At::START
            .with_time(t[4], t[5])
            .expect(ok)
            .with_weekday(weekday),
        At::START
            .with_time(t[7], t[8])
            .expect(ok)
            .with_day(t[6])
            .expect(ok),
        At::START
            .with_time(t[11], t[12])
            .expect(ok)
            .with_day(t[10])
            .expect(ok)
            .with_month(t[9])
            .expect(ok),
    ]
}

fn policy_for(v: &Values) -> PolicySpec {
    let keep = SanoidKeep {
        frequently: v.counts[0],
        hourly: v.counts[1],
        daily: v.counts[2],
        weekly: v.counts[3],
        monthly: v.counts[4],
        yearly: v.counts[5],
        frequent_period: Span::from_secs(u64::from(v.frequent_period) * 60),
    };
    let mut snapshot = BTreeMap::new();
    if v.autosnap {
        let periods = [
            Period::Every(keep.frequent_period),
            Period::Hourly,
            Period::Daily,
            Period::Weekly,
            Period::Monthly,
            Period::Yearly,
        ];
        let ats = timing_of(&v.timing);
        for (i, (name, count)) in keep.counts().into_iter().enumerate() {
            if count > 0 {
                let label: Label = name.parse().expect("sanoid's type names are valid labels");
                snapshot.insert(label, Timing::new(periods[i]).with_at(ats[i]));
            }
        }
    }
    PolicySpec {
        timezone: chrono_tz::UTC,
        prefix: "zsnap".to_owned(),
        adopt: vec![Adopt::Tool("sanoid".to_owned())],
        prune: v.autoprune,
        snapshot,
        on_demand: BTreeMap::new(),
        keep_none: Vec::new(),
        retention: RetentionSpec {
            sanoid: v.autoprune.then_some(keep),
            ..RetentionSpec::default()
        },
    }
}

/// Translates a `sanoid.conf`.
///
/// # Errors
/// A line that is neither a section, a comment nor `key = value`; an unknown key; a
/// template that does not exist; a bad value; a dataset name zsnap cannot parse; a file
/// without datasets.
pub fn import_sanoid(text: &str, file: &str) -> Result<SanoidImport, SanoidImportError> {
    let sections = parse_sections(text, file)?;
    let mut reader = Reader {
        file,
        templates: sections
            .iter()
            .filter_map(|s| s.name.strip_prefix("template_").map(|t| (t, s)))
            .collect(),
        notes: Vec::new(),
    };
    let mut base = Values::default();
    if let Some(default) = reader.templates.get("default").copied() {
        reader.apply(&mut base, default, 0, &mut Vec::new())?;
    }
    let mut policies: BTreeMap<String, PolicySpec> = BTreeMap::new();
    let mut datasets = Vec::new();
    for s in sections.iter().filter(|s| !s.name.starts_with("template_")) {
        let root: DatasetName = s.name.parse().map_err(|e: crate::zfs_names::NameError| {
            reader.err(s.line, format!("section [{}]: {e}", s.name))
        })?;
        let mut v = base.clone();
        let mut used = Vec::new();
        reader.apply(&mut v, s, 0, &mut used)?;
        let policy = policy_for(&v);
        let own_keys = s.keys.iter().any(|(k, _, _)| {
            k != "use_template" && k != "recursive" && k != "process_children_only"
        });
        let mut name = if used.is_empty() || own_keys {
            root.as_str().replace(['/', ' ', ':', '.'], "-")
        } else {
            used.join("+")
        };
        if policies.get(&name).is_some_and(|p| p != &policy) {
            name = root.as_str().replace(['/', ' ', ':', '.'], "-");
        }
        if !v.autoprune && !v.autosnap {
            reader.notes.push(format!(
                "[{}] has autosnap = no and autoprune = no: zsnap leaves it alone",
                s.name
            ));
            continue;
        }
        policies.insert(name.clone(), policy);
        let entry = DatasetEntry {
            root,
            host: Host::Local,
            recursive: v.recursive,
            children_only: v.recursive && v.children_only,
            exclude: Vec::new(),
            policy: name,
        };
        // The same limit `zsnap config check` enforces: a dataset whose snapshot names
        // would be over ZFS's could never be snapshotted.
        if let Some((prefix, label)) =
            super::rules::longest_label(&entry, &policies, &BTreeMap::new())
        {
            let len = entry.root.as_str().len()
                + format!("@{prefix}_{label}_").len()
                + super::rules::TIMESTAMP_LEN;
            if len > crate::zfs_names::MAX_NAME_LEN {
                return Err(reader.err(
                    s.line,
                    format!(
                        "section [{}]: its {label} snapshots would have names of {len} bytes, \
                         over ZFS's limit of {}",
                        s.name,
                        crate::zfs_names::MAX_NAME_LEN
                    ),
                ));
            }
        }
        datasets.push(entry);
    }
    if datasets.is_empty() {
        return Err(reader.err(0, "no dataset sections: nothing to translate".to_owned()));
    }
    reader.notes.push(
        "sanoid works in this host's local time (the times of day above, and the times in its \
         snapshot names): set `timezone` in each policy to this host's zone, e.g. \
         \"Europe/Berlin\"; the translation cannot know it and uses UTC"
            .to_owned(),
    );
    let config = Config {
        datasets,
        policies,
        ..Config::empty()
    };
    Ok(SanoidImport {
        config,
        notes: reader.notes,
    })
}
