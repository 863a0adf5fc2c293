//! The `zfs list` command zsnap runs, the parser of its output, and the inverse printer.
//!
//! zsnap learns what exists at a location from one command, built by [`list_argv`]:
//!
//! ```text
//! zfs list -H -p -t filesystem,volume,snapshot,bookmark -o name,type,guid,…,zsnap:managed,zsnap:expires -r ROOT…
//! ```
//!
//! and [`parse_list`] turns its output into an [`Inventory`]. [`render_list`] prints an
//! inventory back in the same format (the fake ZFS backend answers with it), so
//! `parse_list(&render_list(&inv)) == Ok(inv)` for every valid inventory whose property
//! values contain no tab or newline and are not `-`.
//!
//! # Format
//! - One row per line (`\n`), fields separated by a single tab and **only** by tabs:
//!   names may contain spaces. Every row has exactly [`LIST_COLUMNS`]`.len()` fields, in
//!   that order. A trailing newline is allowed; an empty text is an empty inventory; an
//!   empty line anywhere else is an error. A row ending in `\r` is refused (it would
//!   otherwise end up in the last column's value); elsewhere a `\r` is part of a field.
//! - `-` means "unset" (as zfs prints a user property that is not set). Numbers are plain decimal digits (`-p`); `creation` is seconds
//!   since the Unix epoch, UTC.
//! - `type` is `filesystem`, `volume`, `snapshot` or `bookmark`; anything else is an
//!   error, as is a name of the wrong form for its type.
//! - `clones` of a snapshot is a comma-separated list of dataset names, or empty or `-`
//!   when there are none. A hidden clone (`DATASET/%recv`, left by an interrupted
//!   resumable receive of an incremental stream) goes to
//!   [`Snapshot::hidden_clones`](crate::inventory::Snapshot::hidden_clones) verbatim: it
//!   pins the snapshot, but `%` is no part of a name zsnap may act on.
//!
//! # Invariants of the result
//! - Every snapshot and bookmark belongs to a dataset listed in the same output (anywhere
//!   in it: zfs prints a dataset before its snapshots, but the parser does not rely on
//!   that); otherwise the output is refused.
//! - A dataset's snapshots are ordered by `createtxg`; snapshots sharing one keep the
//!   order in which they were listed. Bookmarks likewise.
//! - Within a dataset, snapshot guids are unique, snapshot names are unique, bookmark
//!   names are unique, and no dataset is listed twice. A bookmark shares the guid of the
//!   snapshot it was made from, which is expected.
//! - The result passes [`Inventory::validate`].
//!
//! # What is read from which row
//! Only the columns that apply to a row's type are read; the others (which zfs prints as
//! `-`, or, for a snapshot, with values inherited from its dataset) are skipped:
//!
//! | type | columns read |
//! |---|---|
//! | filesystem, volume | name, type, guid, origin, encryption, keystatus, receive_resume_token, mountpoint, used; createtxg and creation are checked to be numbers or `-`, but not kept |
//! | snapshot | name, type, guid, createtxg, creation, userrefs, clones, used, `zsnap:managed`, `zsnap:expires` |
//! | bookmark | name, type, guid, createtxg, creation |
//!
//! The `zsnap:managed` and `zsnap:expires` values of a snapshot may be inherited from its
//! dataset: `zfs list` does not say where a value comes from ([`parse_get`] reads that).
//! The `zsnap:expires` value is kept verbatim; [`Snapshot::expiry`] reads it as a time.
//!
//! # Limits
//! A property value containing a tab or a newline (possible for user properties and,
//! in theory, mount points) breaks the row structure; the parser then fails on a field
//! count or a name, or, for a crafted value, may read a forged row. Only those who may
//! set properties on the pool can do that.
//!
//! # Speed
//! The parser borrows the input, allocates only the names (and the values of the user
//! properties that are set) it keeps, parses numbers by hand and sorts a dataset's snapshots only when
//! they were not already listed in order; it reads over two million rows per second on
//! one core (see the benchmarks).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::error::Error;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasherDefault, Hasher};
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::inventory::{Bookmark, Dataset, DatasetKind, Guid, Inventory, Snapshot};
use crate::zfs_names::{
    BookmarkName, DatasetName, NameError, ShortName, SnapshotName, MAX_NAME_LEN,
};

