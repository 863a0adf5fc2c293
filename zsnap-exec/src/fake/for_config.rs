//! A fresh [`FakeZfs`] holding the datasets a config names ([`FakeZfs::for_config`]).

use chrono::{DateTime, Utc};
use zsnap_core::config::{Config, TargetAddress};
use zsnap_core::DatasetName;

use super::FakeZfs;
use crate::failure::ZfsFailure;

/// [`FakeZfs::for_config`] could not create a pool or dataset of the config (not
/// expected: the config's parser checks the names).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForConfigError {
    /// A pool was refused.
    #[error("create the fake pool {pool}")]
    Pool {
        /// The pool.
        pool: String,
        /// The cause.
        #[source]
        source: ZfsFailure,
    },
    /// A dataset was refused.
    #[error("create the fake dataset {dataset}")]
    Dataset {
        /// The dataset.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: ZfsFailure,
    },
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

impl FakeZfs {
    /// A fresh fake (guids from `seed`, its clock at `now`) holding what `config`
    /// needs: each `[[datasets]]` root with its ancestors, and the pool of each dataset
    /// target with the target root's ancestors (`zfs receive` creates the root). One
    /// fake stands in for every location of the config.
    ///
    /// # Errors
    /// A pool or dataset the fake refuses to create (not expected: the config's names
    /// were checked when it was parsed).
    pub fn for_config(
        config: &Config,
        seed: u64,
        now: DateTime<Utc>,
    ) -> Result<FakeZfs, ForConfigError> {
        let mut z = FakeZfs::new(seed, now);
        let (pools, datasets) = fake_datasets(config);
        for pool in pools {
            z.add_pool(&pool)
                .map_err(|source| ForConfigError::Pool { pool, source })?;
        }
        for dataset in datasets {
            z.create(&dataset, false)
                .map_err(|source| ForConfigError::Dataset { dataset, source })?;
        }
        Ok(z)
    }
}
