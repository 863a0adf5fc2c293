//! The TOML configuration: which datasets zsnap manages, with which named policies
//! (schedules and keep rules), where it replicates them, what `zsnap check` reports,
//! and where it writes its files.
//!
//! [`Config::from_toml`] is pure: it takes the text and the file name (for messages)
//! and returns a validated [`Config`] or the first [`ConfigError`], which points at the
//! file, line and column and says what was expected. Unknown keys are errors with a
//! "did you mean". A policy that would let zsnap prune snapshots another tool made is
//! refused unless it adopts that tool's snapshots explicitly.
//!
//! [`Config::to_toml`] prints the effective config (every default explicit); parsing it
//! again gives an equal [`Config`].
//!
//! # Example
//! ```
//! use zsnap_core::config::Config;
//! let text = r#"
//! [policies.standard]
//! snapshot = { hourly = "hourly", daily = "daily" }
//! keep = { hourly = 24, daily = 7 }
//!
//! [[datasets]]
//! root = "tank/home"
//! recursive = true
//! policy = "standard"
//! "#;
//! let config = Config::from_toml(text, "zsnap.toml").unwrap();
//! assert_eq!(config.datasets[0].root.as_str(), "tank/home");
//! let again = Config::from_toml(&config.to_toml(), "effective.toml").unwrap();
//! assert_eq!(again, config);
//!
//! let err = Config::from_toml("[polices.x]\n", "zsnap.toml").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "zsnap.toml:1:2: unknown key `polices` in the top level; did you mean `policies`?"
//! );
//! ```

mod bandwidth;
mod convert;
mod error;
mod import;
mod model;
mod parse;
mod rules;
mod sanoid;
mod spans;
mod suggest;
mod znapzend;
mod zrepl;

pub use bandwidth::{Bandwidth, BandwidthError};
pub use error::{ConfigError, ConfigProblem, EXCERPT_CHARS};
pub use import::{ImportError, ImportTool, Imported};
pub use model::{
    Adopt, BackupSpec, CalendarKeep, CalendarUnit, CapacityThresholds, CheckSpec, Config,
    CursorKind, DatasetEntry, Expiry, Host, HostError, KeepRuleSpec, Paths, PolicySpec,
    RetentionSpec, RuleSpec, S3Spec, SanoidKeep, TargetAddress, TargetAddressError, TargetSpec,
    Thresholds, Timing,
};
pub use sanoid::{import_sanoid, SanoidImport, SanoidImportError};
pub use znapzend::import_znapzend;
pub use zrepl::import_zrepl;

/// The tools whose snapshots a policy may adopt (`adopt = [...]`).
pub const ADOPTABLE_TOOLS: [&str; 4] = parse::ADOPTABLE;

impl Config {
    /// A config with default paths and nothing else, for the importers to fill.
    fn empty() -> Config {
        Config {
            paths: Paths::default(),
            check: CheckSpec::default(),
            datasets: Vec::new(),
            policies: std::collections::BTreeMap::new(),
            targets: std::collections::BTreeMap::new(),
            backups: std::collections::BTreeMap::new(),
            hooks: std::collections::BTreeMap::new(),
        }
    }

    /// Parses and validates a config.
    ///
    /// # Errors
    /// The first problem found, with its place in `text`; `file` is used only in the
    /// message.
    pub fn from_toml(text: &str, file: &str) -> Result<Config, ConfigError> {
        parse::parse(&spans::Cx { file, text })
    }

    /// The config as TOML, with every default written out.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect(
            "a Config holds only strings, numbers, booleans and tables, which TOML can represent",
        )
    }

    /// The policy of this name.
    pub fn policy(&self, name: &str) -> Option<&PolicySpec> {
        self.policies.get(name)
    }

    /// The `[[datasets]]` entry whose policy applies to `dataset` on `host`: among the
    /// entries that select it, the one with the deepest root (see [`crate::policy`]).
    pub fn entry_for(
        &self,
        host: &Host,
        dataset: &crate::zfs_names::DatasetName,
    ) -> Option<&DatasetEntry> {
        self.datasets
            .iter()
            .filter(|e| &e.host == host && e.selects(dataset))
            .max_by_key(|e| e.root.as_str().len())
    }
}
