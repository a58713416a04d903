//! Upstream's `--patches DIR`: files named `target[suffix][+patchtype].(yaml|json)` patch the
//! static Pods and the KubeletConfiguration before they are written.
//!
//! Targets: `etcd`, `kube-apiserver`, `kube-controller-manager`, `kube-scheduler`,
//! `kubeletconfiguration`. Types: `strategic` (the default; Kubernetes' strategic merge, with
//! lists of containers, volumes, env and the like merged by their key), `merge` (RFC 7386 JSON
//! merge patch) and `json` (RFC 6902 JSON patch). Files apply in the order of their names; a file
//! may hold several YAML documents. Every file is parsed before anything is applied, so a
//! malformed file stops the phase before it writes.

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Map, Value};

use crate::RenderError;

/// The targets a patch file may name.
pub const TARGETS: [&str; 5] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubeletconfiguration",
];

/// How a patch file's documents apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// Strategic merge patch.
    Strategic,
    /// RFC 7386 JSON merge patch.
    Merge,
    /// RFC 6902 JSON patch.
    Json,
}

impl PatchType {
    /// The media type upstream names the patch type by in its messages.
    pub fn media_type(self) -> &'static str {
        match self {
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Json => "application/json-patch+json",
        }
    }
}

/// One parsed patch file.
#[derive(Debug, Clone)]
pub struct PatchFile {
    /// The file name inside the directory.
    pub file: String,
    /// What it patches.
    pub target: String,
    /// How it applies.
    pub kind: PatchType,
    /// Its documents, in order.
    pub docs: Vec<Value>,
}

/// Every patch file of a directory, parsed.
#[derive(Debug, Clone, Default)]
pub struct PatchSet {
    /// The directory (for messages).
    pub dir: String,
    /// Usable files, sorted by name.
    pub files: Vec<PatchFile>,
    /// Files whose names do not follow the naming scheme (upstream ignores them too).
    pub ignored: Vec<String>,
}

/// Reads a patch file's name as upstream does: `target[suffix][+type].(yaml|json)`.
/// `Ok(None)` for names upstream ignores (another extension, an unknown target); an error for a
/// `+` without a known patch type after it.
pub fn parse_name(name: &str) -> Result<Option<(&'static str, PatchType)>, String> {
    if !(name.len() > 5 && (name.ends_with(".yaml") || name.ends_with(".json"))) {
        return Ok(None);
    }
    let Some(target) = TARGETS.iter().find(|t| name.starts_with(*t)) else {
        return Ok(None);
    };
    let rest = &name[target.len()..];
    let rest = rest.trim_start_matches(|c| !matches!(c, '.' | '+' | '\n'));
    let Some(after_plus) = rest.strip_prefix('+') else {
        return Ok(Some((target, PatchType::Strategic)));
    };
    let kind = if after_plus.starts_with("json") {
        PatchType::Json
    } else if after_plus.starts_with("merge") {
        PatchType::Merge
    } else if after_plus.starts_with("strategic") {
        PatchType::Strategic
    } else {
        return Err(
            "unknown or missing patch type after '+', must be one of [json merge strategic]".into(),
        );
    };
    Ok(Some((target, kind)))
}

impl PatchSet {
    /// Parses the entries `(file name, bytes)` of directory `dir`. Any malformed file of a known
    /// target is an error naming it.
    pub fn parse(dir: &str, mut entries: Vec<(String, Vec<u8>)>) -> Result<Self, RenderError> {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut set = PatchSet {
            dir: dir.to_string(),
            ..Default::default()
        };
        for (file, bytes) in entries {
            let err = |message: String| RenderError::Patch {
                file: format!("{dir}/{file}"),
                message,
            };
            let Some((target, kind)) = parse_name(&file).map_err(err)? else {
                set.ignored.push(file);
                continue;
            };
            if bytes.is_empty() {
                set.ignored.push(file);
                continue;
            }
            let text = String::from_utf8(bytes).map_err(|_| err("not UTF-8 text".into()))?;
            let mut docs = Vec::new();
            for (_, doc) in kubeadm_api::decode::split_documents(&text) {
                let v: Value = serde_saphyr::from_str(&doc).map_err(|e| {
                    let text = e.to_string();
                    let first = text.lines().next().unwrap_or("");
                    err(format!(
                        "invalid YAML: {}",
                        first.trim_start_matches("error: ")
                    ))
                })?;
                match (kind, &v) {
                    (PatchType::Json, Value::Array(_)) => {
                        serde_json::from_value::<json_patch::Patch>(v.clone())
                            .map_err(|e| err(format!("not a JSON patch (RFC 6902): {e}")))?;
                    }
                    (PatchType::Json, _) => {
                        return Err(err("a +json patch must be a list of operations".into()));
                    }
                    (_, Value::Object(_)) => {}
                    _ => return Err(err("a strategic or merge patch must be a mapping".into())),
                }
                docs.push(v);
            }
            set.files.push(PatchFile {
                file,
                target: target.to_string(),
                kind,
                docs,
            });
        }
        Ok(set)
    }

