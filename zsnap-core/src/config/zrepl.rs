//! `zsnap import zrepl`: translate a `zrepl.yml` into the equivalent zsnap config.
//!
//! zrepl's model: a list of `jobs`, each of a `type`. The jobs that choose datasets
//! (`snap`, `push`, `source`) become `[[datasets]]` entries with a policy of the job's
//! name; their `snapshotting` becomes the policy's schedule and their keep rules
//! (`pruning.keep` of a snap job, `keep_sender` of a push job) its `keep_rules`, item
//! for item (zrepl's `grid`, `last_n`, `regex` with `negate` and `not_replicated` are
//! zsnap rules with zrepl's semantics). A push job's `keep_receiver` becomes the policy
//! of its target.
//!
//! What cannot be said in zsnap is never guessed: it is a note, and when leaving it out
//! would let zsnap destroy a snapshot zrepl keeps, the policy gets `prune = false`.
//!
//! * `filesystems`: zrepl takes, for each dataset, the most specific entry (`"a/b<"`
//!   is `a/b` and below, `"a/b"` only `a/b`). An included `"x<"` is a recursive entry,
//!   `"x"` a plain one; an excluded `"x<"` is in the `exclude` of every recursive entry
//!   above it; an excluded `"x"` too, plus an entry for its descendants
//!   (`children_only`), which zrepl still includes.
//! * Names: zsnap's own snapshots are `<prefix>_periodic_<time>`, with zrepl's prefix
//!   less its trailing `_`, so the regular expressions of zrepl's rules (`^zrepl_`)
//!   keep zsnap's snapshots as they kept zrepl's. zrepl's existing snapshots are
//!   adopted: `adopt = ["zrepl"]` for zrepl's default prefix `zrepl_` (every timestamp
//!   format), an adopt entry with the `dense` format for another prefix. Names that
//!   entry does not read (other timestamp formats, milliseconds other than `000`) are
//!   left alone, never destroyed.
//! * Transports: zsnap replicates over ssh or on this machine. A push over
//!   `ssh+stdinserver` lands below the sink's `root_fs`, which is in the sink's own
//!   config, so the target is a note; a push over `local` to a sink job of the same file
//!   is a local target at `root_fs/<client_identity>/<dataset>`, where zrepl puts it.
//!   `tcp` and `tls` have no zsnap equivalent. `pull` and `sink` jobs choose no datasets
//!   of their own (the other side's `source`/`push` job does) and are notes.

use std::collections::BTreeMap;

use serde::Deserialize;
use yaml_serde::Value;

use super::import::{checked, table_name, ImportError, ImportTool, Imported};
use super::model::{
    Adopt, Config, CursorKind, DatasetEntry, Host, KeepRuleSpec, PolicySpec, RetentionSpec,
    RuleSpec, TargetAddress, TargetSpec,
};
use crate::duration::Span;
use crate::naming::{Label, NamingScheme};
use crate::schedule::Period;
use crate::zfs_names::DatasetName;

/// zrepl's default snapshot prefix, the one `adopt = ["zrepl"]` recognizes.
const ZREPL_PREFIX: &str = "zrepl_";
/// The label of the snapshots a translated periodic `snapshotting` takes.
const LABEL: &str = "periodic";

type Other = BTreeMap<String, Value>;

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    jobs: Vec<Job>,
    #[serde(flatten)]
    other: Other,
}

#[derive(Deserialize)]
struct Job {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    filesystems: Option<BTreeMap<String, bool>>,
    snapshotting: Option<Snapshotting>,
    pruning: Option<Pruning>,
    connect: Option<Connect>,
    serve: Option<Serve>,
    root_fs: Option<String>,
    #[serde(flatten)]
    other: Other,
}

#[derive(Deserialize)]
struct Snapshotting {
    #[serde(rename = "type")]
    kind: String,
    prefix: Option<String>,
    interval: Option<String>,
    timestamp_format: Option<String>,
    timestamp_location: Option<String>,
    #[serde(flatten)]
    other: Other,
}

#[derive(Deserialize)]
struct Pruning {
    keep: Option<Vec<Keep>>,
    keep_sender: Option<Vec<Keep>>,
    keep_receiver: Option<Vec<Keep>>,
    #[serde(flatten)]
    other: Other,
}

