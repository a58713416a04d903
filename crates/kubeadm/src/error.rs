//! The binary's error type: every library error plus a hint, printed by `main` as
//! `error: …`, its causes, and `hint: …`.

use kubeadm_api::ConfigError;
use kubeadm_effects::EffectError;
use kubeadm_errors::Hint;
use kubeadm_pki::PkiError;
use kubeadm_preflight::PreflightError;
use kubeadm_preflight::prepare::PrepareError;

/// Anything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration file or flags.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file or command on the host failed.
    #[error(transparent)]
    Effect(#[from] EffectError),
    /// Pre-flight checks failed (the problems were printed above).
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    /// `host prepare` failed.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// A manifest, kubelet file or patch could not be built.
    #[error(transparent)]
    Render(#[from] kubeadm_render::RenderError),
    /// A certificate, key or kubeconfig problem.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A phase failed.
    #[error("{0}")]
    Workflow(String, #[source] Box<Error>),
    /// Reading a file named on the command line failed.
    #[error("cannot read {path}: {source}")]
    ReadInput {
        /// The path as given.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Talking to the API server failed.
    #[error(transparent)]
    Api(#[from] crate::apiclient::ApiError),
    /// Building a cluster object failed.
    #[error(transparent)]
    Cluster(#[from] kubeadm_cluster::ClusterError),
    /// etcd refused a membership change or could not be reached.
    #[error("etcd: cannot {action}")]
    Etcd {
        /// What kubeadm was doing (`add this node's member`).
        action: String,
        /// etcd's error.
        #[source]
        source: kubeadm_etcd::EtcdError,
    },
    /// Discovery refused or could not reach the cluster.
    #[error(transparent)]
    Discovery(#[from] crate::discovery::DiscoveryError),
    /// A snapshot could not be saved, checked or pruned.
    #[error(transparent)]
    Backup(#[from] kubeadm_etcd::backup::BackupError),
    /// A snapshot restore was refused or failed.
    #[error(transparent)]
    Restore(#[from] kubeadm_etcd::restore::RestoreError),
    /// A systemd unit could not be built.
    #[error(transparent)]
    Unit(#[from] kubeadm_render::systemd::UnitError),
    /// The container runtime refused or could not be reached.
    #[error(transparent)]
    Cri(#[from] kubeadm_cri::CriError),
    /// An image bundle failed its checks.
    #[error(transparent)]
    Bundle(#[from] kubeadm_cri::bundle::BundleError),
    /// Anything else, with an optional hint.
    #[error("{message}")]
    Message {
        /// What went wrong.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
}

impl Error {
    /// An error with a message and a hint.
    pub fn with_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Message {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// An error with a message only.
    pub fn msg(message: impl Into<String>) -> Self {
        Error::Message {
            message: message.into(),
            hint: None,
        }
    }
}

impl Hint for Error {
    /// What the operator can do about it: each library error's own hint, except where the
    /// binary knows better (who runs it).
    fn hint(&self) -> Option<String> {
        match self {
            Error::Config(e) => e.hint(),
            Error::Workflow(_, inner) => inner.hint(),
            Error::Message { hint, .. } => hint.clone(),
            Error::ReadInput { .. } => Some("check the path and its permissions".into()),
            Error::Effect(EffectError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::PermissionDenied
                    && !crate::host::is_root() =>
            {
                Some("run as root, or use --dry-run to see what would be done".into())
            }
            Error::Effect(e) => e.hint(),
            Error::Preflight(e) => e.hint(),
            Error::Prepare(e) => e.hint(),
            Error::Render(e) => e.hint(),
            Error::Pki(e) => e.hint(),
            Error::Api(e) => e.hint(),
            Error::Cluster(e) => e.hint(),
            Error::Discovery(e) => e.hint(),
            Error::Etcd { source, .. } => source.hint(),
            Error::Backup(e) => e.hint(),
            Error::Restore(e) => e.hint(),
            Error::Unit(e) => e.hint(),
            Error::Cri(e) => e.hint(),
            Error::Bundle(e) => e.hint(),
        }
    }
}

/// The binary's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
