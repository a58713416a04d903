//! `join phase control-plane-join etcd|mark-control-plane`: this node's etcd member added (as a
//! learner, promoted once caught up) and the node labelled and tainted.

use std::path::Path;
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kubeadm_render::{etcd, pod_yaml};
use kubeadm_workflow::Phase;

use super::JoinContext;
use crate::apiclient;
use crate::error::{Error, Result};
use crate::phases::init::manifests;

/// Annotation on etcd mirror Pods naming the member's client URL.
const ETCD_CLIENT_URLS_ANNOTATION: &str = "kubeadm.kubernetes.io/etcd.advertise-client-urls";

/// `control-plane-join` and its sub-phases (control-plane joins only).
pub fn phase() -> Phase<JoinContext, Error> {
    Phase::group(
        "control-plane-join",
        "Join a machine as a control plane instance",
        vec![
            Phase::leaf("etcd", "Add a new local etcd member", etcd_join).flags(
                &[
                    super::DISCOVERY_FLAGS,
                    &[
                        "control-plane",
                        "node-name",
                        "apiserver-advertise-address",
                        "patches",
                    ],
                ]
                .concat(),
            ),
            Phase::leaf(
                "mark-control-plane",
                "Mark a node as a control-plane",
                mark_control_plane,
            )
            .flags(&[super::DISCOVERY_FLAGS, &["control-plane", "node-name"]].concat()),
        ],
    )
    .when(super::is_control_plane)
}

/// The client URLs of the running etcd members, from the etcd mirror Pods' annotation (as
/// upstream finds them).
async fn etcd_endpoints(client: kube::Client) -> Result<Vec<String>> {
    let api: Api<Pod> = Api::namespaced(client, "kube-system");
    let lp = ListParams::default().labels("component=etcd,tier=control-plane");
    let pods = apiclient::retry("list etcd Pods in kube-system", 5, || api.list(&lp)).await?;
    let mut out: Vec<String> = pods
        .items
        .iter()
        .filter_map(|p| {
            p.metadata
                .annotations
                .as_ref()?
                .get(ETCD_CLIENT_URLS_ANNOTATION)
                .cloned()
        })
        .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|u| !u.is_empty())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

fn etcd_join(ctx: &mut JoinContext) -> Result<()> {
    let cfg = ctx.init_config()?;
    let Some(local) = cfg.local_etcd().cloned() else {
        return Ok(());
    };
    let peer_url = etcd::peer_url(&cfg);
    let learner = cfg
        .cluster
        .feature_gates
        .get("EtcdLearnerMode")
        .copied()
        .unwrap_or_else(|| cfg.info().etcd_learner_mode_default());
    let write_manifest = |ctx: &mut JoinContext, members: &[(String, String)]| -> Result<()> {
        ctx.with_init(|ictx| {
            let mut pod = etcd::pod(&ictx.cfg, &local, members);
            if let Some(set) = manifests::load_patches(ictx)? {
                pod = set.apply_pod("etcd", pod)?.0;
            }
            manifests::ensure_private_dir(ictx, Path::new(&local.data_dir), 0o700)?;
            println!("[etcd] Creating static Pod manifest for \"etcd\"");
            manifests::write_manifest(ictx, "etcd", pod_yaml(&pod)?)
        })
    };
    let endpoints = ctx.admin_api()?.run(etcd_endpoints)?;
    let etcd = ctx.etcd(&endpoints, Path::new(&cfg.cluster.certificates_dir))?;
    let etcd_err = |action: &str| {
        let action = action.to_string();
        move |source| Error::Etcd { action, source }
    };
    let timeout = ctx.timeout(|t| t.etcd_api_call);
    let existing = etcd
        .member_list()
        .map_err(etcd_err("list the etcd members"))?;
    // A join that died after adding the member finds it again instead of adding a second one.
    let (me, members) = match existing.iter().find(|m| m.peer_urls.contains(&peer_url)) {
        Some(m) => {
            println!("[etcd] This node's etcd member ({peer_url}) is already in the cluster");
            (m.clone(), existing.clone())
        }
        None => {
            let (m, list) = etcd
                .member_add(&peer_url, learner)
                .map_err(etcd_err("add this node's etcd member"))?;
            println!("[etcd] Announced new etcd member joining to the existing etcd cluster");
            (m, list)
        }
    };
    let initial: Vec<(String, String)> = members
        .iter()
        .filter_map(|m| {
            let url = m.peer_urls.first()?.clone();
            let name = if m.id == me.id || m.name.is_empty() {
                cfg.node_name().to_string()
            } else {
                m.name.clone()
            };
            Some((name, url))
        })
        .collect();
    write_manifest(ctx, &initial)?;
    println!(
        "[etcd] Waiting for the new etcd member to join the cluster. This can take up to {timeout:?}"
    );
    let start = Instant::now();
    if me.is_learner {
        etcd.promote_when_ready(me.id, timeout)
            .map_err(etcd_err("promote this node's learner member"))?;
        println!(
            "[etcd] Promoted the learner member {:x} to a voting member after {:.3}s",
            me.id,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn mark_control_plane(ctx: &mut JoinContext) -> Result<()> {
    let cfg = ctx.init_config()?;
    println!(
        "[mark-control-plane] Marking the node {} as control-plane by adding the labels {:?} and taints",
        cfg.node_name(),
        kubeadm_cluster::node::control_plane_labels(cfg.info())
    );
    ctx.admin_api()?.run(|client| async move {
        crate::phases::init::mark_control_plane::mark_control_plane(&client, &cfg).await
    })
}