#[derive(Deserialize)]
struct Keep {
    #[serde(rename = "type")]
    kind: String,
    grid: Option<String>,
    regex: Option<String>,
    negate: Option<bool>,
    count: Option<i64>,
    #[serde(flatten)]
    other: Other,
}

#[derive(Deserialize)]
struct Connect {
    #[serde(rename = "type")]
    kind: String,
    host: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    listener_name: Option<String>,
    client_identity: Option<String>,
    #[serde(flatten)]
    other: Other,
}

#[derive(Deserialize)]
struct Serve {
    #[serde(rename = "type")]
    kind: String,
    listener_name: Option<String>,
    #[serde(flatten)]
    _other: Other,
}

struct Cx<'a> {
    file: &'a str,
    notes: Vec<String>,
}

impl Cx<'_> {
    fn err(&self, job: &str, problem: impl std::fmt::Display) -> ImportError {
        ImportError::new(self.file, 0, format!("job `{job}`: {problem}"))
    }

    fn note(&mut self, n: String) {
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }

    fn note_other(&mut self, job: &str, what: &str, other: &Other) {
        for k in other.keys() {
            self.note(format!(
                "job `{job}`: `{what}{k}` has no zsnap equivalent and was left out"
            ));
        }
    }
}

/// Translates a `zrepl.yml`.
///
/// # Errors
/// YAML that does not parse or has the wrong shape (with its line), an unknown job or
/// keep rule type, a dataset name or interval zsnap cannot read, two jobs that manage
/// one dataset, a file without jobs that choose datasets, or a translation zsnap would
/// refuse (the message says why).
pub fn import_zrepl(text: &str, file: &str) -> Result<Imported, ImportError> {
    let parsed: File = yaml_serde::from_str(text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line());
        ImportError::new(file, line, format!("not a zrepl config: {e}"))
    })?;
    let mut cx = Cx {
        file,
        notes: Vec::new(),
    };
    for k in parsed.other.keys() {
        cx.note(format!(
            "`{k}` (zrepl's daemon settings: logging, monitoring, control socket) has no zsnap equivalent and was left out"
        ));
    }
    let mut config = Config::empty();
    let mut managed_by: BTreeMap<DatasetName, String> = BTreeMap::new();
    for job in &parsed.jobs {
        match job.kind.as_str() {
            "snap" | "push" | "source" => translate_job(&mut cx, &parsed, job, &mut config, &mut managed_by)?,
            "pull" => cx.note(format!(
                "job `{}` (pull): the datasets it pulls are chosen by the source job on the other host, \
                 which this file does not hold; in zsnap, pull with [[datasets]] entries whose `host` is \
                 that host and a local [targets.NAME] (see examples/pull.toml)",
                job.name
            )),
            "sink" => cx.note(format!(
                "job `{}` (sink): a sink receives what the pushing side sends; zsnap configures \
                 replication on the sending side ([targets.NAME] there), so there is nothing to \
                 translate here unless a push job of this file sends to it over `local`",
                job.name
            )),
            other => {
                return Err(cx.err(
                    &job.name,
                    format!("unknown job type `{other}` (expected snap, push, pull, sink or source)"),
                ))
            }
        }
    }
    if config.datasets.is_empty() {
        return Err(ImportError::new(
            file,
            0,
            "no snap, push or source job with `filesystems`: nothing to translate",
        ));
    }
    checked(ImportTool::Zrepl, config, cx.notes, file)
}

