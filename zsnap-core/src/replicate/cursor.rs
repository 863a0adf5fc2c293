//! The names of the cursors zsnap leaves on a source for each target.
//!
//! A cursor marks the newest snapshot a source dataset has in common with a target, so
//! that source pruning never removes the base of the next incremental send:
//! - a hold tagged `zsnap:<target>` on that snapshot, or
//! - a bookmark `zsnap_<target>_cursor_<guid>` of it (the guid in the name lets the new
//!   cursor be created before the old one is destroyed, and says what it marks).

use crate::inventory::Guid;
use crate::zfs_names::{BookmarkName, DatasetName, NameError, ShortName};

/// The hold tag marking the cursor of `target_name`: `zsnap:<target_name>`.
///
/// # Example
/// ```
/// assert_eq!(zsnap_core::replicate::cursor_hold_tag("offsite"), "zsnap:offsite");
/// ```
pub fn cursor_hold_tag(target_name: &str) -> String {
    format!("zsnap:{target_name}")
}

fn bookmark_prefix(target_name: &str) -> String {
    format!("zsnap_{target_name}_cursor_")
}

/// The cursor bookmark of `target_name` for the snapshot `guid` of `dataset`:
/// `dataset#zsnap_<target_name>_cursor_<guid>`.
///
/// # Errors
/// When the target name holds characters a bookmark name cannot (such as `/` or `@`),
/// or the whole name is longer than 255 bytes.
///
/// # Example
/// ```
/// use zsnap_core::replicate::{cursor_bookmark_name, is_cursor_bookmark};
/// use zsnap_core::Guid;
///
/// let ds = "tank/a".parse().unwrap();
/// let b = cursor_bookmark_name(&ds, "offsite", Guid(42)).unwrap();
/// assert_eq!(b.to_string(), "tank/a#zsnap_offsite_cursor_42");
/// assert!(is_cursor_bookmark(b.short(), "offsite"));
/// assert!(cursor_bookmark_name(&ds, "a/b", Guid(42)).is_err());
/// ```
pub fn cursor_bookmark_name(
    dataset: &DatasetName,
    target_name: &str,
    guid: Guid,
) -> Result<BookmarkName, NameError> {
    let short: ShortName = format!("{}{guid}", bookmark_prefix(target_name)).parse()?;
    BookmarkName::new(dataset.clone(), short)
}

/// Whether `bookmark` (the part after `#`) is a cursor bookmark of `target_name`.
///
/// The guid part must be all digits, so the cursors of a target named `a` are never
/// mistaken for those of a target named `a_cursor_x`.
///
/// # Example
/// ```
/// use zsnap_core::replicate::is_cursor_bookmark;
/// let b = "zsnap_a_cursor_x_cursor_7".parse().unwrap();
/// assert!(is_cursor_bookmark(&b, "a_cursor_x"));
/// assert!(!is_cursor_bookmark(&b, "a"));
/// ```
pub fn is_cursor_bookmark(bookmark: &ShortName, target_name: &str) -> bool {
    bookmark
        .as_str()
        .strip_prefix(&bookmark_prefix(target_name))
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
}