/// The columns zsnap asks `zfs list` for (`-o`), in order.
pub const LIST_COLUMNS: &[&str] = &[
    "name",
    "type",
    "guid",
    "createtxg",
    "creation",
    "userrefs",
    "clones",
    "origin",
    "encryption",
    "keystatus",
    "receive_resume_token",
    "mountpoint",
    "used",
    crate::inventory::MANAGED_PROPERTY,
    crate::inventory::EXPIRES_PROPERTY,
];

const NCOLS: usize = 15;
const NAME: usize = 0;
const TYPE: usize = 1;
const GUID: usize = 2;
const CREATETXG: usize = 3;
const CREATION: usize = 4;
const USERREFS: usize = 5;
const CLONES: usize = 6;
const ORIGIN: usize = 7;
const ENCRYPTION: usize = 8;
const KEYSTATUS: usize = 9;
const RESUME_TOKEN: usize = 10;
const MOUNTPOINT: usize = 11;
const USED: usize = 12;
const MANAGED: usize = 13;
const EXPIRES: usize = 14;

/// The column names as `&'static str` for error messages (a `const` array, so the
/// indices above are checked against [`LIST_COLUMNS`] by a test).
const COLUMN_NAMES: [&str; NCOLS] = [
    "name",
    "type",
    "guid",
    "createtxg",
    "creation",
    "userrefs",
    "clones",
    "origin",
    "encryption",
    "keystatus",
    "receive_resume_token",
    "mountpoint",
    "used",
    crate::inventory::MANAGED_PROPERTY,
    crate::inventory::EXPIRES_PROPERTY,
];

/// The arguments of the `zfs list` that builds an inventory, after the program name.
///
/// With `roots`, lists each root and everything below it (`-r ROOT…`). With no roots,
/// lists every dataset of every imported pool (plain `zfs list` is recursive over all
/// pools), which is what a host-wide status wants.
///
/// # Example
/// ```
/// use zsnap_core::{list_argv, DatasetName};
/// let root: DatasetName = "tank/with space".parse().unwrap();
/// let argv = list_argv(&[root]);
/// assert_eq!(argv[..5], ["list", "-H", "-p", "-t", "filesystem,volume,snapshot,bookmark"]);
/// assert_eq!(argv[argv.len() - 2..], ["-r", "tank/with space"]);
/// assert!(!list_argv(&[]).contains(&"-r".to_owned()));
/// ```
pub fn list_argv(roots: &[DatasetName]) -> Vec<String> {
    let mut argv: Vec<String> = [
        "list",
        "-H",
        "-p",
        "-t",
        "filesystem,volume,snapshot,bookmark",
        "-o",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    argv.push(LIST_COLUMNS.join(","));
    if !roots.is_empty() {
        argv.push("-r".to_owned());
        argv.extend(roots.iter().map(|r| r.as_str().to_owned()));
    }
    argv
}

/// A row of `zfs list` output that could not be read, and where.
///
/// Displays as `line N: <what is wrong>`; for a bad name, the [`NameError`] is the
/// [`source`](Error::source).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListParseError {
    /// 1-based line number of the offending row.
    pub line: usize,
    /// What is wrong with it.
    pub kind: ListParseErrorKind,
}

impl fmt::Display for ListParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind)
    }
}

impl Error for ListParseError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.kind.source()
    }
}