fn translate_job(
    cx: &mut Cx<'_>,
    parsed: &File,
    job: &Job,
    config: &mut Config,
    managed_by: &mut BTreeMap<DatasetName, String>,
) -> Result<(), ImportError> {
    let name = table_name(&job.name);
    if config.policies.contains_key(&name) {
        return Err(cx.err(&job.name, "two jobs have this name"));
    }
    for k in job.other.keys() {
        // Transport and stream options, and the replication interval (zsnap replicates
        // on every `zsnap run`, when its timer fires).
        cx.note(format!(
            "job `{}`: `{k}` has no zsnap equivalent and was left out",
            job.name
        ));
    }
    let filesystems = job
        .filesystems
        .as_ref()
        .ok_or_else(|| cx.err(&job.name, "a snap, push or source job needs `filesystems`"))?;
    let entries = filesystem_entries(cx, &job.name, filesystems, &name)?;
    for e in &entries {
        if let Some(other) = managed_by.insert(e.root.clone(), job.name.clone()) {
            return Err(cx.err(
                &job.name,
                format!(
                    "`{}` is managed by job `{other}` too; zrepl lets each job prune it by its own rules \
                     (a snapshot survives only if every job keeps it), zsnap gives a dataset one policy: \
                     merge the two jobs into one by hand first",
                    e.root
                ),
            ));
        }
    }

    let mut policy = empty_policy();
    if let Some(s) = &job.snapshotting {
        snapshotting(cx, &job.name, s, &mut policy)?;
    } else {
        cx.note(format!(
            "job `{}` has no `snapshotting`: its policy takes no snapshots",
            job.name
        ));
    }

    // The targets before the keep rules: `not_replicated` names them.
    let mut target_names = Vec::new();
    if job.kind == "push" {
        let connect = job
            .connect
            .as_ref()
            .ok_or_else(|| cx.err(&job.name, "a push job needs `connect`"))?;
        let receiver_rules = job
            .pruning
            .as_ref()
            .and_then(|p| p.keep_receiver.as_deref());
        let landing = push_landing(cx, parsed, job, connect)?;
        let tp = format!("{name}-receiver");
        if let Some(root_fs) = landing {
            for e in &entries {
                let tname = if entries.len() == 1 {
                    name.clone()
                } else {
                    format!("{name}-{}", table_name(e.root.as_str()))
                };
                let dataset: DatasetName = format!("{root_fs}/{}", e.root)
                    .parse()
                    .map_err(|err| cx.err(&job.name, format!("root_fs: {err}")))?;
                config.targets.insert(
                    tname.clone(),
                    TargetSpec {
                        source: e.root.clone(),
                        to: TargetAddress::Dataset {
                            host: Host::Local,
                            dataset,
                        },
                        policy: tp.clone(),
                        allow_rollback: false,
                        cursor: CursorKind::Hold,
                        exclude_properties: vec!["mountpoint".to_owned()],
                        bandwidth: None,
                    },
                );
                target_names.push(tname);
            }
        }
        if config.policies.contains_key(&tp) {
            return Err(cx.err(
                &job.name,
                format!("a job is named `{tp}`, the name of this job's receiver policy"),
            ));
        }
        {
            // The target owns what it receives by the source's names: zsnap's own (the
            // same prefix) and the adopted ones.
            let mut receiver = empty_policy();
            receiver.prefix.clone_from(&policy.prefix);
            receiver.adopt.clone_from(&policy.adopt);
            match receiver_rules {
                Some(rules) => {
                    let (items, exact) = keep_items(cx, &job.name, "keep_receiver", rules, &[])?;
                    receiver.retention.keep_rules = items;
                    if !exact || receiver.retention.keep_rules.is_empty() {
                        receiver.prune = false;
                    }
                }
                None => {
                    receiver.prune = false;
                    cx.note(format!(
                        "job `{}`: no `keep_receiver`: the target policy `{tp}` does not prune",
                        job.name
                    ));
                }
            }
            config.policies.insert(tp, receiver);
        }
    }

    let (rules, what) = match job.kind.as_str() {
        "snap" => (job.pruning.as_ref().and_then(|p| p.keep.as_deref()), "keep"),
        "push" => (
            job.pruning.as_ref().and_then(|p| p.keep_sender.as_deref()),
            "keep_sender",
        ),
        _ => (None, ""),
    };
    if let Some(p) = &job.pruning {
        cx.note_other(&job.name, "pruning.", &p.other);
    }
    match rules {
        Some(rules) => {
            let (items, exact) = keep_items(cx, &job.name, what, rules, &target_names)?;
            policy.retention.keep_rules = items;
            if !exact {
                policy.prune = false;
                cx.note(format!(
                    "job `{}`: its policy `{name}` has `prune = false` until the rules above are \
                     completed by hand, so that zsnap destroys nothing zrepl would keep",
                    job.name
                ));
            }
        }
        None if job.kind == "source" => {
            if let Some(serve) = &job.serve {
                cx.note(format!(
                    "job `{}` serves over `{}`: in zsnap the pulling host reaches these \
                     datasets over ssh ([[datasets]] with `host = \"ssh://…\"` there)",
                    job.name, serve.kind
                ));
            }
            policy.prune = false;
            cx.note(format!(
                "job `{}` (source): the pulling side prunes these datasets with its keep_sender; \
                 the policy `{name}` does not prune",
                job.name
            ));
        }
        None => {
            policy.prune = false;
            cx.note(format!(
                "job `{}` has no `pruning.{what}`: its policy `{name}` does not prune",
                job.name
            ));
        }
    }
    if policy.prune && policy.retention.keep_rules.is_empty() {
        // zrepl's empty list keeps everything; a zsnap policy without rules keeps nothing.
        policy.prune = false;
        cx.note(format!(
            "job `{}`: an empty keep list keeps everything in zrepl: the policy `{name}` does not prune",
            job.name
        ));
    }
    config.policies.insert(name, policy);
    config.datasets.extend(entries);
    Ok(())
}

