//! Reading the files a command starts from: the config (required, or optional for the
//! backup commands that work on a store named on the command line) and a saved
//! listing (`--inventory`).

use std::path::Path;

use anyhow::Context as _;
use zsnap_core::config::Config;
use zsnap_core::{parse_list, Inventory};

use crate::failure::Failure;

/// Reads and validates the config.
///
/// # Errors
/// A usage failure: unreadable file (with a hint), or the first config error.
pub fn load_config(path: &Path) -> Result<Config, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(anyhow::Error::new(e).context(format!("read the config {}", path.display())))
            .with_hint("pass --config FILE; commented examples are in the examples/ directory of the source")
    })?;
    Config::from_toml(&text, &path.display().to_string()).map_err(|e| {
        Failure::usage(anyhow::Error::new(e).context(format!("load the config {}", path.display())))
            .with_hint("fix the place shown above; `zsnap config check` validates a config without running anything")
    })
}

/// The config when its file exists (ad-hoc backup commands work without one).
///
/// # Errors
/// A config file that exists but is invalid.
pub fn optional_config(path: &Path) -> Result<Option<Config>, Failure> {
    if path.exists() {
        load_config(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Reads a saved `zfs list` output.
///
/// # Errors
/// Unreadable or unparsable files.
pub fn read_inventory(path: &Path) -> Result<Inventory, Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read the saved listing {}", path.display()))
        .map_err(Failure::usage)?;
    parse_list(&text)
        .with_context(|| format!("parse the saved listing {}", path.display()))
        .map_err(|e| {
            Failure::usage(e).with_hint(
                "save it with the exact command `zsnap plan --print-list-command` prints",
            )
        })
}
