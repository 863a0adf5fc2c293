//! The `zpool` commands `zsnap check` runs, the parsers of their output, and the inverse
//! printers.
//!
//! Pool health and capacity come from two commands per location, whatever the number
//! of pools or datasets:
//!
//! ```text
//! zpool list -H -p -o name,size,allocated,free,capacity,health      (list_argv)
//! zpool status -p                                                   (status_argv)
//! ```
//!
//! [`parse_pool_list`] reads the first into [`PoolUsage`] rows, [`parse_pool_status`]
//! the second into [`PoolStatus`] blocks. [`render_pool_list`] and
//! [`render_pool_status`] print them back (the fake ZFS backend answers with them), so
//! `parse(render(x)) == x` for whatever the parsers accept.
//!
//! # `zpool list` format
//! One row per line, six tab-separated fields in [`LIST_COLUMNS`] order. Numbers are
//! plain decimal digits (`-p`): bytes, and `capacity` in whole percent; `-` where zpool
//! has no value (a pool whose devices cannot be read). A trailing newline is allowed;
//! an empty text is no pool; an empty line elsewhere, a row ending in `\r`, a name that
//! is not a pool name, and a pool listed twice are errors.
//!
//! # `zpool status` format
//! Blocks of `key: value` lines, one block per pool, each beginning with `pool:`. A
//! key is right-aligned lowercase words before a colon (`  pool:`, ` state:`,
//! `status:`, `   see:`); a value may continue on the following lines that begin with a
//! tab (kept joined by `\n`, each line trimmed). `config:` is followed by a table:
//! a header (`NAME STATE READ WRITE CKSUM`) and one row per vdev, indented two spaces
//! per level, or a class heading (`logs`, `cache`, `spares`, `special`, `dedup`).
//! A row's name ends where the header's `STATE` column begins, so names with spaces
//! are read whole; then comes the state, three error counts (absent for spares) and
//! an optional note (`was /dev/sdb`, `external device fault`, `(resilvering)`).
//! `errors:` says `No known data errors`, `N data errors, use '-v' for a list`, or
//! something else (kept verbatim). The text `no pools available` is no pool.
//!
//! # States
//! [`Health`] knows the states OpenZFS prints; any other is kept verbatim in
//! [`Health::Other`] (and a check treats it as critical: a state zsnap does not know is
//! not one it can call healthy).

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::zfs_names::DatasetName;

/// The columns zsnap asks `zpool list` for (`-o`), in order.
pub const LIST_COLUMNS: &[&str] = &["name", "size", "allocated", "free", "capacity", "health"];

/// The arguments of the `zpool list` zsnap runs, after the program name: every
/// imported pool (a check picks the pools it cares about from the result).
///
/// # Example
/// ```
/// assert_eq!(
///     zsnap_core::zpool::list_argv(),
///     ["list", "-H", "-p", "-o", "name,size,allocated,free,capacity,health"]
/// );
/// ```
pub fn list_argv() -> Vec<String> {
    let mut argv: Vec<String> = ["list", "-H", "-p", "-o"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    argv.push(LIST_COLUMNS.join(","));
    argv
}

/// The arguments of the `zpool status` zsnap runs, after the program name: every
/// imported pool, exact error counts (`-p`).
///
/// # Example
/// ```
/// assert_eq!(zsnap_core::zpool::status_argv(), ["status", "-p"]);
/// ```
pub fn status_argv() -> Vec<String> {
    vec!["status".to_owned(), "-p".to_owned()]
}

/// The state of a pool or a vdev, as `zpool` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Health {
    /// `ONLINE`.
    Online,
    /// `DEGRADED`: working, with less redundancy than configured.
    Degraded,
    /// `FAULTED`.
    Faulted,
    /// `OFFLINE`: taken offline by the administrator.
    Offline,
    /// `UNAVAIL`: cannot be opened.
    Unavail,
    /// `REMOVED`.
    Removed,
    /// `SUSPENDED`: I/O suspended.
    Suspended,
    /// `AVAIL`: a spare, available.
    Avail,
    /// `INUSE`: a spare, in use.
    InUse,
    /// A state zsnap does not know, verbatim (one word, never empty).
    Other(String),
}