fn empty_policy() -> PolicySpec {
    PolicySpec {
        timezone: chrono_tz::UTC,
        prefix: "zsnap".to_owned(),
        adopt: Vec::new(),
        prune: true,
        snapshot: BTreeMap::new(),
        on_demand: BTreeMap::new(),
        keep_none: Vec::new(),
        retention: RetentionSpec::default(),
    }
}

/// Where a push job's datasets land, when zsnap can reach it: the sink's
/// `root_fs/<client_identity>` for a `local` connect to a sink of this file.
fn push_landing(
    cx: &mut Cx<'_>,
    parsed: &File,
    job: &Job,
    connect: &Connect,
) -> Result<Option<String>, ImportError> {
    let j = &job.name;
    match connect.kind.as_str() {
        "ssh+stdinserver" => {
            let host = connect
                .host
                .as_deref()
                .ok_or_else(|| cx.err(j, "connect: ssh+stdinserver needs `host`"))?;
            let address = Host::Ssh {
                user: connect.user.clone(),
                host: host.to_owned(),
                port: connect.port,
            };
            cx.note(format!(
                "job `{j}` pushes over ssh to {address}: its datasets land below the sink's \
                 `root_fs` and client identity, which are in the sink's config, not this one. Add \
                 a [targets.NAME] per dataset root with `to = \"{address}/ROOT_FS/IDENTITY/<root>\"` \
                 and `policy = \"{}-receiver\"` (zrepl's keep_receiver)",
                table_name(j)
            ));
            for k in connect.other.keys() {
                cx.note(format!(
                    "job `{j}`: `connect.{k}` is not translated; ssh options (identity file, \
                     port, known hosts) belong in an ssh config file named by [paths] ssh_config"
                ));
            }
            Ok(None)
        }
        "local" => {
            let listener = connect.listener_name.as_deref().unwrap_or_default();
            let identity = connect
                .client_identity
                .as_deref()
                .ok_or_else(|| cx.err(j, "connect: local needs `client_identity`"))?;
            let sink = parsed.jobs.iter().find(|s| {
                s.kind == "sink"
                    && s.serve.as_ref().is_some_and(|sv| {
                        sv.kind == "local" && sv.listener_name.as_deref() == Some(listener)
                    })
            });
            match sink.and_then(|s| s.root_fs.as_deref()) {
                Some(root_fs) => Ok(Some(format!(
                    "{}/{identity}",
                    root_fs.trim_end_matches('/')
                ))),
                None => {
                    cx.note(format!(
                        "job `{j}` pushes to the local listener `{listener}`, which no sink job \
                         of this file serves: no target was made"
                    ));
                    Ok(None)
                }
            }
        }
        other => {
            cx.note(format!(
                "job `{j}` connects over `{other}`: zsnap replicates only over ssh or on this \
                 machine, so no target was made"
            ));
            Ok(None)
        }
    }
}

