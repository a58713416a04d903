//! Labels and taints mark-control-plane puts on a control-plane Node (version-aware).

use kubeadm_api::version::MinorInfo;

/// `node-role.kubernetes.io/control-plane`.
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";
/// `node.kubernetes.io/exclude-from-external-load-balancers`.
pub const EXCLUDE_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// The legacy label (1.24 only).
pub const MASTER_LABEL: &str = "node-role.kubernetes.io/master";

/// The labels (all with empty values) a control-plane node gets.
pub fn control_plane_labels(info: &MinorInfo) -> Vec<&'static str> {
    let mut l = vec![CONTROL_PLANE_LABEL, EXCLUDE_LB_LABEL];
    if info.has_master_label() {
        l.push(MASTER_LABEL);
    }
    l
}

/// The default taints (key, effect) of a control-plane node when nodeRegistration.taints is unset.
pub fn default_taints(info: &MinorInfo) -> Vec<(&'static str, &'static str)> {
    if info.has_master_label() {
        vec![(MASTER_LABEL, "NoSchedule")]
    } else {
        vec![(CONTROL_PLANE_LABEL, "NoSchedule")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeadm_api::version::minor_info;

    #[test]
    fn version_aware() {
        assert!(control_plane_labels(minor_info(24).unwrap()).contains(&MASTER_LABEL));
        assert!(!control_plane_labels(minor_info(25).unwrap()).contains(&MASTER_LABEL));
        assert_eq!(
            default_taints(minor_info(30).unwrap())[0].0,
            CONTROL_PLANE_LABEL
        );
    }
}
