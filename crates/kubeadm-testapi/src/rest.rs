//! The REST layer: URL routing, authorization, validation, verbs, Kubernetes `Status` errors.
//!
//! [`handle`] is a plain function of the server state and one request, so it is unit-tested
//! without TLS; the HTTP listener in `lib.rs` only authenticates and forwards.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::auth::{Attributes, UserInfo, authorize};
use crate::controllers::{self, SigningCa};
use crate::patch;
use crate::store::{ResourceType, Store, StoreError, find, meta_mut};

/// One request as the server saw it (for tests asserting who called what).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Authenticated user name.
    pub user: String,
    /// HTTP method.
    pub method: String,
    /// Path (no query).
    pub path: String,
    /// Response status code.
    pub status: u16,
}

/// Everything the server holds.
#[derive(Debug, Default)]
pub struct State {
    /// The objects.
    pub store: Store,
    /// The cluster CA for the CSR signer.
    pub ca: Option<SigningCa>,
    /// How many of the next updates (PUT) to refuse with 409 Conflict (fault injection).
    pub conflicts_to_inject: u32,
    /// Every request served.
    pub log: Vec<RequestRecord>,
    /// `gitVersion` reported on `/version`.
    pub git_version: String,
    /// While true, `/readyz`, `/livez` and `/healthz` answer 503 (an API server still starting).
    pub not_ready: bool,
    /// While true, the emulated controllers do nothing (tests that tamper with signed objects).
    pub controllers_paused: bool,
}

/// A response: status code and body (JSON, or plain text for health endpoints).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// HTTP status.
    pub code: u16,
    /// JSON body, or a string for text responses.
    pub body: Value,
}

impl Response {
    fn ok(body: Value) -> Self {
        Response { code: 200, body }
    }
}

/// A Kubernetes `Status` failure.
pub fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Response {
    let mut s = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    if let Some(d) = details {
        s["details"] = d;
    }
    Response { code, body: s }
}

fn qualified(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        rt.resource.to_string()
    } else {
        format!("{}.{}", rt.resource, rt.group)
    }
}

fn details(rt: &ResourceType, name: &str) -> Value {
    json!({"name": name, "group": rt.group, "kind": rt.resource})
}

fn not_found(rt: &ResourceType, name: &str) -> Response {
    status(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", qualified(rt)),
        Some(details(rt, name)),
    )
}

fn bad_request(msg: &str) -> Response {
    status(400, "BadRequest", msg, None)
}

fn invalid(rt: &ResourceType, name: &str, msg: &str) -> Response {
    status(
        422,
        "Invalid",
        &format!("{} \"{name}\" is invalid: {msg}", rt.kind),
        Some(details(rt, name)),
    )
}

fn store_error(e: StoreError, rt: &ResourceType, name: &str) -> Response {
    match e {
        StoreError::NotFound => not_found(rt, name),
        StoreError::AlreadyExists => status(
            409,
            "AlreadyExists",
            &format!("{} \"{name}\" already exists", qualified(rt)),
            Some(details(rt, name)),
        ),
        StoreError::Conflict => status(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(rt)
            ),
            Some(details(rt, name)),
        ),
    }
}

/// Percent-decodes a query component (`+` is a space).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode(k) == key).then(|| decode(v))
    })
}

/// A parsed resource URL.
#[derive(Debug)]
struct Target {
    rt: &'static ResourceType,
    namespace: String,
    name: String,
    subresource: String,
}

fn parse_resource_path(path: &str) -> Result<Option<Target>, Response> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Ok(None),
    };
    if rest.is_empty() {
        return Ok(None);
    }
    let nf = || {
        status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({path})"),
            None,
        )
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, res, tail @ ..] => {
            // /api/v1/namespaces/{ns}/{resource}… unless {res} is a namespace subresource.
            if group.is_empty() && matches!(*res, "status" | "finalize") && tail.is_empty() {
                return Ok(Some(Target {
                    rt: find("", "v1", "namespaces").ok_or_else(nf)?,
                    namespace: String::new(),
                    name: (*ns).to_string(),
                    subresource: (*res).to_string(),
                }));
            }
            ((*ns).to_string(), {
                let mut v = vec![*res];
                v.extend_from_slice(tail);
                v
            })
        }
        other => (String::new(), other.to_vec()),
    };
    let rt = find(group, version, rest[0]).ok_or_else(nf)?;
    if !namespace.is_empty() && !rt.namespaced {
        return Err(nf());
    }
    if rest.len() > 3 {
        return Err(nf());
    }
    Ok(Some(Target {
        rt,
        namespace,
        name: rest.get(1).map(|s| s.to_string()).unwrap_or_default(),
        subresource: rest.get(2).map(|s| s.to_string()).unwrap_or_default(),
    }))
}

