//! Names of datasets, snapshots and bookmarks, parsed once and then trusted.
//!
//! The rules are OpenZFS's own (`module/zcommon/zfs_namecheck.c`):
//!
//! - a dataset name is one or more components separated by `/`; the first is the pool;
//! - every component is made of `A-Z a-z 0-9 _ - . :` and the space character, is not
//!   empty, and is neither `.` nor `..`;
//! - a pool name begins with a letter and is none of the names `zpool` reserves
//!   (`mirror`, `raidz`, `draid`, or a disk-like `c<digit>…`);
//! - a snapshot is `dataset@name`, a bookmark `dataset#name`, with exactly one `@` or
//!   `#`, and the part after it follows the component rules;
//! - the whole name is at most 255 bytes.
//!
//! Every type here round-trips through [`FromStr`] and [`Display`](std::fmt::Display): `name.to_string().parse()`
//! gives back an equal value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest name OpenZFS accepts, in bytes (`ZFS_MAX_DATASET_NAME_LEN` less the NUL).
pub const MAX_NAME_LEN: usize = 255;

/// Why a name was rejected, with the byte offset where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} name {input:?}: {problem} (at byte {position})")]
#[non_exhaustive]
pub struct NameError {
    /// Which kind of name was being parsed: "dataset", "snapshot", "bookmark".
    pub what: &'static str,
    /// The rejected input, verbatim.
    pub input: String,
    /// What is wrong.
    pub problem: NameProblem,
    /// Byte offset of the problem in `input`.
    pub position: usize,
}

/// The specific rule a rejected name breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("the name is longer than 255 bytes")]
    TooLong,
    /// A character outside `[A-Za-z0-9_.: -]`.
    #[error("character {0:?} is not allowed")]
    BadChar(char),
    /// Two `/` in a row, or a leading or trailing `/`.
    #[error("empty component")]
    EmptyComponent,
    /// A component that is `.` or `..`.
    #[error("component may not be \".\" or \"..\"")]
    DotComponent,
    /// The pool name does not begin with a letter.
    #[error("the pool name must begin with a letter")]
    PoolStart,
    /// The pool name is one `zpool` reserves.
    #[error("the pool name is reserved")]
    PoolReserved,
    /// A snapshot name without `@`, or a bookmark name without `#`.
    #[error("missing the '{0}' separator")]
    MissingSeparator(char),
    /// More than one `@` or `#`, or both.
    #[error("unexpected '{0}'")]
    ExtraSeparator(char),
    /// Nothing after the `@` or `#`.
    #[error("the part after the separator is empty")]
    EmptyShortName,
}

fn err(what: &'static str, input: &str, problem: NameProblem, position: usize) -> NameError {
    NameError {
        what,
        input: input.to_owned(),
        problem,
        position,
    }
}

fn allowed(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':' | b' ')
}

/// Checks one component (a path element or the part after `@`/`#`) that starts at
/// byte `offset` of `input`.
fn check_component(
    what: &'static str,
    input: &str,
    comp: &str,
    offset: usize,
) -> Result<(), NameError> {
    if comp.is_empty() {
        return Err(err(what, input, NameProblem::EmptyComponent, offset));
    }
    if let Some(i) = comp.bytes().position(|b| !allowed(b)) {
        let c = comp[i..].chars().next().unwrap_or('\u{fffd}');
        return Err(err(what, input, NameProblem::BadChar(c), offset + i));
    }
    if comp == "." || comp == ".." {
        return Err(err(what, input, NameProblem::DotComponent, offset));
    }
    Ok(())
}

fn check_dataset(what: &'static str, input: &str, ds: &str) -> Result<(), NameError> {
    if ds.is_empty() {
        return Err(err(what, input, NameProblem::Empty, 0));
    }
    let mut offset = 0;
    for (i, comp) in ds.split('/').enumerate() {
        check_component(what, input, comp, offset)?;
        if i == 0 {
            check_pool(what, input, comp)?;
        }
        offset += comp.len() + 1;
    }
    Ok(())
}

fn check_pool(what: &'static str, input: &str, pool: &str) -> Result<(), NameError> {
    let b = pool.as_bytes();
    if !b[0].is_ascii_alphabetic() {
        return Err(err(what, input, NameProblem::PoolStart, 0));
    }
    // `pool_namecheck` refuses these exact names and disk-like `c<digit>…` names for any
    // pool; the wider prefix checks of `zpool create` do not apply to existing pools.
    let reserved = matches!(pool, "mirror" | "raidz" | "draid")
        || (b[0] == b'c' && b.len() > 1 && b[1].is_ascii_digit());
    if reserved {
        return Err(err(what, input, NameProblem::PoolReserved, 0));
    }
    Ok(())
}

