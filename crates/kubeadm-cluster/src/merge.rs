//! Three-way merge of an addon object on upgrade, so the user's changes survive: the base is
//! what kubeadm applied last (recorded on the object in the [`LAST_APPLIED`] annotation), the
//! live object carries the user's changes (and the API server's defaults), and the new one is
//! what kubeadm applies now.
//!
//! Per field: unchanged by the user → kubeadm's new value; unchanged by kubeadm → the user's
//! value; changed by both to different values → a conflict, where the user's value is kept,
//! except container images, which kubeadm owns (the upgrade is about them). Objects merge key
//! by key; lists whose items all have a `name` (containers, volumes, ports, env) merge item by
//! item; other lists (tolerations, args) are single values. The Corefile merges server block by
//! server block (see [`merge_corefile`]).
//!
//! Hand-written rather than a JSON-merge crate: JSON merge patch (RFC 7386) and JSON patch are
//! two-way, and strategic merge patch exists only in Go; the rules above are small.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ClusterError;

/// The annotation holding the JSON of the object kubeadm applied last.
pub const LAST_APPLIED: &str = "kubeadm-rs.io/last-applied";

/// What a merge decided where the user had changed something.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Fields where the user's value was kept (kubeadm's did not change there).
    pub kept: Vec<String>,
    /// Fields both changed: `path: what was kept`.
    pub conflicts: Vec<String>,
}

/// Sets [`LAST_APPLIED`] on `obj` to the JSON of `obj` itself (without that annotation).
pub fn recorded<T: Serialize + DeserializeOwned>(obj: T) -> Result<T, ClusterError> {
    let encode = |e: serde_json::Error| ClusterError::Encode {
        what: "last-applied annotation",
        detail: e.to_string(),
    };
    let mut v = serde_json::to_value(&obj).map_err(encode)?;
    record(&mut v).map_err(encode)?;
    serde_json::from_value(v).map_err(encode)
}

/// Sets [`LAST_APPLIED`] on a JSON object to its own JSON (without that annotation).
pub fn record(v: &mut Value) -> Result<(), serde_json::Error> {
    remove_last_applied(v);
    let text = serde_json::to_string(v)?;
    if !v["metadata"]["annotations"].is_object() {
        v["metadata"]["annotations"] = Value::Object(Map::new());
    }
    v["metadata"]["annotations"][LAST_APPLIED] = Value::String(text);
    Ok(())
}

/// The object recorded on `live` as applied last, if any (and readable).
pub fn last_applied(live: &Value) -> Option<Value> {
    live["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .and_then(|t| serde_json::from_str(t).ok())
}

fn remove_last_applied(v: &mut Value) {
    // `get_mut`, not indexing: `IndexMut` would add the missing keys as nulls.
    let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let emptied = match meta.get_mut("annotations").and_then(Value::as_object_mut) {
        Some(a) => {
            a.remove(LAST_APPLIED);
            a.is_empty()
        }
        None => false,
    };
    if emptied {
        meta.remove("annotations");
    }
}

/// A live object as the user sees it: without the server's bookkeeping (status, resource
/// version, uid, managed fields, …) and without [`LAST_APPLIED`].
pub fn user_view(live: &Value) -> Value {
    let mut v = live.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            m.remove(k);
        }
    }
    remove_last_applied(&mut v);
    v
}

/// Merges `live` (as [`user_view`] shows it) with `new` against `base`; `None` as base
/// takes every live value that differs from `new` as the user's. The result carries no
/// [`LAST_APPLIED`] (record `new` on it with [`record_from`]).
pub fn merge3(base: Option<&Value>, live: &Value, new: &Value) -> (Value, Outcome) {
    let mut base = base.cloned();
    if let Some(b) = base.as_mut() {
        remove_last_applied(b);
    }
    let live = user_view(live);
    let mut new = new.clone();
    remove_last_applied(&mut new);
    let mut out = Outcome::default();
    let merged = merge("", base.as_ref(), Some(&live), Some(&new), &mut out).unwrap_or(new);
    (merged, out)
}

/// Records `new` (what kubeadm applies now) as [`LAST_APPLIED`] on the merged object.
pub fn record_from(merged: &mut Value, new: &Value) -> Result<(), serde_json::Error> {
    let mut n = new.clone();
    record(&mut n)?;
    if !merged["metadata"]["annotations"].is_object() {
        merged["metadata"]["annotations"] = Value::Object(Map::new());
    }
    merged["metadata"]["annotations"][LAST_APPLIED] =
        n["metadata"]["annotations"][LAST_APPLIED].clone();
    Ok(())
}

