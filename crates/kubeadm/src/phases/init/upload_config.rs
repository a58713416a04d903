//! `init phase upload-config kubeadm|kubelet`: the kubeadm-config and kubelet-config
//! (`kubelet-config-1.N` before 1.24) ConfigMaps, and the RBAC letting nodes read them.

use kube::Client;
use kubeadm_api::config::InitConfig;
use kubeadm_cluster::rbac::RbacSet;
use kubeadm_workflow::Phase;

use super::InitContext;
use super::api_session::{apply_rbac, with_client};
use crate::apiclient::apply_ns;
use crate::error::{Error, Result};

/// `upload-config` with its `kubeadm` and `kubelet` sub-phases.
pub fn phase() -> Phase<InitContext, Error> {
    Phase::group(
        "upload-config",
        "Upload the kubeadm and kubelet configuration to a ConfigMap",
        vec![
            Phase::leaf(
                "kubeadm",
                "Upload the kubeadm ClusterConfiguration to a ConfigMap",
                run_kubeadm,
            )
            .flags(&["config", "dry-run"]),
            Phase::leaf(
                "kubelet",
                "Upload the kubelet component config to a ConfigMap",
                run_kubelet,
            )
            .flags(&["config", "dry-run"]),
        ],
    )
}

fn run_kubeadm(ctx: &mut InitContext) -> Result<()> {
    // The heading comes before the first request (the session's own included).
    println!(
        "[upload-config] Storing the configuration used in ConfigMap \"kubeadm-config\" in the \"kube-system\" Namespace"
    );
    with_client(ctx, |c, cfg| async move {
        upload_kubeadm_config(&c, &cfg).await
    })
}

fn run_kubelet(ctx: &mut InitContext) -> Result<()> {
    // The heading comes before the first request (the session's own included).
    let name = kubeadm_cluster::config_maps::kubelet_config_name(&ctx.cfg);
    println!(
        "[kubelet] Creating a ConfigMap \"{name}\" in namespace kube-system with the configuration for the kubelets in the cluster"
    );
    with_client(ctx, |c, cfg| async move {
        upload_kubelet_config(&c, &cfg).await
    })
}

/// The Roles and RoleBindings of `set` named `name` (upload-config's two sub-phases each own
/// one pair of the set).
fn rbac_named(mut set: RbacSet, name: &str) -> RbacSet {
    let named = |n: &Option<String>| n.as_deref() == Some(name);
    set.cluster_roles.retain(|o| named(&o.metadata.name));
    set.cluster_role_bindings
        .retain(|o| named(&o.metadata.name));
    set.roles.retain(|o| named(&o.metadata.name));
    set.role_bindings.retain(|o| named(&o.metadata.name));
    set
}

/// upload-config/kubeadm: kubeadm-config, and the RBAC letting nodes read it.
pub async fn upload_kubeadm_config(client: &Client, cfg: &InitConfig) -> Result<()> {
    let cm = kubeadm_cluster::config_maps::kubeadm_config(cfg)?;
    let kubelet_config = kubeadm_cluster::config_maps::kubelet_config_name(cfg);
    let rbac = rbac_named(
        kubeadm_cluster::rbac::upload_config(&kubelet_config),
        "kubeadm:nodes-kubeadm-config",
    );
    apply_ns(client, &cm).await?;
    apply_rbac(client, &rbac).await?;
    Ok(())
}

/// upload-config/kubelet: kubelet-config, and the RBAC letting nodes read it.
pub async fn upload_kubelet_config(client: &Client, cfg: &InitConfig) -> Result<()> {
    let cm = kubeadm_cluster::config_maps::kubelet_config(cfg)?;
    let kubelet_config = kubeadm_cluster::config_maps::kubelet_config_name(cfg);
    let rbac = rbac_named(
        kubeadm_cluster::rbac::upload_config(&kubelet_config),
        &format!("kubeadm:{kubelet_config}"),
    );
    apply_ns(client, &cm).await?;
    apply_rbac(client, &rbac).await?;
    Ok(())
}

/// upload-config: both sub-phases (the API tests run them together).
#[cfg(test)]
pub async fn upload_config(client: &Client, cfg: &InitConfig) -> Result<()> {
    upload_kubeadm_config(client, cfg).await?;
    upload_kubelet_config(client, cfg).await
}