    /// Applies every patch of `target` to `value`, in file order; returns the files applied.
    pub fn apply(&self, target: &str, value: &mut Value) -> Result<Vec<&PatchFile>, RenderError> {
        let mut applied = Vec::new();
        for f in self.files.iter().filter(|f| f.target == target) {
            for doc in &f.docs {
                match f.kind {
                    PatchType::Strategic => strategic_merge(value, doc),
                    PatchType::Merge => json_patch::merge(value, doc),
                    PatchType::Json => {
                        let ops: json_patch::Patch =
                            serde_json::from_value(doc.clone()).map_err(|e| {
                                RenderError::Patch {
                                    file: format!("{}/{}", self.dir, f.file),
                                    message: e.to_string(),
                                }
                            })?;
                        json_patch::patch(value, &ops).map_err(|e| RenderError::Patch {
                            file: format!("{}/{}", self.dir, f.file),
                            message: format!("cannot apply: {e}"),
                        })?;
                    }
                }
            }
            applied.push(f);
        }
        Ok(applied)
    }

    /// Applies the patches of `target` to a Pod; the result must still be a Pod.
    pub fn apply_pod(&self, target: &str, pod: Pod) -> Result<(Pod, Vec<&PatchFile>), RenderError> {
        let mut v = serde_json::to_value(&pod).map_err(|e| RenderError::Encode {
            what: target.into(),
            message: e.to_string(),
        })?;
        let applied = self.apply(target, &mut v)?;
        if applied.is_empty() {
            return Ok((pod, applied));
        }
        let patched = serde_json::from_value::<Pod>(v).map_err(|e| RenderError::Patched {
            target: target.into(),
            dir: self.dir.clone(),
            message: e.to_string(),
        })?;
        Ok((patched, applied))
    }
}

/// The key that identifies items of a list field in strategic merge (Kubernetes'
/// `patchMergeKey`), for the Pod fields kubeadm's targets have.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "hostAliases" => "ip",
        _ => return None,
    })
}

/// Kubernetes' strategic merge patch for the fields that matter in static Pods and component
/// configurations: maps merge recursively, `null` deletes a key, lists with a merge key merge
/// item by item (`$patch: delete` on an item removes it), other lists are replaced, and
/// `$patch: replace` on a map replaces it whole.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut m = p.clone();
        m.remove("$patch");
        *target = Value::Object(m);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, pv) in p {
        if k.starts_with('$') {
            continue;
        }
        match pv {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(_) => strategic_merge(t.entry(k.clone()).or_insert(Value::Null), pv),
            Value::Array(items) => match (merge_key(k), t.get_mut(k)) {
                (Some(key), Some(Value::Array(existing))) => merge_list(existing, items, key),
                _ => {
                    let kept: Vec<Value> =
                        items.iter().filter(|i| !is_delete(i)).cloned().collect();
                    t.insert(k.clone(), Value::Array(kept));
                }
            },
            _ => {
                t.insert(k.clone(), pv.clone());
            }
        }
    }
}

fn is_delete(item: &Value) -> bool {
    item.get("$patch").and_then(Value::as_str) == Some("delete")
}

fn merge_list(existing: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        let id = item.get(key);
        let pos = id.and_then(|id| existing.iter().position(|e| e.get(key) == Some(id)));
        match (pos, is_delete(item)) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut existing[i], item),
            (None, false) => {
                let mut v = Value::Null;
                strategic_merge(&mut v, item);
                existing.push(v);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_upstream() {
        let ok = |n: &str| parse_name(n).unwrap();
        assert_eq!(
            ok("kube-apiserver.yaml"),
            Some(("kube-apiserver", PatchType::Strategic))
        );
        assert_eq!(ok("etcd0+json.json"), Some(("etcd", PatchType::Json)));
        assert_eq!(
            ok("kube-scheduler-extra+merge.yaml"),
            Some(("kube-scheduler", PatchType::Merge))
        );
        assert_eq!(
            ok("kubeletconfiguration+strategic.json"),
            Some(("kubeletconfiguration", PatchType::Strategic))
        );
        assert_eq!(ok("kube-proxy.yaml"), None);
        assert_eq!(ok("etcd.txt"), None);
        assert!(parse_name("etcd+bogus.yaml").is_err());
        assert!(parse_name("etcd+.yaml").is_err());
    }

    #[test]
    fn strategic_merges_lists_by_key() {
        let mut t = json!({"spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]}], "volumes": [{"name": "v1"}, {"name": "v2"}]}});
        let p = json!({"spec": {"containers": [{"name": "a", "env": [{"name": "B", "value": "2"}]}], "volumes": [{"name": "v1", "$patch": "delete"}]}});
        strategic_merge(&mut t, &p);
        assert_eq!(
            t,
            json!({"spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}], "volumes": [{"name": "v2"}]}})
        );
    }
}
