//! Opening the real backends of a config: the `zfs` of each location it names, on this
//! machine or over ssh ([`CliZfs`]), with the programs and ssh settings of its
//! `[paths]`. What every front end (the `zsnap` command, a daemon) runs jobs on.

use std::collections::BTreeMap;
use std::path::PathBuf;

use zsnap_core::config::{Config, Host, Paths, TargetAddress};
use zsnap_core::Location;

use crate::backend::ZfsBackend;
use crate::cli::{CliZfs, SshTarget, SshTargetError};

/// Why a backend cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A host or user ssh would misread.
    #[error(transparent)]
    Target(#[from] SshTargetError),
    /// The ssh connection cannot be prepared (no room for its socket).
    #[error("prepare the ssh connection to {host}")]
    Ssh {
        /// The host.
        host: Host,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The real `zfs` at `host`: on this machine `paths.zfs` (and `paths.zpool`), over ssh
/// (`paths.ssh`, with `paths.ssh_config`) `paths.remote_zfs` (and `paths.remote_zpool`);
/// never a program looked up in `PATH`.
///
/// # Errors
/// A host or user ssh would misread, or no room for the connection socket.
pub fn connect(host: &Host, paths: &Paths) -> Result<CliZfs, ConnectError> {
    let Host::Ssh {
        user,
        host: name,
        port,
    } = host
    else {
        return Ok(CliZfs::local()
            .with_zfs_program(&paths.zfs)
            .with_zpool_program(&paths.zpool));
    };
    let mut target = SshTarget::new(name)?;
    if let Some(u) = user {
        target = target.with_user(u)?;
    }
    target.port = *port;
    target.config_file = paths.ssh_config.as_deref().map(PathBuf::from);
    Ok(CliZfs::ssh(target)
        .map_err(|source| ConnectError::Ssh {
            host: host.clone(),
            source,
        })?
        .with_zfs_program(&paths.remote_zfs)
        .with_zpool_program(&paths.remote_zpool)
        .with_ssh_program(&paths.ssh))
}

/// Runs `f` with the backend for `host`: for this machine the one `backends` has for
/// the location `local` (which a front-end may point at another host, as the CLI's
/// `--backend` does), for a host over ssh a new connection ([`connect`] with
/// `paths`) — never a backend that stands for every location.
///
/// # Errors
/// A host that cannot be connected to ([`connect`]).
pub fn with_backend_at<R>(
    host: &Host,
    paths: &Paths,
    backends: &mut dyn crate::apply::Backends,
    f: impl FnOnce(&mut dyn ZfsBackend) -> R,
) -> Result<R, ConnectError> {
    if host.is_local() {
        if let Some(b) = backends.backend(&host.location()) {
            return Ok(f(b));
        }
    }
    let mut z = connect(host, paths)?;
    Ok(f(&mut z))
}

/// A backend for every location `config` names (its datasets' hosts, its targets'
/// hosts), each opened once ([`connect`]); the location `local` is `local_host`
/// (this machine, or the host a front end runs the local datasets on).
///
/// # Errors
/// See [`connect`].
pub fn connect_config(
    config: &Config,
    local_host: &Host,
) -> Result<BTreeMap<Location, Box<dyn ZfsBackend>>, ConnectError> {
    let mut map: BTreeMap<Location, Box<dyn ZfsBackend>> = BTreeMap::new();
    let mut hosts: Vec<&Host> = config.datasets.iter().map(|d| &d.host).collect();
    for t in config.targets.values() {
        if let TargetAddress::Dataset { host, .. } = &t.to {
            hosts.push(host);
        }
    }
    for h in hosts {
        let loc = h.location();
        if map.contains_key(&loc) {
            continue;
        }
        let host = match h {
            Host::Local => local_host,
            other => other,
        };
        map.insert(loc, Box::new(connect(host, &config.paths)?));
    }
    Ok(map)
}