/// What is wrong with a row of `zfs list` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListParseErrorKind {
    /// The row does not have one field per column.
    #[error("expected {expected} tab-separated fields, found {found}")]
    WrongFieldCount {
        /// [`LIST_COLUMNS`]`.len()`.
        expected: usize,
        /// Fields in the row.
        found: usize,
    },
    /// A name (of the row, its origin or a clone) breaks the naming rules, or does not
    /// have the form its type asks for.
    #[error("column {column:?} holds an invalid name")]
    BadName {
        /// The column holding the name.
        column: &'static str,
        /// Why the name is invalid.
        #[source]
        source: NameError,
    },
    /// The row ends with `\r`: the output went through something that rewrote line ends,
    /// which would otherwise end up inside the last column's value.
    #[error("the row ends with a carriage return")]
    CarriageReturn,
    /// The `type` is not one zsnap lists.
    #[error("unknown type {0:?}")]
    UnknownType(String),
    /// A number column holds something else.
    #[error("column {column:?}: {value:?} is not a number")]
    BadNumber {
        /// The column.
        column: &'static str,
        /// The value, verbatim.
        value: String,
    },
    /// A `creation` outside the range of representable times.
    #[error("column \"creation\": {value:?} is out of range")]
    BadTime {
        /// The value, verbatim.
        value: String,
    },
    /// A snapshot whose dataset is not in the output.
    #[error("snapshot \"{snapshot}\" belongs to dataset \"{}\", which is not listed", snapshot.dataset())]
    OrphanSnapshot {
        /// The snapshot.
        snapshot: SnapshotName,
    },
    /// A bookmark whose dataset is not in the output.
    #[error("bookmark \"{bookmark}\" belongs to dataset \"{}\", which is not listed", bookmark.dataset())]
    OrphanBookmark {
        /// The bookmark.
        bookmark: BookmarkName,
    },
    /// A dataset listed a second time.
    #[error("dataset \"{dataset}\" is listed twice")]
    DuplicateDataset {
        /// The dataset.
        dataset: DatasetName,
    },
    /// A snapshot with the guid of an earlier snapshot of the same dataset.
    #[error(
        "snapshot \"{second}\" has guid {guid}, like snapshot \"{first}\" of the same dataset"
    )]
    DuplicateGuid {
        /// The snapshot listed first.
        first: SnapshotName,
        /// The snapshot listed second (on the reported line).
        second: SnapshotName,
        /// The shared guid.
        guid: Guid,
    },
    /// A snapshot listed a second time.
    #[error("snapshot \"{snapshot}\" is listed twice")]
    DuplicateSnapshot {
        /// The snapshot.
        snapshot: SnapshotName,
    },
    /// A bookmark listed a second time.
    #[error("bookmark \"{bookmark}\" is listed twice")]
    DuplicateBookmark {
        /// The bookmark.
        bookmark: BookmarkName,
    },
}

type Kind = ListParseErrorKind;

/// A small, fast hasher for the parser's transient sets (keys are guids, which are
/// random, and names from a trusted listing; no adversary picks them to collide, and a
/// collision would only cost time).
#[derive(Default)]
struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;

/// Parses a strictly decimal `u64` (digits only: no sign, no spaces, not empty).
#[inline]
fn parse_u64(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    // No length cut-off: leading zeros are valid digits, and overflow is caught below.
    let mut n: u64 = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(n)
}

#[inline]
fn num(f: &[&str; NCOLS], col: usize) -> Result<u64, Kind> {
    parse_u64(f[col]).ok_or_else(|| Kind::BadNumber {
        column: COLUMN_NAMES[col],
        value: f[col].to_owned(),
    })
}

#[inline]
fn opt_num(f: &[&str; NCOLS], col: usize) -> Result<Option<u64>, Kind> {
    if f[col] == "-" {
        Ok(None)
    } else {
        num(f, col).map(Some)
    }
}

#[inline]
fn creation(f: &[&str; NCOLS]) -> Result<DateTime<Utc>, Kind> {
    let secs = num(f, CREATION)?;
    i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| Kind::BadTime {
            value: f[CREATION].to_owned(),
        })
}

#[inline]
fn opt_string(s: &str) -> Option<String> {
    (s != "-").then(|| s.to_owned())
}

fn bad_name(column: usize, source: NameError) -> Kind {
    Kind::BadName {
        column: COLUMN_NAMES[column],
        source,
    }
}

fn parse_name<T: FromStr<Err = NameError>>(f: &[&str; NCOLS], col: usize) -> Result<T, Kind> {
    f[col].parse().map_err(|e| bad_name(col, e))
}

/// A clone zfs keeps hidden: a valid dataset name, `/`, then `%` and name characters
/// (`DATASET/%recv`).
fn is_hidden_clone(c: &str) -> bool {
    let Some((parent, last)) = c.rsplit_once('/') else {
        return false;
    };
    let Some(rest) = last.strip_prefix('%') else {
        return false;
    };
    c.len() <= MAX_NAME_LEN
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b' '))
        && parent.parse::<DatasetName>().is_ok()
}

/// Splits a row into exactly [`NCOLS`] fields.
#[inline]
fn split_fields(line: &str) -> Result<[&str; NCOLS], Kind> {
    if line.ends_with('\r') {
        return Err(Kind::CarriageReturn);
    }
    let mut f = [""; NCOLS];
    let mut n = 0;
    for part in line.split('\t') {
        if n < NCOLS {
            f[n] = part;
        }
        n += 1;
    }
    if n == NCOLS {
        Ok(f)
    } else {
        Err(Kind::WrongFieldCount {
            expected: NCOLS,
            found: n,
        })
    }
}

