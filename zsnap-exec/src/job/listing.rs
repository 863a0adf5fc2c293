//! Where a job's inventories come from ([`Source`]) and what listing them found
//! ([`Listing`]): an inventory per location, and the roots that could not be listed
//! ([`ListFailure`]).

use std::collections::BTreeMap;

use zsnap_core::{DatasetName, Inventory, Location};

use crate::apply::Backends;
use crate::backend::ListError;

/// Where the inventories come from.
#[non_exhaustive]
pub enum Source<'a> {
    /// Ask the backends.
    Backends(&'a mut dyn Backends),
    /// A saved listing, for the `local` location; plans only. Taken (not copied) by the
    /// first listing, which matters for a million snapshots.
    Saved(&'a mut Option<Inventory>),
}

/// A root of a location whose listing failed. As an error, it reads "list the datasets
/// of ROOT at LOCATION" and its source is the backend's [`ListError`].
#[derive(Debug, thiserror::Error)]
#[error("list the datasets of {root} at {location}")]
#[non_exhaustive]
pub struct ListFailure {
    /// Where.
    pub location: Location,
    /// The root (as in [`Engine::roots`](super::Engine::roots)).
    pub root: DatasetName,
    /// Why.
    #[source]
    pub error: ListError,
}

/// What listing every location found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Listing {
    /// The inventory of each location (without the roots that failed).
    pub invs: BTreeMap<Location, Inventory>,
    /// The roots that could not be listed.
    pub failed: Vec<ListFailure>,
}