fn check_len(what: &'static str, input: &str) -> Result<(), NameError> {
    if input.is_empty() {
        return Err(err(what, input, NameProblem::Empty, 0));
    }
    if input.len() > MAX_NAME_LEN {
        return Err(err(what, input, NameProblem::TooLong, MAX_NAME_LEN));
    }
    Ok(())
}

/// A filesystem or volume name such as `tank/home/alice`.
///
/// Ordered by bytes, so parents sort right before their children only when no sibling
/// name shares the prefix; use [`DatasetName::is_ancestor_of`] for hierarchy questions.
///
/// # Example
/// ```
/// use zsnap_core::DatasetName;
/// let ds: DatasetName = "tank/with space/x".parse().unwrap();
/// assert_eq!(ds.pool(), "tank");
/// assert_eq!(ds.to_string(), "tank/with space/x");
/// let e = "tank//x".parse::<DatasetName>().unwrap_err();
/// assert_eq!(e.to_string(), r#"invalid dataset name "tank//x": empty component (at byte 5)"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DatasetName(String);

impl DatasetName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The pool, i.e. the first component.
    pub fn pool(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }

    /// The parent dataset, or `None` for a pool's root dataset.
    pub fn parent(&self) -> Option<DatasetName> {
        self.0
            .rfind('/')
            .map(|i| DatasetName(self.0[..i].to_owned()))
    }

    /// Whether `self` is a strict ancestor of `other` (`tank` of `tank/a/b`).
    pub fn is_ancestor_of(&self, other: &DatasetName) -> bool {
        other.0.len() > self.0.len()
            && other.0.starts_with(&self.0)
            && other.0.as_bytes()[self.0.len()] == b'/'
    }

    /// `self` or a descendant of it.
    pub fn contains(&self, other: &DatasetName) -> bool {
        self == other || self.is_ancestor_of(other)
    }

    /// A child dataset `self/component`.
    ///
    /// # Errors
    /// When `component` is not a valid single component, or the result is too long.
    pub fn child(&self, component: &str) -> Result<DatasetName, NameError> {
        format!("{}/{}", self.0, component).parse()
    }

    /// The path of `self` below `ancestor` (`a/b` for `tank/a/b` below `tank`), or
    /// `None` when `ancestor` does not contain `self`; an empty string for `self` itself.
    pub fn relative_to(&self, ancestor: &DatasetName) -> Option<&str> {
        if self == ancestor {
            Some("")
        } else if ancestor.is_ancestor_of(self) {
            Some(&self.0[ancestor.0.len() + 1..])
        } else {
            None
        }
    }

    /// The snapshot `self@short`.
    pub fn snapshot(&self, short: &ShortName) -> SnapshotName {
        SnapshotName {
            dataset: self.clone(),
            short: short.clone(),
        }
    }
}

impl FromStr for DatasetName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        const WHAT: &str = "dataset";
        check_len(WHAT, s)?;
        if let Some(i) = s.find(['@', '#']) {
            let c = s.as_bytes()[i] as char;
            return Err(err(WHAT, s, NameProblem::BadChar(c), i));
        }
        check_dataset(WHAT, s, s)?;
        Ok(DatasetName(s.to_owned()))
    }
}

/// The part of a snapshot or bookmark name after `@` or `#`, such as
/// `zsnap_hourly_20261123T150000Z`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShortName(String);

impl ShortName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ShortName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        const WHAT: &str = "snapshot";
        check_len(WHAT, s)?;
        if let Some(i) = s.find(['@', '#', '/']) {
            let c = s.as_bytes()[i] as char;
            return Err(err(WHAT, s, NameProblem::BadChar(c), i));
        }
        check_component(WHAT, s, s, 0)?;
        Ok(ShortName(s.to_owned()))
    }
}

