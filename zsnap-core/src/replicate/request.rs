//! What to replicate where, and how: the input of [`plan_replication`](super::plan_replication).

use std::collections::{BTreeMap, BTreeSet};

use crate::inventory::{Dataset, Guid, Inventory, Snapshot};
use crate::plan::Location;
use crate::policy::Policy;
use crate::zfs_names::{DatasetName, NameError};

/// One source dataset tree and where it goes on the target.
///
/// `tank/home` → `backup/tank/home`, recursively, puts `tank/home/alice` at
/// `backup/tank/home/alice`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatasetMapping {
    /// The source dataset (the top of the tree when recursive).
    pub source_root: DatasetName,
    /// Where `source_root` is received on the target.
    pub target_root: DatasetName,
    /// Whether the datasets below `source_root` are replicated too.
    pub recursive: bool,
    /// Source datasets left out, each with everything below it.
    pub exclude: Vec<DatasetName>,
}

impl DatasetMapping {
    /// `source_root` alone, received as `target_root`.
    pub fn new(source_root: DatasetName, target_root: DatasetName) -> Self {
        DatasetMapping {
            source_root,
            target_root,
            recursive: false,
            exclude: Vec::new(),
        }
    }

    /// `source_root` and every dataset below it except `exclude` and what is below
    /// those.
    pub fn recursive(
        source_root: DatasetName,
        target_root: DatasetName,
        exclude: Vec<DatasetName>,
    ) -> Self {
        DatasetMapping {
            source_root,
            target_root,
            recursive: true,
            exclude,
        }
    }

    /// Whether this mapping replicates `source`.
    pub fn covers(&self, source: &DatasetName) -> bool {
        let inside = if self.recursive {
            self.source_root.contains(source)
        } else {
            &self.source_root == source
        };
        inside && !self.exclude.iter().any(|e| e.contains(source))
    }

    /// The target dataset `source` is received as, or `None` when the mapping does not
    /// cover `source`.
    ///
    /// # Errors
    /// When the target name would be invalid (longer than 255 bytes).
    pub fn target_of(&self, source: &DatasetName) -> Result<Option<DatasetName>, NameError> {
        if !self.covers(source) {
            return Ok(None);
        }
        match source.relative_to(&self.source_root) {
            Some("") => Ok(Some(self.target_root.clone())),
            Some(rel) => self.target_root.child(rel).map(Some),
            None => Ok(None),
        }
    }
}

/// How the newest snapshot sent to a target is protected on the source, so that source
/// pruning can never remove the base of the next incremental send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Cursor {
    /// A user hold tagged [`cursor_hold_tag`](super::cursor_hold_tag) on the newest
    /// common snapshot: the source cannot destroy it until the next replication
    /// releases it. The previous cursor hold is released in the same plan, so at most
    /// one snapshot per dataset and target is ever held.
    #[default]
    Hold,
    /// A bookmark named [`cursor_bookmark_name`](super::cursor_bookmark_name) of the
    /// newest common snapshot: the source may prune the snapshot and still send
    /// incrementally from the bookmark. The previous cursor bookmark is destroyed in the
    /// same plan.
    Bookmark,
}

/// When sends are raw (`zfs send -w`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RawMode {
    /// Raw exactly for encrypted sources: the target stays encrypted with the source's
    /// key and never sees plaintext.
    #[default]
    Auto,
    /// Raw for every source (blocks travel as stored on disk, compressed).
    Always,
    /// Never raw: the target recompresses and may re-encrypt with its own key. An
    /// encrypted source is refused ([`ReplicationError::EncryptedNotRaw`]) rather than
    /// sent decrypted.
    ///
    /// [`ReplicationError::EncryptedNotRaw`]: super::ReplicationError::EncryptedNotRaw
    Never,
}

/// How to replicate: the target's settings in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicationOptions {
    /// Allow forced receives (`zfs recv -F`) that roll a diverged target back, destroying
    /// its snapshots that the source does not have. Off by default: a diverged target is
    /// an error ([`ReplicationError::Diverged`](super::ReplicationError::Diverged)).
    pub allow_rollback: bool,
    /// How the newest common snapshot is protected on the source.
    pub cursor: Cursor,
    /// When sends are raw.
    pub raw: RawMode,
    /// Properties the received datasets do not take from the stream (`zfs recv -x`);
    /// by default `mountpoint`, so a replica never mounts over the source's paths.
    /// Filesystem-only properties (`mountpoint`, `canmount`, `sharenfs`, `sharesmb`) are
    /// left out for volumes, which `zfs recv` would refuse.
    pub exclude_props: Vec<String>,
    /// Properties set on the received datasets (`zfs recv -o PROP=VALUE`).
    pub set_props: BTreeMap<String, String>,
    /// Also prune the target with the target's policy in the same plan, after the
    /// transfers (never the newest snapshot it has in common with the source). Needs a
    /// target policy; off by default.
    pub prune_target: bool,
}

