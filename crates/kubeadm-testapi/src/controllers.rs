//! Emulations of the kube-controller-manager loops init relies on: tokencleaner, bootstrapsigner,
//! and the kubelet client CSR approver + signer; and what runs a Job (the Job controller,
//! the scheduler's taint and cordon rules, the Node's kubelet) for upgrade's health check.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::auth::{Attributes, UserInfo, authorize, token_expired};
use crate::store::{Store, find, now_rfc3339};

/// The signer name of kubelet client certificates.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

/// The cluster CA the CSR signer uses (PEM).
#[derive(Debug, Clone)]
pub struct SigningCa {
    /// CA certificate PEM.
    pub cert_pem: String,
    /// CA private key PEM.
    pub key_pem: String,
}

/// Compact JWS with detached payload, as the bootstrapsigner writes it.
pub fn jws_detached(content: &str, kid: &str, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#));
    let payload = URL_SAFE_NO_PAD.encode(content);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let sig = aws_lc_rs::hmac::sign(&key, format!("{header}.{payload}").as_bytes());
    format!("{header}..{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

fn field(secret: &Value, key: &str) -> Option<String> {
    let raw = STANDARD.decode(secret["data"][key].as_str()?).ok()?;
    String::from_utf8(raw).ok()
}

fn bootstrap_secrets(store: &Store) -> Vec<Value> {
    let Some(rt) = find("", "v1", "secrets") else {
        return Vec::new();
    };
    store
        .list(rt, Some("kube-system"))
        .into_iter()
        .filter(|s| s["type"].as_str() == Some("bootstrap.kubernetes.io/token"))
        .collect()
}

/// tokencleaner: deletes expired bootstrap-token Secrets. Returns how many it removed.
pub fn token_cleaner(store: &mut Store) -> usize {
    let Some(rt) = find("", "v1", "secrets") else {
        return 0;
    };
    let mut n = 0;
    for s in bootstrap_secrets(store) {
        if token_expired(&s)
            && let Some(name) = s["metadata"]["name"].as_str()
            && store.delete(rt, "kube-system", name).is_ok()
        {
            n += 1;
        }
    }
    n
}

/// bootstrapsigner: keeps one `jws-kubeconfig-<id>` key in kube-public/cluster-info per
/// non-expired token with `usage-bootstrap-signing=true`, and removes the others.
pub fn bootstrap_signer(store: &mut Store) -> bool {
    let Some(cm_rt) = find("", "v1", "configmaps") else {
        return false;
    };
    let Some(cm) = store.get(cm_rt, "kube-public", "cluster-info").cloned() else {
        return false;
    };
    let Some(content) = cm["data"]["kubeconfig"].as_str().map(str::to_string) else {
        return false;
    };
    let mut want = serde_json::Map::new();
    for s in bootstrap_secrets(store) {
        if token_expired(&s) || field(&s, "usage-bootstrap-signing").as_deref() != Some("true") {
            continue;
        }
        let (Some(id), Some(secret)) = (field(&s, "token-id"), field(&s, "token-secret")) else {
            continue;
        };
        want.insert(
            format!("jws-kubeconfig-{id}"),
            json!(jws_detached(&content, &id, &secret)),
        );
    }
    let mut data = cm["data"].as_object().cloned().unwrap_or_default();
    data.retain(|k, _| !k.starts_with("jws-kubeconfig-"));
    data.extend(want);
    if cm["data"].as_object() == Some(&data) {
        return false;
    }
    let mut updated = cm.clone();
    updated["data"] = Value::Object(data);
    store
        .update(cm_rt, "kube-public", "cluster-info", "", updated)
        .is_ok()
}

fn has_condition(csr: &Value, ty: &str) -> bool {
    csr["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"].as_str() == Some(ty)))
}

