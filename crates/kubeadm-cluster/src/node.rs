//! Labels and taints mark-control-plane puts on a control-plane Node (version-aware).
//!
//! 1.22 and 1.23 label the node with both the deprecated `master` role and `control-plane`
//! (and exclude it from load balancers), and taint it with `master:NoSchedule` only; 1.24
//! drops the `master` label and adds the `control-plane` taint next to the `master` one
//! (kubernetes/kubernetes#107533); 1.25 drops the `master` taint (#110095).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Taint};
use kubeadm_api::version::{MinorInfo, minor_info};

/// `node-role.kubernetes.io/control-plane`.
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";
/// `node.kubernetes.io/exclude-from-external-load-balancers`.
pub const EXCLUDE_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// The legacy role key: a label up to 1.23, a taint up to 1.24.
pub const MASTER_LABEL: &str = "node-role.kubernetes.io/master";

/// The labels (all with empty values) a control-plane node gets.
pub fn control_plane_labels(info: &MinorInfo) -> Vec<&'static str> {
    let mut l = Vec::new();
    if info.has_master_label() {
        l.push(MASTER_LABEL);
    }
    l.extend([CONTROL_PLANE_LABEL, EXCLUDE_LB_LABEL]);
    l
}

/// The default taints (key, effect) of a control-plane node when nodeRegistration.taints is unset.
pub fn default_taints(info: &MinorInfo) -> Vec<(&'static str, &'static str)> {
    let mut t = Vec::new();
    if info.has_master_taint() {
        t.push((MASTER_LABEL, "NoSchedule"));
    }
    if info.has_control_plane_taint() {
        t.push((CONTROL_PLANE_LABEL, "NoSchedule"));
    }
    t
}

/// What `upgrade apply` to a minor changes on the existing control-plane Nodes: upstream made
/// each change in the upgrade to the release that introduced it (1.24: the `master` label off
/// and the `control-plane` taint next to a `master` one; 1.25: the `master` taint off), so a
/// cluster upgraded one minor at a time ends as a new one of the target minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoleMigration {
    /// Remove the `master` label (upgrade to 1.24).
    pub remove_master_label: bool,
    /// Add `control-plane:NoSchedule` where `master:NoSchedule` is (upgrade to 1.24).
    pub add_control_plane_taint: bool,
    /// Remove `master:NoSchedule` (upgrade to 1.25).
    pub remove_master_taint: bool,
}

/// The [`RoleMigration`] of `upgrade apply` to `target`: what the minor before it did and it no
/// longer does (or the reverse, for the new taint).
pub fn role_migration(target: &MinorInfo) -> RoleMigration {
    let Some(prev) = target.minor.checked_sub(1).and_then(minor_info) else {
        return RoleMigration::default();
    };
    RoleMigration {
        remove_master_label: prev.has_master_label() && !target.has_master_label(),
        add_control_plane_taint: !prev.has_control_plane_taint()
            && target.has_control_plane_taint(),
        remove_master_taint: prev.has_master_taint() && !target.has_master_taint(),
    }
}

/// Applies `m` to a control-plane Node (one with the `control-plane` or `master` label);
/// returns whether anything changed.
pub fn migrate_node(m: &RoleMigration, node: &mut Node) -> bool {
    let labels = node.metadata.labels.get_or_insert_with(BTreeMap::new);
    if !labels.contains_key(CONTROL_PLANE_LABEL) && !labels.contains_key(MASTER_LABEL) {
        return false;
    }
    let mut changed = false;
    if m.remove_master_label && labels.remove(MASTER_LABEL).is_some() {
        // A node that had only the old label keeps its role under the new one.
        labels.entry(CONTROL_PLANE_LABEL.to_string()).or_default();
        changed = true;
    }
    let spec = node.spec.get_or_insert_with(Default::default);
    let taints = spec.taints.get_or_insert_with(Vec::new);
    let is = |t: &Taint, key: &str| t.key == key && t.effect == "NoSchedule";
    if m.add_control_plane_taint
        && taints.iter().any(|t| is(t, MASTER_LABEL))
        && !taints.iter().any(|t| is(t, CONTROL_PLANE_LABEL))
    {
        taints.push(Taint {
            key: CONTROL_PLANE_LABEL.into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        });
        changed = true;
    }
    if m.remove_master_taint {
        let before = taints.len();
        taints.retain(|t| !is(t, MASTER_LABEL));
        changed |= taints.len() != before;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeadm_api::version::minor_info;

    #[test]
    fn version_aware() {
        for m in [22, 23] {
            let info = minor_info(m).unwrap();
            assert_eq!(
                control_plane_labels(info),
                vec![MASTER_LABEL, CONTROL_PLANE_LABEL, EXCLUDE_LB_LABEL]
            );
            assert_eq!(default_taints(info), vec![(MASTER_LABEL, "NoSchedule")]);
        }
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

    fn node_of(minor: u32) -> Node {
        let info = minor_info(minor).unwrap();
        let mut n = Node::default();
        n.metadata.labels = Some(
            control_plane_labels(info)
                .into_iter()
                .map(|l| (l.to_string(), String::new()))
                .collect(),
        );
        n.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
            taints: Some(
                default_taints(info)
                    .into_iter()
                    .map(|(k, e)| Taint {
                        key: k.into(),
                        effect: e.into(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        });
        n
    }

    /// Upgrading one minor at a time turns a 1.23 node into what init of 1.24, then 1.25, makes.
    #[test]
    fn upgrades_migrate_nodes_to_the_target_minor() {
        let mut n = node_of(23);
        for target in 24..=26 {
            let m = role_migration(minor_info(target).unwrap());
            migrate_node(&m, &mut n);
            assert_eq!(n, node_of(target), "after the upgrade to 1.{target}");
        }
        assert_eq!(
            role_migration(minor_info(23).unwrap()),
            RoleMigration::default()
        );
        assert_eq!(
            role_migration(minor_info(22).unwrap()),
            RoleMigration::default()
        );
        // A worker is left alone.
        let mut worker = Node::default();
        assert!(!migrate_node(
            &role_migration(minor_info(24).unwrap()),
            &mut worker
        ));
        // A 1.24 node whose master taint the operator removed gets no control-plane taint.
        let mut n = node_of(23);
        n.spec.as_mut().unwrap().taints = Some(vec![]);
        migrate_node(&role_migration(minor_info(24).unwrap()), &mut n);
        assert_eq!(n.spec.unwrap().taints, Some(vec![]));
    }
}