/// The policy's schedule, prefix and adopted names.
fn snapshotting(
    cx: &mut Cx<'_>,
    job: &str,
    s: &Snapshotting,
    policy: &mut PolicySpec,
) -> Result<(), ImportError> {
    cx.note_other(job, "snapshotting.", &s.other);
    match s.kind.as_str() {
        "manual" => {
            cx.note(format!(
                "job `{job}`: `snapshotting: manual`: its policy takes no snapshots"
            ));
            return Ok(());
        }
        "periodic" => {}
        "cron" => {
            cx.note(format!(
                "job `{job}`: `snapshotting: cron` has no zsnap equivalent (zsnap takes \
                 snapshots every fixed period or calendar unit): its policy takes no \
                 snapshots; add a `snapshot` period by hand"
            ));
        }
        other => {
            return Err(cx.err(
                job,
                format!("unknown snapshotting type `{other}` (expected periodic, manual or cron)"),
            ))
        }
    }
    let prefix = s
        .prefix
        .as_deref()
        .ok_or_else(|| cx.err(job, "snapshotting needs `prefix`"))?;
    let own = prefix.trim_end_matches('_');
    if NamingScheme::new(own).is_ok() {
        own.clone_into(&mut policy.prefix);
    } else {
        cx.note(format!(
            "job `{job}`: zrepl's prefix {prefix:?} is no zsnap prefix: zsnap's snapshots are \
             named `zsnap_{LABEL}_…`, which the rules' regular expressions may not match"
        ));
    }
    let dense = s.timestamp_format.as_deref().is_none_or(|f| f == "dense");
    if prefix == ZREPL_PREFIX {
        policy.adopt.push(Adopt::Tool("zrepl".to_owned()));
    } else if let (true, Ok(f)) = (
        dense,
        crate::naming::NameFormat::new(
            prefix,
            "%Y%m%d_%H%M%S_000",
            crate::naming::FormatZone::Utc,
            Some(LABEL.parse().expect("`periodic` is a valid label")),
        ),
    ) {
        // zrepl's `dense` names, as docs/config.md's table writes them.
        policy.adopt.push(Adopt::Format(f));
    } else {
        cx.note(format!(
            "job `{job}`: zrepl's snapshots with the prefix {prefix:?} are not adopted (their \
             names cannot be read with a format zsnap accepts): zsnap leaves them alone and \
             never destroys them"
        ));
    }
    if let Some(f) = &s.timestamp_format {
        if !matches!(f.as_str(), "dense" | "human" | "iso-8601" | "unix-seconds") {
            cx.note(format!(
                "job `{job}`: zrepl names with the timestamp format {f:?} are not recognized \
                 (zsnap reads dense, human, iso-8601 and unix-seconds), so they are not adopted"
            ));
        }
    }
    if let Some(l) = &s.timestamp_location {
        if !l.eq_ignore_ascii_case("utc") {
            cx.note(format!(
                "job `{job}`: `timestamp_location: {l}`: zsnap names its snapshots in UTC; ages \
                 come from each snapshot's creation time, not its name"
            ));
        }
    }
    if s.kind == "periodic" {
        let raw = s
            .interval
            .as_deref()
            .ok_or_else(|| cx.err(job, "periodic snapshotting needs `interval`"))?;
        let span: Span = raw
            .parse()
            .map_err(|e| cx.err(job, format!("snapshotting.interval: {e}")))?;
        if span.seconds() < 60 {
            return Err(cx.err(
                job,
                format!("snapshotting.interval {raw}: zsnap takes snapshots at most once a minute"),
            ));
        }
        let label: Label = LABEL.parse().expect("`periodic` is a valid label");
        policy.snapshot.insert(label, Period::Every(span).into());
    }
    Ok(())
}

/// zrepl's keep list as `keep_rules` items, and whether the translation is exact
/// (false: a rule that keeps something was left out).
fn keep_items(
    cx: &mut Cx<'_>,
    job: &str,
    what: &str,
    rules: &[Keep],
    targets: &[String],
) -> Result<(Vec<KeepRuleSpec>, bool), ImportError> {
    let mut items = Vec::new();
    let mut exact = true;
    for (i, k) in rules.iter().enumerate() {
        let place = format!("pruning.{what}[{i}]");
        cx.note_other(job, &format!("{place}."), &k.other);
        let need_regex = || {
            k.regex
                .clone()
                .ok_or_else(|| cx.err(job, format!("{place}: `{}` needs `regex`", k.kind)))
        };
        match k.kind.as_str() {
            "grid" => {
                let grid = k
                    .grid
                    .clone()
                    .ok_or_else(|| cx.err(job, format!("{place}: `grid` needs `grid`")))?;
                let mut item = KeepRuleSpec::new(Some(RuleSpec::Grid(grid)));
                item.regex = Some(need_regex()?);
                items.push(item);
            }
            "last_n" => {
                let count = k
                    .count
                    .ok_or_else(|| cx.err(job, format!("{place}: `last_n` needs `count`")))?;
                let count = u32::try_from(count)
                    .map_err(|_| cx.err(job, format!("{place}: count {count} is out of range")))?;
                if count == 0 {
                    cx.note(format!("job `{job}`: {place} (`last_n` with count 0) keeps nothing and was left out"));
                    continue;
                }
                let mut item = KeepRuleSpec::new(Some(RuleSpec::LastN(count)));
                item.regex = k.regex.clone();
                items.push(item);
            }
            "regex" => {
                let mut item = KeepRuleSpec::new(None);
                item.regex = Some(need_regex()?);
                item.negate = k.negate.unwrap_or(false);
                items.push(item);
            }
            "not_replicated" => {
                if what == "keep_receiver" {
                    cx.note(format!(
                        "job `{job}`: {place}: `not_replicated` keeps nothing on a receiver and was left out"
                    ));
                } else if targets.is_empty() {
                    exact = false;
                    cx.note(format!(
                        "job `{job}`: {place}: `not_replicated` needs a zsnap target, and none was \
                         made from this job; add `{{ not_replicated = \"NAME\" }}` once you add it"
                    ));
                } else {
                    for t in targets {
                        items.push(KeepRuleSpec::new(Some(RuleSpec::NotReplicated(t.clone()))));
                    }
                }
            }
            other => {
                return Err(cx.err(
                    job,
                    format!(
                        "{place}: unknown keep rule type `{other}` (expected grid, last_n, regex or not_replicated)"
                    ),
                ))
            }
        }
    }
    Ok((items, exact))
}