/// A snapshot or bookmark listed before its dataset.
enum EarlyItem {
    Snapshot(Snapshot),
    Bookmark(Bookmark),
}

struct Early<'a> {
    line: usize,
    full_name: &'a str,
    dataset: &'a str,
    item: EarlyItem,
}

#[derive(Default)]
struct Parser<'a> {
    datasets: Vec<Dataset>,
    index: HashMap<&'a str, usize, FxBuild>,
    /// The dataset of the previous snapshot row: consecutive rows nearly always share it.
    last: Option<(&'a str, usize)>,
    early: Vec<Early<'a>>,
}

impl<'a> Parser<'a> {
    fn row(&mut self, line_no: usize, line: &'a str) -> Result<(), Kind> {
        let f = split_fields(line)?;
        match f[TYPE] {
            "snapshot" => self.snapshot(line_no, &f),
            "bookmark" => self.bookmark(line_no, &f),
            "filesystem" => self.dataset(&f, DatasetKind::Filesystem),
            "volume" => self.dataset(&f, DatasetKind::Volume),
            other => Err(Kind::UnknownType(other.to_owned())),
        }
    }

    fn dataset(&mut self, f: &[&'a str; NCOLS], kind: DatasetKind) -> Result<(), Kind> {
        let name: DatasetName = parse_name(f, NAME)?;
        let guid = Guid(num(f, GUID)?);
        // Not kept (nothing decides on them) but checked, so garbage is still refused.
        opt_num(f, CREATETXG)?;
        opt_num(f, CREATION)?;
        let origin = if f[ORIGIN] == "-" {
            None
        } else {
            Some(parse_name::<SnapshotName>(f, ORIGIN)?)
        };
        let mut ds = Dataset::new(name, kind, guid);
        ds.props.origin = origin;
        ds.props.encryption = opt_string(f[ENCRYPTION]);
        ds.props.keystatus = opt_string(f[KEYSTATUS]);
        ds.props.receive_resume_token = opt_string(f[RESUME_TOKEN]);
        ds.props.mountpoint = opt_string(f[MOUNTPOINT]);
        ds.props.used = opt_num(f, USED)?;
        let idx = self.datasets.len();
        if self.index.insert(f[NAME], idx).is_some() {
            return Err(Kind::DuplicateDataset { dataset: ds.name });
        }
        self.datasets.push(ds);
        Ok(())
    }

    /// The index of an already listed dataset named `ds`.
    #[inline]
    fn find(&mut self, ds: &'a str) -> Option<usize> {
        if let Some((name, idx)) = self.last {
            if name == ds {
                return Some(idx);
            }
        }
        let idx = *self.index.get(ds)?;
        self.last = Some((ds, idx));
        Some(idx)
    }

    /// Splits `full` at `sep` into a listed dataset's index and a checked short name;
    /// `Ok(None)` when the name is valid but its dataset is not (yet) listed.
    fn owner<T: FromStr<Err = NameError>>(
        &mut self,
        full: &'a str,
        sep: char,
    ) -> Result<(Option<usize>, ShortName, &'a str), Kind> {
        let slow = |fallback: Option<NameError>| -> Kind {
            let e = match full.parse::<T>() {
                Err(e) => e,
                Ok(_) => fallback
                    .expect("a name that parses in full has a dataset part and a short part"),
            };
            bad_name(NAME, e)
        };
        let Some(at) = full.find(sep) else {
            return Err(slow(None));
        };
        let (ds, short) = (&full[..at], &full[at + 1..]);
        match self.find(ds) {
            // A listed dataset's name is valid, so the short part and the length are
            // all that is left to check.
            Some(idx) if full.len() <= MAX_NAME_LEN => match short.parse::<ShortName>() {
                Ok(s) => Ok((Some(idx), s, ds)),
                Err(e) => Err(slow(Some(e))),
            },
            Some(_) => Err(slow(None)),
            None => match full.parse::<T>() {
                Ok(_) => Ok((None, short.parse().map_err(|e| bad_name(NAME, e))?, ds)),
                Err(e) => Err(bad_name(NAME, e)),
            },
        }
    }

    fn snapshot(&mut self, line_no: usize, f: &[&'a str; NCOLS]) -> Result<(), Kind> {
        let (idx, name, ds) = self.owner::<SnapshotName>(f[NAME], '@')?;
        let mut snap = Snapshot::new(name, Guid(num(f, GUID)?), num(f, CREATETXG)?, creation(f)?);
        snap.userrefs = num(f, USERREFS)?;
        let clones = f[CLONES];
        if !clones.is_empty() && clones != "-" {
            for c in clones.split(',') {
                if is_hidden_clone(c) {
                    snap.hidden_clones.push(c.to_owned());
                } else {
                    snap.clones
                        .push(c.parse().map_err(|e| bad_name(CLONES, e))?);
                }
            }
        }
        snap.used = opt_num(f, USED)?;
        snap.managed = opt_string(f[MANAGED]);
        snap.expires = opt_string(f[EXPIRES]);
        match idx {
            Some(i) => self.datasets[i].snapshots.push(snap),
            None => self.early.push(Early {
                line: line_no,
                full_name: f[NAME],
                dataset: ds,
                item: EarlyItem::Snapshot(snap),
            }),
        }
        Ok(())
    }

    fn bookmark(&mut self, line_no: usize, f: &[&'a str; NCOLS]) -> Result<(), Kind> {
        let (idx, name, ds) = self.owner::<BookmarkName>(f[NAME], '#')?;
        let b = Bookmark::new(name, Guid(num(f, GUID)?), num(f, CREATETXG)?, creation(f)?);
        match idx {
            Some(i) => self.datasets[i].bookmarks.push(b),
            None => self.early.push(Early {
                line: line_no,
                full_name: f[NAME],
                dataset: ds,
                item: EarlyItem::Bookmark(b),
            }),
        }
        Ok(())
    }

    fn finish(mut self, body: &str) -> Result<Inventory, ListParseError> {
        self.attach_early()?;
        let mut guids: HashSet<u64, FxBuild> = HashSet::default();
        let mut names: HashSet<&str, FxBuild> = HashSet::default();
        for ds in &self.datasets {
            // Checked in listing order, so the reported line is the second occurrence.
            guids.clear();
            names.clear();
            for (i, s) in ds.snapshots.iter().enumerate() {
                let dup = if !guids.insert(s.guid.0) {
                    let first = ds
                        .snapshots
                        .iter()
                        .find(|x| x.guid == s.guid)
                        .expect("the guid was inserted by an earlier snapshot");
                    Some(Kind::DuplicateGuid {
                        first: ds.snapshot_name(first),
                        second: ds.snapshot_name(s),
                        guid: s.guid,
                    })
                } else if !names.insert(s.name.as_str()) {
                    Some(Kind::DuplicateSnapshot {
                        snapshot: ds.snapshot_name(s),
                    })
                } else {
                    None
                };
                if let Some(kind) = dup {
                    let line = line_of_nth(body, ds.name.as_str(), '@', i);
                    return Err(ListParseError { line, kind });
                }
            }
            names.clear();
            for (i, b) in ds.bookmarks.iter().enumerate() {
                if !names.insert(b.name.as_str()) {
                    let line = line_of_nth(body, ds.name.as_str(), '#', i);
                    let kind = Kind::DuplicateBookmark {
                        bookmark: ds.bookmark_name(b),
                    };
                    return Err(ListParseError { line, kind });
                }
            }
        }
        drop(names);
        let mut datasets = BTreeMap::new();
        for mut ds in self.datasets {
            if !ds.snapshots.is_sorted_by_key(|s| s.createtxg) {
                ds.snapshots.sort_by_key(|s| s.createtxg);
            }
            if !ds.bookmarks.is_sorted_by_key(|b| b.createtxg) {
                ds.bookmarks.sort_by_key(|b| b.createtxg);
            }
            datasets.insert(ds.name.clone(), ds);
        }
        let mut inv = Inventory::new();
        inv.datasets = datasets;
        debug_assert_eq!(inv.validate(), Ok(()));
        Ok(inv)
    }

    /// Moves the rows listed before their dataset in front of that dataset's other rows:
    /// every row listed after the dataset was attached directly, so this keeps the
    /// listing order.
    fn attach_early(&mut self) -> Result<(), ListParseError> {
        if self.early.is_empty() {
            return Ok(());
        }
        let mut prefix: HashMap<usize, (Vec<Snapshot>, Vec<Bookmark>), FxBuild> =
            HashMap::default();
        for e in std::mem::take(&mut self.early) {
            let Some(&idx) = self.index.get(e.dataset) else {
                let kind = match e.item {
                    EarlyItem::Snapshot(_) => Kind::OrphanSnapshot {
                        snapshot: e
                            .full_name
                            .parse()
                            .expect("the name was checked when its row was read"),
                    },
                    EarlyItem::Bookmark(_) => Kind::OrphanBookmark {
                        bookmark: e
                            .full_name
                            .parse()
                            .expect("the name was checked when its row was read"),
                    },
                };
                return Err(ListParseError { line: e.line, kind });
            };
            let entry = prefix.entry(idx).or_default();
            match e.item {
                EarlyItem::Snapshot(s) => entry.0.push(s),
                EarlyItem::Bookmark(b) => entry.1.push(b),
            }
        }
        for (idx, (mut snaps, mut books)) in prefix {
            let ds = &mut self.datasets[idx];
            snaps.append(&mut ds.snapshots);
            ds.snapshots = snaps;
            books.append(&mut ds.bookmarks);
            ds.bookmarks = books;
        }
        Ok(())
    }
}

/// The line of the `n`-th (0-based) row named `dataset<sep>…`: the slow way back from
/// a duplicate found after parsing to the row that holds it.
fn line_of_nth(body: &str, dataset: &str, sep: char, n: usize) -> usize {
    body.split('\n')
        .enumerate()
        .filter(|(_, line)| {
            let name = line.split('\t').next().unwrap_or("");
            name.split_once(sep).is_some_and(|(ds, _)| ds == dataset)
        })
        .nth(n)
        .map(|(i, _)| i + 1)
        .expect("every listed snapshot and bookmark came from one row of this text")
}

/// Parses the output of the command built by [`list_argv`] into an [`Inventory`].
///
/// See the [module docs](self) for the format and the invariants of the result.
///
/// # Errors
/// The first row (by line number, except for orphans and duplicates, which are found
/// once every row is read) that breaks the format.
///
/// # Example
/// Two snapshots taken in one second and one txg keep their listing order; the bookmark
/// shares its snapshot's guid; the dataset may come after its snapshots.
/// ```
/// use zsnap_core::parse_list;
/// let text = "\
/// tank/a b@x\tsnapshot\t11\t7\t1763910000\t0\t\t-\toff\t-\t-\t-\t0\tyes\t-
/// tank/a b@y\tsnapshot\t12\t7\t1763910000\t1\t\t-\toff\t-\t-\t-\t0\tyes\t2026-12-31T02:05:00Z
/// tank/a b#x\tbookmark\t11\t7\t1763910000\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-
/// tank/a b\tfilesystem\t10\t5\t1763900000\t-\t-\t-\toff\t-\t-\t/tank/a b\t24576\t-\t-
/// ";
/// let inv = parse_list(text).unwrap();
/// let ds = inv.dataset(&"tank/a b".parse().unwrap()).unwrap();
/// let names: Vec<_> = ds.snapshots.iter().map(|s| s.name.as_str()).collect();
/// assert_eq!(names, ["x", "y"]);
/// assert_eq!(ds.snapshots[1].userrefs, 1);
/// assert_eq!(ds.snapshots[1].expires.as_deref(), Some("2026-12-31T02:05:00Z"));
/// assert_eq!(ds.snapshots[0].expires, None);
/// assert_eq!(ds.bookmarks[0].guid, ds.snapshots[0].guid);
///
/// let e = parse_list("tank/a\tfilesystem\t12x\t5\t1\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\n").unwrap_err();
/// assert_eq!(e.to_string(), r#"line 1: column "guid": "12x" is not a number"#);
/// ```
pub fn parse_list(text: &str) -> Result<Inventory, ListParseError> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return Ok(Inventory::new());
    }
    let mut p = Parser::default();
    for (i, line) in body.split('\n').enumerate() {
        p.row(i + 1, line)
            .map_err(|kind| ListParseError { line: i + 1, kind })?;
    }
    p.finish(body)
}

fn opt_str(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

fn opt_u64(out: &mut String, v: Option<u64>) {
    match v {
        Some(n) => write!(out, "{n}").expect("writing to a String cannot fail"),
        None => out.push('-'),
    }
}

/// Prints an inventory as the command built by [`list_argv`] would list it: each
/// dataset (in name order), then its snapshots, then its bookmarks, one row each.
///
/// Columns that the inventory does not keep are printed as OpenZFS 2.3 prints them where
/// that is known (`-` for a dataset's `userrefs` and `clones` and for a snapshot without
/// clones, a snapshot's `encryption` and `keystatus` as its dataset's) and as `-`
/// otherwise (a dataset's own `createtxg` and `creation`, which [`parse_list`] does not
/// keep). [`parse_list`] reads the result back equal, provided
/// no property value contains a tab or a newline or is `-`, every `creation` is a
/// whole second at or after the epoch, and every hidden clone is one [`parse_list`]
/// accepts.
pub fn render_list(inv: &Inventory) -> String {
    let mut out = String::with_capacity(128 * (inv.datasets.len() + inv.snapshot_count()));
    let w = "writing to a String cannot fail";
    for ds in inv.datasets.values() {
        let kind = match ds.kind {
            DatasetKind::Filesystem => "filesystem",
            DatasetKind::Volume => "volume",
        };
        let p = &ds.props;
        write!(out, "{}\t{kind}\t{}\t-\t-\t-\t-\t", ds.name, ds.guid).expect(w);
        match &p.origin {
            Some(o) => write!(out, "{o}").expect(w),
            None => out.push('-'),
        }
        write!(
            out,
            "\t{}\t{}\t{}\t{}\t",
            opt_str(&p.encryption),
            opt_str(&p.keystatus),
            opt_str(&p.receive_resume_token),
            opt_str(&p.mountpoint),
        )
        .expect(w);
        opt_u64(&mut out, p.used);
        out.push_str("\t-\t-\n");
        // zfs prints a snapshot's encryption and key status as its dataset's.
        let (encryption, keystatus) = (opt_str(&p.encryption), opt_str(&p.keystatus));
        for s in &ds.snapshots {
            write!(
                out,
                "{}@{}\tsnapshot\t{}\t{}\t{}\t{}\t",
                ds.name,
                s.name,
                s.guid,
                s.createtxg,
                s.creation.timestamp(),
                s.userrefs
            )
            .expect(w);
            let clones = s.clones.iter().map(DatasetName::as_str);
            for (i, c) in clones
                .chain(s.hidden_clones.iter().map(String::as_str))
                .enumerate()
            {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(c);
            }
            if s.clones.is_empty() && s.hidden_clones.is_empty() {
                out.push('-');
            }
            write!(out, "\t-\t{encryption}\t{keystatus}\t-\t-\t").expect(w);
            opt_u64(&mut out, s.used);
            writeln!(out, "\t{}\t{}", opt_str(&s.managed), opt_str(&s.expires)).expect(w);
        }
        for b in &ds.bookmarks {
            writeln!(
                out,
                "{}#{}\tbookmark\t{}\t{}\t{}\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-",
                ds.name,
                b.name,
                b.guid,
                b.createtxg,
                b.creation.timestamp()
            )
            .expect(w);
        }
    }
    out
}

/// A name of a dataset, snapshot or bookmark, as `zfs get` prints them side by side.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[expect(
    clippy::exhaustive_enums,
    reason = "ZFS names exactly these three kinds of object that carry properties"
)]
pub enum ObjectName {
    /// A filesystem or volume.
    Dataset(DatasetName),
    /// `dataset@snapshot`.
    Snapshot(SnapshotName),
    /// `dataset#bookmark`.
    Bookmark(BookmarkName),
}

