//! Container images kubeadm uses, as upstream's `images.GetControlPlaneImages` computes them.
//!
//! Rules (upstream `cmd/kubeadm/app/images/images.go`):
//! - kube-* images: `<imageRepository>/<name>:<version>` with `+` in the version replaced by `_`.
//! - etcd: `<etcd.local.imageRepository or imageRepository>/etcd:<etcd.local.imageTag or the
//!   table's etcd tag>`; only with local etcd.
//! - CoreDNS: `dns.imageRepository` wins; otherwise, under the default registry the image lives at
//!   `registry.k8s.io/coredns/coredns`, under a custom repository at `<repo>/coredns`; tag
//!   `dns.imageTag` or the table's CoreDNS tag. Skipped when `dns.disabled`.
//! - kube-proxy skipped when `proxy.disabled`; pause always.
//! - Order: apiserver, controller-manager, scheduler, proxy, coredns, pause, etcd.

use crate::defaults::DEFAULT_IMAGE_REPOSITORY;
use crate::v1beta4::ClusterConfiguration;
use crate::version::{KubeVersion, MinorInfo};

/// Image of a control-plane component (`kube-apiserver`, …, `kube-proxy`).
pub fn control_plane_image(
    cfg: &ClusterConfiguration,
    version: &KubeVersion,
    name: &str,
) -> String {
    let tag = version.to_string().replace('+', "_");
    format!("{}/{name}:{tag}", cfg.image_repository)
}

/// The etcd image.
pub fn etcd_image(cfg: &ClusterConfiguration, info: &MinorInfo) -> String {
    let local = cfg.etcd.local.clone().unwrap_or_default();
    let repo = if local.image_repository.is_empty() {
        &cfg.image_repository
    } else {
        &local.image_repository
    };
    let tag = if local.image_tag.is_empty() {
        info.etcd
    } else {
        &local.image_tag
    };
    format!("{repo}/etcd:{tag}")
}

/// The CoreDNS image.
pub fn coredns_image(cfg: &ClusterConfiguration, info: &MinorInfo) -> String {
    let tag = if cfg.dns.image_tag.is_empty() {
        info.coredns
    } else {
        &cfg.dns.image_tag
    };
    if !cfg.dns.image_repository.is_empty() {
        return format!("{}/coredns:{tag}", cfg.dns.image_repository);
    }
    if cfg.image_repository == DEFAULT_IMAGE_REPOSITORY {
        format!("{DEFAULT_IMAGE_REPOSITORY}/coredns/coredns:{tag}")
    } else {
        format!("{}/coredns:{tag}", cfg.image_repository)
    }
}

/// The pause (sandbox) image.
pub fn pause_image(cfg: &ClusterConfiguration, info: &MinorInfo) -> String {
    format!("{}/pause:{}", cfg.image_repository, info.pause)
}

/// Every image `kubeadm config images list` prints, in upstream's order.
pub fn all_images(
    cfg: &ClusterConfiguration,
    version: &KubeVersion,
    info: &MinorInfo,
) -> Vec<String> {
    let mut out = vec![
        control_plane_image(cfg, version, "kube-apiserver"),
        control_plane_image(cfg, version, "kube-controller-manager"),
        control_plane_image(cfg, version, "kube-scheduler"),
    ];
    if !cfg.proxy.disabled {
        out.push(control_plane_image(cfg, version, "kube-proxy"));
    }
    if !cfg.dns.disabled {
        out.push(coredns_image(cfg, info));
    }
    out.push(pause_image(cfg, info));
    if cfg.etcd.local.is_some() {
        out.push(etcd_image(cfg, info));
    }
    out
}
