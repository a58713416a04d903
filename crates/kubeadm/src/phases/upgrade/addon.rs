//! `upgrade apply|node phase addon coredns|kube-proxy`: the addons at the new version, through
//! init's own builders, only once every control-plane instance runs the target version (as
//! upstream from 1.28): each control-plane Node's kube-apiserver, kube-controller-manager and
//! kube-scheduler mirror Pods carry the target's image tag.
//!
//! The objects users customise keep their changes: CoreDNS's Deployment and ConfigMap (the
//! Corefile server block by server block) and kube-proxy's DaemonSet and ConfigMap (its
//! `config.conf` KubeProxyConfiguration field by field) are three-way merged
//! (`kubeadm_cluster::merge`) against what kubeadm applied last (the record on the object; for
//! an object without one, what kubeadm applies at the cluster's current version). What was kept
//! and what both sides changed is printed; under `--dry-run` each object's diff is shown.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams};
use kubeadm_cluster::merge;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Mode, UpgradeContext, leaf};
use crate::apiclient::{apply_cluster, apply_ns};
use crate::error::{Error, Result};

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
        let node_api: Api<k8s_openapi::api::core::v1::Node> = Api::all(c.clone());
        let pods: Api<Pod> = Api::namespaced(c, "kube-system");
        let lp = ListParams::default().labels("tier=control-plane");
        let list = crate::apiclient::retry("list control-plane Pods", 5, || pods.list(&lp)).await?;
        let mut behind = Vec::new();
        for node in &nodes {
            let mirrored = list.items.iter().any(|p| {
                [
                    "etcd",
                    "kube-apiserver",
                    "kube-controller-manager",
                    "kube-scheduler",
                ]
                .iter()
                .any(|c| p.metadata.name.as_deref() == Some(&format!("{c}-{node}")))
            });
            // controlPlaneMode: systemd: no mirror Pods; the Node says what its services run.
            if !mirrored {
                let annotated = node_api
                    .get_opt(node)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|n| n.metadata.annotations)
                    .and_then(|a| {
                        a.get(kubeadm_render::service::NODE_VERSION_ANNOTATION)
                            .cloned()
                    });
                if let Some(v) = annotated {
                    if v != target {
                        behind.push(format!("{node}: its services run {v}"));
                    }
                    continue;
                }
            }
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
    // As upstream's `upgrade node`: a worker leaves the addons to the control plane (its
    // kubelet credentials could not read them either).
    if ctx.opts.mode == Mode::Node
        && super::cluster::manifest(ctx.fx.as_ref(), "kube-apiserver").is_none()
        && !crate::services::installed(ctx.fx.as_ref())
    {
        println!("[upgrade/addon] Skipping the addon/{addon} phase. Not a control plane node");
        return Ok(false);
    }
    // A dry run changed no node: the control planes it would upgrade count as upgraded.
    let behind = if ctx.opts.dry_run {
        Vec::new()
    } else {
        not_upgraded(ctx)?
    };
    if behind.is_empty() {
        return Ok(true);
    }
    println!(
        "[upgrade/addon] Skipping upgrade of the {addon} addon: not all control plane instances have been upgraded yet ({}); it is upgraded by the `kubeadm upgrade` of the last control-plane node",
        behind.join(", ")
    );
    Ok(false)
}

/// The live objects the merge needs, as JSON (`None`: absent).
async fn live<K>(client: &kube::Client, name: &str) -> Result<Option<Value>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), "kube-system");
    let got = crate::apiclient::retry(&format!("get {name}"), 5, || api.get_opt(name)).await?;
    got.map(|o| serde_json::to_value(o).map_err(|e| Error::msg(format!("{name}: {e}"))))
        .transpose()
}

fn to_value<T: Serialize>(what: &str, t: &T) -> Result<Value> {
    serde_json::to_value(t).map_err(|e| Error::msg(format!("{what}: {e}")))
}

fn yaml(v: &Value) -> String {
    let mut shown = merge::user_view(v);
    if let Some(m) = shown.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("annotations");
    }
    kubeadm_api::encode::to_yaml(&shown).unwrap_or_default()
}

