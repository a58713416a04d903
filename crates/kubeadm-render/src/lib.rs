//! Pure builders for what kubeadm writes for the kubelet to run: the static Pod manifests of
//! etcd, kube-apiserver, kube-controller-manager and kube-scheduler, the kubelet's
//! `config.yaml` and `kubeadm-flags.env`, upstream's `--patches` mechanism, and the systemd
//! service + timer units of kubeadm's periodic jobs.
//!
//! Configuration in, `k8s_openapi` objects and file bytes out; this crate does no I/O.

pub mod args;
pub mod controlplane;
pub mod etcd;
pub mod ha;
pub mod kubelet;
pub mod patches;
pub mod service;
pub mod staticpod;
pub mod systemd;

use k8s_openapi::api::core::v1::Pod;
use kubeadm_errors::Hint;

/// Why a manifest or kubelet file could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A patch file is malformed or cannot be applied.
    #[error("patch file {file}: {message}")]
    Patch {
        /// The patch file's name (inside the patches directory).
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A patched object is no longer a valid object of its kind.
    #[error("{target} after applying patches from {dir}: {message}")]
    Patched {
        /// The patch target (`kube-apiserver`, `kubeletconfiguration`, …).
        target: String,
        /// The patches directory.
        dir: String,
        /// What is wrong.
        message: String,
    },
    /// A component cannot run as a systemd service (controlPlaneMode: systemd).
    #[error("{component} as a systemd service: {message}")]
    Service {
        /// The component.
        component: String,
        /// What is wrong.
        message: String,
    },
    /// Serialization failed (a bug, reported rather than unwrapped).
    #[error("cannot encode {what}: {message}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// The encoder's message.
        message: String,
    },
}

impl Hint for RenderError {
    fn hint(&self) -> Option<String> {
        match self {
            RenderError::Patch { .. } => Some(
                "fix or remove the file; patch files are named target[suffix][+strategic|merge|json].(yaml|json)".into(),
            ),
            RenderError::Patched { .. } => Some("check the patches for that target: the result must stay a valid object".into()),
            RenderError::Service { .. } => Some("change the value (extraArgs, extraEnvs or patches), or use controlPlaneMode: staticPod".into()),
            RenderError::Encode { .. } => None,
        }
    }
}

/// A static Pod manifest as YAML: keys sorted, as upstream writes it. Identical Pods give
/// byte-identical output.
pub fn pod_yaml(pod: &Pod) -> Result<String, RenderError> {
    kubeadm_api::encode::to_yaml(pod).map_err(|e| RenderError::Encode {
        what: "static Pod manifest".into(),
        message: e.to_string(),
    })
}