fn forbidden(user: &UserInfo, verb: &str, t: &Target) -> Response {
    let what = if t.subresource.is_empty() {
        t.rt.resource.to_string()
    } else {
        format!("{}/{}", t.rt.resource, t.subresource)
    };
    let mut msg = if t.name.is_empty() {
        format!("{} is forbidden: ", qualified(t.rt))
    } else {
        format!("{} \"{}\" is forbidden: ", qualified(t.rt), t.name)
    };
    msg.push_str(&format!(
        "User \"{}\" cannot {verb} resource \"{what}\" in API group \"{}\"",
        user.name, t.rt.group
    ));
    if t.namespace.is_empty() {
        msg.push_str(" at the cluster scope");
    } else {
        msg.push_str(&format!(" in the namespace \"{}\"", t.namespace));
    }
    status(403, "Forbidden", &msg, Some(details(t.rt, &t.name)))
}

/// Serves one authenticated request. The caller runs the controllers afterwards.
#[allow(clippy::too_many_arguments)]
pub fn handle(
    state: &mut State,
    user: &UserInfo,
    method: &str,
    path: &str,
    query: &str,
    content_type: &str,
    body: &[u8],
) -> Response {
    let resp = route(state, user, method, path, query, content_type, body);
    state.log.push(RequestRecord {
        user: user.name.clone(),
        method: method.to_string(),
        path: path.to_string(),
        status: resp.code,
    });
    resp
}

#[allow(clippy::too_many_arguments)]
fn route(
    state: &mut State,
    user: &UserInfo,
    method: &str,
    path: &str,
    query: &str,
    content_type: &str,
    body: &[u8],
) -> Response {
    let target = match parse_resource_path(path) {
        Ok(Some(t)) => t,
        Ok(None) => return non_resource(state, user, method, path),
        Err(r) => return r,
    };
    let verb = match (method, target.name.is_empty()) {
        ("GET", false) => "get",
        ("GET", true) if query_param(query, "watch").is_some_and(|w| w == "true" || w == "1") => {
            "watch"
        }
        ("GET", true) => "list",
        ("POST", true) => "create",
        ("PUT", false) => "update",
        ("PATCH", false) => "patch",
        ("DELETE", false) => "delete",
        ("DELETE", true) => "deletecollection",
        _ => {
            return status(
                405,
                "MethodNotAllowed",
                &format!(
                    "the server does not allow this method on the requested resource ({method} {path})"
                ),
                None,
            );
        }
    };
    let attrs = Attributes::Resource {
        verb: verb.to_string(),
        group: target.rt.group.to_string(),
        resource: target.rt.resource.to_string(),
        subresource: target.subresource.clone(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
    };
    if !authorize(&state.store, user, &attrs) {
        return forbidden(user, verb, &target);
    }
    let sub_ok = match (target.rt.resource, target.subresource.as_str()) {
        (_, "") => true,
        ("certificatesigningrequests", "approval" | "status") => true,
        (_, "status") => target.rt.has_status,
        _ => false,
    };
    if !sub_ok {
        return status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({path})"),
            None,
        );
    }
    match verb {
        "get" => match state.store.get(target.rt, &target.namespace, &target.name) {
            Some(o) => Response::ok(o.clone()),
            None => not_found(target.rt, &target.name),
        },
        "list" => list(state, &target, query),
        "create" => {
            let obj = match parse_body(body, content_type) {
                Ok(v) => v,
                Err(r) => return r,
            };
            create(state, user, &target, obj, query)
        }
        "update" => {
            let obj = match parse_body(body, content_type) {
                Ok(v) => v,
                Err(r) => return r,
            };
            update(state, &target, obj)
        }
        "patch" => patch_object(state, &target, content_type, body),
        "delete" => {
            if target.rt.resource == "namespaces"
                && matches!(
                    target.name.as_str(),
                    "default" | "kube-system" | "kube-public"
                )
            {
                return status(
                    403,
                    "Forbidden",
                    &format!(
                        "namespaces \"{}\" is forbidden: this namespace may not be deleted",
                        target.name
                    ),
                    None,
                );
            }
            match state
                .store
                .delete(target.rt, &target.namespace, &target.name)
            {
                Ok(o) => {
                    if target.rt.resource == "namespaces" {
                        state.store.delete_namespace_contents(&target.name);
                    }
                    Response::ok(o)
                }
                Err(e) => store_error(e, target.rt, &target.name),
            }
        }
        other => status(
            405,
            "MethodNotAllowed",
            &format!("{other} is not supported by the test API server"),
            None,
        ),
    }
}