impl FromStr for ObjectName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if s.contains('@') {
            s.parse().map(ObjectName::Snapshot)
        } else if s.contains('#') {
            s.parse().map(ObjectName::Bookmark)
        } else {
            s.parse().map(ObjectName::Dataset)
        }
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectName::Dataset(n) => n.fmt(f),
            ObjectName::Snapshot(n) => n.fmt(f),
            ObjectName::Bookmark(n) => n.fmt(f),
        }
    }
}

/// Where a property's value comes from (the `source` column of `zfs get`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PropertySource {
    /// `-`: read-only or statistic properties, and user properties that are not set.
    None,
    /// `default`.
    Default,
    /// `local`: set on this object.
    Local,
    /// `temporary`: a mount option in effect.
    Temporary,
    /// `received`: set by a `zfs recv`.
    Received,
    /// `inherited from <dataset>`.
    Inherited(DatasetName),
}

/// One row of `zfs get -H -p -o name,property,value,source`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PropertyRow {
    /// The object the property belongs to.
    pub name: ObjectName,
    /// The property (`used`, `zsnap:managed`, …).
    pub property: String,
    /// The value, verbatim (`-` for a user property that is not set).
    pub value: String,
    /// Where the value comes from.
    pub source: PropertySource,
}

/// A row of `zfs get` output that could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetParseError {
    /// 1-based line number of the offending row.
    pub line: usize,
    /// What is wrong with it.
    pub kind: GetParseErrorKind,
}

