//! The init phases that talk to the API server (bootstrap-token, upload-certs,
//! mark-control-plane, cluster-admins binding), as async functions of a client and the config.
//! Wiring them into `init_workflow()` (client from admin.conf through `ctx.fx`) happens where
//! the certs/kubeconfig phases land.
#![allow(dead_code)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Secret};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kubeadm_api::config::InitConfig;
use kubeadm_api::v1beta4::BootstrapToken;
use kubeadm_cluster::rbac::RbacSet;
use serde_json::json;

use crate::apiclient::{self, ApiError, apply_cluster, apply_ns, retry};
use crate::error::{Error, Result};

/// Creates-or-updates every object of an RBAC set.
pub async fn apply_rbac(client: &Client, set: &RbacSet) -> Result<(), ApiError> {
    for r in &set.cluster_roles {
        apply_cluster(client, r).await?;
    }
    for b in &set.cluster_role_bindings {
        apply_cluster(client, b).await?;
    }
    for r in &set.roles {
        apply_ns(client, r).await?;
    }
    for b in &set.role_bindings {
        apply_ns(client, b).await?;
    }
    Ok(())
}

/// bootstrap-token: the configured tokens, the bootstrap RBAC and cluster-info.
pub async fn bootstrap_token(client: &Client, cfg: &InitConfig, ca_pem: &[u8]) -> Result<()> {
    // Build everything before the first call.
    let now = jiff::Timestamp::now();
    let secrets: Vec<Secret> = cfg
        .init
        .bootstrap_tokens
        .iter()
        .map(|t| kubeadm_cluster::token::secret(t, now))
        .collect::<Result<_, _>>()?;
    let rbac = kubeadm_cluster::rbac::bootstrap_token(cfg.info());
    let cluster_info = kubeadm_cluster::cluster_info::config_map(&cfg.control_plane_url(), ca_pem)?;
    for s in &secrets {
        apply_ns(client, s).await?;
    }
    apply_rbac(client, &rbac).await?;
    ensure_cluster_info(client, &cluster_info).await?;
    Ok(())
}

/// Creates cluster-info, or updates only its `kubeconfig` key: the `jws-kubeconfig-*` keys
/// belong to the bootstrapsigner and must survive a re-run.
async fn ensure_cluster_info(
    client: &Client,
    desired: &k8s_openapi::api::core::v1::ConfigMap,
) -> Result<(), ApiError> {
    let api = apiclient::namespaced_api(client, desired);
    let kubeconfig = desired
        .data
        .as_ref()
        .and_then(|d| d.get("kubeconfig"))
        .cloned()
        .unwrap_or_default();
    retry(
        "create or update ConfigMap kube-public/cluster-info",
        8,
        || {
            let api = api.clone();
            let kubeconfig = kubeconfig.clone();
            async move {
                match api.get_opt("cluster-info").await? {
                    None => api.create(&Default::default(), desired).await.map(|_| ()),
                    Some(mut cur) => {
                        let data = cur.data.get_or_insert_with(Default::default);
                        if data.get("kubeconfig") == Some(&kubeconfig) {
                            return Ok(());
                        }
                        data.insert("kubeconfig".into(), kubeconfig);
                        api.replace("cluster-info", &Default::default(), &cur)
                            .await
                            .map(|_| ())
                    }
                }
            }
        },
    )
    .await
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
    let rbac = rbac_named(
        kubeadm_cluster::rbac::upload_config(cfg.info()),
        "kubeadm:nodes-kubeadm-config",
    );
    apply_ns(client, &cm).await?;
    apply_rbac(client, &rbac).await?;
    Ok(())
}

/// upload-config/kubelet: kubelet-config, and the RBAC letting nodes read it.
pub async fn upload_kubelet_config(client: &Client, cfg: &InitConfig) -> Result<()> {
    let cm = kubeadm_cluster::config_maps::kubelet_config(cfg)?;
    let rbac = rbac_named(
        kubeadm_cluster::rbac::upload_config(cfg.info()),
        "kubeadm:kubelet-config",
    );
    apply_ns(client, &cm).await?;
    apply_rbac(client, &rbac).await?;
    Ok(())
}