/// One zrepl `filesystems` entry.
struct Filter {
    path: DatasetName,
    recursive: bool,
    include: bool,
}

/// zrepl's `filesystems` map as `[[datasets]]` entries with the policy `policy`.
fn filesystem_entries(
    cx: &mut Cx<'_>,
    job: &str,
    filesystems: &BTreeMap<String, bool>,
    policy: &str,
) -> Result<Vec<DatasetEntry>, ImportError> {
    let mut filters = Vec::new();
    for (key, include) in filesystems {
        let (path, recursive) = match key.strip_suffix('<') {
            Some(p) => (p, true),
            None => (key.as_str(), false),
        };
        if path.is_empty() {
            return Err(cx.err(
                job,
                format!(
                    "filesystems: {key:?} selects every dataset of every pool; zsnap names each root: list the pools instead"
                ),
            ));
        }
        let path: DatasetName = path
            .parse()
            .map_err(|e| cx.err(job, format!("filesystems: {key:?}: {e}")))?;
        filters.push(Filter {
            path,
            recursive,
            include: *include,
        });
    }
    // Whether zrepl includes the descendants of `path` (not `path` itself), by the
    // most specific recursive filter at or above it.
    let below_included = |path: &DatasetName| {
        filters
            .iter()
            .filter(|f| f.recursive && f.path.contains(path))
            .max_by_key(|f| f.path.as_str().len())
            .is_some_and(|f| f.include)
    };
    let mut entries: BTreeMap<DatasetName, DatasetEntry> = BTreeMap::new();
    let entry = |root: &DatasetName, recursive: bool| DatasetEntry {
        root: root.clone(),
        host: Host::Local,
        recursive,
        children_only: false,
        exclude: Vec::new(),
        policy: policy.to_owned(),
    };
    for f in filters.iter().filter(|f| f.include) {
        let e = entries
            .entry(f.path.clone())
            .or_insert_with(|| entry(&f.path, f.recursive));
        e.recursive |= f.recursive;
    }
    for f in filters.iter().filter(|f| !f.include) {
        if !f.recursive && below_included(&f.path) {
            // zrepl leaves out only this dataset: its descendants stay in.
            let e = entries
                .entry(f.path.clone())
                .or_insert_with(|| entry(&f.path, true));
            e.recursive = true;
            e.children_only = true;
        }
        // An excluded "x<" next to an included "x": the exact entry wins for `x`
        // (it is the more specific), and the descendants are excluded below.
    }
    let excluded: Vec<&DatasetName> = filters
        .iter()
        .filter(|f| !f.include)
        .map(|f| &f.path)
        .collect();
    for e in entries.values_mut().filter(|e| e.recursive) {
        for r in &excluded {
            if e.root.is_ancestor_of(r) && !e.exclude.contains(r) {
                e.exclude.push((*r).clone());
            }
        }
    }
    if entries.is_empty() {
        return Err(cx.err(job, "filesystems includes no dataset"));
    }
    Ok(entries.into_values().collect())
}
