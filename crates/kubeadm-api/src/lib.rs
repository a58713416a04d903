//! kubeadm's configuration API: the kubeadm.k8s.io v1beta3 and v1beta4 types, strict decoding of
//! multi-document files, upstream's defaulting and validation, conversion between the versions,
//! and the one table of what differs between Kubernetes minors.
//!
//! This crate does no I/O: files come in as text, host facts as values.

use kubeadm_errors::Hint;

pub mod component;
pub mod config;
pub mod dates;
pub mod decode;
pub mod defaults;
pub mod duration;
pub mod encode;
pub mod ha;
pub mod images;
pub mod mode;
pub mod net;
pub mod schema;
pub mod token;
pub mod upgrade;
pub mod v1beta3;
pub mod v1beta4;
pub mod validate;
pub mod version;

pub use duration::Duration;
pub use token::BootstrapTokenString;
pub use validate::{FieldError, FieldErrors};
pub use version::KubeVersion;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The YAML itself, or a field's type or name, is wrong.
    #[error("{file}:{line}:{column}: {message}")]
    Yaml {
        /// File name as given.
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A document is not one we can use.
    #[error("{file}:{line}: {message}")]
    Document {
        /// File name as given.
        file: String,
        /// Line where the document starts.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Values are present but invalid.
    #[error("invalid configuration in {file}:\n{errors}")]
    Invalid {
        /// File name (or "flags").
        file: String,
        /// Every invalid field.
        errors: FieldErrors,
    },
    /// Host-dependent defaulting failed.
    #[error(transparent)]
    Dynamic(#[from] defaults::DynamicDefaultError),
    /// A flag was given together with `--config`.
    #[error("can not mix '--config' with arguments {0:?}")]
    MixedFlags(Vec<String>),
    /// A flag's value is malformed.
    #[error("invalid value {value:?} for flag --{flag}: {message}")]
    Flag {
        /// The flag without dashes.
        flag: String,
        /// The value given (secrets redacted).
        value: String,
        /// What is wrong.
        message: String,
    },
    /// Serialization failed (a bug, reported rather than unwrapped).
    #[error("cannot encode configuration: {0}")]
    Encode(String),
}

impl Hint for ConfigError {
    fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Yaml { .. } => Some("fix the YAML at that position; `kubeadm config print init-defaults` shows a valid file".into()),
            ConfigError::Invalid { .. } => Some("correct the listed fields; `kubeadm config validate --config FILE` checks a file without running anything".into()),
            ConfigError::MixedFlags(_) => Some("put these settings into the configuration file, or drop --config".into()),
            _ => None,
        }
    }
}
