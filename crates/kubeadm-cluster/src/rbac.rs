//! The RBAC kubeadm creates so that joining nodes can discover, TLS-bootstrap and read the
//! cluster's configuration (names and subjects as upstream kubeadm).

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use kubeadm_api::version::MinorInfo;

use crate::meta;
use crate::token::DEFAULT_GROUP;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// The group of nodes.
pub const NODES_GROUP: &str = "system:nodes";
/// The group admin.conf's user is in from 1.29.
pub const CLUSTER_ADMINS_GROUP: &str = "kubeadm:cluster-admins";

/// Every RBAC object of one phase, in creation order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RbacSet {
    /// ClusterRoles.
    pub cluster_roles: Vec<ClusterRole>,
    /// ClusterRoleBindings.
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    /// Roles.
    pub roles: Vec<Role>,
    /// RoleBindings.
    pub role_bindings: Vec<RoleBinding>,
}

fn group(name: &str) -> Subject {
    Subject {
        kind: "Group".into(),
        name: name.into(),
        api_group: Some(RBAC_GROUP.into()),
        namespace: None,
    }
}

fn user(name: &str) -> Subject {
    Subject {
        kind: "User".into(),
        name: name.into(),
        api_group: Some(RBAC_GROUP.into()),
        namespace: None,
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: Some(RBAC_GROUP.into()),
        kind: kind.into(),
        name: name.into(),
    }
}

fn crb(name: &str, cluster_role: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(name, None),
        role_ref: role_ref("ClusterRole", cluster_role),
        subjects: Some(subjects),
    }
}

fn get_rule(resource: &str, names: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec![resource.into()]),
        resource_names: (!names.is_empty()).then(|| names.iter().map(|s| s.to_string()).collect()),
        verbs: vec!["get".into()],
        non_resource_urls: None,
    }
}

fn role_and_binding(
    ns: &str,
    name: &str,
    rule: PolicyRule,
    subjects: Vec<Subject>,
    set: &mut RbacSet,
) {
    set.roles.push(Role {
        metadata: meta(name, Some(ns)),
        rules: Some(vec![rule]),
    });
    set.role_bindings.push(RoleBinding {
        metadata: meta(name, Some(ns)),
        role_ref: role_ref("Role", name),
        subjects: Some(subjects),
    });
}

/// bootstrap-token phase: anonymous cluster-info read, kubelet TLS bootstrap and CSR
/// auto-approval, certificate rotation, and `get nodes` for joining nodes.
pub fn bootstrap_token(_info: &MinorInfo) -> RbacSet {
    let mut set = RbacSet::default();
    role_and_binding(
        "kube-public",
        "kubeadm:bootstrap-signer-clusterinfo",
        get_rule("configmaps", &["cluster-info"]),
        vec![user("system:anonymous")],
        &mut set,
    );
    set.cluster_roles.push(ClusterRole {
        metadata: meta("kubeadm:get-nodes", None),
        rules: Some(vec![get_rule("nodes", &[])]),
        aggregation_rule: None,
    });
    set.cluster_role_bindings.extend([
        crb(
            "kubeadm:kubelet-bootstrap",
            "system:node-bootstrapper",
            vec![group(DEFAULT_GROUP)],
        ),
        crb(
            "kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![group(DEFAULT_GROUP)],
        ),
        crb(
            "kubeadm:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![group(NODES_GROUP)],
        ),
        crb(
            "kubeadm:get-nodes",
            "kubeadm:get-nodes",
            vec![group(DEFAULT_GROUP)],
        ),
    ]);
    set
}

/// upload-config phase: joining nodes and kubelets may read kubeadm-config and the kubelet
/// ConfigMap named `kubelet_config` (`kubelet-config`, or `kubelet-config-1.N` before 1.24;
/// its Role and RoleBinding are that name prefixed with `kubeadm:`).
pub fn upload_config(kubelet_config: &str) -> RbacSet {
    let mut set = RbacSet::default();
    let subjects = || vec![group(DEFAULT_GROUP), group(NODES_GROUP)];
    role_and_binding(
        "kube-system",
        "kubeadm:nodes-kubeadm-config",
        get_rule("configmaps", &["kubeadm-config"]),
        subjects(),
        &mut set,
    );
    role_and_binding(
        "kube-system",
        &format!("kubeadm:{kubelet_config}"),
        get_rule("configmaps", &[kubelet_config]),
        subjects(),
        &mut set,
    );
    set
}

/// upload-certs phase: joining control-plane nodes (bootstrap group) may read kubeadm-certs.
pub fn upload_certs() -> RbacSet {
    let mut set = RbacSet::default();
    role_and_binding(
        "kube-system",
        "kubeadm:kubeadm-certs",
        get_rule("secrets", &["kubeadm-certs"]),
        vec![group(DEFAULT_GROUP)],
        &mut set,
    );
    set
}

/// From 1.29 admin.conf's group `kubeadm:cluster-admins` is bound to cluster-admin.
pub fn cluster_admins(info: &MinorInfo) -> Option<ClusterRoleBinding> {
    info.has_super_admin().then(|| {
        crb(
            "kubeadm:cluster-admins",
            "cluster-admin",
            vec![group(CLUSTER_ADMINS_GROUP)],
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeadm_api::version::minor_info;

    #[test]
    fn bootstrap_token_rbac_names_and_subjects() {
        let set = bootstrap_token(minor_info(31).unwrap());
        let names: Vec<_> = set
            .cluster_role_bindings
            .iter()
            .map(|b| b.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "kubeadm:kubelet-bootstrap",
                "kubeadm:node-autoapprove-bootstrap",
                "kubeadm:node-autoapprove-certificate-rotation",
                "kubeadm:get-nodes"
            ]
        );
        let rb = &set.role_bindings[0];
        assert_eq!(rb.metadata.namespace.as_deref(), Some("kube-public"));
        assert_eq!(rb.subjects.as_ref().unwrap()[0].name, "system:anonymous");
        let rule = &set.roles[0].rules.as_ref().unwrap()[0];
        assert_eq!(rule.resource_names.as_ref().unwrap(), &["cluster-info"]);
    }

    #[test]
    fn cluster_admins_from_1_29() {
        assert!(cluster_admins(minor_info(28).unwrap()).is_none());
        let b = cluster_admins(minor_info(29).unwrap()).unwrap();
        assert_eq!(b.role_ref.name, "cluster-admin");
    }
}
