//! `leancloud-migrate`: leave LeanCloud before 2027-01-12 with every conversation, message and subscriber,
//! ids kept.
//!
//! * [`export`] pulls an app's IM data through LeanCloud's REST API (Scan API for classes, the 1.2 history
//!   and subscriber endpoints) into a directory of JSONL files, resumably, and [`files`] downloads the body
//!   of every `_File` beside them;
//! * [`import`] writes such a directory, or the console's data-export tarball, into a `leancloud-server`
//!   database;
//! * [`verify`] compares a source (export directory or live API) with a server, class by class and
//!   conversation by conversation.
//!
//! The file format is described in `migrate/README.md`.

pub mod api;
pub mod bodies;
pub mod export;
pub mod files;
pub mod import;
pub mod verify;

use std::path::Path;

/// The format tag written into every header and the manifest.
pub const FORMAT: &str = "leancloud-migrate/1";

/// Everything that stops a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("API call failed: {0}")]
    Api(#[from] leancloud_im::Error),
    #[error("configuration: {0}")]
    Config(#[from] leancloud_im::ConfigError),
    #[error(transparent)]
    Import(#[from] leancloud_server::import::ImportError),
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// A progress bar style from `template`, or the default one if the template does not parse.
pub(crate) fn bar_style(template: &str) -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
}