impl Default for ReplicationOptions {
    fn default() -> Self {
        ReplicationOptions {
            allow_rollback: false,
            cursor: Cursor::default(),
            raw: RawMode::default(),
            exclude_props: vec!["mountpoint".to_owned()],
            set_props: BTreeMap::new(),
            prune_target: false,
        }
    }
}

/// A predicate on source snapshots: only those it accepts may be sent (for instance
/// by name). It sees the source dataset and one of its snapshots.
#[derive(Clone, Copy)]
pub struct SnapshotFilter<'a>(pub &'a (dyn Fn(&Dataset, &Snapshot) -> bool + Sync));

impl std::fmt::Debug for SnapshotFilter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotFilter(..)")
    }
}

/// Everything [`plan_replication`](super::plan_replication) needs: both inventories, the
/// mappings, the target's wishes, the options, and what the executor learned from
/// earlier runs.
///
/// Build it with [`ReplicationRequest::new`] and set the public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplicationRequest<'a> {
    /// Where the source datasets are.
    pub source_location: Location,
    /// The source's inventory.
    pub source: &'a Inventory,
    /// Where the target datasets are. It may equal `source_location` (pool to pool on
    /// one host); `source` and `target` may then be the same inventory.
    pub target_location: Location,
    /// The target's name in the configuration: it names the cursor (hold tag, bookmark)
    /// and appears in messages.
    pub target_name: String,
    /// The target's inventory (every dataset under the mapped target roots).
    pub target: &'a Inventory,
    /// What goes where, in any order (datasets are planned parents first).
    pub mappings: Vec<DatasetMapping>,
    /// The target's policy. When set, the target *wants* exactly the source snapshots
    /// this policy would keep at `now` if they were on the target: the snapshots it owns
    /// (managed or adopted), evaluated by its retention rules on the source's snapshots
    /// (after [`filter`](Self::filter)) in its time zone. Only wanted snapshots are ever
    /// sent, so nothing the target would prune at once is sent. Receives then set
    /// `zsnap:managed=yes` on the target (`-o`, unless
    /// [`ReplicationOptions::set_props`] sets it), so the target's own pruning owns what
    /// it received. [`ReplicationOptions::prune_target`] prunes with this policy. A
    /// policy that never prunes (`prune = false`) and has no keep rule wants every
    /// snapshot it owns.
    pub target_policy: Option<&'a Policy>,
    /// The name of the target's policy, which the reasons of the target's pruning name
    /// (`no rule of policy "archive" keeps them`); without it they name the target.
    pub target_policy_name: Option<String>,
    /// Without a target policy, the target wants every source snapshot this policy owns
    /// (managed or adopted); without either, every source snapshot.
    pub source_policy: Option<&'a Policy>,
    /// Only source snapshots this accepts are wanted; `None` accepts all.
    pub filter: Option<SnapshotFilter<'a>>,
    /// How.
    pub options: ReplicationOptions,
    /// Target datasets whose `receive_resume_token` is known to be stale: a `zfs send -t`
    /// of it failed in an earlier run because its base or its snapshot is gone on the
    /// source. The planner aborts those receives (`zfs recv -A`) and plans afresh.
    pub stale_tokens: BTreeSet<DatasetName>,
    /// For target datasets with a `receive_resume_token`, the guid of the snapshot the
    /// interrupted receive produces (the token's `toguid`, which the executor can read
    /// with `zfs send -nvt TOKEN`; the core does not decode tokens). Without it the
    /// planner resumes and plans nothing else for that dataset until the next run.
    pub resume_guids: BTreeMap<DatasetName, Guid>,
    /// The guids of the source snapshots that carry this target's cursor hold tag (from
    /// `zfs holds`), when known: every one of them but the new cursor is released.
    ///
    /// Without it (an inventory counts holds, it does not name them) the planner
    /// assumes what a completed run leaves: the newest common snapshot carries the tag
    /// when it has any hold, and no other snapshot does. It then releases the tag only
    /// on that snapshot when the cursor moves on, and does not hold a cursor that is
    /// held already. A hold left elsewhere by a run that died between its transfers and
    /// its cursor steps stays until a run with known holds releases it; the executor
    /// must treat releasing a tag that is not there as done.
    pub cursor_holds: Option<BTreeSet<Guid>>,
}

impl<'a> ReplicationRequest<'a> {
    /// A request with default options, no policies and no filter (the target wants every
    /// source snapshot), no stale
    /// tokens, no decoded tokens and unknown cursor holds.
    pub fn new(
        source_location: Location,
        source: &'a Inventory,
        target_location: Location,
        target_name: impl Into<String>,
        target: &'a Inventory,
        mappings: Vec<DatasetMapping>,
    ) -> Self {
        ReplicationRequest {
            source_location,
            source,
            target_location,
            target_name: target_name.into(),
            target,
            mappings,
            target_policy: None,
            target_policy_name: None,
            source_policy: None,
            filter: None,
            options: ReplicationOptions::default(),
            stale_tokens: BTreeSet::new(),
            resume_guids: BTreeMap::new(),
            cursor_holds: None,
        }
    }
}