/// The subject (CN, O list) and usages check of a kubelet client CSR, as the csrapproving
/// controller recognises them.
fn kubelet_client_subject(csr: &Value) -> Option<String> {
    let pem_b64 = csr["spec"]["request"].as_str()?;
    let pem = String::from_utf8(STANDARD.decode(pem_b64).ok()?).ok()?;
    let parsed = pem::parse(&pem).ok()?;
    let (_, req) = X509CertificationRequest::from_der(parsed.contents()).ok()?;
    let subject = &req.certification_request_info.subject;
    let cn = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let orgs: Vec<&str> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .collect();
    if orgs != ["system:nodes"] || !cn.starts_with("system:node:") {
        return None;
    }
    let usages: Vec<&str> = csr["spec"]["usages"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let allowed = ["digital signature", "key encipherment", "client auth"];
    if !usages.contains(&"client auth") || usages.iter().any(|u| !allowed.contains(u)) {
        return None;
    }
    Some(cn)
}

/// csrapproving + csrsigning: approves kubelet client CSRs whose requester RBAC allows
/// `create certificatesigningrequests/nodeclient` (or `/selfnodeclient` for its own name), then
/// signs approved ones with the cluster CA.
pub fn csr_controller(store: &mut Store, ca: Option<&SigningCa>) -> bool {
    let Some(rt) = find("certificates.k8s.io", "v1", "certificatesigningrequests") else {
        return false;
    };
    let mut changed = false;
    for csr in store.list(rt, None) {
        if csr["spec"]["signerName"].as_str() != Some(KUBELET_CLIENT_SIGNER) {
            continue;
        }
        let Some(name) = csr["metadata"]["name"].as_str().map(str::to_string) else {
            continue;
        };
        let mut csr = csr.clone();
        let mut dirty = false;
        if !has_condition(&csr, "Approved")
            && !has_condition(&csr, "Denied")
            && let Some(cn) = kubelet_client_subject(&csr)
        {
            let requester = UserInfo {
                name: csr["spec"]["username"].as_str().unwrap_or_default().into(),
                groups: csr["spec"]["groups"]
                    .as_array()
                    .map(|g| {
                        g.iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            let sub = if requester.name == cn {
                "selfnodeclient"
            } else {
                "nodeclient"
            };
            let attrs = Attributes::Resource {
                verb: "create".into(),
                group: "certificates.k8s.io".into(),
                resource: "certificatesigningrequests".into(),
                subresource: sub.into(),
                namespace: String::new(),
                name: String::new(),
            };
            if authorize(store, &requester, &attrs) {
                let cond = json!({"type": "Approved", "status": "True", "reason": "AutoApproved",
                    "message": "Auto approving kubelet client certificate after SubjectAccessReview.",
                    "lastUpdateTime": now_rfc3339(), "lastTransitionTime": now_rfc3339()});
                let status = csr["status"].as_object().cloned().unwrap_or_default();
                csr["status"] = Value::Object(status);
                let conds = csr["status"]["conditions"].as_array().cloned();
                let mut conds = conds.unwrap_or_default();
                conds.push(cond);
                csr["status"]["conditions"] = Value::Array(conds);
                dirty = true;
            }
        }
        if has_condition(&csr, "Approved")
            && !has_condition(&csr, "Denied")
            && csr["status"]["certificate"].is_null()
            && let Some(ca) = ca
            && let Some(cert) = sign(&csr, ca)
        {
            csr["status"]["certificate"] = json!(STANDARD.encode(cert));
            dirty = true;
        }
        if dirty && store.update(rt, "", &name, "", csr).is_ok() {
            changed = true;
        }
    }
    changed
}

fn sign(csr: &Value, ca: &SigningCa) -> Option<String> {
    let pem_b64 = csr["spec"]["request"].as_str()?;
    let pem = String::from_utf8(STANDARD.decode(pem_b64).ok()?).ok()?;
    let mut req = rcgen::CertificateSigningRequestParams::from_pem(&pem).ok()?;
    let key = rcgen::KeyPair::from_pem(&ca.key_pem).ok()?;
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca.cert_pem, key).ok()?;
    let now = crate::pki::rcgen_now();
    req.params.not_before = now - std::time::Duration::from_secs(300);
    req.params.not_after = now + std::time::Duration::from_secs(365 * 24 * 3600);
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).ok()?;
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    req.params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    req.params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    req.params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    req.params.is_ca = rcgen::IsCa::NoCa;
    req.params.subject_alt_names.clear();
    let cert = req.signed_by(&issuer).ok()?;
    Some(cert.pem())
}

/// Whether a Pod's tolerations tolerate a taint (the scheduler's rule: an empty key with
/// `Exists` tolerates everything; an empty effect matches every effect).
fn tolerates(tolerations: &[Value], taint: &Value) -> bool {
    tolerations.iter().any(|t| {
        let key_ok = match t["key"].as_str().unwrap_or("") {
            "" => t["operator"] == "Exists",
            k => k == taint["key"].as_str().unwrap_or(""),
        };
        let value_ok = t["operator"] == "Exists"
            || t["value"].as_str().unwrap_or("") == taint["value"].as_str().unwrap_or("");
        let effect_ok = t["effect"]
            .as_str()
            .is_none_or(|e| e.is_empty() || Some(e) == taint["effect"].as_str());
        key_ok && value_ok && effect_ok
    })
}

/// A Ready, schedulable Node whose scheduling taints the Pod spec tolerates, as the
/// scheduler would pick (the first by name).
fn schedule(store: &Store, pod_spec: &Value) -> Option<String> {
    let rt = find("", "v1", "nodes")?;
    let tolerations = pod_spec["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    store.list(rt, None).into_iter().find_map(|n| {
        let ready = n["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        let taints_ok = n["spec"]["taints"].as_array().is_none_or(|ts| {
            ts.iter()
                .filter(|t| t["effect"] == "NoSchedule" || t["effect"] == "NoExecute")
                .all(|t| tolerates(&tolerations, t))
        });
        (ready && taints_ok && n["spec"]["unschedulable"] != true)
            .then(|| n["metadata"]["name"].as_str().map(str::to_string))
            .flatten()
    })
}

