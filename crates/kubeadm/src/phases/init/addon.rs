//! `init phase addon coredns|kube-proxy`: the essential addons' objects.

use kube::Client;
use kubeadm_api::config::InitConfig;
use kubeadm_workflow::Phase;

use super::InitContext;
use super::api_session::with_client;
use crate::apiclient::{apply_cluster, apply_ns};
use crate::error::{Error, Result};

/// `addon` with `coredns` and `kube-proxy` (each skipped when disabled in the configuration).
pub fn phase() -> Phase<InitContext, Error> {
    Phase::group(
        "addon",
        "Install required addons for passing conformance tests",
        vec![
            Phase::leaf(
                "coredns",
                "Install the CoreDNS addon to a Kubernetes cluster",
                run_coredns,
            )
            .flags(&[
                "config",
                "kubernetes-version",
                "image-repository",
                "service-dns-domain",
                "service-cidr",
                "feature-gates",
                "dry-run",
            ])
            .when(|ctx: &InitContext| !ctx.cfg.cluster.dns.disabled),
            Phase::leaf(
                "kube-proxy",
                "Install the kube-proxy addon to a Kubernetes cluster",
                run_kube_proxy,
            )
            .flags(&[
                "config",
                "kubernetes-version",
                "image-repository",
                "apiserver-advertise-address",
                "control-plane-endpoint",
                "apiserver-bind-port",
                "pod-network-cidr",
                "feature-gates",
                "dry-run",
            ])
            .when(|ctx: &InitContext| !ctx.cfg.cluster.proxy.disabled),
        ],
    )
}

fn run_coredns(ctx: &mut InitContext) -> Result<()> {
    with_client(ctx, |c, cfg| async move {
        addon_coredns(&c, &cfg).await?;
        println!("[addons] Applied essential addon: CoreDNS");
        Ok(())
    })
}

fn run_kube_proxy(ctx: &mut InitContext) -> Result<()> {
    with_client(ctx, |c, cfg| async move {
        addon_kube_proxy(&c, &cfg).await?;
        println!("[addons] Applied essential addon: kube-proxy");
        Ok(())
    })
}

/// addon/coredns: every CoreDNS object (nothing when DNS is disabled).
pub async fn addon_coredns(client: &Client, cfg: &InitConfig) -> Result<()> {
    let Some(d) = kubeadm_cluster::addons::coredns(cfg)? else {
        return Ok(());
    };
    apply_ns(client, &d.service_account).await?;
    apply_cluster(client, &d.cluster_role).await?;
    apply_cluster(client, &d.cluster_role_binding).await?;
    apply_ns(client, &d.config_map).await?;
    apply_ns(client, &d.deployment).await?;
    apply_ns(client, &d.service).await?;
    Ok(())
}

/// addon/kube-proxy: every kube-proxy object (nothing when the proxy is disabled).
pub async fn addon_kube_proxy(client: &Client, cfg: &InitConfig) -> Result<()> {
    let Some(p) = kubeadm_cluster::addons::kube_proxy(cfg)? else {
        return Ok(());
    };
    apply_ns(client, &p.service_account).await?;
    apply_cluster(client, &p.cluster_role_binding).await?;
    apply_ns(client, &p.config_map).await?;
    apply_ns(client, &p.role).await?;
    apply_ns(client, &p.role_binding).await?;
    apply_ns(client, &p.daemon_set).await?;
    Ok(())
}
