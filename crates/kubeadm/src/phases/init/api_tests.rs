//! The API phases of init against the test API server: convergence on re-runs, the
//! certificate key checked before any call, conflicts retried, a late Node waited for.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::Api;
use kubeadm_api::config::InitConfig;
use kubeadm_api::v1beta4::BootstrapToken;
use serde_json::json;

use super::addon::{addon_coredns, addon_kube_proxy};
use super::api_session::cluster_admins;
use super::bootstrap_token::bootstrap_token;
use super::mark_control_plane::mark_control_plane;
use super::upload_certs::upload_certs;
use super::upload_config::upload_config;
use crate::apiclient;
use kubeadm_api::defaults::HostFacts;
use kubeadm_testapi::TestApiServer;
use kubeadm_testapi::pki::TestPki;

fn cfg() -> InitConfig {
    cfg_of(None)
}

/// [`cfg`] for Kubernetes `version` (the default version when `None`).
fn cfg_of(version: Option<&str>) -> InitConfig {
    let (mut init, mut cluster, k, p) = InitConfig::start(Default::default());
    if let Some(v) = version {
        cluster.kubernetes_version = v.into();
    }
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
        let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(boot, "kube-system");
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

/// A v1.23 cluster's control-plane node and kubelet ConfigMap through the upgrades to 1.24 and
/// 1.25: the node ends as init of each minor marks it, and the kubelet configuration is found
/// under the old name and then the new one.
#[test]
fn upgrades_across_1_24_migrate_roles_and_find_the_kubelet_config() {
    let pki = TestPki::generate().unwrap();
    let server = TestApiServer::start(pki.server_config()).unwrap();
    let rt = apiclient::runtime().unwrap();
    server.register_node("cp-1").unwrap();
    rt.block_on(async {
        let kc = pki
            .kubeconfig(&server.url(), "kubernetes-admin", &["system:masters"])
            .unwrap();
        let c = apiclient::client_from_kubeconfig("admin.conf", &kc)
            .await
            .unwrap();
        let nodes: Api<Node> = Api::all(c.clone());
        let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(c.clone(), "kube-system");
        let roles = |n: Node| {
            let labels: Vec<String> = n
                .metadata
                .labels
                .unwrap_or_default()
                .into_keys()
                .filter(|k| k.starts_with("node-role.kubernetes.io/"))
                .collect();
            let taints: Vec<String> = n
                .spec
                .and_then(|s| s.taints)
                .unwrap_or_default()
                .into_iter()
                .map(|t| t.key)
                .collect();
            (labels, taints)
        };
        let (m, cp) = (
            "node-role.kubernetes.io/master",
            "node-role.kubernetes.io/control-plane",
        );
        let v23 = cfg_of(Some("v1.23.17"));
        mark_control_plane(&c, &v23).await.unwrap();
        upload_config(&c, &v23).await.unwrap();
        assert_eq!(
            roles(nodes.get("cp-1").await.unwrap()),
            (vec![cp.to_string(), m.to_string()], vec![m.to_string()])
        );
        assert!(cms.get_opt("kubelet-config").await.unwrap().is_none());
        let cluster_text = kubeadm_cluster::config_maps::cluster_configuration(&v23).unwrap();
        let found = apiclient::kubelet_config_text(&cms, &cluster_text)
            .await
            .unwrap();
        assert!(found.unwrap().contains("KubeletConfiguration"));

        // Upgrade to 1.24: the master label goes, the control-plane taint joins the master one;
        // the kubelet configuration moves to the unversioned name.
        let v24 = cfg_of(Some("v1.24.17"));
        crate::phases::upgrade::node_roles::migrate(&c, &v24)
            .await
            .unwrap();
        assert_eq!(
            roles(nodes.get("cp-1").await.unwrap()),
            (vec![cp.to_string()], vec![m.to_string(), cp.to_string()])
        );
        // Before the new ConfigMap is uploaded, a 1.24 configuration still finds the old one.
        let text24 = kubeadm_cluster::config_maps::cluster_configuration(&v24).unwrap();
        assert!(
            apiclient::kubelet_config_text(&cms, &text24)
                .await
                .unwrap()
                .is_some()
        );
        upload_config(&c, &v24).await.unwrap();
        assert!(cms.get_opt("kubelet-config").await.unwrap().is_some());
        // Upgrade to 1.25: the master taint goes; a second run changes nothing.
        let v25 = cfg_of(Some("v1.25.16"));
        crate::phases::upgrade::node_roles::migrate(&c, &v25)
            .await
            .unwrap();
        let after = roles(nodes.get("cp-1").await.unwrap());
        assert_eq!(after, (vec![cp.to_string()], vec![cp.to_string()]));
        let rv = server.state().store.resource_version();
        crate::phases::upgrade::node_roles::migrate(&c, &v25)
            .await
            .unwrap();
        assert_eq!(server.state().store.resource_version(), rv);
    });
}
