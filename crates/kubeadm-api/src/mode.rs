//! `ControlPlaneConfiguration` (`kubeadm-rs.io/v1alpha1`): how this node runs its control plane.
//! A document of our own next to the kubeadm ones (upstream skips kinds it does not know).
//!
//! - `staticPod` (default, as upstream): etcd and the control-plane components are static Pods
//!   the kubelet runs from `/etc/kubernetes/manifests`.
//! - `systemd`: each of them is a systemd service, `/etc/systemd/system/<component>.service`,
//!   whose flags live in `/etc/kubernetes/<component>.env`, run from the official binaries in
//!   `binaryDir` (no container runtime needed for the control plane; logs in the journal).

use serde::{Deserialize, Serialize};

/// The kind of the document (in [`crate::ha::API_VERSION`]).
pub const KIND: &str = "ControlPlaneConfiguration";
/// `controlPlaneMode` for static Pods.
pub const MODE_STATIC_POD: &str = "staticPod";
/// `controlPlaneMode` for systemd services.
pub const MODE_SYSTEMD: &str = "systemd";
/// Where the binaries are by default (seed 004's layout).
pub const DEFAULT_BINARY_DIR: &str = "/usr/local/bin";
/// Replaced in `binaryDir` by the version of the component (`v1.31.2` for the Kubernetes
/// components, etcd's own `v3.5.15` for etcd): one directory per version, so an upgrade
/// points the unit at the new binaries and a rollback at the old ones.
pub const VERSION_PLACEHOLDER: &str = "{version}";

/// The document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlPlaneConfiguration {
    /// `kubeadm-rs.io/v1alpha1`.
    pub api_version: String,
    /// `ControlPlaneConfiguration`.
    pub kind: String,
    /// `staticPod` (default) or `systemd`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub control_plane_mode: String,
    /// The directory holding `etcd`, `kube-apiserver`, `kube-controller-manager` and
    /// `kube-scheduler` in systemd mode (default `/usr/local/bin`); may hold `{version}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub binary_dir: String,
}

impl ControlPlaneConfiguration {
    /// The document for `mode` with every default set.
    pub fn with_mode(mode: &str) -> Self {
        let mut c = ControlPlaneConfiguration {
            control_plane_mode: mode.to_string(),
            ..Default::default()
        };
        c.set_defaults();
        c
    }

    /// Fills what was left out.
    pub fn set_defaults(&mut self) {
        self.api_version = crate::ha::API_VERSION.into();
        self.kind = KIND.into();
        if self.control_plane_mode.is_empty() {
            self.control_plane_mode = MODE_STATIC_POD.into();
        }
        if self.binary_dir.is_empty() {
            self.binary_dir = DEFAULT_BINARY_DIR.into();
        }
    }

    /// True in systemd mode.
    pub fn systemd(&self) -> bool {
        self.control_plane_mode == MODE_SYSTEMD
    }

    /// The directory of a component's binary at `version` (`v1.31.2`, `v3.5.15`).
    pub fn binary_dir_for(&self, version: &str) -> String {
        self.binary_dir.replace(VERSION_PLACEHOLDER, version)
    }

    /// Every invalid field, each with its path and what to do.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if self.control_plane_mode != MODE_STATIC_POD && self.control_plane_mode != MODE_SYSTEMD {
            errs.push(format!(
                "{KIND}.controlPlaneMode: Unsupported value: {:?}: supported values: {MODE_STATIC_POD:?}, {MODE_SYSTEMD:?}",
                self.control_plane_mode
            ));
        }
        let dir = &self.binary_dir;
        if !dir.starts_with('/') || dir.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errs.push(format!(
                "{KIND}.binaryDir: Invalid value: {dir:?}: must be an absolute path without spaces (a unit's ExecStart carries it)"
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_static_pods_and_usr_local_bin() {
        let c = ControlPlaneConfiguration::with_mode("");
        assert!(!c.systemd());
        assert_eq!(c.binary_dir, DEFAULT_BINARY_DIR);
        assert!(c.validate().is_empty());
    }

    #[test]
    fn the_version_goes_into_the_binary_dir() {
        let mut c = ControlPlaneConfiguration::with_mode(MODE_SYSTEMD);
        c.binary_dir = "/opt/kubernetes/{version}/bin".into();
        assert_eq!(c.binary_dir_for("v1.31.2"), "/opt/kubernetes/v1.31.2/bin");
        assert!(c.validate().is_empty());
    }

    #[test]
    fn a_bad_mode_and_a_relative_dir_are_named() {
        let mut c = ControlPlaneConfiguration::with_mode("containers");
        c.binary_dir = "bin dir".into();
        let errs = c.validate();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("controlPlaneMode") && errs[0].contains("\"containers\""));
        assert!(errs[1].contains("binaryDir"));
    }
}
