//! The API client behind `--dry-run`: a kube client whose transport answers locally and prints
//! each request as upstream's dry-run client does (`[dryrun] Would perform action CREATE on
//! resource "secrets" in API group "core/v1"`, then the object), so the API phases run their
//! real planning code — the same object builders, the same create-or-update logic — and no
//! cluster is contacted.
//!
//! Answers: a GET of a Node returns a bare Node of that name (init patches its own node, which
//! the kubelet would have registered); every other GET is 404, so create-or-update creates;
//! creates and updates echo the object back with a uid and resourceVersion; lists are empty.

use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// Where the dry-run lines go (stdout in the binary; a buffer in tests).
pub type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// One parsed resource URL.
#[derive(Debug, Default, PartialEq, Eq)]
struct Target {
    /// `core/v1`, `rbac.authorization.k8s.io/v1`.
    group_version: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (gv, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => (format!("core/{v}"), rest),
        ["apis", g, v, rest @ ..] => (format!("{g}/{v}"), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, r, tail @ ..] => (Some(ns.to_string()), {
            let mut v = vec![*r];
            v.extend_from_slice(tail);
            v
        }),
        other => (None, other.to_vec()),
    };
    let (resource, name) = match rest.as_slice() {
        [r] => (r.to_string(), None),
        [r, n, ..] => (r.to_string(), Some(n.to_string())),
        // `/api/v1/namespaces/<ns>`: the namespace object itself.
        [] if namespace.is_some() => ("namespaces".to_string(), namespace.clone()),
        _ => return None,
    };
    let namespace = if resource == "namespaces" {
        None
    } else {
        namespace
    };
    Some(Target {
        group_version: gv,
        resource,
        namespace,
        name,
    })
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("\t{l}\n")).collect()
}

/// Secret values are not printed: a bootstrap token's secret half and other Secrets' data (the
/// sealed certificates) stay out of a dry run's output; a token's id, expiry and usages show.
fn redacted(mut obj: Value) -> Value {
    if obj.get("kind").and_then(Value::as_str) != Some("Secret") {
        return obj;
    }
    let token = obj.get("type").and_then(Value::as_str) == Some("bootstrap.kubernetes.io/token");
    for key in ["data", "stringData"] {
        if let Some(map) = obj.get_mut(key).and_then(Value::as_object_mut) {
            for (k, v) in map.iter_mut() {
                if !token || k == "token-secret" {
                    *v = Value::String("<redacted>".into());
                }
            }
        }
    }
    obj
}

fn respond(code: u16, body: &Value) -> Response<Body> {
    let bytes = match body {
        Value::String(s) => s.clone().into_bytes(),
        v => serde_json::to_vec(v).unwrap_or_default(),
    };
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::OK);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn not_found(t: &Target) -> Response<Body> {
    let name = t.name.clone().unwrap_or_default();
    respond(
        404,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("{} \"{name}\" not found", t.resource),
            "reason": "NotFound", "details": {"name": name, "kind": t.resource}, "code": 404
        }),
    )
}

/// Adds what a server would: uid, resourceVersion, creationTimestamp.
fn as_stored(mut obj: Value) -> Value {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.entry("uid")
            .or_insert_with(|| json!("00000000-0000-0000-0000-000000000000"));
        m.insert("resourceVersion".into(), json!("1"));
        m.entry("creationTimestamp")
            .or_insert_with(|| json!(jiff::Timestamp::now().to_string()));
    }
    obj
}

