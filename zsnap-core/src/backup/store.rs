//! Where backups are stored: [`StoreUrl`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest key an S3 object may have, in bytes.
pub const MAX_S3_KEY: usize = 1024;

/// A backup store, as users write it: `dir:/absolute/path` or `s3://bucket[/prefix]`.
///
/// Parsing checks everything that can be checked without touching the store: a
/// directory is absolute and normalised (no empty, `.` or `..` components), nothing has
/// control characters, a bucket follows the S3 bucket naming rules and a prefix has no
/// empty or dot components. One trailing `/` is accepted and dropped, so
/// `url.to_string().parse()` gives back an equal value. Endpoint, region and
/// credentials of an S3-compatible service are configuration, not part of the URL.
///
/// # Example
/// ```
/// use zsnap_core::backup::StoreUrl;
/// let s: StoreUrl = "s3://zsnap-backups/host1/".parse().unwrap();
/// assert_eq!(s.to_string(), "s3://zsnap-backups/host1");
/// assert_eq!(s.object_path("tank/x.zfs"), "host1/tank/x.zfs");
/// let d: StoreUrl = "dir:/mnt/usb/zsnap".parse().unwrap();
/// assert_eq!(d.object_path("tank/x.zfs"), "/mnt/usb/zsnap/tank/x.zfs");
/// let e = "dir:/mnt/../etc".parse::<StoreUrl>().unwrap_err();
/// assert_eq!(
///     e.to_string(),
///     r#"invalid store "dir:/mnt/../etc": the path may not contain "." or ".." components (at byte 9)"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum StoreUrl {
    /// A directory on a mounted filesystem.
    Dir {
        /// The absolute, normalised path, without a trailing `/` (unless it is `/`).
        path: String,
    },
    /// A bucket of an S3-compatible object store, and the prefix of zsnap's keys in it.
    S3 {
        /// The bucket.
        bucket: String,
        /// The prefix without leading or trailing `/`; empty for the whole bucket.
        prefix: String,
    },
}

impl StoreUrl {
    /// Where the object with `key` (relative to the store's root) is: a filesystem path
    /// for a directory, the object key inside the bucket for S3.
    pub fn object_path(&self, key: &str) -> String {
        match self {
            StoreUrl::Dir { path } if path == "/" => format!("/{key}"),
            StoreUrl::Dir { path } => format!("{path}/{key}"),
            StoreUrl::S3 { prefix, .. } if prefix.is_empty() => key.to_owned(),
            StoreUrl::S3 { prefix, .. } => format!("{prefix}/{key}"),
        }
    }

    /// The object with `key` as a URL of the same form as the store's:
    /// `dir:/path/key` or `s3://bucket/prefix/key`.
    pub fn url_of(&self, key: &str) -> String {
        match self {
            StoreUrl::Dir { .. } => format!("dir:{}", self.object_path(key)),
            StoreUrl::S3 { bucket, .. } => format!("s3://{bucket}/{}", self.object_path(key)),
        }
    }

    /// A short tag standing for this store (8 hex digits of a hash of its URL), used
    /// to name the bookmarks that backups to it keep on the source.
    pub fn tag(&self) -> String {
        // FNV-1a, 32 bits: stable across versions and platforms, unlike std's hasher.
        let mut h: u32 = 0x811c_9dc5;
        for b in self.to_string().bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        format!("{h:08x}")
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Dir { path } => write!(f, "dir:{path}"),
            StoreUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// A store that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid store {input:?}: {problem}")]
#[non_exhaustive]
pub struct StoreUrlError {
    /// The input, verbatim.
    pub input: String,
    /// What is wrong.
    pub problem: StoreUrlProblem,
}

/// What is wrong with a store. Byte offsets count from the start of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreUrlProblem {
    /// Neither `dir:` nor `s3://`.
    #[error("expected dir:/absolute/path or s3://bucket/prefix")]
    Scheme,
    /// A control character (newline, tab, escape…).
    #[error("control character {ch:?} (at byte {position})")]
    Control {
        /// The character.
        ch: char,
        /// Its byte offset.
        position: usize,
    },
    /// `dir:` followed by something that does not begin with `/`.
    #[error("the path must be absolute (begin with '/')")]
    NotAbsolute,
    /// `//` inside a path or prefix.
    #[error("empty path component (at byte {position})")]
    EmptyComponent {
        /// Byte offset of the second `/`.
        position: usize,
    },
    /// A `.` or `..` component.
    #[error("the path may not contain \".\" or \"..\" components (at byte {position})")]
    DotComponent {
        /// Byte offset of the component.
        position: usize,
    },
    /// A bucket name that S3 would refuse.
    #[error("invalid bucket name {bucket:?}: {rule}")]
    Bucket {
        /// The bucket, verbatim.
        bucket: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A prefix character outside `[A-Za-z0-9._=-]` and `/`.
    #[error(
        "character {ch:?} is not allowed in a prefix (at byte {position}); use A-Z a-z 0-9 . _ = - and /"
    )]
    PrefixChar {
        /// The character.
        ch: char,
        /// Its byte offset.
        position: usize,
    },
}