fn non_resource(state: &State, user: &UserInfo, method: &str, path: &str) -> Response {
    let attrs = Attributes::NonResource {
        verb: method.to_ascii_lowercase(),
        path: path.to_string(),
    };
    let resource_list = resource_list(path);
    let known = resource_list.is_some()
        || matches!(
            path,
            "/readyz" | "/livez" | "/healthz" | "/version" | "/api" | "/apis"
        );
    if !authorize(&state.store, user, &attrs) {
        return status(
            403,
            "Forbidden",
            &format!(
                "forbidden: User \"{}\" cannot {} path \"{path}\"",
                user.name,
                method.to_ascii_lowercase()
            ),
            None,
        );
    }
    if !known || method != "GET" {
        return status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({path})"),
            None,
        );
    }
    if let Some(list) = resource_list {
        return Response::ok(list);
    }
    match path {
        "/readyz" | "/livez" | "/healthz" if state.not_ready => Response {
            code: 503,
            body: json!(
                "[-]poststarthook/rbac/bootstrap-roles failed: not finished\nreadyz check failed"
            ),
        },
        "/readyz" | "/livez" | "/healthz" => Response::ok(json!("ok")),
        "/version" => Response::ok(json!({
            "major": "1", "minor": state.git_version.split('.').nth(1).unwrap_or("37"),
            "gitVersion": state.git_version, "platform": "linux/amd64",
            "goVersion": "go1.24", "compiler": "gc",
        })),
        "/api" => Response::ok(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})),
        _ => {
            let mut groups: Vec<&str> = crate::store::RESOURCES
                .iter()
                .map(|r| r.group)
                .filter(|g| !g.is_empty())
                .collect();
            groups.dedup();
            let groups: Vec<Value> = groups
                .iter()
                .map(|g| {
                    let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
                    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            Response::ok(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
    }
}

/// Discovery: the APIResourceList of `/api/v1` or `/apis/<group>/v1`.
fn resource_list(path: &str) -> Option<Value> {
    let gv = if path == "/api/v1" {
        ("", "v1")
    } else {
        let rest = path.strip_prefix("/apis/")?;
        let (g, v) = rest.split_once('/')?;
        (g, v)
    };
    let resources: Vec<Value> = crate::store::RESOURCES
        .iter()
        .filter(|r| r.group == gv.0 && r.version == gv.1)
        .map(|r| {
            json!({"name": r.resource, "singularName": r.kind.to_ascii_lowercase(),
                "namespaced": r.namespaced, "kind": r.kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update"]})
        })
        .collect();
    if resources.is_empty() {
        return None;
    }
    let group_version = if gv.0.is_empty() {
        gv.1.to_string()
    } else {
        format!("{}/{}", gv.0, gv.1)
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
        "resources": resources}),
    )
}

fn parse_body(body: &[u8], content_type: &str) -> Result<Value, Response> {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    // No Content-Type (as `kubectl create --raw` sends) is read as JSON; anything else must be.
    if !ct.is_empty() && ct != "application/json" {
        return Err(status(
            415,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format: {ct:?} (the test API server accepts application/json)"
            ),
            None,
        ));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| bad_request(&format!("invalid JSON body: {e}")))?;
    if !v.is_object() {
        return Err(bad_request("the body must be a JSON object"));
    }
    Ok(v)
}

fn matches_selectors(obj: &Value, label_sel: Option<&str>, field_sel: Option<&str>) -> bool {
    if let Some(sel) = label_sel.filter(|s| !s.is_empty()) {
        let labels = &obj["metadata"]["labels"];
        for req in sel.split(',') {
            let req = req.trim();
            let ok = if let Some((k, v)) = req.split_once("!=") {
                labels[k.trim()].as_str() != Some(v.trim())
            } else if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
                labels[k.trim()].as_str() == Some(v.trim())
            } else if let Some(k) = req.strip_prefix('!') {
                labels.get(k.trim()).is_none()
            } else {
                labels.get(req).is_some()
            };
            if !ok {
                return false;
            }
        }
    }
    if let Some(sel) = field_sel.filter(|s| !s.is_empty()) {
        for req in sel.split(',') {
            let (k, v, neg) = match req.split_once("!=") {
                Some((k, v)) => (k, v, true),
                None => match req.split_once("==").or_else(|| req.split_once('=')) {
                    Some((k, v)) => (k, v, false),
                    None => return false,
                },
            };
            let actual = match k.trim() {
                "metadata.name" => obj["metadata"]["name"].as_str(),
                "metadata.namespace" => obj["metadata"]["namespace"].as_str(),
                "type" => obj["type"].as_str(),
                "spec.signerName" => obj["spec"]["signerName"].as_str(),
                // A Node without the field is schedulable, as the API server's field set says.
                "spec.unschedulable" => Some(if obj["spec"]["unschedulable"] == true {
                    "true"
                } else {
                    "false"
                }),
                _ => None,
            };
            if (actual == Some(v.trim())) == neg {
                return false;
            }
        }
    }
    true
}

