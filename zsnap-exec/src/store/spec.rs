//! Opening the store of a `[backups.NAME]` of the config: its [`S3Settings`] from the
//! entry's `s3` table (reading the secret key from its file), then the store itself.

use std::path::PathBuf;

use zsnap_core::backup::{Catalog, StoreUrl};
use zsnap_core::config::{BackupSpec, Config};

use super::{open_initialised, read_catalog, BackupStore, OpenStoreError, S3Settings, StoreError};

/// Why the S3 settings of a `[backups.NAME]` cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecSettingsError {
    /// The secret key file cannot be read.
    #[error("read the secret key file {}", .path.display())]
    ReadSecret {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The secret key file's first line is empty.
    #[error("the secret key file {} is empty", .path.display())]
    EmptySecret {
        /// The file.
        path: PathBuf,
    },
}

/// Why the store of a `[backups.NAME]` cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenSpecError {
    /// Its S3 settings cannot be made.
    #[error(transparent)]
    Settings(#[from] SpecSettingsError),
    /// The store cannot be opened, or was never initialised.
    #[error(transparent)]
    Open(#[from] OpenStoreError),
}

/// The S3 settings `spec` names (endpoint, region, access key id, and the secret key
/// read from the first line of its file); anything unset is left to the environment.
///
/// # Errors
/// A secret key file that cannot be read, or whose first line is empty.
pub fn spec_settings(spec: &BackupSpec) -> Result<S3Settings, SpecSettingsError> {
    let mut s = S3Settings::new().with_allow_http(spec.s3.allow_http);
    if let Some(e) = &spec.s3.endpoint {
        s = s.with_endpoint(e.clone());
    }
    if let Some(r) = &spec.s3.region {
        s = s.with_region(r.clone());
    }
    if let Some(id) = &spec.s3.access_key_id {
        s = s.with_access_key_id(id.clone());
    }
    if let Some(path) = &spec.s3.secret_access_key_file {
        let path = PathBuf::from(path);
        let text =
            std::fs::read_to_string(&path).map_err(|source| SpecSettingsError::ReadSecret {
                path: path.clone(),
                source,
            })?;
        let secret = text.lines().next().unwrap_or("").trim().to_owned();
        if secret.is_empty() {
            return Err(SpecSettingsError::EmptySecret { path });
        }
        s = s.with_secret_access_key(secret);
    }
    Ok(s)
}

/// The S3 settings for the store at `url`: those of the first `[backups.NAME]` of
/// `config` that backs up to it ([`spec_settings`]), else the defaults (the
/// environment's).
///
/// # Errors
/// See [`spec_settings`].
pub fn settings_for_url(
    url: &StoreUrl,
    config: Option<&Config>,
) -> Result<S3Settings, SpecSettingsError> {
    match config.and_then(|c| c.backups.values().find(|b| &b.to == url)) {
        Some(spec) => spec_settings(spec),
        None => Ok(S3Settings::new()),
    }
}

/// Opens the initialised store of `spec` ([`open_initialised`] with
/// [`spec_settings`]).
///
/// # Errors
/// Settings that cannot be made, or a store that cannot be opened or has no marker.
pub fn open_spec(spec: &BackupSpec) -> Result<Box<dyn BackupStore>, OpenSpecError> {
    let settings = spec_settings(spec)?;
    Ok(open_initialised(&spec.to, &settings)?.0)
}

/// Why the catalog of a `[backups.NAME]`'s store cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecCatalogError {
    /// The store cannot be opened.
    #[error(transparent)]
    Open(#[from] OpenSpecError),
    /// Its catalog cannot be read.
    #[error(transparent)]
    Read(#[from] StoreError),
}

/// The catalog of the store of `spec` ([`open_spec`], then [`read_catalog`]).
///
/// # Errors
/// A store that cannot be opened or read.
pub fn read_spec_catalog(spec: &BackupSpec) -> Result<Catalog, SpecCatalogError> {
    let store = open_spec(spec)?;
    Ok(read_catalog(&*store)?.1)
}