/// The Job controller, scheduler and kubelet for Jobs, one step per call: a Job without its
/// Pod gets one (`<job>-run`, Pending); a Pending Pod is bound to a Node [`schedule`] finds
/// and runs to `Succeeded` there; a Job whose Pod succeeded gets `Complete`. A Pod no Node
/// fits stays Pending, so its Job never completes, as in a real cluster; past the Job's
/// `activeDeadlineSeconds` it is `Failed` (`DeadlineExceeded`) and its Pod too. Returns
/// whether anything changed.
pub fn job_runner(store: &mut Store) -> bool {
    let (Some(jobs), Some(pods)) = (find("batch", "v1", "jobs"), find("", "v1", "pods")) else {
        return false;
    };
    let mut changed = false;
    for job in store.list(jobs, None) {
        let done = job["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Complete" || c["type"] == "Failed")
        });
        let (Some(ns), Some(name)) = (
            job["metadata"]["namespace"].as_str(),
            job["metadata"]["name"].as_str(),
        ) else {
            continue;
        };
        if done {
            continue;
        }
        let pod_name = format!("{name}-run");
        let age = job["metadata"]["creationTimestamp"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| jiff::Timestamp::now().duration_since(t).as_secs());
        if let (Some(deadline), Some(age)) = (job["spec"]["activeDeadlineSeconds"].as_i64(), age)
            && age > deadline
        {
            let now = now_rfc3339();
            let mut j = job.clone();
            j["status"] = json!({"failed": 1, "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded", "lastTransitionTime": now},
                {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "lastTransitionTime": now}]});
            changed |= store.update(jobs, ns, name, "", j).is_ok();
            if let Some(mut p) = store.get(pods, ns, &pod_name).cloned() {
                p["status"]["phase"] = json!("Failed");
                changed |= store.update(pods, ns, &pod_name, "", p).is_ok();
            }
            continue;
        }
        let Some(pod) = store.get(pods, ns, &pod_name).cloned() else {
            let pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod_name, "namespace": ns,
                    "labels": {"job-name": name, "batch.kubernetes.io/job-name": name},
                    "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                        "uid": job["metadata"]["uid"], "controller": true}]},
                "spec": job["spec"]["template"]["spec"],
                "status": {"phase": "Pending"},
            });
            changed |= store.create(pods, ns, &pod_name, pod).is_ok();
            continue;
        };
        match pod["status"]["phase"].as_str() {
            Some("Pending") => {
                if let Some(node) = schedule(store, &pod["spec"]) {
                    let mut p = pod.clone();
                    p["spec"]["nodeName"] = json!(node);
                    p["status"] = json!({"phase": "Succeeded", "containerStatuses": [
                        {"name": p["spec"]["containers"][0]["name"], "ready": false, "restartCount": 0,
                         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]});
                    changed |= store.update(pods, ns, &pod_name, "", p).is_ok();
                }
            }
            Some("Succeeded") => {
                let now = now_rfc3339();
                let mut j = job.clone();
                j["status"] = json!({"startTime": now, "completionTime": now, "succeeded": 1,
                    "conditions": [
                        {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
                        {"type": "Complete", "status": "True", "lastTransitionTime": now}]});
                changed |= store.update(jobs, ns, name, "", j).is_ok();
            }
            _ => {}
        }
    }
    changed
}