fn list(state: &State, t: &Target, query: &str) -> Response {
    let label_sel = query_param(query, "labelSelector");
    if let Some(sel) = &label_sel
        && (sel.contains(" in ") || sel.contains(" notin ") || sel.contains('('))
    {
        return bad_request(&format!(
            "unsupported label selector {sel:?} (the test API server supports =, ==, != and existence)"
        ));
    }
    let field_sel = query_param(query, "fieldSelector");
    if let Some(sel) = &field_sel {
        for req in sel.split(',').filter(|r| !r.is_empty()) {
            let k = req.split(['=', '!']).next().unwrap_or("").trim();
            let allowed = match k {
                "metadata.name" | "metadata.namespace" => true,
                "type" => t.rt.resource == "secrets",
                "spec.signerName" => t.rt.resource == "certificatesigningrequests",
                "spec.unschedulable" => t.rt.resource == "nodes",
                _ => false,
            };
            if !allowed {
                return bad_request(&format!(
                    "field label not supported: {k} (resource {})",
                    t.rt.resource
                ));
            }
        }
    }
    let ns = (!t.namespace.is_empty()).then_some(t.namespace.as_str());
    let items: Vec<Value> = state
        .store
        .list(t.rt, ns)
        .into_iter()
        .filter(|o| matches_selectors(o, label_sel.as_deref(), field_sel.as_deref()))
        .map(|mut o| {
            if let Some(m) = o.as_object_mut() {
                m.remove("apiVersion");
                m.remove("kind");
            }
            o
        })
        .collect();
    Response::ok(json!({
        "apiVersion": t.rt.api_version(), "kind": format!("{}List", t.rt.kind),
        "metadata": {"resourceVersion": state.store.resource_version().to_string()},
        "items": items,
    }))
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn is_path_segment_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('%')
}

