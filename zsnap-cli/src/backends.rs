//! Opening the backends of a run: the real `zfs` (here or over ssh) per location, or one
//! in-memory [`FakeZfs`] standing in for every location.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use zsnap_core::config::{Config, Host, Paths, TargetAddress};
use zsnap_core::Location;
use zsnap_exec::cli::{CliZfs, SshTarget};
use zsnap_exec::fake::FakeZfs;
use zsnap_exec::ZfsBackend;

/// The seed of a fresh fake pool (fixed, so simulations repeat).
pub const FAKE_SEED: u64 = 0x7a73_6e61;

/// The real `zfs` at `host`: on this machine `paths.zfs`, over ssh (`paths.ssh`, with
/// `paths.ssh_config`) `paths.remote_zfs`; never a program looked up in `PATH`.
///
/// # Errors
/// A host or user ssh would misread, or no room for the connection socket.
pub fn backend_for(host: &Host, paths: &Paths) -> anyhow::Result<CliZfs> {
    let Host::Ssh {
        user,
        host: name,
        port,
    } = host
    else {
        return Ok(CliZfs::local().with_zfs_program(&paths.zfs));
    };
    let mut target = SshTarget::new(name)?;
    if let Some(u) = user {
        target = target.with_user(u)?;
    }
    target.port = *port;
    target.config_file = paths.ssh_config.as_deref().map(std::path::PathBuf::from);
    Ok(CliZfs::ssh(target)
        .with_context(|| format!("prepare the ssh connection to {host}"))?
        .with_zfs_program(&paths.remote_zfs)
        .with_ssh_program(&paths.ssh))
}

/// Real backends for every location the config names; `local` is `local_host` (this
/// machine, or the host given with `--backend ssh://…`).
///
/// # Errors
/// See [`backend_for`].
pub fn real_backends(
    config: &Config,
    local_host: &Host,
) -> anyhow::Result<BTreeMap<Location, Box<dyn ZfsBackend>>> {
    let mut map: BTreeMap<Location, Box<dyn ZfsBackend>> = BTreeMap::new();
    let mut hosts: Vec<Host> = config.datasets.iter().map(|d| d.host.clone()).collect();
    for t in config.targets.values() {
        if let TargetAddress::Dataset { host, .. } = &t.to {
            hosts.push(host.clone());
        }
    }
    for h in hosts {
        let loc = h.location();
        if map.contains_key(&loc) {
            continue;
        }
        let backend: Box<dyn ZfsBackend> = match &h {
            Host::Local => Box::new(backend_for(local_host, &config.paths)?),
            other => Box::new(backend_for(other, &config.paths)?),
        };
        map.insert(loc, backend);
    }
    Ok(map)
}

/// A fresh fake holding the config's datasets ([`FakeZfs::for_config`]), its clock at
/// `now`, its guids from [`FAKE_SEED`].
///
/// # Errors
/// A dataset the fake refuses to create (a bug in the config's names would have been
/// caught by the parser, so this is not expected).
pub fn fresh_fake(
    config: &Config,
    now: DateTime<Utc>,
) -> Result<FakeZfs, zsnap_exec::fake::ForConfigError> {
    FakeZfs::for_config(config, FAKE_SEED, now)
}

/// The fake saved at `path`, or a fresh one for `config` when the file does not exist
/// (the `bool` says which).
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
        Ok((fresh_fake(config, now)?, true))
    }
}
