//! JSON merge patch (RFC 7386), the subset of strategic merge patch kubeadm sends, and JSON patch
//! (RFC 6902); the two RFCs through the `json-patch` crate.

use serde_json::Value;

/// Applies an RFC 7386 merge patch (the `json-patch` crate's, as `--patches` uses).
pub fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Strategic merge patch for the fields kubeadm patches (maps merge; `taints` and other lists
/// without a merge key replace, as in core/v1 Node). Directives (`$patch`, `$retainKeys`,
/// `$setElementOrder/…`, `$deleteFromPrimitiveList/…`) are refused rather than misapplied.
pub fn strategic(target: &mut Value, patch: &Value) -> Result<(), String> {
    if let Some(k) = find_directive(patch) {
        return Err(format!(
            "strategic merge patch directive {k:?} is not supported by the test API server"
        ));
    }
    merge(target, patch);
    Ok(())
}

fn find_directive(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) => m.iter().find_map(|(k, v)| {
            if k.starts_with('$') {
                Some(k.clone())
            } else {
                find_directive(v)
            }
        }),
        Value::Array(a) => a.iter().find_map(find_directive),
        _ => None,
    }
}

/// Applies an RFC 6902 JSON patch with the `json-patch` crate; the error says which operation
/// failed and why, as the API server's 422 does.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops: json_patch::Patch = serde_json::from_value(ops.clone())
        .map_err(|e| format!("a JSON patch must be an array of operations: {e}"))?;
    json_patch::patch(doc, &ops).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch() {
        let mut t =
            json!({"metadata":{"labels":{"a":"1","b":"2"}},"spec":{"taints":[{"key":"x"}]}});
        merge(
            &mut t,
            &json!({"metadata":{"labels":{"b":null,"c":"3"}},"spec":{"taints":[{"key":"y"}]}}),
        );
        assert_eq!(
            t,
            json!({"metadata":{"labels":{"a":"1","c":"3"}},"spec":{"taints":[{"key":"y"}]}})
        );
    }

    #[test]
    fn strategic_refuses_directives() {
        let mut t = json!({});
        assert!(strategic(&mut t, &json!({"spec":{"$retainKeys":["a"]}})).is_err());
        assert!(strategic(&mut t, &json!({"spec":{"a":1}})).is_ok());
    }

    #[test]
    fn json_patch_ops() {
        let mut t = json!({"a":{"b":[1,2]}});
        json_patch(
            &mut t,
            &json!([{"op":"add","path":"/a/b/-","value":3},{"op":"replace","path":"/a/b/0","value":0},
            {"op":"remove","path":"/a/b/1"},{"op":"add","path":"/a/c~1d","value":"x"}]),
        )
        .unwrap();
        assert_eq!(t, json!({"a":{"b":[0,3],"c/d":"x"}}));
        assert!(json_patch(&mut t, &json!([{"op":"remove","path":"/zz"}])).is_err());
        assert!(json_patch(&mut t, &json!([{"op":"test","path":"/a/c~1d","value":"y"}])).is_err());
    }
}