impl Health {
    /// The word `zpool` prints.
    pub fn as_str(&self) -> &str {
        match self {
            Health::Online => "ONLINE",
            Health::Degraded => "DEGRADED",
            Health::Faulted => "FAULTED",
            Health::Offline => "OFFLINE",
            Health::Unavail => "UNAVAIL",
            Health::Removed => "REMOVED",
            Health::Suspended => "SUSPENDED",
            Health::Avail => "AVAIL",
            Health::InUse => "INUSE",
            Health::Other(s) => s,
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state that is empty or holds whitespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a state (one word expected)")]
#[non_exhaustive]
pub struct HealthError(pub String);

impl FromStr for Health {
    type Err = HealthError;
    fn from_str(s: &str) -> Result<Self, HealthError> {
        Ok(match s {
            "ONLINE" => Health::Online,
            "DEGRADED" => Health::Degraded,
            "FAULTED" => Health::Faulted,
            "OFFLINE" => Health::Offline,
            "UNAVAIL" => Health::Unavail,
            "REMOVED" => Health::Removed,
            "SUSPENDED" => Health::Suspended,
            "AVAIL" => Health::Avail,
            "INUSE" => Health::InUse,
            _ if s.is_empty() || s.chars().any(char::is_whitespace) => {
                return Err(HealthError(s.to_owned()))
            }
            _ => Health::Other(s.to_owned()),
        })
    }
}

impl Serialize for Health {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One row of `zpool list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PoolUsage {
    /// The pool (a dataset name without `/`).
    pub name: DatasetName,
    /// Size in bytes; `None` where zpool prints `-`.
    pub size: Option<u64>,
    /// Allocated bytes.
    pub allocated: Option<u64>,
    /// Free bytes.
    pub free: Option<u64>,
    /// Allocated share of the size, whole percent (zpool rounds it).
    pub capacity: Option<u64>,
    /// The pool's state.
    pub health: Health,
}

impl PoolUsage {
    /// A row with every number unknown.
    pub fn new(name: DatasetName, health: Health) -> Self {
        PoolUsage {
            name,
            size: None,
            allocated: None,
            free: None,
            capacity: None,
            health,
        }
    }
}

/// A line of `zpool list` output that could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
#[non_exhaustive]
pub struct PoolListParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    #[source]
    pub kind: PoolListParseErrorKind,
}

/// What is wrong with a row of `zpool list` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolListParseErrorKind {
    /// Not one field per column.
    #[error("expected {expected} tab-separated fields, found {found}")]
    WrongFieldCount {
        /// [`LIST_COLUMNS`]`.len()`.
        expected: usize,
        /// Fields in the row.
        found: usize,
    },
    /// The row ends with `\r`.
    #[error("the row ends with a carriage return")]
    CarriageReturn,
    /// An empty line before the end.
    #[error("empty line")]
    EmptyLine,
    /// The name is not a pool name.
    #[error("{0:?} is not a pool name")]
    BadName(String),
    /// A number column holds something else.
    #[error("column {column:?}: {value:?} is not a number or -")]
    BadNumber {
        /// The column.
        column: &'static str,
        /// The value, verbatim.
        value: String,
    },
    /// The health is not one word.
    #[error(transparent)]
    BadHealth(#[from] HealthError),
    /// A pool listed a second time.
    #[error("pool {0:?} is listed twice")]
    Duplicate(String),
}

fn pool_name(s: &str) -> Option<DatasetName> {
    s.parse::<DatasetName>()
        .ok()
        .filter(|d| d.parent().is_none())
}

fn number(s: &str) -> Option<Option<u64>> {
    if s == "-" {
        return Some(None);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().map(Some)
}

/// Parses `zpool list -H -p -o name,size,allocated,free,capacity,health` output (see the
/// [module docs](self)).
///
/// # Errors
/// The first row that cannot be read, with its line number.
///
/// # Example
/// An unavailable pool has no numbers:
/// ```
/// use zsnap_core::zpool::{parse_pool_list, Health};
/// let rows = parse_pool_list("tank\t1000\t800\t200\t80\tONLINE\ngone\t-\t-\t-\t-\tUNAVAIL\n").unwrap();
/// assert_eq!(rows[0].capacity, Some(80));
/// assert_eq!((rows[1].size, &rows[1].health), (None, &Health::Unavail));
/// ```
pub fn parse_pool_list(text: &str) -> Result<Vec<PoolUsage>, PoolListParseError> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut out = Vec::new();
    if text.is_empty() {
        return Ok(out);
    }
    let mut seen = HashSet::new();
    for (i, line) in body.split('\n').enumerate() {
        let fail = |kind| PoolListParseError { line: i + 1, kind };
        if line.is_empty() {
            return Err(fail(PoolListParseErrorKind::EmptyLine));
        }
        if line.ends_with('\r') {
            return Err(fail(PoolListParseErrorKind::CarriageReturn));
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != LIST_COLUMNS.len() {
            return Err(fail(PoolListParseErrorKind::WrongFieldCount {
                expected: LIST_COLUMNS.len(),
                found: f.len(),
            }));
        }
        let name =
            pool_name(f[0]).ok_or_else(|| fail(PoolListParseErrorKind::BadName(f[0].into())))?;
        let mut nums = [None; 4];
        for (k, slot) in nums.iter_mut().enumerate() {
            *slot = number(f[k + 1]).ok_or_else(|| {
                fail(PoolListParseErrorKind::BadNumber {
                    column: LIST_COLUMNS[k + 1],
                    value: f[k + 1].to_owned(),
                })
            })?;
        }
        let health: Health = f[5]
            .parse()
            .map_err(|e| fail(PoolListParseErrorKind::BadHealth(e)))?;
        if !seen.insert(name.clone()) {
            return Err(fail(PoolListParseErrorKind::Duplicate(name.to_string())));
        }
        out.push(PoolUsage {
            name,
            size: nums[0],
            allocated: nums[1],
            free: nums[2],
            capacity: nums[3],
            health,
        });
    }
    Ok(out)
}

/// Prints rows as `zpool list -H -p -o name,size,allocated,free,capacity,health` does.
pub fn render_pool_list(rows: &[PoolUsage]) -> String {
    let mut s = String::new();
    let n = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    for r in rows {
        let _ = writeln!(
            s,
            "{}\t{}\t{}\t{}\t{}\t{}",
            r.name,
            n(r.size),
            n(r.allocated),
            n(r.free),
            n(r.capacity),
            r.health
        );
    }
    s
}

/// The read, write and checksum error counts of a vdev.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VdevErrors {
    /// READ.
    pub read: u64,
    /// WRITE.
    pub write: u64,
    /// CKSUM.
    pub cksum: u64,
}

impl VdevErrors {
    /// Counts.
    pub fn new(read: u64, write: u64, cksum: u64) -> Self {
        VdevErrors { read, write, cksum }
    }

    /// Whether any count is above zero.
    pub fn any(&self) -> bool {
        self.read > 0 || self.write > 0 || self.cksum > 0
    }
}

/// One row of the `config:` table of `zpool status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConfigRow {
    /// A vdev (the pool itself is the first, at depth 0).
    Vdev(Vdev),
    /// A class heading: `logs`, `cache`, `spares`, `special`, `dedup` (verbatim).
    Class {
        /// The heading.
        name: String,
    },
}

/// A vdev row of `zpool status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Vdev {
    /// Its name: the pool, `mirror-0`, `raidz1-0`, a device path, or a guid for a
    /// missing device (trimmed; never empty, no tab or newline).
    pub name: String,
    /// Nesting level: 0 for the pool and class headings' level, 1 for top-level vdevs.
    pub depth: usize,
    /// Its state.
    pub state: Health,
    /// Error counts; `None` for spares, which have none.
    pub errors: Option<VdevErrors>,
    /// What follows the counts (`was /dev/sdb`, `external device fault`), trimmed.
    pub note: Option<String>,
}

impl Vdev {
    /// A vdev without errors or note.
    pub fn new(name: impl Into<String>, depth: usize, state: Health) -> Self {
        Vdev {
            name: name.into(),
            depth,
            state,
            errors: Some(VdevErrors::default()),
            note: None,
        }
    }
}

/// What the `errors:` line of a pool says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DataErrors {
    /// `No known data errors`.
    NoneKnown,
    /// `N data errors, use '-v' for a list`.
    Count(u64),
    /// Anything else, verbatim (e.g. the list is unavailable without privileges).
    Other(String),
}

