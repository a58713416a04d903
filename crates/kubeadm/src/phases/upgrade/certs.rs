//! `--certificate-renewal` (default true, as upstream): each component's certificates are
//! renewed with `kubeadm certs renew`'s code just before its new manifest goes in (a component
//! whose manifest is unchanged keeps them), and admin.conf's after the last component. Which
//! certificate a component uses comes from `certs renew --auto`'s table of users; as upstream,
//! etcd's swap also renews the healthcheck client certificate (it restarts nothing, so that
//! table leaves it out). A certificate whose CA key is absent (external CA) is skipped with a
//! message, as upstream does.

use std::path::Path;

use super::UpgradeContext;
use crate::commands::certs::{renew_names, renewable_names, signable};
use crate::commands::certs_auto::users;
use crate::error::Result;
use crate::phases::init::kubeconfig::KUBECONFIG_DIR;

/// The certificates and kubeconfig files `component`'s swap renews, in `certs renew` order.
pub fn names_for(component: &str, local_etcd: bool) -> Vec<String> {
    renewable_names()
        .into_iter()
        .filter(|n| {
            users(n).contains(&component) || (component == "etcd" && n == "etcd-healthcheck-client")
        })
        .filter(|n| local_etcd || !n.starts_with("etcd-") && n != "apiserver-etcd-client")
        .collect()
}

/// Renews `names` (those whose file exists and whose CA key is here).
fn renew(ctx: &mut UpgradeContext, names: &[String]) -> Result<()> {
    let cluster = ctx.target()?.cluster;
    let fx = ctx.fx.clone();
    let mut todo = Vec::new();
    for n in names {
        println!("[upgrade/staticpods] Renewing {n} certificate");
        if signable(fx.as_ref(), &cluster, n) {
            todo.push(n.as_str());
        } else {
            println!("[upgrade/staticpods] External CA detected, {n} certificate can't be renewed");
        }
    }
    if todo.is_empty() {
        return Ok(());
    }
    renew_names(
        fx.as_ref(),
        &cluster,
        Path::new(KUBECONFIG_DIR),
        &todo.join(","),
    )?;
    Ok(())
}

/// Renews what `component` uses (before its swap).
pub fn renew_for(ctx: &mut UpgradeContext, component: &str) -> Result<()> {
    let local = ctx.target()?.local_etcd().is_some();
    renew(ctx, &names_for(component, local))
}

/// Renews the certificate embedded in admin.conf (after the last component).
pub fn renew_admin(ctx: &mut UpgradeContext) -> Result<()> {
    renew(ctx, &["admin.conf".to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_component_renews_what_upstream_renews() {
        assert_eq!(
            names_for("etcd", true),
            ["etcd-server", "etcd-peer", "etcd-healthcheck-client"]
        );
        assert!(names_for("etcd", false).is_empty());
        assert_eq!(
            names_for("kube-apiserver", true),
            [
                "apiserver",
                "apiserver-kubelet-client",
                "front-proxy-client",
                "apiserver-etcd-client"
            ]
        );
        assert_eq!(
            names_for("kube-apiserver", false),
            [
                "apiserver",
                "apiserver-kubelet-client",
                "front-proxy-client"
            ]
        );
        assert_eq!(
            names_for("kube-controller-manager", true),
            ["controller-manager.conf"]
        );
        assert_eq!(names_for("kube-scheduler", true), ["scheduler.conf"]);
    }
}
