//! `kubeadm upgrade plan [version]`: the cluster's versions (API server, control-plane static
//! Pods, kubelets, etcd, CoreDNS, kube-proxy), the upgrades the offline version table and the
//! version policy allow, the config API change, and this node's certificates (which ones
//! `upgrade apply` renews, and those expiring soon that it does not) — as text, or upstream's
//! `output.kubeadm.k8s.io/v1alpha3` UpgradePlan in JSON or YAML (the certificates as an
//! added `certificates` list).

use std::path::Path;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kubeadm_api::KubeVersion;
use kubeadm_api::upgrade::{self, TargetKind, Unstable};
use serde_json::{Value, json};

use super::{load_config, read_only_context};
use crate::cli::{ListFormat, UpgradePlanArgs};
use crate::error::{Error, Result};

/// One row of a plan table.
struct Row {
    name: &'static str,
    node: String,
    current: String,
    target: String,
}

/// Certificates expiring within this window that the upgrade does not renew are warned about.
const SOON: i64 = 30 * 86400;

/// One certificate (or kubeconfig's client certificate) of this node.
struct CertRow {
    name: String,
    /// Unix seconds.
    not_after: i64,
    /// `upgrade apply --certificate-renewal` renews it.
    renewed: bool,
}

/// This node's certificates that exist: the CAs, the leaf certificates and the kubeconfigs'
/// client certificates, in `certs check-expiration`'s names.
fn certificates(
    fx: &dyn kubeadm_effects::Effects,
    cluster: &kubeadm_api::v1beta4::ClusterConfiguration,
) -> Result<Vec<CertRow>> {
    let local = cluster.etcd.external.is_none();
    let renewed: Vec<String> = [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ]
    .iter()
    .flat_map(|c| crate::phases::upgrade::certs::names_for(c, local))
    .chain(["admin.conf".to_string()])
    .collect();
    let cas = kubeadm_pki::table::CERTS
        .iter()
        .filter(|c| c.is_ca())
        .map(|c| c.name.to_string());
    let kdir = Path::new(crate::phases::init::kubeconfig::KUBECONFIG_DIR);
    let mut rows = Vec::new();
    for name in cas.chain(crate::commands::certs::renewable_names()) {
        if let Some(not_after) = crate::commands::certs::not_after(fx, cluster, kdir, &name)? {
            rows.push(CertRow {
                renewed: renewed.contains(&name),
                name,
                not_after,
            });
        }
    }
    Ok(rows)
}

/// Image tag of a container image reference (`registry/x:tag` → `tag`).
fn tag(image: &str) -> String {
    image
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map(|(_, t)| t.to_string())
        .unwrap_or_default()
}