fn split_full<'a>(
    what: &'static str,
    s: &'a str,
    sep: char,
) -> Result<(&'a str, &'a str), NameError> {
    check_len(what, s)?;
    let other = if sep == '@' { '#' } else { '@' };
    if let Some(i) = s.find(other) {
        return Err(err(what, s, NameProblem::ExtraSeparator(other), i));
    }
    let Some(at) = s.find(sep) else {
        return Err(err(what, s, NameProblem::MissingSeparator(sep), s.len()));
    };
    if let Some(j) = s[at + 1..].find(sep) {
        return Err(err(what, s, NameProblem::ExtraSeparator(sep), at + 1 + j));
    }
    let (ds, short) = (&s[..at], &s[at + 1..]);
    check_dataset(what, s, ds)?;
    if short.is_empty() {
        return Err(err(what, s, NameProblem::EmptyShortName, at + 1));
    }
    if let Some(i) = short.find('/') {
        return Err(err(what, s, NameProblem::BadChar('/'), at + 1 + i));
    }
    check_component(what, s, short, at + 1)?;
    Ok((ds, short))
}

/// A full snapshot name, `dataset@short`.
///
/// # Example
/// ```
/// use zsnap_core::SnapshotName;
/// let s: SnapshotName = "tank/a@zsnap_hourly_20261123T150000Z".parse().unwrap();
/// assert_eq!(s.dataset().as_str(), "tank/a");
/// assert_eq!(s.short().as_str(), "zsnap_hourly_20261123T150000Z");
/// assert!("tank/a@b@c".parse::<SnapshotName>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotName {
    dataset: DatasetName,
    short: ShortName,
}

impl SnapshotName {
    /// Builds a name from its parts.
    ///
    /// # Errors
    /// When the combined name is longer than [`MAX_NAME_LEN`].
    pub fn new(dataset: DatasetName, short: ShortName) -> Result<Self, NameError> {
        let len = dataset.0.len() + 1 + short.0.len();
        if len > MAX_NAME_LEN {
            let s = format!("{}@{}", dataset, short);
            return Err(err("snapshot", &s, NameProblem::TooLong, MAX_NAME_LEN));
        }
        Ok(SnapshotName { dataset, short })
    }

    /// The dataset the snapshot belongs to.
    pub fn dataset(&self) -> &DatasetName {
        &self.dataset
    }

    /// The part after `@`.
    pub fn short(&self) -> &ShortName {
        &self.short
    }
}

impl FromStr for SnapshotName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let (ds, short) = split_full("snapshot", s, '@')?;
        Ok(SnapshotName {
            dataset: DatasetName(ds.to_owned()),
            short: ShortName(short.to_owned()),
        })
    }
}

/// A full bookmark name, `dataset#short`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BookmarkName {
    dataset: DatasetName,
    short: ShortName,
}

impl BookmarkName {
    /// Builds a name from its parts.
    ///
    /// # Errors
    /// When the combined name is longer than [`MAX_NAME_LEN`].
    pub fn new(dataset: DatasetName, short: ShortName) -> Result<Self, NameError> {
        let len = dataset.0.len() + 1 + short.0.len();
        if len > MAX_NAME_LEN {
            let s = format!("{}#{}", dataset, short);
            return Err(err("bookmark", &s, NameProblem::TooLong, MAX_NAME_LEN));
        }
        Ok(BookmarkName { dataset, short })
    }

    /// The dataset the bookmark belongs to.
    pub fn dataset(&self) -> &DatasetName {
        &self.dataset
    }

    /// The part after `#`.
    pub fn short(&self) -> &ShortName {
        &self.short
    }
}

impl FromStr for BookmarkName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let (ds, short) = split_full("bookmark", s, '#')?;
        Ok(BookmarkName {
            dataset: DatasetName(ds.to_owned()),
            short: ShortName(short.to_owned()),
        })
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Display for ShortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Display for SnapshotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.dataset, self.short)
    }
}
impl fmt::Display for BookmarkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.dataset, self.short)
    }
}