/// One pool's block of `zpool status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PoolStatus {
    /// The pool.
    pub name: DatasetName,
    /// `state:`.
    pub state: Health,
    /// `status:` (what is wrong), lines joined by `\n`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `action:` (what to do).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `scan:` (the last or running scrub or resilver).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<String>,
    /// Every other key (`see`, `remove`, `checkpoint`, …) with its value, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<(String, String)>,
    /// The `config:` table.
    pub config: Vec<ConfigRow>,
    /// `errors:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<DataErrors>,
}

impl PoolStatus {
    /// A block with only a name and state.
    pub fn new(name: DatasetName, state: Health) -> Self {
        PoolStatus {
            name,
            state,
            status: None,
            action: None,
            scan: None,
            other: Vec::new(),
            config: Vec::new(),
            errors: None,
        }
    }

    /// The vdev rows, the pool's own row first.
    pub fn vdevs(&self) -> impl Iterator<Item = &Vdev> {
        self.config.iter().filter_map(|r| match r {
            ConfigRow::Vdev(v) => Some(v),
            ConfigRow::Class { .. } => None,
        })
    }
}

/// A line of `zpool status` output that could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
#[non_exhaustive]
pub struct PoolStatusParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    #[source]
    pub kind: PoolStatusParseErrorKind,
}