/// Runs `upgrade plan`.
pub fn run(root: &Path, args: &UpgradePlanArgs) -> Result<()> {
    let cfg = load_config(&args.common)?;
    let unstable = Unstable {
        experimental: args.allow_experimental_upgrades
            || cfg.plan.allow_experimental_upgrades == Some(true),
        release_candidates: args.allow_release_candidate_upgrades
            || cfg.plan.allow_rc_upgrades == Some(true),
    };
    let wanted = args
        .version
        .clone()
        .or_else(|| Some(cfg.plan.kubernetes_version.clone()).filter(|v| !v.is_empty()));
    let wanted = match wanted {
        Some(w) => Some(kubeadm_api::version::resolve(&w).map_err(|e| {
            Error::with_hint(
                format!("upgrade version {w:?}: {e}"),
                "name a version such as v1.32.0",
            )
        })?),
        None => None,
    };
    let text = args.output == ListFormat::Text;
    if text {
        println!(
            "[upgrade/config] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"..."
        );
    }
    let mut ctx = read_only_context(root, &args.common, None, unstable);
    let view = ctx.view()?;
    let cluster = view.api_version.clone();
    let kubelets: Vec<(String, String)> = view
        .nodes
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                n.kubelet
                    .as_ref()
                    .map(|k| k.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let kubelet_versions = view.kubelet_versions();
    let stored_api = serde_saphyr::from_str::<Value>(&view.cluster_text)
        .ok()
        .and_then(|v| v["apiVersion"].as_str().map(str::to_string))
        .unwrap_or_default();
    let cluster_cfg = view.cluster_configuration()?;
    let (pods, coredns, proxy) = ctx.block_on(|c| async move {
        let pods: Api<Pod> = Api::namespaced(c.clone(), "kube-system");
        let pods = pods
            .list(&ListParams::default().labels("tier=control-plane"))
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let deploys: Api<Deployment> = Api::namespaced(c.clone(), "kube-system");
        let coredns = deploys.get_opt("coredns").await.ok().flatten();
        let ds: Api<DaemonSet> = Api::namespaced(c, "kube-system");
        let proxy = ds.get_opt("kube-proxy").await.ok().flatten();
        Ok((pods, coredns, proxy))
    })?;
    let image_of = |spec: Option<&k8s_openapi::api::core::v1::PodSpec>| {
        spec.and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .map(|i| tag(&i))
            .unwrap_or_default()
    };
    let current_of = |component: &str| -> Vec<(String, String)> {
        pods.iter()
            .filter(|p| {
                p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("component"))
                    .is_some_and(|c| c == component)
            })
            .map(|p| {
                (
                    p.spec
                        .as_ref()
                        .and_then(|s| s.node_name.clone())
                        .unwrap_or_default(),
                    image_of(p.spec.as_ref()),
                )
            })
            .collect()
    };
    let coredns_tag = image_of(
        coredns
            .as_ref()
            .map(|d| &d.spec)
            .and_then(|s| s.template.spec.as_ref()),
    );
    let proxy_tag = image_of(
        proxy
            .as_ref()
            .map(|d| &d.spec)
            .and_then(|s| s.template.spec.as_ref()),
    );
    let local_etcd = cluster_cfg.etcd.local.is_some();
    let certs = certificates(ctx.fx.as_ref(), &cluster_cfg)?;

    let mut upgrades = Vec::new();
    for t in upgrade::targets(&cluster, wanted.as_ref()) {
        let report = upgrade::check(&cluster, &t.version, &kubelet_versions, unstable);
        let v = t.version.to_string();
        let mut rows = Vec::new();
        for (node, cur) in &kubelets {
            rows.push(Row {
                name: "kubelet",
                node: node.clone(),
                current: cur.clone(),
                target: v.clone(),
            });
        }
        for component in [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ] {
            for (node, cur) in current_of(component) {
                rows.push(Row {
                    name: component,
                    node,
                    current: cur,
                    target: v.clone(),
                });
            }
        }
        if proxy.is_some() {
            rows.push(Row {
                name: "kube-proxy",
                node: String::new(),
                current: proxy_tag.clone(),
                target: v.clone(),
            });
        }
        if coredns.is_some() {
            rows.push(Row {
                name: "CoreDNS",
                node: String::new(),
                current: coredns_tag.clone(),
                target: t.info.coredns.to_string(),
            });
        }
        if local_etcd {
            for (node, cur) in current_of("etcd") {
                rows.push(Row {
                    name: "etcd",
                    node,
                    current: cur,
                    target: t.info.etcd.to_string(),
                });
            }
        }
        upgrades.push((t, report, rows));
    }
    let preferred_api = kubeadm_api::version::minor_info(
        upgrades
            .last()
            .map(|(t, _, _)| t.version.minor)
            .unwrap_or(cluster.minor),
    )
    .map(|i| i.config_api_version())
    .unwrap_or(kubeadm_api::v1beta4::API_VERSION);

    match args.output {
        ListFormat::Text => {
            print_text(&cluster, &upgrades, &stored_api, preferred_api);
            print_certificates(&certs);
        }
        ListFormat::Json | ListFormat::Yaml => {
            let mut doc = structured(&upgrades, &stored_api, preferred_api);
            doc["certificates"] = certificates_json(&certs);
            let out = if args.output == ListFormat::Json {
                serde_json::to_string_pretty(&doc).map_err(|e| Error::msg(e.to_string()))? + "\n"
            } else {
                serde_saphyr::to_string(&doc).map_err(|e| Error::msg(e.to_string()))?
            };
            print!("{out}");
        }
    }
    Ok(())
}

type Upgrade = (upgrade::Target, upgrade::PolicyReport, Vec<Row>);

fn description(t: &upgrade::Target) -> String {
    match t.kind {
        TargetKind::Patch => format!("version in the v1.{} series", t.version.minor),
        TargetKind::Minor => "stable version".to_string(),
    }
}