/// Fields kubeadm owns in a conflict.
fn ours(path: &str) -> bool {
    path.ends_with(".image")
}

/// A list whose items are all objects with a string `name`.
fn named(items: &[Value]) -> bool {
    items.iter().all(|i| i["name"].is_string())
}

fn by_name<'a>(items: &'a [Value], name: &str) -> Option<&'a Value> {
    items.iter().find(|i| i["name"] == name)
}

fn merge(
    path: &str,
    base: Option<&Value>,
    live: Option<&Value>,
    new: Option<&Value>,
    out: &mut Outcome,
) -> Option<Value> {
    if live == base || live == new {
        return new.cloned();
    }
    // Objects and named lists are walked even when kubeadm changed nothing in them, so the
    // fields the user changed are named one by one.
    match (base, live, new) {
        (b, Some(Value::Object(l)), Some(Value::Object(n))) if b.is_none_or(Value::is_object) => {
            let empty = Map::new();
            let b = b.and_then(Value::as_object).unwrap_or(&empty);
            let mut res = Map::new();
            for k in l.keys().chain(n.keys().filter(|k| !l.contains_key(*k))) {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(v) = merge(&p, b.get(k), l.get(k), n.get(k), out) {
                    res.insert(k.clone(), v);
                }
            }
            Some(Value::Object(res))
        }
        (b, Some(Value::Array(l)), Some(Value::Array(n)))
            if named(l) && named(n) && b.is_none_or(|b| b.as_array().is_some_and(|a| named(a))) =>
        {
            let b: &[Value] = b.and_then(Value::as_array).map_or(&[], Vec::as_slice);
            let names = l
                .iter()
                .chain(
                    n.iter()
                        .filter(|i| by_name(l, i["name"].as_str().unwrap_or("")).is_none()),
                )
                .filter_map(|i| i["name"].as_str());
            let mut res = Vec::new();
            for name in names {
                let p = format!("{path}[{name}]");
                if let Some(v) = merge(
                    &p,
                    by_name(b, name),
                    by_name(l, name),
                    by_name(n, name),
                    out,
                ) {
                    res.push(v);
                }
            }
            Some(Value::Array(res))
        }
        _ if new == base => {
            if base.is_some() {
                out.kept.push(path.to_string());
            }
            live.cloned()
        }
        _ if ours(path) => {
            out.conflicts.push(format!("{path}: kubeadm's"));
            new.cloned()
        }
        _ => {
            out.conflicts.push(format!("{path}: yours"));
            live.cloned()
        }
    }
}

/// One top-level part of a Corefile: a server block (key: its header, `example.org:53`) with
/// the comments and blank lines before it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    key: String,
    text: String,
}

/// Splits a Corefile into its server blocks; `None` when the braces do not balance. The
/// Corefile syntax (Caddy's) has no maintained Rust parser; top-level blocks are all the merge
/// needs, so braces are counted outside comments and quotes.
fn blocks(corefile: &str) -> Option<(Vec<Block>, String)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut header = String::new();
    let mut depth = 0usize;
    let (mut comment, mut quoted) = (false, false);
    for c in corefile.chars() {
        text.push(c);
        if comment {
            comment = c != '\n';
            continue;
        }
        match c {
            '#' if !quoted => comment = true,
            '"' => quoted = !quoted,
            '{' if !quoted => {
                depth += 1;
            }
            '}' if !quoted => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    out.push(Block {
                        key: header.split_whitespace().collect::<Vec<_>>().join(" "),
                        text: std::mem::take(&mut text),
                    });
                    header.clear();
                }
            }
            _ if depth == 0 => header.push(c),
            _ => {}
        }
    }
    (depth == 0 && !quoted).then_some((out, text))
}

