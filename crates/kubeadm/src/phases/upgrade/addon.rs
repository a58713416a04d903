//! `upgrade apply|node phase addon coredns|kube-proxy`: the addons at the new version, through
//! init's own builders, only once every control-plane instance runs the target version (as
//! upstream from 1.28): each control-plane Node's kube-apiserver, kube-controller-manager and
//! kube-scheduler mirror Pods carry the target's image tag.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use super::{UpgradeContext, leaf};
use crate::error::{Error, Result};
use crate::phases::init::addon::{addon_coredns, addon_kube_proxy};

/// `addon` with `coredns` and `kube-proxy`.
pub fn phase() -> kubeadm_workflow::Phase<UpgradeContext, Error> {
    kubeadm_workflow::Phase::group(
        "addon",
        "Upgrade the default kubeadm addons",
        vec![
            leaf("coredns", "Upgrade the CoreDNS addon", run_coredns),
            leaf("kube-proxy", "Upgrade the kube-proxy addon", run_kube_proxy),
        ],
    )
}

/// The control-plane instances not yet at the target version (`node/component: image`).
fn not_upgraded(ctx: &mut UpgradeContext) -> Result<Vec<String>> {
    let target = ctx.target_version()?.to_string();
    let nodes: Vec<String> = ctx
        .view()?
        .nodes
        .iter()
        .filter(|n| n.control_plane)
        .map(|n| n.name.clone())
        .collect();
    ctx.block_on(|c| async move {
        let pods: Api<Pod> = Api::namespaced(c, "kube-system");
        let lp = ListParams::default().labels("tier=control-plane");
        let list = crate::apiclient::retry("list control-plane Pods", 5, || pods.list(&lp)).await?;
        let mut behind = Vec::new();
        for node in &nodes {
            for component in [
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
            ] {
                let image = list
                    .items
                    .iter()
                    .find(|p| p.metadata.name.as_deref() == Some(&format!("{component}-{node}")))
                    .and_then(|p| p.spec.as_ref())
                    .and_then(|s| s.containers.first())
                    .and_then(|c| c.image.clone());
                match image {
                    Some(i) if i.ends_with(&format!(":{target}")) => {}
                    Some(i) => behind.push(format!("{node}/{component}: {i}")),
                    None => behind.push(format!("{node}/{component}: no mirror Pod")),
                }
            }
        }
        Ok(behind)
    })
}

fn gate(ctx: &mut UpgradeContext, addon: &str) -> Result<bool> {
    if ctx.opts.dry_run {
        return Ok(true);
    }
    let behind = not_upgraded(ctx)?;
    if behind.is_empty() {
        return Ok(true);
    }
    println!(
        "[upgrade/addon] Skipping upgrade of the {addon} addon: not all control plane instances have been upgraded yet ({}); it is upgraded by the `kubeadm upgrade` of the last control-plane node",
        behind.join(", ")
    );
    Ok(false)
}

fn run_coredns(ctx: &mut UpgradeContext) -> Result<()> {
    if !gate(ctx, "coredns")? {
        return Ok(());
    }
    ctx.with_writer(|c, cfg| async move {
        addon_coredns(&c, &cfg).await?;
        println!("[addons] Applied essential addon: CoreDNS");
        Ok(())
    })
}

fn run_kube_proxy(ctx: &mut UpgradeContext) -> Result<()> {
    if !gate(ctx, "kube-proxy")? {
        return Ok(());
    }
    ctx.with_writer(|c, cfg| async move {
        addon_kube_proxy(&c, &cfg).await?;
        println!("[addons] Applied essential addon: kube-proxy");
        Ok(())
    })
}