fn structured(upgrades: &[Upgrade], stored_api: &str, preferred_api: &str) -> Value {
    let available: Vec<Value> = upgrades
        .iter()
        .map(|(t, report, rows)| {
            json!({
                "description": description(t),
                "components": rows.iter().map(|r| {
                    let mut c = json!({"name": r.name, "currentVersion": r.current, "newVersion": r.target});
                    if !r.node.is_empty() {
                        c["nodeName"] = json!(r.node);
                    }
                    c
                }).collect::<Vec<_>>(),
                "allowed": report.allows(false),
                "problems": report.errors.iter().map(|e| json!({"message": e.message, "skippable": e.skippable})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
        "kind": "UpgradePlan",
        "availableUpgrades": available,
        "configVersions": [{
            "configGroup": "kubeadm.k8s.io",
            "currentVersion": stored_api.rsplit('/').next().unwrap_or_default(),
            "preferredVersion": preferred_api.rsplit('/').next().unwrap_or_default(),
            "manualUpgradeRequired": false,
        }],
    })
}

fn certificates_json(rows: &[CertRow]) -> Value {
    let now = kubeadm_api::dates::now_unix();
    rows.iter()
        .map(|r| {
            json!({
                "name": r.name,
                "expirationDate": kubeadm_api::dates::rfc3339(r.not_after).unwrap_or_default(),
                "residualTime": crate::commands::certs::residual(r.not_after - now),
                "renewedByUpgrade": r.renewed,
                "expiresSoon": r.not_after - now < SOON,
            })
        })
        .collect()
}

fn print_certificates(rows: &[CertRow]) {
    use crate::commands::certs::{expires, residual};
    let now = kubeadm_api::dates::now_unix();
    println!();
    println!(
        "Certificates of this node (`kubeadm upgrade apply` renews those marked yes, unless --certificate-renewal=false):"
    );
    println!();
    println!(
        "{:<26} {:<24} {:<15} RENEWED BY UPGRADE",
        "CERTIFICATE", "EXPIRES", "RESIDUAL TIME"
    );
    for r in rows {
        println!(
            "{:<26} {:<24} {:<15} {}",
            r.name,
            expires(r.not_after),
            residual(r.not_after - now),
            if r.renewed { "yes" } else { "no" }
        );
    }
    for r in rows
        .iter()
        .filter(|r| !r.renewed && r.not_after - now < SOON)
    {
        println!(
            "[upgrade/certificates] WARNING: {} expires in {} and the upgrade does not renew it: {}",
            r.name,
            residual(r.not_after - now),
            if kubeadm_pki::table::find(&r.name).is_some_and(|c| c.is_ca()) {
                "a CA is replaced by hand (see \"Certificate Management with kubeadm\", manual CA rotation)"
            } else {
                "renew it with `kubeadm certs renew`"
            }
        );
    }
}

fn table(rows: &[&Row]) {
    let w = |f: &dyn Fn(&Row) -> usize, min: usize| {
        rows.iter().map(|r| f(r)).max().unwrap_or(0).max(min)
    };
    let (wn, wd, wc) = (
        w(&|r| r.name.len(), 9),
        w(&|r| r.node.len(), 4),
        w(&|r| r.current.len(), 7),
    );
    println!(
        "{:wn$}   {:wd$}   {:wc$}   TARGET",
        "COMPONENT", "NODE", "CURRENT"
    );
    for r in rows {
        println!(
            "{:wn$}   {:wd$}   {:wc$}   {}",
            r.name, r.node, r.current, r.target
        );
    }
}

fn print_text(cluster: &KubeVersion, upgrades: &[Upgrade], stored_api: &str, preferred_api: &str) {
    println!(
        "[upgrade] Fetching available versions to upgrade to (offline: from this kubeadm's version table)"
    );
    println!("[upgrade/versions] Cluster version: {cluster}");
    println!(
        "[upgrade/versions] kubeadm version: {}",
        kubeadm_api::version::default_version()
    );
    if upgrades.is_empty() {
        println!();
        println!("Awesome, you're up-to-date! Enjoy!");
        return;
    }
    for (t, report, rows) in upgrades {
        println!("[upgrade/versions] Target version: {}", t.version);
        println!();
        println!(
            "Components that must be upgraded manually after you have upgraded the control plane with 'kubeadm upgrade apply':"
        );
        table(
            &rows
                .iter()
                .filter(|r| r.name == "kubelet")
                .collect::<Vec<_>>(),
        );
        println!();
        println!("Upgrade to the latest {}:", description(t));
        println!();
        table(
            &rows
                .iter()
                .filter(|r| r.name != "kubelet")
                .collect::<Vec<_>>(),
        );
        println!();
        if report.allows(false) {
            println!("You can now apply the upgrade by executing the following command:");
            println!();
            println!("\tkubeadm upgrade apply {}", t.version);
        } else {
            println!("This upgrade is not allowed as things are:");
            println!("{}", report.describe());
        }
        println!();
        println!("_____________________________________________________________________");
        println!();
    }
    println!(
        "The table below shows the current state of component configs as understood by this version of kubeadm."
    );
    println!(
        "Configs that have a \"yes\" mark in the \"MANUAL UPGRADE REQUIRED\" column require manual config upgrade or"
    );
    println!("resetting to kubeadm defaults before a successful upgrade can be performed.");
    println!();
    println!(
        "API GROUP                 CURRENT VERSION   PREFERRED VERSION   MANUAL UPGRADE REQUIRED"
    );
    println!(
        "{:25} {:17} {:19} no",
        "kubeadm.k8s.io",
        stored_api.rsplit('/').next().unwrap_or_default(),
        preferred_api.rsplit('/').next().unwrap_or_default()
    );
    println!();
    println!("_____________________________________________________________________");
}
