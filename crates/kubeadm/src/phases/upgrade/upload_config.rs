//! `upgrade apply phase upload-config kubeadm|kubelet`: kubeadm-config and kubelet-config at the
//! new version, through init's own upload code.

use super::{UpgradeContext, leaf};
use crate::error::{Error, Result};
use crate::phases::init::upload_config::{upload_kubeadm_config, upload_kubelet_config};

/// `upload-config` with `kubeadm` and `kubelet`.
pub fn phase() -> kubeadm_workflow::Phase<UpgradeContext, Error> {
    kubeadm_workflow::Phase::group(
        "upload-config",
        "Upload the kubeadm and kubelet configurations to ConfigMaps",
        vec![
            leaf(
                "kubeadm",
                "Upload the kubeadm ClusterConfiguration to a ConfigMap",
                run_kubeadm,
            ),
            leaf(
                "kubelet",
                "Upload the kubelet configuration to a ConfigMap",
                run_kubelet,
            ),
        ],
    )
}

fn run_kubeadm(ctx: &mut UpgradeContext) -> Result<()> {
    ctx.with_writer(|c, cfg| async move {
        println!(
            "[upload-config] Storing the configuration used in ConfigMap \"kubeadm-config\" in the \"kube-system\" Namespace"
        );
        upload_kubeadm_config(&c, &cfg).await
    })
}

fn run_kubelet(ctx: &mut UpgradeContext) -> Result<()> {
    ctx.with_writer(|c, cfg| async move {
        println!(
            "[kubelet] Creating a ConfigMap \"kubelet-config\" in namespace kube-system with the configuration for the kubelets in the cluster"
        );
        upload_kubelet_config(&c, &cfg).await
    })
}
