//! The `[backups.NAME]` part of a status, from the stores' catalogs.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use zsnap_core::backup::{Catalog, EntryState, Link};
use zsnap_core::config::{BackupSpec, Config};
use zsnap_core::{DatasetName, Inventory, Location};

use super::value::BackupStatus;

/// Every `[backups.NAME]` store of `config`, per dataset its source selects in `invs`
/// (and per dataset the store holds): the newest restorable backup, and the unfinished
/// and damaged ones.
///
/// `read` gives the catalog of each store (`NAME`, its spec), or why it could not be
/// read, rendered with its causes: the caller opens the stores (settings, credentials,
/// the network). A store that cannot be read is one entry with its error.
pub fn backup_status(
    config: &Config,
    invs: &BTreeMap<Location, Inventory>,
    now: DateTime<Utc>,
    read: &mut dyn FnMut(&str, &BackupSpec) -> Result<Catalog, String>,
) -> Vec<BackupStatus> {
    let mut out = Vec::new();
    for (name, spec) in &config.backups {
        let blank = |dataset: Option<String>| BackupStatus {
            name: name.clone(),
            store: spec.to.to_string(),
            dataset,
            newest: None,
            age_seconds: None,
            every_seconds: spec.every.seconds(),
            restorable: 0,
            unfinished: 0,
            damaged: 0,
            error: None,
        };
        let catalog = match read(name, spec) {
            Ok(c) => c,
            Err(e) => {
                let mut st = blank(None);
                st.error = Some(e);
                out.push(st);
                continue;
            }
        };
        let mut datasets: BTreeSet<DatasetName> = catalog.datasets.keys().cloned().collect();
        if let Some(entry) = config.datasets.iter().find(|d| d.root == spec.source) {
            let loc = entry.host.location();
            if let Some(inv) = invs.get(&loc) {
                datasets.extend(inv.datasets.keys().filter(|d| entry.selects(d)).cloned());
            }
        }
        for dataset in datasets {
            let mut st = blank(Some(dataset.to_string()));
            if let Some(d) = catalog.dataset(&dataset) {
                for e in &d.entries {
                    match (&e.state, &e.link) {
                        (EntryState::Unfinished, _) => st.unfinished += 1,
                        (EntryState::Complete, Some(Link::Full | Link::Parent { .. })) => {
                            st.restorable += 1;
                            let t = e.stream.created();
                            st.newest = Some(st.newest.map_or(t, |n| n.max(t)));
                        }
                        _ => st.damaged += 1,
                    }
                }
            }
            st.age_seconds = st.newest.map(|t| (now - t).num_seconds());
            out.push(st);
        }
    }
    out
}