fn handle(sink: &Sink, method: &str, path: &str, body: &[u8]) -> Response<Body> {
    let mut out = String::new();
    let Some(t) = parse_path(path) else {
        // Health and discovery endpoints.
        return match path {
            "/readyz" | "/livez" | "/healthz" => respond(200, &json!("ok")),
            _ => respond(200, &json!({})),
        };
    };
    let action = match (method, t.name.is_some()) {
        ("GET", true) => "GET",
        ("GET", false) => "LIST",
        ("POST", _) => "CREATE",
        ("PUT", _) => "UPDATE",
        ("PATCH", _) => "PATCH",
        ("DELETE", _) => "DELETE",
        _ => method,
    };
    out.push_str(&format!(
        "[dryrun] Would perform action {action} on resource {:?} in API group {:?}\n",
        t.resource, t.group_version
    ));
    let object: Option<Value> = serde_json::from_slice(body).ok();
    let response = match action {
        "GET" => {
            out.push_str(&format!(
                "[dryrun] Resource name {:?}\n",
                t.name.clone().unwrap_or_default()
            ));
            if t.resource == "nodes" {
                respond(
                    200,
                    &as_stored(json!({
                        "apiVersion": "v1", "kind": "Node",
                        "metadata": {"name": t.name, "labels": {}},
                        "spec": {}
                    })),
                )
            } else {
                not_found(&t)
            }
        }
        "LIST" => {
            let kind = t.resource.clone();
            respond(
                200,
                &json!({"apiVersion": t.group_version.trim_start_matches("core/"), "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": []}),
            )
        }
        "CREATE" | "UPDATE" => match object {
            Some(obj) => {
                let verb = if action == "CREATE" {
                    "Attached object"
                } else {
                    "Updated object"
                };
                let yaml = kubeadm_api::encode::to_yaml(&redacted(obj.clone()))
                    .unwrap_or_else(|e| format!("<cannot render: {e}>\n"));
                out.push_str(&format!("[dryrun] {verb}:\n{}", indent(&yaml)));
                respond(if action == "CREATE" { 201 } else { 200 }, &as_stored(obj))
            }
            None => respond(
                400,
                &json!({"kind": "Status", "code": 400, "status": "Failure", "reason": "BadRequest", "message": "no object"}),
            ),
        },
        "PATCH" => {
            out.push_str(&format!(
                "[dryrun] Resource name {:?}, attached patch:\n{}",
                t.name.clone().unwrap_or_default(),
                indent(&String::from_utf8_lossy(body))
            ));
            let kind = if t.resource == "nodes" {
                "Node"
            } else {
                "Object"
            };
            respond(
                200,
                &as_stored(
                    json!({"apiVersion": t.group_version.trim_start_matches("core/"), "kind": kind, "metadata": {"name": t.name}}),
                ),
            )
        }
        _ => {
            out.push_str(&format!(
                "[dryrun] Resource name {:?}\n",
                t.name.clone().unwrap_or_default()
            ));
            respond(
                200,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}}),
            )
        }
    };
    if let Ok(mut w) = sink.lock() {
        let _ = w.write_all(out.as_bytes());
        let _ = w.flush();
    }
    response
}

/// A client that prints every request to `sink` and answers it locally. Must be called inside
/// a Tokio runtime (the client's request buffer runs there).
pub fn client(sink: Sink) -> Client {
    let service = tower::service_fn(move |req: Request<Body>| {
        let sink = sink.clone();
        async move {
            let method = req.method().as_str().to_string();
            let path = req.uri().path().to_string();
            let body = req.into_body().collect_bytes().await.unwrap_or_default();
            Ok::<_, Infallible>(handle(&sink, &method, &path, &body))
        }
    });
    Client::new(service, "default")
}

/// A sink writing to stdout.
pub fn stdout() -> Sink {
    Arc::new(Mutex::new(Box::new(std::io::stdout())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        let t =
            parse_path("/api/v1/namespaces/kube-system/secrets/bootstrap-token-abcdef").unwrap();
        assert_eq!(t.group_version, "core/v1");
        assert_eq!(t.resource, "secrets");
        assert_eq!(t.namespace.as_deref(), Some("kube-system"));
        assert_eq!(t.name.as_deref(), Some("bootstrap-token-abcdef"));
        let t = parse_path("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings").unwrap();
        assert_eq!(t.group_version, "rbac.authorization.k8s.io/v1");
        assert_eq!((t.namespace, t.name), (None, None));
        let t = parse_path("/api/v1/nodes/cp-1").unwrap();
        assert_eq!(
            (t.resource.as_str(), t.name.as_deref()),
            ("nodes", Some("cp-1"))
        );
        assert!(parse_path("/readyz").is_none());
    }
}
