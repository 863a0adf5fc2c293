//! The in-memory [`FakeZfs`] saved in a state file that stands in for every location
//! with `--backend fake:FILE` (for tests and trials). Real backends are opened by
//! [`zsnap_exec::connect`].

use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use zsnap_core::config::Config;
use zsnap_exec::fake::FakeZfs;

/// The fake saved at `path`, or a fresh one for `config` when the file does not exist
/// ([`zsnap_exec::rehearsal::fresh_pool`]; the `bool` says which).
///
/// # Errors
/// An unreadable or invalid state file.
pub fn load_fake(
    path: &Path,
    config: &Config,
    now: DateTime<Utc>,
) -> anyhow::Result<(FakeZfs, bool)> {
    if path.exists() {
        let z = FakeZfs::load(path)
            .with_context(|| format!("load the fake pool state {}", path.display()))?;
        Ok((z, false))
    } else {
        Ok((zsnap_exec::rehearsal::fresh_pool(config, now)?, true))
    }
}
