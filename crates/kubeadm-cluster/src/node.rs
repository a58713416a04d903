//! Labels and taints mark-control-plane puts on a control-plane Node (version-aware).
//!
//! Every supported minor applies only the `control-plane` and exclude-from-load-balancers
//! labels; the legacy `master` *taint* is still added by 1.24 (kubernetes/kubernetes#107533)
//! and dropped from 1.25 (#110095).

use kubeadm_api::version::MinorInfo;

/// `node-role.kubernetes.io/control-plane`.
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";
/// `node.kubernetes.io/exclude-from-external-load-balancers`.
pub const EXCLUDE_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// The legacy role key, used only as a taint (1.24).
pub const MASTER_LABEL: &str = "node-role.kubernetes.io/master";

/// The labels (all with empty values) a control-plane node gets.
pub fn control_plane_labels(_info: &MinorInfo) -> Vec<&'static str> {
    vec![CONTROL_PLANE_LABEL, EXCLUDE_LB_LABEL]
}

/// The default taints (key, effect) of a control-plane node when nodeRegistration.taints is unset.
pub fn default_taints(info: &MinorInfo) -> Vec<(&'static str, &'static str)> {
    let mut t = Vec::new();
    if info.has_master_taint() {
        t.push((MASTER_LABEL, "NoSchedule"));
    }
    t.push((CONTROL_PLANE_LABEL, "NoSchedule"));
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeadm_api::version::minor_info;

    #[test]
    fn version_aware() {
        assert!(!control_plane_labels(minor_info(24).unwrap()).contains(&MASTER_LABEL));
        assert_eq!(
            default_taints(minor_info(24).unwrap()),
            vec![
                (MASTER_LABEL, "NoSchedule"),
                (CONTROL_PLANE_LABEL, "NoSchedule")
            ]
        );
        assert_eq!(
            default_taints(minor_info(25).unwrap()),
            vec![(CONTROL_PLANE_LABEL, "NoSchedule")]
        );
    }
}