/// Merges a Corefile server block by server block (a block is a single value: the user's
/// edits inside a block are kept whole, kubeadm's change to a block the user did not touch is
/// taken, a block both changed keeps the user's and is reported). When a Corefile cannot be
/// split (unbalanced braces), the live one is kept and reported.
pub fn merge_corefile(base: Option<&str>, live: &str, new: &str) -> (String, Outcome) {
    let mut out = Outcome::default();
    let (Some((l, l_tail)), Some((n, _))) = (blocks(live), blocks(new)) else {
        out.conflicts
            .push("Corefile: yours (it could not be split into server blocks)".into());
        return (live.to_string(), out);
    };
    let b = base.and_then(blocks).map(|(b, _)| b).unwrap_or_default();
    let find = |v: &[Block], k: &str| v.iter().find(|x| x.key == k).map(|x| x.text.clone());
    let keys = l.iter().map(|x| x.key.clone()).chain(
        n.iter()
            .filter(|x| find(&l, &x.key).is_none())
            .map(|x| x.key.clone()),
    );
    let mut text = String::new();
    for k in keys {
        let as_value = |s: Option<String>| s.map(Value::String);
        let path = format!("Corefile[{k}]");
        if find(&b, &k).is_none() && find(&n, &k).is_none() {
            // A block of the user's own.
            out.kept.push(path.clone());
        }
        let merged = merge(
            &path,
            as_value(find(&b, &k)).as_ref(),
            as_value(find(&l, &k)).as_ref(),
            as_value(find(&n, &k)).as_ref(),
            &mut out,
        );
        if let Some(Value::String(s)) = merged {
            text.push_str(&s);
        }
    }
    text.push_str(&l_tail);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    (text, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: u32, memory: &str, image: &str, tolerations: Value) -> Value {
        json!({"metadata": {"name": "coredns"}, "spec": {"replicas": replicas, "template": {"spec": {
            "tolerations": tolerations,
            "containers": [{"name": "coredns", "image": image,
                "resources": {"limits": {"memory": memory}}}]}}}})
    }

    #[test]
    fn the_users_changes_survive_and_kubeadms_are_taken() {
        let tol = json!([{"key": "CriticalAddonsOnly", "operator": "Exists"}]);
        let base = deployment(2, "170Mi", "coredns:v1.11.1", tol.clone());
        let user_tol = json!([{"key": "CriticalAddonsOnly", "operator": "Exists"}, {"key": "x", "operator": "Exists"}]);
        let mut live = deployment(4, "512Mi", "coredns:v1.11.1", user_tol.clone());
        live["metadata"]["resourceVersion"] = json!("7");
        live["status"] = json!({"replicas": 4});
        live["spec"]["template"]["spec"]["dnsPolicy"] = json!("Default");
        let new = deployment(2, "170Mi", "coredns:v1.11.3", tol);
        let (m, out) = merge3(Some(&base), &live, &new);
        let mut want = deployment(4, "512Mi", "coredns:v1.11.3", user_tol);
        want["spec"]["template"]["spec"]["dnsPolicy"] = json!("Default");
        assert_eq!(m, want);
        assert!(out.conflicts.is_empty(), "{out:?}");
        assert!(out.kept.contains(&"spec.replicas".to_string()), "{out:?}");
        assert!(
            out.kept
                .contains(&"spec.template.spec.containers[coredns].resources.limits.memory".into())
        );
    }

    #[test]
    fn both_changed_keeps_the_users_value_but_kubeadms_image() {
        let tol = json!([]);
        let base = deployment(2, "170Mi", "a:1", tol.clone());
        let live = deployment(2, "512Mi", "mirror/a:1", tol.clone());
        let new = deployment(2, "200Mi", "a:2", tol);
        let (m, out) = merge3(Some(&base), &live, &new);
        let c = &m["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
        assert_eq!(c["image"], "a:2");
        assert_eq!(out.conflicts.len(), 2, "{out:?}");
    }

    #[test]
    fn the_record_round_trips_and_is_not_merged() {
        let new = deployment(2, "170Mi", "a:2", json!([]));
        let mut merged = new.clone();
        record_from(&mut merged, &new).unwrap();
        assert_eq!(last_applied(&merged), Some(new.clone()));
        let (again, out) = merge3(last_applied(&merged).as_ref(), &merged, &new);
        assert_eq!(again, new);
        assert_eq!(out, Outcome::default());
    }

    const BASE: &str = ".:53 {\n    errors\n    forward . /etc/resolv.conf\n    cache 30\n}\n";

    #[test]
    fn corefile_blocks_merge() {
        let extra = "# the lab's zone\nlab.example:53 {\n    errors\n    forward . 10.0.0.53 # \"dns\" {x}\n}\n";
        let live = format!("{BASE}{extra}");
        let new = BASE.replace("cache 30", "cache 30\n    loop");
        let (m, out) = merge_corefile(Some(BASE), &live, &new);
        assert_eq!(m, format!("{new}{extra}"));
        assert!(out.conflicts.is_empty(), "{out:?}");
        // The user changed the default block too: theirs is kept and reported.
        let live2 = live.replace("cache 30", "cache 60");
        let (m, out) = merge_corefile(Some(BASE), &live2, &new);
        assert_eq!(m, live2);
        assert_eq!(out.conflicts, ["Corefile[.:53]: yours"]);
        // Unbalanced: the live one is kept.
        let (m, out) = merge_corefile(Some(BASE), "x {", &new);
        assert_eq!(m, "x {");
        assert_eq!(out.conflicts.len(), 1);
    }
}
