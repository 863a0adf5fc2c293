//! Reading `zfs holds -H -p SNAPSHOT…`: which user holds (tags) each snapshot carries.
//!
//! Each line is `SNAPSHOT<TAB>TAG<TAB>EPOCH`. Snapshot names may hold spaces and tags
//! may hold tabs, so a line is matched against the snapshots that were asked about (the
//! longest that fits) and the tag is what lies between it and the last tab. Tested
//! against output captured from real OpenZFS (`tests/fixtures/send/holds.txt`).

use zsnap_core::SnapshotName;

/// A line of `zfs holds -H -p` that zsnap cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected line {number} {line:?} in the list of holds")]
#[non_exhaustive]
pub struct HoldsParseError {
    /// 1-based line number.
    pub number: usize,
    /// The line (at most 200 characters).
    pub line: String,
}

/// Reads `zfs holds -H -p` output about `asked`: (snapshot, tag) pairs in output order.
///
/// # Errors
/// A line that names none of `asked`, or whose time is not a number.
///
/// # Example
/// ```
/// use zsnap_exec::holds::parse_holds;
/// let asked = ["src/a@s 2".parse().unwrap()];
/// let h = parse_holds("src/a@s 2\todd\ttag\t1795487840\n", &asked).unwrap();
/// assert_eq!(h, [(asked[0].clone(), "odd\ttag".to_owned())]);
/// ```
pub fn parse_holds(
    output: &str,
    asked: &[SnapshotName],
) -> Result<Vec<(SnapshotName, String)>, HoldsParseError> {
    let names: Vec<(String, &SnapshotName)> = asked.iter().map(|s| (s.to_string(), s)).collect();
    let mut out = Vec::new();
    for (i, line) in output.lines().enumerate() {
        let bad = || HoldsParseError {
            number: i + 1,
            line: line.chars().take(200).collect(),
        };
        let (rest, time) = line.rsplit_once('\t').ok_or_else(bad)?;
        time.parse::<i64>().map_err(|_| bad())?;
        let (name, snapshot) = names
            .iter()
            .filter(|(n, _)| {
                rest.strip_prefix(n.as_str())
                    .is_some_and(|r| r.starts_with('\t'))
            })
            .max_by_key(|(n, _)| n.len())
            .ok_or_else(bad)?;
        let tag = &rest[name.len() + 1..];
        if tag.is_empty() {
            return Err(bad());
        }
        out.push(((*snapshot).clone(), tag.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_prefix_each_other() {
        let asked: Vec<SnapshotName> = ["src/a@x", "src/a@x\ty"]
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        // A tab cannot be in a name, so only "src/a@x" parses; its tag may hold a tab.
        assert_eq!(asked.len(), 1);
        let h = parse_holds("src/a@x\ty\tz\t1\n", &asked).expect("readable");
        assert_eq!(h[0].1, "y\tz");
        insta::assert_snapshot!(
            parse_holds("src/b@x\tt\t1\n", &asked).unwrap_err(),
            @r#"unexpected line 1 "src/b@x\tt\t1" in the list of holds"#
        );
        assert!(parse_holds("src/a@x\tt\tlater\n", &asked).is_err());
        assert!(parse_holds("src/a@x\t\t1\n", &asked).is_err());
        assert_eq!(parse_holds("", &asked), Ok(vec![]));
    }
}
