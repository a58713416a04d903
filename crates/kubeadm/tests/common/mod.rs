//! Shared by the API integration tests.

const RBAC: &str = "rbac.authorization.k8s.io";

/// (group, resource, namespace, name) of every object a full `kubeadm init` of minor `1.N`
/// with token `abcdef.…` leaves in the cluster (the facts file's "Objects in the cluster"),
/// except the upload-certs ones, which only exist with `--upload-certs`. The names that depend
/// on the version come from the version table: the kubelet ConfigMap (`kubelet-config-1.N`
/// before 1.24) with its Role and RoleBinding, and the kubeadm:cluster-admins binding (1.29).
pub fn init_objects(minor: u32) -> Vec<(&'static str, &'static str, &'static str, String)> {
    let info = kubeadm_api::version::minor_info(minor).expect("a supported minor");
    let kubelet_config = info.kubelet_config_map_name(&Default::default());
    let mut out: Vec<_> = INIT_OBJECTS
        .iter()
        .map(|&(g, r, ns, n)| (g, r, ns, n.to_string()))
        .collect();
    out.push(("", "configmaps", "kube-system", kubelet_config.clone()));
    for r in ["roles", "rolebindings"] {
        out.push((RBAC, r, "kube-system", format!("kubeadm:{kubelet_config}")));
    }
    if info.has_super_admin() {
        out.push((
            RBAC,
            "clusterrolebindings",
            "",
            "kubeadm:cluster-admins".into(),
        ));
    }
    out
}

/// The objects of [`init_objects`] whose names are the same for every minor.
const INIT_OBJECTS: &[(&str, &str, &str, &str)] = &[
    ("", "configmaps", "kube-system", "kubeadm-config"),
    ("", "configmaps", "kube-public", "cluster-info"),
    ("", "configmaps", "kube-system", "coredns"),
    ("", "configmaps", "kube-system", "kube-proxy"),
    ("", "secrets", "kube-system", "bootstrap-token-abcdef"),
    ("", "services", "kube-system", "kube-dns"),
    ("apps", "deployments", "kube-system", "coredns"),
    ("apps", "daemonsets", "kube-system", "kube-proxy"),
    (
        RBAC,
        "roles",
        "kube-public",
        "kubeadm:bootstrap-signer-clusterinfo",
    ),
    (
        RBAC,
        "rolebindings",
        "kube-public",
        "kubeadm:bootstrap-signer-clusterinfo",
    ),
    (RBAC, "clusterrolebindings", "", "kubeadm:kubelet-bootstrap"),
    (
        RBAC,
        "clusterrolebindings",
        "",
        "kubeadm:node-autoapprove-bootstrap",
    ),
    (
        RBAC,
        "clusterrolebindings",
        "",
        "kubeadm:node-autoapprove-certificate-rotation",
    ),
    (RBAC, "clusterroles", "", "kubeadm:get-nodes"),
    (RBAC, "clusterrolebindings", "", "kubeadm:get-nodes"),
    (RBAC, "roles", "kube-system", "kubeadm:nodes-kubeadm-config"),
    (
        RBAC,
        "rolebindings",
        "kube-system",
        "kubeadm:nodes-kubeadm-config",
    ),
    (RBAC, "clusterrolebindings", "", "kubeadm:node-proxier"),
    (RBAC, "clusterrolebindings", "", "system:coredns"),
];