/// How a ConfigMap's data entry is merged, beyond taking each entry as one value.
#[derive(Debug, Clone, Copy)]
enum DataMerge {
    /// Every entry is a single value (Deployments and DaemonSets have no data).
    Whole,
    /// `data.Corefile` server block by server block.
    Corefile,
    /// `data.<key>` holds one YAML document (kube-proxy's `config.conf`): field by field.
    Yaml(&'static str),
}

/// The merged text of a YAML document in `data.<key>` and what the merge decided (paths
/// under `data.<key>`). A live document that cannot be read is kept whole and reported.
fn merge_yaml_entry(
    key: &str,
    base: Option<&Value>,
    live: &Value,
    new: &Value,
) -> (String, merge::Outcome) {
    let text = |v: Option<&Value>| v.and_then(|v| v["data"][key].as_str().map(str::to_string));
    let live_text = text(Some(live)).unwrap_or_default();
    let new_text = text(Some(new)).unwrap_or_default();
    let parse = |t: &str| {
        serde_saphyr::from_str::<Value>(t)
            .ok()
            .filter(Value::is_object)
    };
    let mut out = merge::Outcome::default();
    let (Some(l), Some(n)) = (parse(&live_text), parse(&new_text)) else {
        out.conflicts
            .push(format!("data.{key}: yours (it could not be read as YAML)"));
        return (live_text, out);
    };
    let b = text(base).as_deref().and_then(parse);
    let (m, o) = merge::merge3(b.as_ref(), &l, &n);
    let prefix = |p: String| format!("data.{key}.{p}");
    out.kept = o.kept.into_iter().map(prefix).collect();
    out.conflicts = o.conflicts.into_iter().map(prefix).collect();
    // Keep a side's text when the result is that side, so key order and comments stay.
    let file = if m == n {
        new_text
    } else if m == l {
        live_text
    } else {
        kubeadm_api::encode::to_yaml(&m).unwrap_or(live_text)
    };
    (file, out)
}

/// `new` merged into `live` against the recorded base (else `fallback`); prints what was kept,
/// what both changed and, in a dry run, the diff.
fn merged<T: Serialize + DeserializeOwned>(
    what: &str,
    live: Option<Value>,
    new: &T,
    fallback: Option<&T>,
    data: DataMerge,
    dry_run: bool,
) -> Result<T> {
    let new_v = to_value(what, new)?;
    let Some(live) = live else {
        return serde_json::from_value(new_v).map_err(|e| Error::msg(format!("{what}: {e}")));
    };
    let base = match merge::last_applied(&live) {
        Some(b) => Some(b),
        None => fallback.map(|f| to_value(what, f)).transpose()?,
    };
    let (mut m, mut out) = merge::merge3(base.as_ref(), &live, &new_v);
    if let DataMerge::Yaml(key) = data {
        let path = format!("data.{key}");
        out.kept.retain(|p| !p.starts_with(&path));
        out.conflicts.retain(|p| !p.starts_with(&path));
        let (file, o) = merge_yaml_entry(key, base.as_ref(), &live, &new_v);
        m["data"][key] = Value::String(file);
        out.kept.extend(o.kept);
        out.conflicts.extend(o.conflicts);
    }
    if let DataMerge::Corefile = data {
        out.kept.retain(|p| !p.starts_with("data.Corefile"));
        out.conflicts.retain(|p| !p.starts_with("data.Corefile"));
        let text =
            |v: Option<&Value>| v.and_then(|v| v["data"]["Corefile"].as_str().map(str::to_string));
        let (file, o) = merge::merge_corefile(
            text(base.as_ref()).as_deref(),
            &text(Some(&live)).unwrap_or_default(),
            &text(Some(&new_v)).unwrap_or_default(),
        );
        m["data"]["Corefile"] = Value::String(file);
        out.kept.extend(o.kept);
        out.conflicts.extend(o.conflicts);
    }
    merge::record_from(&mut m, &new_v).map_err(|e| Error::msg(format!("{what}: {e}")))?;
    if !out.kept.is_empty() {
        println!(
            "[upgrade/addon] {what}: kept your changes to {}",
            out.kept.join(", ")
        );
    }
    if !out.conflicts.is_empty() {
        println!(
            "[upgrade/addon] WARNING: {what}: changed both by you and by this upgrade, kept: {}",
            out.conflicts.join(", ")
        );
    }
    if dry_run {
        let (before, after) = (yaml(&live), yaml(&m));
        if before != after {
            let diff = similar::TextDiff::from_lines(&before, &after);
            print!(
                "{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header(&format!("{what} (live)"), &format!("{what} (upgraded)"))
            );
        }
    }
    serde_json::from_value(m).map_err(|e| Error::msg(format!("{what}: merged object: {e}")))
}

fn run_coredns(ctx: &mut UpgradeContext) -> Result<()> {
    if !gate(ctx, "coredns")? {
        return Ok(());
    }
    let Some(new) = kubeadm_cluster::addons::coredns(&ctx.target()?)? else {
        return Ok(());
    };
    let before = kubeadm_cluster::addons::coredns(&ctx.current()?)?;
    let (cm, dep) = ctx.block_on(|c| async move {
        Ok((
            live::<ConfigMap>(&c, "coredns").await?,
            live::<Deployment>(&c, "coredns").await?,
        ))
    })?;
    let dry_run = ctx.opts.dry_run;
    let config_map = merged(
        "ConfigMap kube-system/coredns",
        cm,
        &new.config_map,
        before.as_ref().map(|b| &b.config_map),
        DataMerge::Corefile,
        dry_run,
    )?;
    let deployment = merged(
        "Deployment kube-system/coredns",
        dep,
        &new.deployment,
        before.as_ref().map(|b| &b.deployment),
        DataMerge::Whole,
        dry_run,
    )?;
    ctx.with_writer(|c, _| async move {
        apply_ns(&c, &new.service_account).await?;
        apply_cluster(&c, &new.cluster_role).await?;
        apply_cluster(&c, &new.cluster_role_binding).await?;
        apply_ns(&c, &config_map).await?;
        apply_ns(&c, &deployment).await?;
        apply_ns(&c, &new.service).await?;
        println!("[addons] Applied essential addon: CoreDNS");
        Ok(())
    })
}

fn run_kube_proxy(ctx: &mut UpgradeContext) -> Result<()> {
    if !gate(ctx, "kube-proxy")? {
        return Ok(());
    }
    let Some(new) = kubeadm_cluster::addons::kube_proxy(&ctx.target()?)? else {
        return Ok(());
    };
    let before = kubeadm_cluster::addons::kube_proxy(&ctx.current()?)?;
    let (cm, ds) = ctx.block_on(|c| async move {
        Ok((
            live::<ConfigMap>(&c, "kube-proxy").await?,
            live::<DaemonSet>(&c, "kube-proxy").await?,
        ))
    })?;
    let dry_run = ctx.opts.dry_run;
    // The new config.conf is rendered from the stored one already; the merge also keeps what
    // the user changed elsewhere in the ConfigMap (kubeconfig.conf's server, labels) and
    // names every field of theirs it kept.
    let config_map = merged(
        "ConfigMap kube-system/kube-proxy",
        cm,
        &new.config_map,
        before.as_ref().map(|b| &b.config_map),
        DataMerge::Yaml("config.conf"),
        dry_run,
    )?;
    let daemon_set = merged(
        "DaemonSet kube-system/kube-proxy",
        ds,
        &new.daemon_set,
        before.as_ref().map(|b| &b.daemon_set),
        DataMerge::Whole,
        dry_run,
    )?;
    ctx.with_writer(|c, _| async move {
        apply_ns(&c, &new.service_account).await?;
        apply_cluster(&c, &new.cluster_role_binding).await?;
        apply_ns(&c, &config_map).await?;
        apply_ns(&c, &new.role).await?;
        apply_ns(&c, &new.role_binding).await?;
        apply_ns(&c, &daemon_set).await?;
        println!("[addons] Applied essential addon: kube-proxy");
        Ok(())
    })
}
