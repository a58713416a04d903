//! Shared by the API integration tests.

const RBAC: &str = "rbac.authorization.k8s.io";

/// (group, resource, namespace, name) of every object a full `kubeadm init` with token
/// `abcdef.…` leaves in the cluster (the facts file's "Objects in the cluster"), except the
/// upload-certs ones, which only exist with `--upload-certs`.
pub const INIT_OBJECTS: &[(&str, &str, &str, &str)] = &[
    ("", "configmaps", "kube-system", "kubeadm-config"),
    ("", "configmaps", "kube-system", "kubelet-config"),
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
    (RBAC, "roles", "kube-system", "kubeadm:kubelet-config"),
    (
        RBAC,
        "rolebindings",
        "kube-system",
        "kubeadm:kubelet-config",
    ),
    (RBAC, "clusterrolebindings", "", "kubeadm:cluster-admins"),
    (RBAC, "clusterrolebindings", "", "kubeadm:node-proxier"),
    (RBAC, "clusterrolebindings", "", "system:coredns"),
];
