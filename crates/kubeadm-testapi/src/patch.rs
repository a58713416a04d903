//! JSON merge patch (RFC 7386), the subset of strategic merge patch kubeadm sends, and JSON patch
//! (RFC 6902).

use serde_json::Value;

/// Applies an RFC 7386 merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
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

fn unescape(tok: &str) -> String {
    tok.replace("~1", "/").replace("~0", "~")
}

fn pointer_parent<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    let p = doc
        .pointer_mut(parent)
        .ok_or_else(|| format!("path {parent:?} does not exist"))?;
    Ok((p, unescape(last)))
}

/// Applies an RFC 6902 JSON patch (add, remove, replace, test).
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    for op in ops {
        let path = op["path"].as_str().ok_or("operation without path")?;
        match op["op"].as_str() {
            Some("add") | Some("replace") => {
                let value = op.get("value").ok_or("operation without value")?.clone();
                let replace = op["op"] == "replace";
                let (parent, last) = pointer_parent(doc, path)?;
                match parent {
                    Value::Object(m) => {
                        if replace && !m.contains_key(&last) {
                            return Err(format!("replace: {path:?} does not exist"));
                        }
                        m.insert(last, value);
                    }
                    Value::Array(a) => {
                        if last == "-" && !replace {
                            a.push(value);
                        } else {
                            let i: usize = last
                                .parse()
                                .map_err(|_| format!("bad array index in {path:?}"))?;
                            if replace {
                                *a.get_mut(i).ok_or(format!("{path:?} out of range"))? = value;
                            } else if i <= a.len() {
                                a.insert(i, value);
                            } else {
                                return Err(format!("{path:?} out of range"));
                            }
                        }
                    }
                    _ => return Err(format!("{path:?}: parent is not a container")),
                }
            }
            Some("remove") => {
                let (parent, last) = pointer_parent(doc, path)?;
                let ok = match parent {
                    Value::Object(m) => m.remove(&last).is_some(),
                    Value::Array(a) => match last.parse::<usize>() {
                        Ok(i) if i < a.len() => {
                            a.remove(i);
                            true
                        }
                        _ => false,
                    },
                    _ => false,
                };
                if !ok {
                    return Err(format!("remove: {path:?} does not exist"));
                }
            }
            Some("test") => {
                if doc.pointer(path) != op.get("value") {
                    return Err(format!("test failed at {path:?}"));
                }
            }
            other => return Err(format!("unsupported JSON patch operation {other:?}")),
        }
    }
    Ok(())
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