impl fmt::Display for GetParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind)
    }
}

impl Error for GetParseError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.kind.source()
    }
}

/// What is wrong with a row of `zfs get` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GetParseErrorKind {
    /// Fewer than four tab-separated fields.
    #[error("expected 4 tab-separated fields, found {found}")]
    TooFewFields {
        /// Fields in the row.
        found: usize,
    },
    /// The object name (or the dataset of `inherited from …`) is invalid.
    #[error("column {column:?} holds an invalid name")]
    BadName {
        /// `name` or `source`.
        column: &'static str,
        /// Why the name is invalid.
        #[source]
        source: NameError,
    },
    /// The property name is empty.
    #[error("empty property name")]
    EmptyProperty,
    /// A `source` that is none of those zfs prints.
    #[error("unknown source {0:?}")]
    UnknownSource(String),
}

/// Parses the output of `zfs get -H -p -o name,property,value,source …`.
///
/// A value may contain tabs (user properties can): the name and property are the first
/// two fields, the source the last, and the value everything in between. A trailing
/// newline is allowed; an empty text gives no rows.
///
/// # Errors
/// The first row that breaks the format.
///
/// # Example
/// ```
/// use zsnap_core::zfs_list::{parse_get, PropertySource};
/// let rows = parse_get("tank/a@s\tzsnap:managed\tyes\tinherited from tank\n").unwrap();
/// assert_eq!(rows[0].value, "yes");
/// assert_eq!(rows[0].source, PropertySource::Inherited("tank".parse().unwrap()));
/// ```
pub fn parse_get(text: &str) -> Result<Vec<PropertyRow>, GetParseError> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    body.split('\n')
        .enumerate()
        .map(|(i, line)| get_row(line).map_err(|kind| GetParseError { line: i + 1, kind }))
        .collect()
}

