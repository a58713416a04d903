//! The control-plane Nodes' role labels and taints during `upgrade apply`: the upgrade to the
//! minor that changed them migrates existing nodes as upstream's did (1.24: `master` label off,
//! `control-plane` taint added next to `master`; 1.25: `master` taint off).

use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use kubeadm_api::config::InitConfig;
use kubeadm_cluster::node::{CONTROL_PLANE_LABEL, MASTER_LABEL, migrate_node, role_migration};

use crate::apiclient::retry;
use crate::error::Result;

/// Migrates every control-plane Node's labels and taints to what the target minor applies.
pub async fn migrate(client: &Client, cfg: &InitConfig) -> Result<()> {
    let m = role_migration(cfg.info());
    if m == Default::default() {
        return Ok(());
    }
    let nodes: Api<Node> = Api::all(client.clone());
    // Nodes with either role label: a cluster made before 1.20 may have only `master`.
    let mut names = Vec::new();
    for label in [CONTROL_PLANE_LABEL, MASTER_LABEL] {
        let lp = ListParams::default().labels(label);
        let list = retry(&format!("list Nodes labelled {label}"), 5, || {
            nodes.list(&lp)
        })
        .await?;
        for n in list.items {
            if let Some(name) = n.metadata.name
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
    }
    for name in names {
        // Read, change, replace with the read resourceVersion: a concurrent writer makes the
        // replace conflict and the retry read again.
        retry(&format!("update the role labels and taints of Node {name}"), 8, || {
            let nodes = nodes.clone();
            let name = name.clone();
            async move {
                let mut node = nodes.get(&name).await?;
                if migrate_node(&m, &mut node) {
                    println!(
                        "[upgrade] Updating the control-plane labels and taints of Node {name:?}"
                    );
                    nodes.replace(&name, &PostParams::default(), &node).await?;
                }
                Ok(())
            }
        })
        .await?;
    }
    Ok(())
}