/// Checks the `/`-separated components of `path`, which starts at byte `offset`.
fn check_components(path: &str, offset: usize) -> Result<(), StoreUrlProblem> {
    let mut at = offset;
    for comp in path.split('/') {
        if comp.is_empty() {
            return Err(StoreUrlProblem::EmptyComponent { position: at });
        }
        if comp == "." || comp == ".." {
            return Err(StoreUrlProblem::DotComponent { position: at });
        }
        at += comp.len() + 1;
    }
    Ok(())
}

fn check_bucket(bucket: &str) -> Result<(), StoreUrlProblem> {
    let fail = |rule| {
        Err(StoreUrlProblem::Bucket {
            bucket: bucket.to_owned(),
            rule,
        })
    };
    let b = bucket.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return fail("a bucket name has 3 to 63 characters");
    }
    if !b
        .iter()
        .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
    {
        return fail("a bucket name uses only a-z, 0-9, '.' and '-'");
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return fail("a bucket name begins and ends with a letter or a digit");
    }
    if bucket.contains("..") {
        return fail("a bucket name has no two dots in a row");
    }
    let parts: Vec<&str> = bucket.split('.').collect();
    if parts.len() == 4 && parts.iter().all(|p| p.parse::<u8>().is_ok()) {
        return fail("a bucket name is not an IP address");
    }
    Ok(())
}

fn parse(s: &str) -> Result<StoreUrl, StoreUrlProblem> {
    if let Some((position, ch)) = s.char_indices().find(|(_, c)| c.is_control()) {
        return Err(StoreUrlProblem::Control { ch, position });
    }
    if let Some(path) = s.strip_prefix("dir:") {
        if !path.starts_with('/') {
            return Err(StoreUrlProblem::NotAbsolute);
        }
        if path != "/" {
            let path = path.strip_suffix('/').unwrap_or(path);
            check_components(&path[1..], "dir:/".len())?;
            return Ok(StoreUrl::Dir {
                path: path.to_owned(),
            });
        }
        return Ok(StoreUrl::Dir {
            path: path.to_owned(),
        });
    }
    if let Some(rest) = s.strip_prefix("s3://") {
        let (bucket, prefix) = match rest.split_once('/') {
            Some((b, p)) => (b, p),
            None => (rest, ""),
        };
        check_bucket(bucket)?;
        let offset = "s3://".len() + bucket.len() + 1;
        let prefix = if prefix.is_empty() {
            prefix
        } else {
            if let Some((i, ch)) = prefix.char_indices().find(|&(_, c)| {
                !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '=' | '-' | '/'))
            }) {
                return Err(StoreUrlProblem::PrefixChar {
                    ch,
                    position: offset + i,
                });
            }
            let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
            check_components(prefix, offset)?;
            prefix
        };
        return Ok(StoreUrl::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        });
    }
    Err(StoreUrlProblem::Scheme)
}

impl FromStr for StoreUrl {
    type Err = StoreUrlError;
    fn from_str(s: &str) -> Result<Self, StoreUrlError> {
        parse(s).map_err(|problem| StoreUrlError {
            input: s.to_owned(),
            problem,
        })
    }
}

impl Serialize for StoreUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StoreUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
