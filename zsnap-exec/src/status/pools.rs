//! [`pool_status`]: asking each location about the pools its roots live on.

use std::collections::BTreeSet;

use zsnap_core::DatasetName;

use super::value::PoolsAt;
use crate::apply::Backends;
use crate::failure::error_chain;
use crate::job::Engine;

/// Asks every location of the config (its datasets' and targets' hosts) about the pools
/// its roots live on: one [`ZfsBackend::pools`](crate::ZfsBackend::pools) each, so one
/// `zpool list` and one `zpool status` per location. A location whose backend is
/// missing or whose query fails gets [`PoolsAt::error`]. Asks nothing when the config's
/// `[check]` turns both pool checks off.
pub fn pool_status(engine: &Engine<'_>, backends: &mut dyn Backends) -> Vec<PoolsAt> {
    let check = &engine.config().check;
    if !check.pool_health && check.pool_capacity.is_none() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (location, roots) in engine.roots() {
        let mut seen = BTreeSet::new();
        let wanted: Vec<DatasetName> = roots
            .iter()
            .filter_map(|r| r.pool().parse::<DatasetName>().ok())
            .filter(|p| seen.insert(p.clone()))
            .collect();
        let (pools, error) = match backends.backend(&location) {
            None => (Vec::new(), Some(format!("no backend for {location}"))),
            Some(b) => match b.pools(&wanted) {
                Ok(p) => (p, None),
                Err(e) => (Vec::new(), Some(error_chain(&e))),
            },
        };
        out.push(PoolsAt {
            location,
            wanted,
            pools,
            error,
        });
    }
    out
}