/// What is wrong with a line of `zpool status` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolStatusParseErrorKind {
    /// Not `key: value`, a continuation, a table row or an empty line.
    #[error("expected `key: value`, found {0:?}")]
    NotAKey(String),
    /// A key before the first `pool:`.
    #[error("{0:?} before the first pool:")]
    OutsidePool(String),
    /// A key given twice in one block.
    #[error("key {0:?} given twice for one pool")]
    DuplicateKey(String),
    /// A pool block without `state:`.
    #[error("pool {0:?} has no state:")]
    NoState(String),
    /// A pool listed twice.
    #[error("pool {0:?} is listed twice")]
    DuplicatePool(String),
    /// Not a pool name.
    #[error("{0:?} is not a pool name")]
    BadName(String),
    /// A state that is not one word.
    #[error(transparent)]
    BadHealth(#[from] HealthError),
    /// `config:` with a value, or a table without its `NAME STATE` header.
    #[error("the config table has no NAME/STATE header")]
    NoHeader,
    /// A table row that does not line up with the header or cannot be read.
    #[error("bad config row {0:?}")]
    BadRow(String),
    /// A row ends with `\r`.
    #[error("the line ends with a carriage return")]
    CarriageReturn,
}

type SKind = PoolStatusParseErrorKind;

/// The text `zpool status` prints when no pool is imported.
const NO_POOLS: &str = "no pools available";

#[derive(Default)]
struct Block {
    line: usize,
    name: Option<DatasetName>,
    state: Option<Health>,
    status: Option<String>,
    action: Option<String>,
    scan: Option<String>,
    other: Vec<(String, String)>,
    config: Option<Vec<ConfigRow>>,
    errors: Option<DataErrors>,
}

impl Block {
    fn finish(self) -> Result<PoolStatus, PoolStatusParseError> {
        let name = self.name.expect("a block starts with pool:");
        let state = self.state.ok_or(PoolStatusParseError {
            line: self.line,
            kind: SKind::NoState(name.to_string()),
        })?;
        Ok(PoolStatus {
            name,
            state,
            status: self.status,
            action: self.action,
            scan: self.scan,
            other: self.other,
            config: self.config.unwrap_or_default(),
            errors: self.errors,
        })
    }
}

fn data_errors(v: &str) -> DataErrors {
    if v == "No known data errors" {
        return DataErrors::NoneKnown;
    }
    if let Some(n) = v.strip_suffix(" data errors, use '-v' for a list") {
        if let Some(Some(n)) = number(n) {
            return DataErrors::Count(n);
        }
    }
    DataErrors::Other(v.to_owned())
}

fn render_errors(e: &DataErrors) -> String {
    match e {
        DataErrors::NoneKnown => "No known data errors".to_owned(),
        DataErrors::Count(n) => format!("{n} data errors, use '-v' for a list"),
        DataErrors::Other(s) => s.clone(),
    }
}

