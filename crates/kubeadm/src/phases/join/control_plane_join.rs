//! `join phase control-plane-join etcd|mark-control-plane`: this node's etcd member added (as a
//! learner, promoted once caught up) and the node labelled and tainted.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kubeadm_etcd::{EtcdError, Member};
use kubeadm_render::etcd;
use kubeadm_workflow::Phase;

use super::JoinContext;
use crate::apiclient;
use crate::error::{Error, Result};
use crate::etcd_membership::Membership;
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
                        "control-plane-mode",
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
/// upstream finds them), else (controlPlaneMode: systemd, no mirror Pods) from the
/// control-plane Nodes' annotation.
async fn etcd_endpoints(client: kube::Client) -> Result<Vec<String>> {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
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
    if out.is_empty() {
        let lp = ListParams::default().labels("node-role.kubernetes.io/control-plane");
        let list = apiclient::retry("list control-plane Nodes", 5, || nodes.list(&lp)).await?;
        out = list
            .items
            .iter()
            .filter_map(|n| {
                n.metadata
                    .annotations
                    .as_ref()?
                    .get(kubeadm_render::etcd::NODE_CLIENT_URLS_ANNOTATION)
                    .cloned()
            })
            .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
            .filter(|u| !u.is_empty())
            .collect();
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// How many raft entries a new member may lag the leader's and count as caught up: a writer
/// keeps the leader a few entries ahead, a member that is still catching up lags by thousands.
const CATCH_UP_MARGIN: u64 = 50;

/// Where to look when the new member does not come up.
const MEMBER_HINT: &str = "the kubelet runs etcd from /etc/kubernetes/manifests/etcd.yaml: check the kubelet's log (`journalctl -u kubelet`) and the etcd container (`crictl ps -a --name etcd`, then `crictl logs <container>`)";

/// Whether this node's member joins as a learner: always, since every etcd we deploy (3.4+)
/// has learners, so the cluster keeps its quorum while the new member starts and catches up;
/// a voter only when the operator turned the feature gate `EtcdLearnerMode` off explicitly.
fn joins_as_learner(cfg: &kubeadm_api::config::InitConfig) -> bool {
    cfg.cluster
        .feature_gates
        .get("EtcdLearnerMode")
        .copied()
        .unwrap_or(true)
}

/// `--initial-cluster` of this node's etcd: `(name, peer URL)` for every peer URL of every
/// member. This node's member is named after the node. Another member carries its own name,
/// or — when it has not started yet (a join that died after adding it) — its hex id: etcd reads
/// the entries of one name as one member, so a second unnamed member under this node's name
/// would be refused.
fn initial_cluster(members: &[Member], me: u64, node_name: &str) -> Vec<(String, String)> {
    members
        .iter()
        .flat_map(|m| {
            let name = if m.id == me {
                node_name.to_string()
            } else if m.name.is_empty() {
                format!("{:x}", m.id)
            } else {
                m.name.clone()
            };
            m.peer_urls.iter().map(move |u| (name.clone(), u.clone()))
        })
        .collect()
}

/// The first client URL etcd advertises in `pod` (the manifest as written, patches included).
fn advertised_client_url(pod: &Pod) -> Option<String> {
    let command = pod.spec.as_ref()?.containers.first()?.command.as_ref()?;
    command.iter().find_map(|a| {
        let urls = a.strip_prefix("--advertise-client-urls=")?;
        urls.split(',').next().map(str::to_string)
    })
}

fn etcd_join(ctx: &mut JoinContext) -> Result<()> {
    let cfg = ctx.init_config()?;
    let Some(local) = cfg.local_etcd().cloned() else {
        return Ok(());
    };
    let peer_url = etcd::peer_url(&cfg);
    let learner = joins_as_learner(&cfg);
    // Returns the client URL the written manifest advertises.
    let write_manifest = |ctx: &mut JoinContext, members: &[(String, String)]| -> Result<String> {
        ctx.with_init(|ictx| {
            let mut pod = etcd::pod(&ictx.cfg, &local, members);
            if let Some(set) = manifests::load_patches(ictx)? {
                pod = set.apply_pod("etcd", pod)?.0;
            }
            let url = advertised_client_url(&pod).unwrap_or_else(|| etcd::client_url(&ictx.cfg));
            manifests::ensure_private_dir(ictx, Path::new(&local.data_dir), 0o700)?;
            if !ictx.cfg.control_plane.systemd() {
                println!("[etcd] Creating static Pod manifest for \"etcd\"");
            }
            manifests::write_component(ictx, "etcd", &pod)?;
            Ok(url)
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
            println!(
                "[etcd] This node's etcd member {:x} ({peer_url}) is already in the cluster{}",
                m.id,
                if m.is_learner { " as a learner" } else { "" }
            );
            (m.clone(), existing.clone())
        }
        None => {
            let (m, list) = etcd
                .member_add_when_ready(&peer_url, learner, timeout)
                .map_err(etcd_err("add this node's etcd member"))?;
            println!(
                "[etcd] Announced new etcd member {:x} joining to the existing etcd cluster{}",
                m.id,
                if m.is_learner { " as a learner" } else { "" }
            );
            (m, list)
        }
    };
    let client_url = write_manifest(ctx, &initial_cluster(&members, me.id, cfg.node_name()))?;
    println!(
        "[etcd] Waiting for the new etcd member to join the cluster. This can take up to {timeout:?}"
    );
    wait_member(etcd.as_ref(), &me, cfg.node_name(), &client_url, timeout)
}

/// Waits within `timeout` until this node's new member serves: a learner until it answers at
/// its own `client_url` with a raft index close to the leader's, then promoted, then healthy
/// (has a leader and quorum); a voter until it is healthy. The phases after this one then
/// talk to a cluster with quorum.
fn wait_member(
    etcd: &dyn Membership,
    me: &Member,
    node: &str,
    client_url: &str,
    timeout: Duration,
) -> Result<()> {
    let start = Instant::now();
    let left = || timeout.saturating_sub(start.elapsed());
    let failed = |what: &str, source: EtcdError| {
        Error::with_hint(
            format!(
                "etcd: this node's member {node} ({:x}) at {client_url} {what}: {source}",
                me.id
            ),
            MEMBER_HINT,
        )
    };
    if me.is_learner {
        let status = etcd
            .wait_caught_up(me.id, client_url, CATCH_UP_MARGIN, left())
            .map_err(|e| failed("did not catch up with the leader", e))?;
        println!(
            "[etcd] The learner member {:x} answers at {client_url} and has caught up (raft index {}) after {:.3}s",
            me.id,
            status.raft_index,
            start.elapsed().as_secs_f64()
        );
        etcd.promote_when_ready(me.id, left())
            .map_err(|e| failed("could not be promoted to a voting member", e))?;
        println!(
            "[etcd] Promoted the learner member {:x} to a voting member after {:.3}s",
            me.id,
            start.elapsed().as_secs_f64()
        );
    }
    etcd.wait_healthy_at(client_url, left())
        .map_err(|e| failed("is not healthy", e))?;
    println!(
        "[etcd] The etcd member {:x} at {client_url} is healthy after {:.3}s",
        me.id,
        start.elapsed().as_secs_f64()
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, name: &str, peer: &str) -> Member {
        Member {
            id,
            name: name.into(),
            peer_urls: vec![peer.into()],
            client_urls: Vec::new(),
            is_learner: name.is_empty(),
        }
    }

    #[test]
    fn the_member_joins_as_a_learner_for_every_version_unless_the_gate_is_off() {
        use kubeadm_api::config::InitConfig;
        for version in ["v1.24.0", "v1.28.0", "v1.33.0"] {
            let (init, mut cluster, kubelet, proxy) = InitConfig::start(Default::default());
            cluster.kubernetes_version = version.into();
            let facts = kubeadm_api::defaults::HostFacts {
                hostname: "n".into(),
                default_ip: Some("10.0.0.1".parse().unwrap()),
                cri_sockets_found: vec![],
            };
            let mut cfg =
                InitConfig::complete(init, cluster, kubelet, proxy, &facts, true, "t").unwrap();
            assert!(joins_as_learner(&cfg), "{version}");
            cfg.cluster
                .feature_gates
                .insert("EtcdLearnerMode".into(), false);
            assert!(!joins_as_learner(&cfg), "{version} with the gate off");
        }
    }

    #[test]
    fn every_unnamed_member_but_this_one_keeps_a_distinct_name() {
        let members = [
            member(0xa, "cp-a", "https://10.0.0.1:2380"),
            // A join of cp-b that died after adding its member: never started, no name.
            member(0xb, "", "https://10.0.0.2:2380"),
            // This node's member, just added.
            member(0xc, "", "https://10.0.0.3:2380"),
        ];
        let got = initial_cluster(&members, 0xc, "cp-c");
        assert_eq!(
            got,
            [
                ("cp-a".to_string(), "https://10.0.0.1:2380".to_string()),
                ("b".to_string(), "https://10.0.0.2:2380".to_string()),
                ("cp-c".to_string(), "https://10.0.0.3:2380".to_string()),
            ]
        );
        let mut names: Vec<&String> = got.iter().map(|(n, _)| n).collect();
        names.dedup();
        assert_eq!(names.len(), 3, "one name per member: {got:?}");
    }

    #[test]
    fn a_member_with_several_peer_urls_is_listed_with_each() {
        let mut a = member(0xa, "cp-a", "https://10.0.0.1:2380");
        a.peer_urls.push("https://[fd00::1]:2380".into());
        let got = initial_cluster(&[a], 0xc, "cp-c");
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(n, _)| n == "cp-a"));
    }
}