/// Checks what the apiserver's strict decoding and validation would refuse, for our kinds.
fn validate(
    rt: &ResourceType,
    url_ns: &str,
    url_name: Option<&str>,
    obj: &Value,
) -> Result<(), Response> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    match (obj["apiVersion"].as_str(), obj["kind"].as_str()) {
        (Some(av), Some(k)) if av == rt.api_version() && k == rt.kind => {}
        (av, k) => {
            return Err(bad_request(&format!(
                "the API version in the data ({}) and kind ({}) do not match the URL: expected {} {}",
                av.unwrap_or("<missing>"),
                k.unwrap_or("<missing>"),
                rt.api_version(),
                rt.kind
            )));
        }
    }
    if let Some(n) = obj["metadata"]["namespace"].as_str()
        && !n.is_empty()
    {
        if !rt.namespaced {
            return Err(bad_request(&format!(
                "{} is cluster-scoped but the body names namespace {n:?}",
                rt.kind
            )));
        }
        if n != url_ns {
            return Err(bad_request(&format!(
                "the namespace of the provided object ({n}) does not match the namespace sent on the request ({url_ns})"
            )));
        }
    }
    if let Some(url_name) = url_name
        && name != url_name
    {
        return Err(bad_request(&format!(
            "the name of the object ({name}) does not match the name on the URL ({url_name})"
        )));
    }
    let name_ok = if rt.group == "rbac.authorization.k8s.io" {
        is_path_segment_name(name)
    } else {
        is_dns_subdomain(name)
    };
    if !name_ok {
        return Err(invalid(
            rt,
            name,
            &format!(
                "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain is required"
            ),
        ));
    }
    for map in ["labels", "annotations"] {
        if let Some(m) = obj["metadata"].get(map)
            && !m.is_null()
        {
            let Some(m) = m.as_object() else {
                return Err(bad_request(&format!("metadata.{map} must be a map")));
            };
            if let Some((k, _)) = m.iter().find(|(_, v)| !v.is_string()) {
                return Err(bad_request(&format!(
                    "metadata.{map}[{k:?}] must be a string"
                )));
            }
        }
    }
    match rt.resource {
        "secrets" => {
            if let Some(data) = obj.get("data").and_then(Value::as_object) {
                for (k, v) in data {
                    let ok = v.as_str().is_some_and(|s| STANDARD.decode(s).is_ok());
                    if !ok {
                        return Err(bad_request(&format!(
                            "Secret.data[{k:?}]: illegal base64 data"
                        )));
                    }
                }
            }
        }
        "configmaps" => {
            if let Some(data) = obj.get("data").and_then(Value::as_object) {
                for (k, v) in data {
                    let key_ok = !k.is_empty()
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
                    if !key_ok {
                        return Err(invalid(
                            rt,
                            name,
                            &format!(
                                "data[{k:?}]: a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
                            ),
                        ));
                    }
                    if !v.is_string() {
                        return Err(bad_request(&format!(
                            "ConfigMap.data[{k:?}] must be a string"
                        )));
                    }
                }
            }
        }
        "rolebindings" | "clusterrolebindings" => {
            let rr = &obj["roleRef"];
            let kind_ok = match rr["kind"].as_str() {
                Some("ClusterRole") => true,
                Some("Role") => rt.resource == "rolebindings",
                _ => false,
            };
            if !kind_ok
                || rr["apiGroup"].as_str() != Some("rbac.authorization.k8s.io")
                || rr["name"].as_str().is_none_or(str::is_empty)
            {
                return Err(invalid(
                    rt,
                    name,
                    "roleRef: Required value or unsupported kind",
                ));
            }
        }
        "certificatesigningrequests" => {
            let req = obj["spec"]["request"].as_str().unwrap_or_default();
            let pem_ok = STANDARD
                .decode(req)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| pem::parse(s).ok())
                .is_some_and(|p| p.tag() == "CERTIFICATE REQUEST");
            if !pem_ok {
                return Err(invalid(
                    rt,
                    name,
                    "spec.request: Invalid value: must be a PEM CERTIFICATE REQUEST",
                ));
            }
            if obj["spec"]["signerName"].as_str().is_none_or(str::is_empty) {
                return Err(invalid(rt, name, "spec.signerName: Required value"));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The NodeRestriction admission plugin (kubeadm enables it): a kubelet may create only mirror
/// Pods of its static Pods, bound to itself.
fn node_restriction(user: &UserInfo, rt: &ResourceType, obj: &Value) -> Option<Response> {
    let node = user.name.strip_prefix("system:node:")?;
    if rt.resource != "pods" {
        return None;
    }
    let refuse = |why: String| {
        Some(status(
            403,
            "Forbidden",
            &format!(
                "pods \"{}\" is forbidden: {why}",
                obj["metadata"]["name"].as_str().unwrap_or_default()
            ),
            None,
        ))
    };
    if !obj["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string() {
        return refuse(format!(
            "pod does not have \"kubernetes.io/config.mirror\" annotation, node \"{node}\" can only create mirror pods"
        ));
    }
    if obj["spec"]["nodeName"].as_str() != Some(node) {
        return refuse(format!(
            "node \"{node}\" can only create pods with spec.nodeName set to itself"
        ));
    }
    None
}

fn create(state: &mut State, user: &UserInfo, t: &Target, mut obj: Value, query: &str) -> Response {
    if !t.subresource.is_empty() {
        return bad_request("cannot create a subresource");
    }
    if query_param(query, "dryRun").is_some() {
        return bad_request("dryRun is not supported by the test API server");
    }
    if obj["metadata"]["name"].as_str().is_none_or(str::is_empty)
        && let Some(prefix) = obj["metadata"]["generateName"].as_str()
    {
        let n = state.store.resource_version() + 1;
        let name = format!("{prefix}{n:05x}");
        meta_mut(&mut obj).insert("name".into(), json!(name));
    }
    if let Err(r) = validate(t.rt, &t.namespace, None, &obj) {
        return r;
    }
    if let Some(r) = node_restriction(user, t.rt, &obj) {
        return r;
    }
    if obj["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|s| !s.is_empty())
    {
        return bad_request("resourceVersion should not be set on objects to be created");
    }
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if t.rt.namespaced {
        let ns_rt = find("", "v1", "namespaces");
        if ns_rt.is_none_or(|r| state.store.get(r, "", &t.namespace).is_none()) {
            return status(
                404,
                "NotFound",
                &format!("namespaces \"{}\" not found", t.namespace),
                Some(json!({"name": t.namespace, "kind": "namespaces"})),
            );
        }
        meta_mut(&mut obj).insert("namespace".into(), json!(t.namespace));
    }
    match t.rt.resource {
        "secrets" => {
            if let Some(sd) = obj.get("stringData").and_then(Value::as_object).cloned() {
                let mut data = obj["data"].as_object().cloned().unwrap_or_default();
                for (k, v) in sd {
                    data.insert(k, json!(STANDARD.encode(v.as_str().unwrap_or_default())));
                }
                obj["data"] = Value::Object(data);
                if let Some(m) = obj.as_object_mut() {
                    m.remove("stringData");
                }
            }
            if obj["type"].as_str().is_none_or(str::is_empty) {
                obj["type"] = json!("Opaque");
            }
        }
        "certificatesigningrequests" => {
            obj["spec"]["username"] = json!(user.name);
            obj["spec"]["groups"] = json!(user.groups);
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        "namespaces" => {
            obj["status"] = json!({"phase": "Active"});
        }
        _ => {}
    }
    match state.store.create(t.rt, &t.namespace, &name, obj) {
        Ok(o) => Response { code: 201, body: o },
        Err(e) => store_error(e, t.rt, &name),
    }
}

/// Fields that may not change once created.
fn immutable_violation(rt: &ResourceType, old: &Value, new: &Value) -> Option<&'static str> {
    match rt.resource {
        "rolebindings" | "clusterrolebindings" if old["roleRef"] != new["roleRef"] => {
            Some("roleRef: Invalid value: cannot change roleRef")
        }
        "secrets" if old["type"] != new["type"] => Some("type: Invalid value: field is immutable"),
        "certificatesigningrequests" if old["spec"] != new["spec"] => {
            Some("spec: Forbidden: updates to certificatesigningrequest spec are forbidden")
        }
        _ => None,
    }
}

fn update(state: &mut State, t: &Target, mut obj: Value) -> Response {
    if let Err(r) = validate(t.rt, &t.namespace, Some(&t.name), &obj) {
        return r;
    }
    let Some(old) = state.store.get(t.rt, &t.namespace, &t.name).cloned() else {
        return not_found(t.rt, &t.name);
    };
    if state.conflicts_to_inject > 0 {
        state.conflicts_to_inject -= 1;
        return store_error(StoreError::Conflict, t.rt, &t.name);
    }
    let expected_rv = obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if t.rt.namespaced {
        meta_mut(&mut obj).insert("namespace".into(), json!(t.namespace));
    }
    match t.subresource.as_str() {
        "" => {
            if t.rt.has_status {
                match old.get("status") {
                    Some(s) => obj["status"] = s.clone(),
                    None => {
                        if let Some(m) = obj.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            if t.rt.resource == "secrets"
                && let Some(sd) = obj.get("stringData").and_then(Value::as_object).cloned()
            {
                let mut data = obj["data"].as_object().cloned().unwrap_or_default();
                for (k, v) in sd {
                    data.insert(k, json!(STANDARD.encode(v.as_str().unwrap_or_default())));
                }
                obj["data"] = Value::Object(data);
                if let Some(m) = obj.as_object_mut() {
                    m.remove("stringData");
                }
            }
            if t.rt.resource == "certificatesigningrequests" {
                // spec.username/groups are server-set: keep them for the comparison below.
                obj["spec"]["username"] = old["spec"]["username"].clone();
                obj["spec"]["groups"] = old["spec"]["groups"].clone();
            }
            if let Some(msg) = immutable_violation(t.rt, &old, &obj) {
                return invalid(t.rt, &t.name, msg);
            }
        }
        "status" | "approval" => {
            // Only status changes through these; everything else is kept.
            let mut merged = old.clone();
            let new_status = obj.get("status").cloned().unwrap_or(Value::Null);
            if t.subresource == "approval" {
                merged["status"]["conditions"] = new_status["conditions"].clone();
            } else {
                merged["status"] = new_status;
            }
            merged["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"].clone();
            obj = merged;
        }
        _ => return bad_request("unsupported subresource"),
    }
    match state
        .store
        .update(t.rt, &t.namespace, &t.name, &expected_rv, obj)
    {
        Ok(o) => Response::ok(o),
        Err(e) => store_error(e, t.rt, &t.name),
    }
}

fn patch_object(state: &mut State, t: &Target, content_type: &str, body: &[u8]) -> Response {
    let Some(old) = state.store.get(t.rt, &t.namespace, &t.name).cloned() else {
        return not_found(t.rt, &t.name);
    };
    let ct = content_type.split(';').next().unwrap_or("").trim();
    let p: Value = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => return bad_request(&format!("invalid JSON patch body: {e}")),
    };
    let mut new = old.clone();
    let res = match ct {
        "application/merge-patch+json" => {
            patch::merge(&mut new, &p);
            Ok(())
        }
        "application/strategic-merge-patch+json" => patch::strategic(&mut new, &p),
        "application/json-patch+json" => patch::json_patch(&mut new, &p),
        other => {
            return status(
                415,
                "UnsupportedMediaType",
                &format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other:?})"
                ),
                None,
            );
        }
    };
    if let Err(e) = res {
        return status(422, "Invalid", &e, Some(details(t.rt, &t.name)));
    }
    // A resourceVersion in the patch is a precondition; absent, the patch applies to the latest.
    let rv = p["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    if !rv.is_empty() && Some(rv) != old["metadata"]["resourceVersion"].as_str() {
        return store_error(StoreError::Conflict, t.rt, &t.name);
    }
    if new["metadata"]["name"] != old["metadata"]["name"]
        || new["metadata"]["namespace"] != old["metadata"]["namespace"]
    {
        return bad_request("a patch may not change metadata.name or metadata.namespace");
    }
    new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    update(state, t, new)
}

/// Runs every emulated controller until nothing changes (bounded).
pub fn reconcile(state: &mut State) {
    if state.controllers_paused {
        return;
    }
    for _ in 0..4 {
        let a = controllers::token_cleaner(&mut state.store) > 0;
        let b = controllers::bootstrap_signer(&mut state.store);
        let ca = state.ca.clone();
        let c = controllers::csr_controller(&mut state.store, ca.as_ref());
        // One step of a Job's run per tick, so a Job takes a few ticks to complete, as the
        // waits of its callers meet in a real cluster.
        let _ = controllers::job_runner(&mut state.store);
        if !(a || b || c) {
            break;
        }
    }
}

/// Seeds the namespaces and the bootstrap RBAC policy.
pub fn seed(state: &mut State) {
    if let Some(ns) = find("", "v1", "namespaces") {
        for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let _ = state.store.create(
                ns,
                "",
                n,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n},
                    "status": {"phase": "Active"}}),
            );
        }
    }
    for (res, obj) in crate::auth::bootstrap_policy() {
        if let Some(rt) = find("rbac.authorization.k8s.io", "v1", res) {
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let _ = state.store.create(rt, "", &name, obj);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> UserInfo {
        UserInfo {
            name: "kubernetes-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    fn state() -> State {
        let mut s = State::default();
        seed(&mut s);
        s
    }

    fn post(s: &mut State, u: &UserInfo, path: &str, body: Value) -> Response {
        handle(
            s,
            u,
            "POST",
            path,
            "",
            "application/json",
            &serde_json::to_vec(&body).unwrap(),
        )
    }

    fn cm(name: &str, ns: &str) -> Value {
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":name,"namespace":ns},"data":{"a":"b"}})
    }

    #[test]
    fn create_conflict_and_status_bodies() {
        let mut s = state();
        let path = "/api/v1/namespaces/kube-public/configmaps";
        assert_eq!(
            post(&mut s, &admin(), path, cm("cluster-info", "kube-public")).code,
            201
        );
        let r = post(&mut s, &admin(), path, cm("cluster-info", "kube-public"));
        assert_eq!(r.code, 409);
        assert_eq!(r.body["reason"], "AlreadyExists");
        assert_eq!(r.body["kind"], "Status");
        // Body namespace must match the URL.
        let r = post(&mut s, &admin(), path, cm("x", "kube-system"));
        assert_eq!(r.code, 400);
        // Kind must match the URL.
        let mut wrong = cm("y", "kube-public");
        wrong["kind"] = json!("Secret");
        assert_eq!(post(&mut s, &admin(), path, wrong).code, 400);
        // Namespace must exist.
        let r = post(
            &mut s,
            &admin(),
            "/api/v1/namespaces/nope/configmaps",
            cm("z", "nope"),
        );
        assert_eq!((r.code, r.body["reason"].as_str()), (404, Some("NotFound")));
        let r = handle(
            &mut s,
            &admin(),
            "GET",
            "/api/v1/namespaces/kube-public/configmaps/none",
            "",
            "",
            b"",
        );
        assert_eq!(r.body["message"], "configmaps \"none\" not found");
    }

    #[test]
    fn a_node_creates_only_its_own_mirror_pods() {
        let mut s = state();
        let node = UserInfo {
            name: "system:node:n1".into(),
            groups: vec!["system:nodes".into(), "system:authenticated".into()],
        };
        let pod = |name: &str, node_name: &str, mirror: bool| {
            let mut p = json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "kube-system"},
                "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "i"}]}});
            if mirror {
                p["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "h"});
            }
            p
        };
        let path = "/api/v1/namespaces/kube-system/pods";
        let r = post(&mut s, &node, path, pod("plain", "n1", false));
        assert_eq!(r.code, 403, "{}", r.body);
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("can only create mirror pods")
        );
        assert_eq!(
            post(&mut s, &node, path, pod("other", "n2", true)).code,
            403
        );
        assert_eq!(
            post(&mut s, &node, path, pod("etcd-n1", "n1", true)).code,
            201
        );
        // Anyone else is left to RBAC.
        assert_eq!(
            post(&mut s, &admin(), path, pod("plain", "n2", false)).code,
            201
        );
    }

    #[test]
    fn anonymous_sees_only_cluster_info_once_granted() {
        let mut s = state();
        post(
            &mut s,
            &admin(),
            "/api/v1/namespaces/kube-public/configmaps",
            cm("cluster-info", "kube-public"),
        );
        let anon = UserInfo::anonymous();
        let get = |s: &mut State, p: &str| handle(s, &anon, "GET", p, "", "", b"").code;
        assert_eq!(
            get(
                &mut s,
                "/api/v1/namespaces/kube-public/configmaps/cluster-info"
            ),
            403
        );
        post(
            &mut s,
            &admin(),
            "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-public/roles",
            json!({
            "apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"kubeadm:bootstrap-signer-clusterinfo"},
            "rules":[{"apiGroups":[""],"resources":["configmaps"],"resourceNames":["cluster-info"],"verbs":["get"]}]}),
        );
        post(
            &mut s,
            &admin(),
            "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-public/rolebindings",
            json!({
            "apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"kubeadm:bootstrap-signer-clusterinfo"},
            "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"kubeadm:bootstrap-signer-clusterinfo"},
            "subjects":[{"kind":"User","name":"system:anonymous"}]}),
        );
        assert_eq!(
            get(
                &mut s,
                "/api/v1/namespaces/kube-public/configmaps/cluster-info"
            ),
            200
        );
        assert_eq!(
            get(&mut s, "/api/v1/namespaces/kube-public/configmaps"),
            403
        );
        assert_eq!(get(&mut s, "/api/v1/namespaces/kube-system/secrets"), 403);
        assert_eq!(get(&mut s, "/readyz"), 200);
        assert_eq!(get(&mut s, "/version"), 200);
        assert_eq!(get(&mut s, "/apis"), 403);
        let r = handle(&mut s, &anon, "GET", "/api/v1/nodes", "", "", b"");
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("cannot list resource \"nodes\""),
            "{r:?}"
        );
    }

    #[test]
    fn update_conflicts_patch_and_immutable_role_ref() {
        let mut s = state();
        let created = post(
            &mut s,
            &admin(),
            "/api/v1/nodes",
            json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}),
        )
        .body;
        let path = "/api/v1/nodes/n1";
        let patch = json!({"metadata":{"labels":{"node-role.kubernetes.io/control-plane":""}},
            "spec":{"taints":[{"key":"node-role.kubernetes.io/control-plane","effect":"NoSchedule"}]}});
        let r = handle(
            &mut s,
            &admin(),
            "PATCH",
            path,
            "",
            "application/strategic-merge-patch+json",
            &serde_json::to_vec(&patch).unwrap(),
        );
        assert_eq!(r.code, 200, "{r:?}");
        assert_eq!(r.body["spec"]["taints"][0]["effect"], "NoSchedule");
        // Stale resourceVersion → 409 Conflict.
        let r = handle(
            &mut s,
            &admin(),
            "PUT",
            path,
            "",
            "application/json",
            &serde_json::to_vec(&created).unwrap(),
        );
        assert_eq!((r.code, r.body["reason"].as_str()), (409, Some("Conflict")));
        // Name mismatch → 400.
        let other = json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"n2"}});
        let r = handle(
            &mut s,
            &admin(),
            "PUT",
            path,
            "",
            "application/json",
            &serde_json::to_vec(&other).unwrap(),
        );
        assert_eq!(r.code, 400);
        // Apply patches are refused.
        let r = handle(
            &mut s,
            &admin(),
            "PATCH",
            path,
            "",
            "application/apply-patch+yaml",
            b"{}",
        );
        assert_eq!(r.code, 415);
        let crb = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";
        let b = json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"x"},
            "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"a"},"subjects":[]});
        assert_eq!(post(&mut s, &admin(), crb, b.clone()).code, 201);
        let mut changed = b;
        changed["roleRef"]["name"] = json!("b");
        let r = handle(
            &mut s,
            &admin(),
            "PUT",
            &format!("{crb}/x"),
            "",
            "application/json",
            &serde_json::to_vec(&changed).unwrap(),
        );
        assert_eq!(r.code, 422, "{r:?}");
    }

    #[test]
    fn list_with_field_selector() {
        let mut s = state();
        let p = "/api/v1/namespaces/kube-system/secrets";
        post(
            &mut s,
            &admin(),
            p,
            json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"},"type":"bootstrap.kubernetes.io/token"}),
        );
        post(
            &mut s,
            &admin(),
            p,
            json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"b"},"stringData":{"k":"v"}}),
        );
        let r = handle(
            &mut s,
            &admin(),
            "GET",
            p,
            "fieldSelector=type%3Dbootstrap.kubernetes.io%2Ftoken",
            "",
            b"",
        );
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(r.body["kind"], "SecretList");
        let r = handle(
            &mut s,
            &admin(),
            "GET",
            p,
            "fieldSelector=spec.foo%3Dx",
            "",
            b"",
        );
        assert_eq!(r.code, 400);
        let b = handle(&mut s, &admin(), "GET", &format!("{p}/b"), "", "", b"").body;
        assert_eq!(b["data"]["k"], "dg==");
        assert_eq!(b["type"], "Opaque");
    }
}