macro_rules! serde_via_str {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_via_str!(DatasetName, ShortName, SnapshotName, BookmarkName);

#[cfg(test)]
mod tests {
    use super::*;

    fn ds_err(s: &str) -> String {
        s.parse::<DatasetName>().unwrap_err().to_string()
    }
    fn snap_err(s: &str) -> String {
        s.parse::<SnapshotName>().unwrap_err().to_string()
    }

    #[test]
    fn accepts_openzfs_names() {
        for s in [
            "tank",
            "tank/a",
            "tank/with space/x",
            "t/a.b:c-d_e",
            "tank/..x",
            "Pool1",
        ] {
            let d: DatasetName = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
        }
        let s: SnapshotName = "tank/a b@snap 1".parse().unwrap();
        assert_eq!(s.to_string(), "tank/a b@snap 1");
        let b: BookmarkName = "tank#bm".parse().unwrap();
        assert_eq!(b.short().as_str(), "bm");
    }

    #[test]
    fn hierarchy() {
        let a: DatasetName = "tank/a".parse().unwrap();
        let ab: DatasetName = "tank/a/b".parse().unwrap();
        let ax: DatasetName = "tank/ax".parse().unwrap();
        assert!(a.is_ancestor_of(&ab));
        assert!(!a.is_ancestor_of(&ax));
        assert!(!a.is_ancestor_of(&a));
        assert_eq!(ab.relative_to(&a), Some("b"));
        assert_eq!(ab.parent(), Some(a.clone()));
        assert_eq!(a.parent().unwrap().parent(), None);
    }

    #[test]
    fn error_messages() {
        insta::assert_snapshot!(ds_err(""), @r#"invalid dataset name "": the name is empty (at byte 0)"#);
        insta::assert_snapshot!(ds_err("tank/"), @r#"invalid dataset name "tank/": empty component (at byte 5)"#);
        insta::assert_snapshot!(ds_err("/tank"), @r#"invalid dataset name "/tank": empty component (at byte 0)"#);
        insta::assert_snapshot!(ds_err("tank/a$b"), @r#"invalid dataset name "tank/a$b": character '$' is not allowed (at byte 6)"#);
        insta::assert_snapshot!(ds_err("tank/a@b"), @r#"invalid dataset name "tank/a@b": character '@' is not allowed (at byte 6)"#);
        insta::assert_snapshot!(ds_err("tank/../x"), @r#"invalid dataset name "tank/../x": component may not be "." or ".." (at byte 5)"#);
        insta::assert_snapshot!(ds_err("1tank"), @r#"invalid dataset name "1tank": the pool name must begin with a letter (at byte 0)"#);
        insta::assert_snapshot!(ds_err("mirror/a"), @r#"invalid dataset name "mirror/a": the pool name is reserved (at byte 0)"#);
        insta::assert_snapshot!(ds_err("tank/é"), @r#"invalid dataset name "tank/é": character 'é' is not allowed (at byte 5)"#);
        let long = "a".repeat(256);
        let e = long.parse::<DatasetName>().unwrap_err();
        assert_eq!((e.problem, e.position), (NameProblem::TooLong, 255));
        assert!(format!("a/{}", "b".repeat(253))
            .parse::<DatasetName>()
            .is_ok());
        insta::assert_snapshot!(snap_err("tank/a"), @r#"invalid snapshot name "tank/a": missing the '@' separator (at byte 6)"#);
        insta::assert_snapshot!(snap_err("tank/a@"), @r#"invalid snapshot name "tank/a@": the part after the separator is empty (at byte 7)"#);
        insta::assert_snapshot!(snap_err("tank/a@b@c"), @r#"invalid snapshot name "tank/a@b@c": unexpected '@' (at byte 8)"#);
        insta::assert_snapshot!(snap_err("tank/a@b/c"), @r#"invalid snapshot name "tank/a@b/c": character '/' is not allowed (at byte 8)"#);
        insta::assert_snapshot!(snap_err("tank/a#b"), @r#"invalid snapshot name "tank/a#b": unexpected '#' (at byte 6)"#);
        insta::assert_snapshot!(snap_err("tank/a@x\ny"), @r#"invalid snapshot name "tank/a@x\ny": character '\n' is not allowed (at byte 8)"#);
    }

    #[test]
    fn serde_round_trip_and_rejects_bad_names() {
        let s: SnapshotName = "tank/a@x".parse().unwrap();
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, r#""tank/a@x""#);
        assert_eq!(serde_json::from_str::<SnapshotName>(&j).unwrap(), s);
        assert!(serde_json::from_str::<SnapshotName>(r#""tank/a""#).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_print_round_trip(s in "[a-z][a-zA-Z0-9_.: -]{0,20}(/[a-zA-Z0-9_.: -]{1,12}){0,4}(@[a-zA-Z0-9_.: -]{1,20})?") {
            if let Ok(d) = s.parse::<DatasetName>() {
                proptest::prop_assert_eq!(d.to_string(), s.clone());
            }
            if let Ok(d) = s.parse::<SnapshotName>() {
                proptest::prop_assert_eq!(d.to_string().parse::<SnapshotName>().unwrap(), d);
            }
        }

        #[test]
        fn arbitrary_input_never_panics(s in ".{0,300}") {
            let _ = s.parse::<DatasetName>();
            let _ = s.parse::<SnapshotName>();
            let _ = s.parse::<BookmarkName>();
        }
    }
}