fn get_row(line: &str) -> Result<PropertyRow, GetParseErrorKind> {
    type K = GetParseErrorKind;
    let too_few = || K::TooFewFields {
        found: line.split('\t').count(),
    };
    let (name, rest) = line.split_once('\t').ok_or_else(too_few)?;
    let (property, rest) = rest.split_once('\t').ok_or_else(too_few)?;
    let (value, source) = rest.rsplit_once('\t').ok_or_else(too_few)?;
    let name = name.parse().map_err(|source| K::BadName {
        column: "name",
        source,
    })?;
    if property.is_empty() {
        return Err(K::EmptyProperty);
    }
    let source = match source {
        "-" => PropertySource::None,
        "default" => PropertySource::Default,
        "local" => PropertySource::Local,
        "temporary" => PropertySource::Temporary,
        "received" => PropertySource::Received,
        other => match other.strip_prefix("inherited from ") {
            Some(ds) => PropertySource::Inherited(ds.parse().map_err(|source| K::BadName {
                column: "source",
                source,
            })?),
            None => return Err(K::UnknownSource(other.to_owned())),
        },
    };
    Ok(PropertyRow {
        name,
        property: property.to_owned(),
        value: value.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_indices_match_the_column_list() {
        assert_eq!(LIST_COLUMNS, COLUMN_NAMES);
        assert_eq!(LIST_COLUMNS[MANAGED], crate::MANAGED_PROPERTY);
        assert_eq!(LIST_COLUMNS[EXPIRES], crate::EXPIRES_PROPERTY);
        assert_eq!(
            [NAME, TYPE, GUID, CREATETXG, CREATION, USERREFS, CLONES, ORIGIN],
            [0, 1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(
            [
                ENCRYPTION,
                KEYSTATUS,
                RESUME_TOKEN,
                MOUNTPOINT,
                USED,
                MANAGED,
                EXPIRES
            ],
            [8, 9, 10, 11, 12, 13, 14]
        );
    }

    #[test]
    fn parse_u64_is_strict() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("007"), Some(7));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "+1",
            "-1",
            " 1",
            "1 ",
            "18446744073709551616",
            "1e3",
            "0x1",
            "١",
        ] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_u64_agrees_with_std_on_digits(s in "[0-9]{1,22}") {
            proptest::prop_assert_eq!(parse_u64(&s), s.parse::<u64>().ok());
        }
    }
}