/// Whitespace-separated tokens of `s` with their byte offsets.
fn tokens(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(b)) => {
                out.push((b, &s[b..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(b) = start {
        out.push((b, &s[b..]));
    }
    out
}

/// One table row (the line without its leading tab); `state_col` is where the
/// header's STATE begins (in the same coordinates).
fn config_row(row: &str, state_col: usize) -> Option<ConfigRow> {
    let indent = row.len() - row.trim_start_matches(' ').len();
    let (head, tail) = if row.len() > state_col && row.is_char_boundary(state_col) {
        row.split_at(state_col)
    } else {
        (row, "")
    };
    let name = head[indent.min(head.len())..].trim_end();
    if name.is_empty() || name.contains(['\t', '\n']) || !indent.is_multiple_of(2) {
        return None;
    }
    // The name must end before the STATE column: a space right before it.
    if !tail.is_empty() && !head.ends_with(' ') {
        return None;
    }
    let tail = tail.trim_end();
    if tail.trim_start().is_empty() {
        if indent != 0 || name.chars().any(char::is_whitespace) {
            return None;
        }
        return Some(ConfigRow::Class {
            name: name.to_owned(),
        });
    }
    if tail.starts_with(char::is_whitespace) {
        return None;
    }
    let toks = tokens(tail);
    let state: Health = toks[0].1.parse().ok()?;
    let counts: Option<Vec<u64>> = toks
        .get(1..4)
        .and_then(|t| t.iter().map(|(_, s)| number(s).flatten()).collect());
    let (errors, rest) = match counts {
        Some(c) => (
            Some(VdevErrors::new(c[0], c[1], c[2])),
            toks.get(4).map(|(i, _)| *i),
        ),
        None => (None, toks.get(1).map(|(i, _)| *i)),
    };
    let note = rest.map(|i| tail[i..].trim().to_owned());
    Some(ConfigRow::Vdev(Vdev {
        name: name.to_owned(),
        depth: indent / 2,
        state,
        errors,
        note,
    }))
}

/// Parses `zpool status -p` output (see the [module docs](self)).
///
/// # Errors
/// The first line that cannot be read, with its line number.
///
/// # Example
/// ```
/// use zsnap_core::zpool::{parse_pool_status, DataErrors, Health};
/// let text = "  pool: tank\n state: DEGRADED\nconfig:\n\n\tNAME        STATE     READ WRITE CKSUM\n\
///             \ttank        DEGRADED     0     0     0\n\t  mirror-0  DEGRADED     0     0     0\n\
///             \t    sda     ONLINE       0     0     3\n\t    sdb     UNAVAIL      0     0     0  was /dev/sdb\n\n\
///             errors: No known data errors\n";
/// let pools = parse_pool_status(text).unwrap();
/// assert_eq!(pools[0].state, Health::Degraded);
/// let sdb = pools[0].vdevs().last().unwrap();
/// assert_eq!((sdb.depth, sdb.note.as_deref()), (2, Some("was /dev/sdb")));
/// assert_eq!(pools[0].errors, Some(DataErrors::NoneKnown));
/// ```
pub fn parse_pool_status(text: &str) -> Result<Vec<PoolStatus>, PoolStatusParseError> {
    if text.trim() == NO_POOLS {
        return Ok(Vec::new());
    }
    let mut pools: Vec<PoolStatus> = Vec::new();
    let mut cur: Option<Block> = None;
    // The value being continued: which key of the current block.
    let mut open: Option<String> = None;
    // Inside a config table: where STATE begins, once the header was read.
    let mut table: Option<Option<usize>> = None;
    let push = |pools: &mut Vec<PoolStatus>, b: Block| -> Result<(), PoolStatusParseError> {
        let line = b.line;
        let p = b.finish()?;
        if pools.iter().any(|q| q.name == p.name) {
            return Err(PoolStatusParseError {
                line,
                kind: SKind::DuplicatePool(p.name.to_string()),
            });
        }
        pools.push(p);
        Ok(())
    };
    for (i, line) in text.split('\n').enumerate() {
        let fail = |kind| PoolStatusParseError { line: i + 1, kind };
        if line.ends_with('\r') {
            return Err(fail(SKind::CarriageReturn));
        }
        if line.trim().is_empty() {
            open = None;
            if let Some(Some(_)) = table {
                table = None;
            }
            continue;
        }
        if let Some(row) = line.strip_prefix('\t') {
            let b = cur
                .as_mut()
                .ok_or_else(|| fail(SKind::OutsidePool(line.to_owned())))?;
            match table {
                Some(None) => {
                    let toks = tokens(row);
                    let state_col = match toks.as_slice() {
                        [(_, "NAME"), (s, "STATE"), ..] => *s,
                        _ => return Err(fail(SKind::NoHeader)),
                    };
                    table = Some(Some(state_col));
                }
                Some(Some(col)) => {
                    let r =
                        config_row(row, col).ok_or_else(|| fail(SKind::BadRow(row.to_owned())))?;
                    b.config.get_or_insert_with(Vec::new).push(r);
                }
                None => {
                    let key = open
                        .as_deref()
                        .ok_or_else(|| fail(SKind::NotAKey(line.to_owned())))?;
                    let more = row.trim();
                    let slot = match key {
                        "status" => b.status.as_mut(),
                        "action" => b.action.as_mut(),
                        "scan" => b.scan.as_mut(),
                        _ => b.other.last_mut().map(|(_, v)| v),
                    };
                    match (key, slot) {
                        ("errors", _) => {
                            let mut v = b.errors.as_ref().map(render_errors).unwrap_or_default();
                            v.push('\n');
                            v.push_str(more);
                            b.errors = Some(DataErrors::Other(v));
                        }
                        (_, Some(v)) => {
                            v.push('\n');
                            v.push_str(more);
                        }
                        (_, None) => return Err(fail(SKind::NotAKey(line.to_owned()))),
                    }
                }
            }
            continue;
        }
        // A key line ends a table.
        table = None;
        let trimmed = line.trim_start();
        let (key, value) = trimmed
            .split_once(':')
            .filter(|(k, _)| {
                !k.is_empty()
                    && !k.ends_with(' ')
                    && k.chars().all(|c| c.is_ascii_lowercase() || c == ' ')
            })
            .ok_or_else(|| fail(SKind::NotAKey(line.to_owned())))?;
        let value = value.trim();
        if key == "pool" {
            if let Some(b) = cur.take() {
                push(&mut pools, b)?;
            }
            let name = pool_name(value).ok_or_else(|| fail(SKind::BadName(value.to_owned())))?;
            cur = Some(Block {
                line: i + 1,
                name: Some(name),
                ..Block::default()
            });
            open = None;
            continue;
        }
        let b = cur
            .as_mut()
            .ok_or_else(|| fail(SKind::OutsidePool(key.to_owned())))?;
        let dup = || fail(SKind::DuplicateKey(key.to_owned()));
        let set = |slot: &mut Option<String>| -> Result<(), PoolStatusParseError> {
            if slot.is_some() {
                return Err(dup());
            }
            *slot = Some(value.to_owned());
            Ok(())
        };
        match key {
            "state" => {
                if b.state.is_some() {
                    return Err(dup());
                }
                b.state = Some(value.parse().map_err(|e| fail(SKind::BadHealth(e)))?);
            }
            "status" => set(&mut b.status)?,
            "action" => set(&mut b.action)?,
            "scan" => set(&mut b.scan)?,
            "config" => {
                if b.config.is_some() {
                    return Err(dup());
                }
                if !value.is_empty() {
                    return Err(fail(SKind::NoHeader));
                }
                b.config = Some(Vec::new());
                table = Some(None);
            }
            "errors" => {
                if b.errors.is_some() {
                    return Err(dup());
                }
                b.errors = Some(data_errors(value));
            }
            _ => {
                if b.other.iter().any(|(k, _)| k == key) {
                    return Err(dup());
                }
                b.other.push((key.to_owned(), value.to_owned()));
            }
        }
        open = Some(key.to_owned());
    }
    if let Some(b) = cur.take() {
        push(&mut pools, b)?;
    }
    Ok(pools)
}

fn key_line(out: &mut String, key: &str, value: &str) {
    let mut lines = value.split('\n');
    let first = lines.next().unwrap_or("");
    let _ = write!(out, "{key:>6}:");
    if !first.is_empty() {
        let _ = write!(out, " {first}");
    }
    out.push('\n');
    for l in lines {
        let _ = writeln!(out, "\t{l}");
    }
}

/// Prints pools as `zpool status -p` does (column widths may differ; what
/// [`parse_pool_status`] reads back is equal).
pub fn render_pool_status(pools: &[PoolStatus]) -> String {
    let mut out = String::new();
    for (n, p) in pools.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        key_line(&mut out, "pool", p.name.as_str());
        key_line(&mut out, "state", p.state.as_str());
        for (k, v) in [("status", &p.status), ("action", &p.action)] {
            if let Some(v) = v {
                key_line(&mut out, k, v);
            }
        }
        for (k, v) in &p.other {
            key_line(&mut out, k, v);
        }
        if let Some(v) = &p.scan {
            key_line(&mut out, "scan", v);
        }
        if !p.config.is_empty() {
            out.push_str("config:\n\n");
            let width = p
                .config
                .iter()
                .map(|r| match r {
                    ConfigRow::Vdev(v) => 2 * v.depth + v.name.len(),
                    ConfigRow::Class { name } => name.len(),
                })
                .max()
                .unwrap_or(0)
                .max(4);
            let _ = writeln!(
                out,
                "\t{:<width$}  {:<8} {:>5} {:>5} {:>5}",
                "NAME", "STATE", "READ", "WRITE", "CKSUM"
            );
            for r in &p.config {
                match r {
                    ConfigRow::Class { name } => {
                        let _ = writeln!(out, "\t{name}");
                    }
                    ConfigRow::Vdev(v) => {
                        // Padded by bytes: the parser finds the STATE column by byte.
                        let name = format!("{}{}", "  ".repeat(v.depth), v.name);
                        let pad = " ".repeat(width - name.len());
                        let _ = write!(out, "\t{name}{pad}  {:<8}", v.state.as_str());
                        if let Some(e) = v.errors {
                            let _ = write!(out, " {:>5} {:>5} {:>5}", e.read, e.write, e.cksum);
                        }
                        if let Some(note) = &v.note {
                            let _ = write!(out, "  {note}");
                        }
                        out.push('\n');
                    }
                }
            }
            out.push('\n');
        }
        if let Some(e) = &p.errors {
            key_line(&mut out, "errors", &render_errors(e));
        }
    }
    out
}

/// What zsnap knows of one pool: its `zpool list` row and, when `zpool status` showed
/// it, its status block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PoolHealth {
    /// The `zpool list` row.
    pub usage: PoolUsage,
    /// The `zpool status` block (`None` when the pool was not in that output: it was
    /// exported between the two commands, or imported in between).
    pub status: Option<PoolStatus>,
}

impl PoolHealth {
    /// The pool's name.
    pub fn name(&self) -> &DatasetName {
        &self.usage.name
    }

    /// The pool's state: `zpool status`'s when there is one, else `zpool list`'s.
    pub fn state(&self) -> &Health {
        self.status
            .as_ref()
            .map_or(&self.usage.health, |s| &s.state)
    }
}

/// Joins what `zpool list` and `zpool status` said about the pools in `wanted`, in the
/// order of `wanted` (duplicates once); a pool that `zpool list` does not show is left
/// out.
///
/// # Example
/// ```
/// use zsnap_core::zpool::{combine, Health, PoolStatus, PoolUsage};
/// let tank: zsnap_core::DatasetName = "tank".parse().unwrap();
/// let gone: zsnap_core::DatasetName = "gone".parse().unwrap();
/// let pools = combine(
///     vec![PoolUsage::new(tank.clone(), Health::Online)],
///     vec![PoolStatus::new(tank.clone(), Health::Degraded)],
///     &[gone, tank.clone(), tank],
/// );
/// assert_eq!(pools.len(), 1);
/// assert_eq!(pools[0].state(), &Health::Degraded);
/// ```
pub fn combine(
    usage: Vec<PoolUsage>,
    status: Vec<PoolStatus>,
    wanted: &[DatasetName],
) -> Vec<PoolHealth> {
    let mut out: Vec<PoolHealth> = Vec::new();
    for w in wanted {
        if out.iter().any(|p| p.name() == w) {
            continue;
        }
        if let Some(u) = usage.iter().find(|u| &u.name == w) {
            out.push(PoolHealth {
                usage: u.clone(),
                status: status.iter().find(|s| &s.name == w).cloned(),
            });
        }
    }
    out
}
