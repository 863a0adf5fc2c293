//! `zsnap import znapzend` (in progress).

use super::import::{ImportError, Imported};

/// Translates `znapzendzetup export` output.
///
/// # Errors
/// Always, for now.
pub fn import_znapzend(_text: &str, file: &str) -> Result<Imported, ImportError> {
    Err(ImportError::new(file, 0, "not yet"))
}
