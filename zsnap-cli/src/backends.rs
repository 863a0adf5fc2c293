//! Opening the backends of a run: the real `zfs` (here or over ssh) per location, or one
//! in-memory [`FakeZfs`] standing in for every location.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, Context as _};
use chrono::{DateTime, Utc};
use zsnap_core::config::{Config, Host, Paths, TargetAddress};
use zsnap_core::{DatasetName, Location};
use zsnap_exec::cli::{CliZfs, SshTarget};
use zsnap_exec::fake::FakeZfs;
use zsnap_exec::ZfsBackend;

/// The seed of a fresh fake pool (fixed, so simulations repeat).
pub const FAKE_SEED: u64 = 0x7a73_6e61;

/// The location id of a host.
pub fn location(host: &Host) -> Location {
    Location(host.location_id())
}

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
        let loc = location(&h);
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

/// Every dataset a fresh fake needs: each `[[datasets]]` root (with its ancestors) and
/// the pool of each dataset target.
fn fake_datasets(config: &Config) -> (Vec<String>, Vec<DatasetName>) {
    let mut pools: Vec<String> = Vec::new();
    let mut datasets: Vec<DatasetName> = Vec::new();
    let add_pool = |p: &str, pools: &mut Vec<String>| {
        if !pools.iter().any(|x| x == p) {
            pools.push(p.to_owned());
        }
    };
    for e in &config.datasets {
        add_pool(e.root.pool(), &mut pools);
        let mut chain = vec![e.root.clone()];
        while let Some(p) = chain.last().and_then(DatasetName::parent) {
            chain.push(p);
        }
        for ds in chain.into_iter().rev() {
            if ds.parent().is_some() && !datasets.contains(&ds) {
                datasets.push(ds);
            }
        }
    }
    for t in config.targets.values() {
        if let TargetAddress::Dataset { dataset, .. } = &t.to {
            add_pool(dataset.pool(), &mut pools);
            // The target root's parent must exist for `zfs recv` to create the root.
            let mut chain = Vec::new();
            let mut cur = dataset.parent();
            while let Some(p) = cur {
                cur = p.parent();
                if p.parent().is_some() {
                    chain.push(p);
                }
            }
            for ds in chain.into_iter().rev() {
                if !datasets.contains(&ds) {
                    datasets.push(ds);
                }
            }
        }
    }
    (pools, datasets)
}

/// A fresh fake holding the config's datasets, its clock at `now`.
///
/// # Errors
/// A dataset the fake refuses to create (a bug in the config's names would have been
/// caught by the parser, so this is not expected).
pub fn fresh_fake(config: &Config, now: DateTime<Utc>) -> anyhow::Result<FakeZfs> {
    let mut z = FakeZfs::new(FAKE_SEED, now);
    let (pools, datasets) = fake_datasets(config);
    for p in pools {
        z.add_pool(&p)
            .map_err(|e| anyhow!("create the fake pool {p}: {e}"))?;
    }
    for ds in datasets {
        z.create(&ds, false)
            .map_err(|e| anyhow!("create the fake dataset {ds}: {e}"))?;
    }
    Ok(z)
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
