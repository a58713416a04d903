//! `init phase mark-control-plane`: the control-plane labels and taints on this node, once the
//! kubelet has registered it (also run by `join phase control-plane-join mark-control-plane`).

use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kubeadm_api::config::InitConfig;
use kubeadm_workflow::Phase;
use serde_json::json;

use super::InitContext;
use super::api_session::with_client;
use crate::apiclient::{self, ApiError, retry};
use crate::error::{Error, Result};

/// `mark-control-plane`.
pub fn phase() -> Phase<InitContext, Error> {
    Phase::leaf("mark-control-plane", "Mark a node as a control-plane", run).flags(&[
        "config",
        "node-name",
        "dry-run",
    ])
}

fn run(ctx: &mut InitContext) -> Result<()> {
    // The headings come before the requests they announce.
    let cfg = &ctx.cfg;
    let info = cfg.info();
    let name = cfg.node_name();
    let labels = kubeadm_cluster::node::control_plane_labels(info);
    println!(
        "[mark-control-plane] Marking the node {name} as control-plane by adding the labels: {labels:?}"
    );
    let taints: Vec<String> = match &cfg.init.node_registration.taints {
        Some(t) => t
            .iter()
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect(),
        None => kubeadm_cluster::node::default_taints(info)
            .iter()
            .map(|(k, e)| format!("{k}:{e}"))
            .collect(),
    };
    println!(
        "[mark-control-plane] Marking the node {name} as control-plane by adding the taints {taints:?}"
    );
    with_client(
        ctx,
        |c, cfg| async move { mark_control_plane(&c, &cfg).await },
    )
}

/// mark-control-plane: labels and taints on this node (strategic merge patch; existing taints
/// are kept, missing ones added).
pub async fn mark_control_plane(client: &Client, cfg: &InitConfig) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let name = cfg.node_name().to_string();
    let info = cfg.info();
    let want_taints: Vec<serde_json::Value> = match &cfg.init.node_registration.taints {
        Some(t) => t
            .iter()
            .map(|t| {
                let mut v = json!({"key": t.key, "effect": t.effect});
                if !t.value.is_empty() {
                    v["value"] = json!(t.value);
                }
                v
            })
            .collect(),
        None => kubeadm_cluster::node::default_taints(info)
            .into_iter()
            .map(|(k, e)| json!({"key": k, "effect": e}))
            .collect(),
    };
    let labels: serde_json::Map<String, serde_json::Value> =
        kubeadm_cluster::node::control_plane_labels(info)
            .into_iter()
            .map(|l| (l.to_string(), json!("")))
            .collect();
    // controlPlaneMode: systemd: no etcd mirror Pod tells a joining node where this member
    // listens, so the Node does.
    let etcd_url = (cfg.control_plane.systemd() && cfg.local_etcd().is_some())
        .then(|| kubeadm_render::etcd::client_url(cfg));
    // …nor which version its services run.
    let version = cfg.control_plane.systemd().then(|| cfg.version.to_string());
    wait_for_node(&nodes, &name, api_call_timeout(cfg)).await?;
    retry(&format!("mark node {name} as control-plane"), 8, || {
        let nodes = nodes.clone();
        let name = name.clone();
        let labels = labels.clone();
        let want = want_taints.clone();
        let etcd_url = etcd_url.clone();
        let version = version.clone();
        async move {
            let node = nodes.get(&name).await?;
            let mut taints: Vec<serde_json::Value> = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default()
                .iter()
                .map(|t| serde_json::to_value(t).unwrap_or_default())
                .collect();
            for t in want {
                if !taints
                    .iter()
                    .any(|x| x["key"] == t["key"] && x["effect"] == t["effect"])
                {
                    taints.push(t);
                }
            }
            let mut patch = json!({"metadata": {"labels": labels}, "spec": {"taints": taints}});
            if let Some(url) = &etcd_url {
                patch["metadata"]["annotations"]
                    [kubeadm_render::etcd::NODE_CLIENT_URLS_ANNOTATION] = json!(url);
            }
            if let Some(v) = &version {
                patch["metadata"]["annotations"]
                    [kubeadm_render::service::NODE_VERSION_ANNOTATION] = json!(v);
            }
            // Guard against racing writers: the patch applies only to what we read.
            patch["metadata"]["resourceVersion"] = json!(node.metadata.resource_version);
            nodes
                .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
                .map(|_| ())
        }
    })
    .await?;
    Ok(())
}

/// v1beta4 `timeouts.kubernetesAPICall` (default 1m).
pub fn api_call_timeout(cfg: &InitConfig) -> std::time::Duration {
    kubeadm_api::defaults::timeout(cfg.init.timeouts.as_ref(), |t| t.kubernetes_api_call)
}

/// Waits until the kubelet has registered the Node: it does so only once it runs with its
/// credentials, which can be after the phase that labels it starts (upstream polls the same way).
async fn wait_for_node(nodes: &Api<Node>, name: &str, timeout: std::time::Duration) -> Result<()> {
    // The last answer: `Ok` once registered, an error that is not worth waiting out, or the
    // last of those that are (not registered yet, a transient failure).
    let last: std::cell::RefCell<Option<std::result::Result<(), kube::Error>>> =
        std::cell::RefCell::new(None);
    let registered = || {
        let last = &last;
        async move {
            let answer = nodes.get(name).await.map(|_| ());
            let stop = match &answer {
                Ok(()) => true,
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    tracing::debug!("node {name} is not registered yet");
                    false
                }
                Err(e) if apiclient::is_transient(e) => {
                    tracing::debug!("waiting for node {name}: {e}");
                    false
                }
                Err(_) => true,
            };
            *last.borrow_mut() = Some(answer);
            stop
        }
    };
    let schedule = kubeadm_effects::poll::Schedule::every(std::time::Duration::from_millis(500));
    kubeadm_effects::poll::poll_until_async(timeout, schedule, registered, tokio::time::sleep)
        .await;
    match last.into_inner() {
        Some(Ok(())) => Ok(()),
        Some(Err(error)) => Err(ApiError::Request {
            action: format!(
                "wait for the kubelet to register node {name} (timeouts.kubernetesAPICall: {timeout:?})"
            ),
            error,
        }
        .into()),
        None => Err(Error::msg(format!("node {name} was never looked up"))),
    }
}