/// upload-config: both sub-phases.
pub async fn upload_config(client: &Client, cfg: &InitConfig) -> Result<()> {
    upload_kubeadm_config(client, cfg).await?;
    upload_kubelet_config(client, cfg).await
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

/// The kubeadm:cluster-admins ClusterRoleBinding (1.29 and later).
pub async fn cluster_admins(client: &Client, cfg: &InitConfig) -> Result<()> {
    if let Some(b) = kubeadm_cluster::rbac::cluster_admins(cfg.info()) {
        apply_cluster(client, &b).await?;
    }
    Ok(())
}

/// upload-certs: seals `files` with `key` into kube-system/kubeadm-certs, owned by a new 2 h
/// bootstrap token, and lets the bootstrap group read it. The key is checked first.
pub async fn upload_certs(
    client: &Client,
    key: &str,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<()> {
    kubeadm_api::token::validate_certificate_key(key).map_err(|e| {
        Error::with_hint(
            e,
            "pass --certificate-key with 64 hex characters, or omit it to have one generated (`kubeadm certs certificate-key`)",
        )
    })?;
    // Seal once with a dummy owner to fail on crypto errors before any API call.
    kubeadm_cluster::certs_secret::secret(key, files, "", "")?;
    let token = kubeadm_api::BootstrapTokenString::generate().map_err(Error::msg)?;
    let bt = BootstrapToken {
        token,
        description: "Proxy for managing TTL for the kubeadm-certs secret".into(),
        ttl: Some(kubeadm_api::Duration(2 * 3600 * 1_000_000_000)),
        expires: None,
        usages: Vec::new(),
        groups: Vec::new(),
    };
    let owner = kubeadm_cluster::token::secret(&bt, jiff::Timestamp::now())?;
    let created = apiclient::create_new(&apiclient::namespaced_api(client, &owner), &owner).await?;
    let uid = created.metadata.uid.clone().unwrap_or_default();
    let name = created.metadata.name.clone().unwrap_or_default();
    let sealed = kubeadm_cluster::certs_secret::secret(key, files, &name, &uid)?;
    apply_ns(client, &sealed).await.map_err(|e| {
        Error::with_hint(
            e.to_string(),
            "re-run `kubeadm init phase upload-certs --upload-certs` once the API server is healthy",
        )
    })?;
    apply_rbac(client, &kubeadm_cluster::rbac::upload_certs()).await?;
    Ok(())
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
    wait_for_node(&nodes, &name, api_call_timeout(cfg)).await?;
    retry(&format!("mark node {name} as control-plane"), 8, || {
        let nodes = nodes.clone();
        let name = name.clone();
        let labels = labels.clone();
        let want = want_taints.clone();
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

/// Upstream's default for v1beta4 `timeouts.kubernetesAPICall`.
const DEFAULT_API_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// v1beta4 `timeouts.kubernetesAPICall` (default 1m).
pub fn api_call_timeout(cfg: &InitConfig) -> std::time::Duration {
    cfg.init
        .timeouts
        .as_ref()
        .and_then(|t| t.kubernetes_api_call)
        .map(|d| d.to_std())
        .unwrap_or(DEFAULT_API_CALL_TIMEOUT)
}

/// Waits until the kubelet has registered the Node: it does so only once it runs with its
/// credentials, which can be after the phase that labels it starts (upstream polls the same way).
async fn wait_for_node(nodes: &Api<Node>, name: &str, timeout: std::time::Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match nodes.get(name).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 && tokio::time::Instant::now() < deadline => {
                tracing::debug!("node {name} is not registered yet");
            }
            Err(e) if apiclient::is_transient(&e) && tokio::time::Instant::now() < deadline => {
                tracing::debug!("waiting for node {name}: {e}");
            }
            Err(source) => {
                return Err(ApiError::Request {
                    action: format!(
                        "wait for the kubelet to register node {name} (timeouts.kubernetesAPICall: {timeout:?})"
                    ),
                    source,
                }
                .into());
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeadm_api::defaults::HostFacts;
    use kubeadm_testapi::TestApiServer;
    use kubeadm_testapi::pki::TestPki;

    fn cfg() -> InitConfig {
        let (mut init, cluster, k, p) = InitConfig::start(Default::default());
        init.bootstrap_tokens = vec![BootstrapToken {
            token: kubeadm_api::BootstrapTokenString::parse("abcdef.0123456789abcdef").unwrap(),
            description: String::new(),
            ttl: None,
            // A fixed expiry: re-running with a TTL refreshes the expiry, as upstream does.
            expires: Some("2999-01-01T00:00:00Z".into()),
            usages: vec!["signing".into(), "authentication".into()],
            groups: vec![kubeadm_cluster::token::DEFAULT_GROUP.into()],
        }];
        init.node_registration.name = "cp-1".into();
        init.local_api_endpoint.advertise_address = "10.0.0.1".into();
        let facts = HostFacts {
            hostname: "cp-1".into(),
            default_ip: Some("10.0.0.1".parse().unwrap()),
            ..Default::default()
        };
        InitConfig::complete(init, cluster, k, p, &facts, true, "test").unwrap()
    }

    /// Times every API phase of init against a fresh test server (figure for the README:
    /// `cargo test -p kubeadm --bin kubeadm api_phases_timing -- --nocapture`).
    #[test]
    fn api_phases_timing() {
        let pki = TestPki::generate().unwrap();
        let rt = apiclient::runtime().unwrap();
        let cfg = cfg();
        let mut runs = Vec::new();
        for _ in 0..5 {
            let server = TestApiServer::start(pki.server_config()).unwrap();
            let kc = pki
                .kubeconfig(&server.url(), "kubernetes-admin", &["system:masters"])
                .unwrap();
            rt.block_on(async {
                let c = apiclient::client_from_kubeconfig("admin.conf", &kc)
                    .await
                    .unwrap();
                let nodes: Api<Node> = Api::all(c.clone());
                let node: Node = serde_json::from_value(
                    json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"cp-1"}}),
                )
                .unwrap();
                nodes.create(&Default::default(), &node).await.unwrap();
                let key = kubeadm_api::token::generate_certificate_key().unwrap();
                let files = BTreeMap::from([("ca.key".to_string(), vec![0u8; 1700])]);
                let start = std::time::Instant::now();
                let mut opts = crate::waiter::WaitOptions::new("api-check");
                opts.progress = crate::waiter::Progress::Quiet;
                crate::waiter::wait_for(
                    &[crate::waiter::Endpoint::new(
                        "The API server",
                        format!("{}/readyz", server.url()),
                    )],
                    std::time::Duration::from_secs(5),
                    &opts,
                )
                .await
                .unwrap();
                cluster_admins(&c, &cfg).await.unwrap();
                upload_config(&c, &cfg).await.unwrap();
                upload_certs(&c, &key, &files).await.unwrap();
                mark_control_plane(&c, &cfg).await.unwrap();
                bootstrap_token(&c, &cfg, pki.ca_cert_pem.as_bytes())
                    .await
                    .unwrap();
                addon_coredns(&c, &cfg).await.unwrap();
                addon_kube_proxy(&c, &cfg).await.unwrap();
                runs.push(start.elapsed());
            });
        }
        runs.sort();
        eprintln!(
            "API phases of init against the test API server: median {:?} (min {:?}, max {:?}) over {} runs",
            runs[2],
            runs[0],
            runs[4],
            runs.len()
        );
        assert!(runs[2] < std::time::Duration::from_secs(10));
    }

    #[test]
    fn api_phases_converge_and_check_the_key_first() {
        let pki = TestPki::generate().unwrap();
        let server = TestApiServer::start(pki.server_config()).unwrap();
        let rt = apiclient::runtime().unwrap();
        let cfg = cfg();
        rt.block_on(async {
            let kc = pki
                .kubeconfig(&server.url(), "kubernetes-admin", &["system:masters"])
                .unwrap();
            let c = apiclient::client_from_kubeconfig("admin.conf", &kc)
                .await
                .unwrap();
            bootstrap_token(&c, &cfg, pki.ca_cert_pem.as_bytes())
                .await
                .unwrap();
            cluster_admins(&c, &cfg).await.unwrap();
            upload_config(&c, &cfg).await.unwrap();
            addon_coredns(&c, &cfg).await.unwrap();
            addon_kube_proxy(&c, &cfg).await.unwrap();
            let rv = server.state().store.resource_version();
            bootstrap_token(&c, &cfg, pki.ca_cert_pem.as_bytes())
                .await
                .unwrap();
            cluster_admins(&c, &cfg).await.unwrap();
            upload_config(&c, &cfg).await.unwrap();
            addon_coredns(&c, &cfg).await.unwrap();
            addon_kube_proxy(&c, &cfg).await.unwrap();
            assert_eq!(
                server.state().store.resource_version(),
                rv,
                "re-running changed the cluster"
            );
            assert!(
                server
                    .get(
                        "rbac.authorization.k8s.io",
                        "clusterrolebindings",
                        "",
                        "kubeadm:cluster-admins"
                    )
                    .is_some()
            );
            let dns = server
                .get("", "services", "kube-system", "kube-dns")
                .unwrap();
            assert_eq!(dns["spec"]["clusterIP"], "10.96.0.10");
            assert!(
                server
                    .get("apps", "daemonsets", "kube-system", "kube-proxy")
                    .is_some()
            );
            assert_eq!(
                server
                    .get("apps", "deployments", "kube-system", "coredns")
                    .unwrap()["spec"]["replicas"],
                2
            );
            // A node's bootstrap token may read kubeadm-config and kubelet-config, nothing else.
            let tk = pki.token_kubeconfig(&server.url(), "abcdef.0123456789abcdef");
            let boot = apiclient::client_from_kubeconfig("bootstrap", &tk)
                .await
                .unwrap();
            let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
                Api::namespaced(boot, "kube-system");
            let kcm = cms.get("kubeadm-config").await.unwrap();
            assert!(kcm.data.unwrap()["ClusterConfiguration"].contains("kubeadm.k8s.io/v1beta4"));
            cms.get("kubelet-config").await.unwrap();
            assert!(cms.list(&Default::default()).await.is_err());
            let ci = server
                .get("", "configmaps", "kube-public", "cluster-info")
                .unwrap();
            let kcfg = ci["data"]["kubeconfig"].as_str().unwrap();
            assert!(kcfg.contains("server: https://10.0.0.1:6443"), "{kcfg}");
            assert!(kubeadm_cluster::jws::verify(
                kcfg,
                ci["data"]["jws-kubeconfig-abcdef"].as_str().unwrap(),
                "abcdef",
                "0123456789abcdef"
            ));

            // Wrong-length key: error before any API call.
            let before = server.requests().len();
            let files = BTreeMap::from([("ca.key".to_string(), b"KEY".to_vec())]);
            assert!(upload_certs(&c, "abcd", &files).await.is_err());
            assert_eq!(server.requests().len(), before);
            let key = kubeadm_api::token::generate_certificate_key().unwrap();
            upload_certs(&c, &key, &files).await.unwrap();
            let s = server
                .get("", "secrets", "kube-system", "kubeadm-certs")
                .unwrap();
            let owner = &s["metadata"]["ownerReferences"][0];
            let owner_secret = server
                .get(
                    "",
                    "secrets",
                    "kube-system",
                    owner["name"].as_str().unwrap(),
                )
                .unwrap();
            assert_eq!(owner["uid"], owner_secret["metadata"]["uid"]);
            let sealed: Secret = serde_json::from_value(s).unwrap();
            assert_eq!(
                kubeadm_cluster::certs_secret::open(&key, &sealed).unwrap()["ca.key"],
                b"KEY"
            );

            // mark-control-plane on an existing node, twice, with a conflict in between.
            let nodes: Api<Node> = Api::all(c.clone());
            let node: Node = serde_json::from_value(
                json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"cp-1"},
                "spec":{"taints":[{"key":"other","effect":"NoExecute"}]}}),
            )
            .unwrap();
            nodes.create(&Default::default(), &node).await.unwrap();
            server.inject_conflicts(1);
            mark_control_plane(&c, &cfg).await.unwrap();
            mark_control_plane(&c, &cfg).await.unwrap();
            let n = server.get("", "nodes", "", "cp-1").unwrap();
            assert_eq!(
                n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
                ""
            );
            assert_eq!(
                n["metadata"]["labels"]["node.kubernetes.io/exclude-from-external-load-balancers"],
                ""
            );
            let taints = n["spec"]["taints"].as_array().unwrap();
            assert_eq!(taints.len(), 2, "{taints:?}");
            assert!(
                taints
                    .iter()
                    .any(|t| t["key"] == "node-role.kubernetes.io/control-plane"
                        && t["effect"] == "NoSchedule")
            );

            // A kubelet that registers late: the phase waits for its Node...
            let mut late = cfg.clone();
            late.init.node_registration.name = "cp-late".into();
            late.init.timeouts = Some(kubeadm_api::v1beta4::Timeouts {
                kubernetes_api_call: Some(kubeadm_api::duration::Duration::from_secs(1)),
                ..Default::default()
            });
            let register = {
                let nodes = nodes.clone();
                async move {
                    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
                    let node: Node = serde_json::from_value(
                        json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"cp-late"}}),
                    )
                    .unwrap();
                    nodes.create(&Default::default(), &node).await.unwrap();
                }
            };
            let (marked, ()) = tokio::join!(mark_control_plane(&c, &late), register);
            marked.unwrap();
            assert!(
                server.get("", "nodes", "", "cp-late").unwrap()["metadata"]["labels"]
                    ["node-role.kubernetes.io/control-plane"]
                    .is_string()
            );
            // ...until timeouts.kubernetesAPICall, then says what it waited for.
            late.init.node_registration.name = "cp-never".into();
            let err = mark_control_plane(&c, &late).await.unwrap_err().to_string();
            assert!(
                err.contains("register node cp-never") && err.contains("kubernetesAPICall"),
                "{err}"
            );
        });
    }
}
