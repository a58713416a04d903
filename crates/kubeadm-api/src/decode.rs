//! Strict decoding of multi-document kubeadm configuration files.
//!
//! Each YAML document is identified by `apiVersion` + `kind`, then decoded strictly into its
//! wire type: an unknown or duplicate field, a wrong type or a malformed scalar is an error
//! naming the file, the line and the field. v1beta3 documents are converted to v1beta4 on the way
//! in. KubeletConfiguration and KubeProxyConfiguration documents are checked
//! against their schemas ([`crate::schema`]) just as strictly, then carried through as written.

use serde::de::DeserializeOwned;

use crate::schema;
use crate::v1beta4 as b4;
use crate::{ConfigError, v1beta3 as b3};

/// `kubelet.config.k8s.io/v1beta1`.
pub const KUBELET_API_VERSION: &str = "kubelet.config.k8s.io/v1beta1";
/// `kubeproxy.config.k8s.io/v1alpha1`.
pub const KUBE_PROXY_API_VERSION: &str = "kubeproxy.config.k8s.io/v1alpha1";

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct RawDocument {
    /// 1-based line where the document's content starts.
    pub line: usize,
    /// The document text, preceded by blank lines so that parser line numbers match the file.
    pub text: String,
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
}

/// Everything a configuration file held, converted to v1beta4.
#[derive(Debug, Clone, Default)]
pub struct Documents {
    /// The InitConfiguration, if present.
    pub init: Option<b4::InitConfiguration>,
    /// The ClusterConfiguration, if present.
    pub cluster: Option<b4::ClusterConfiguration>,
    /// The JoinConfiguration, if present.
    pub join: Option<b4::JoinConfiguration>,
    /// The ResetConfiguration, if present.
    pub reset: Option<b4::ResetConfiguration>,
    /// The UpgradeConfiguration, if present.
    pub upgrade: Option<b4::UpgradeConfiguration>,
    /// A KubeletConfiguration document, as parsed.
    pub kubelet: Option<serde_json::Value>,
    /// A KubeProxyConfiguration document, as parsed.
    pub kube_proxy: Option<serde_json::Value>,
    /// Our own HighAvailabilityConfiguration document (`kubeadm-rs.io/v1alpha1`), as written.
    pub ha: Option<crate::ha::HighAvailabilityConfiguration>,
    /// Our own ControlPlaneConfiguration document (`kubeadm-rs.io/v1alpha1`), as written.
    pub control_plane: Option<crate::mode::ControlPlaneConfiguration>,
    /// The kubeadm API version the file used (`v1beta3` documents were converted).
    pub source_api_version: Option<String>,
}

/// Splits a file into documents on `---` separator lines, as Go's YAML reader does: each
/// non-empty document with the line it starts on, padded so a parser's line numbers are the
/// file's. The one splitter of the workspace (configuration files and `--patches` files).
pub fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---\t") {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
            continue;
        }
        if trimmed == "..." {
            continue;
        }
        if current.is_empty() {
            // Pad so the parser's line numbers are the file's.
            current.push_str(&"\n".repeat(i));
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    docs.into_iter()
        .filter(|(_, d)| {
            d.lines().any(|l| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with('#')
            })
        })
        .collect()
}

fn yaml_error(file: &str, text: &str, e: &serde_saphyr::Error) -> ConfigError {
    let (line, column) = e
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .unwrap_or((0, 0));
    let mut message = yaml_message(e);
    if let Some(path) = field_path_at(text, line) {
        message = format!("field {path}: {message}");
    }
    ConfigError::Yaml {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

/// A YAML library error in the operator's words, without its position (callers give it):
/// what was expected instead of a Rust type name ("invalid i32"), what limit was hit instead of
/// the library's Debug form ("budget breached: Nodes {…}").
pub fn yaml_message(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    let mut inner = e;
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = inner {
        inner = error;
    }
    match inner {
        E::InvalidScalar { ty, .. } => return expected_scalar(ty),
        E::Budget { breach, .. } => return budget_words(breach),
        _ => {}
    }
    let message = inner.to_string();
    // The library's message carries its own position and advice about its options; keep the
    // statement itself, our prefix gives the position.
    let mut message = message.lines().next().unwrap_or("").trim().to_string();
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    if let Some(i) = message.find(", set DuplicateKeyPolicy") {
        message.truncate(i);
    }
    if message == "recursion limit exceeded" {
        message = "nested too deeply (more levels of lists or mappings than any configuration has)"
            .into();
    }
    message
}

/// "expected …" for a scalar that does not parse as the declared Rust type.
fn expected_scalar(ty: &str) -> String {
    let range = match ty {
        "i8" => Some((i8::MIN as i128, i8::MAX as i128)),
        "i16" => Some((i16::MIN as i128, i16::MAX as i128)),
        "i32" => Some((i32::MIN as i128, i32::MAX as i128)),
        "i64" => Some((i64::MIN as i128, i64::MAX as i128)),
        "u8" => Some((0, u8::MAX as i128)),
        "u16" => Some((0, u16::MAX as i128)),
        "u32" => Some((0, u32::MAX as i128)),
        "u64" => Some((0, u64::MAX as i128)),
        _ => None,
    };
    match (range, ty) {
        (Some((min, max)), _) => format!("expected a whole number from {min} to {max}"),
        (None, "f32" | "f64") => "expected a number".into(),
        (None, "bool") => "expected true or false".into(),
        (None, "char") => "expected a single character".into(),
        (None, other) => format!("expected a value of type {other}"),
    }
}

/// A breached parser limit, in words: no configuration comes near these limits, so the file is
/// not one (or is an alias bomb).
fn budget_words(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let what = match breach {
        B::Nodes { nodes } => format!("more than {} values", nodes.saturating_sub(1)),
        B::Events { events } => format!("more than {} YAML events", events.saturating_sub(1)),
        B::Aliases { .. } | B::AliasAnchorRatio { .. } => "too many aliases (*name)".into(),
        B::Anchors { .. } => "too many anchors (&name)".into(),
        B::Depth { depth } => format!("nested {depth} levels deep"),
        B::Documents { .. } => "too many documents".into(),
        B::ScalarBytes { .. } => "too much text in values".into(),
        B::CommentBytes { .. } => "too much text in comments".into(),
        B::MergeKeys { .. } => "too many merge keys (<<)".into(),
        _ => "more than the parser's limits allow".into(),
    };
    format!(
        "the YAML is too large once expanded ({what}); no kubeadm configuration is that large, remove the aliases or the repeated content"
    )
}

/// The dotted path of the mapping key written on `line` (1-based), found by walking up to the
/// lines with less indentation: `localAPIEndpoint.bindPort`, `bootstrapTokens[].ttl`. A best
/// effort for messages only.
fn field_path_at(text: &str, line: usize) -> Option<String> {
    // (indentation, is a "- " list item, key column, key)
    let parse = |l: &str| -> (usize, bool, usize, Option<String>) {
        let indent = l.len() - l.trim_start().len();
        let rest = l.trim_start();
        let item = rest.starts_with("- ");
        let body = if item { rest[2..].trim_start() } else { rest };
        let col = l.len() - body.len();
        let key = body
            .split_once(':')
            .map(|(k, _)| k.trim().trim_matches('"').trim_matches('\'').to_string());
        let key = key.filter(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        });
        (indent, item, col, key)
    };
    let lines: Vec<&str> = text.lines().collect();
    let (indent, item, col, key) = parse(lines.get(line.checked_sub(1)?)?);
    let mut path = vec![key?];
    // The column a parent key must be left of, and whether we are inside a list item.
    let (mut need, mut in_item) = if item { (indent, true) } else { (col, false) };
    for l in lines[..line - 1].iter().rev() {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        let (indent, item, col, key) = parse(l);
        if in_item {
            if item && indent == need {
                continue; // another key of the same list item, or a sibling item
            }
            if item && indent < need || !item && indent <= need {
                // The key holding the list.
                if let Some(k) = key {
                    path.push(format!("{k}[]"));
                }
                (need, in_item) = if item {
                    (indent, true)
                } else {
                    (indent, false)
                };
                if indent == 0 && !item {
                    break;
                }
            }
            continue;
        }
        if item && col == need {
            // We were a key inside this list item.
            need = indent;
            in_item = true;
            continue;
        }
        if col < need {
            if let Some(k) = key {
                path.push(k);
            }
            (need, in_item) = if item { (indent, true) } else { (col, false) };
            if col == 0 {
                break;
            }
        }
    }
    path.reverse();
    Some(path.join("."))
}

/// Parses the documents of a file and reads each one's `apiVersion` and `kind`.
pub fn documents(file: &str, text: &str) -> Result<Vec<RawDocument>, ConfigError> {
    let mut out = Vec::new();
    for (line, doc) in split_documents(text) {
        let value: serde_json::Value =
            serde_saphyr::from_str(&doc).map_err(|e| yaml_error(file, &doc, &e))?;
        let obj = value.as_object().ok_or_else(|| ConfigError::Document {
            file: file.to_string(),
            line,
            message: "a configuration document must be a YAML mapping with apiVersion and kind"
                .into(),
        })?;
        let get = |key: &str| -> Result<String, ConfigError> {
            match obj.get(key) {
                Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(ConfigError::Document {
                    file: file.to_string(),
                    line,
                    message: format!(
                        "the document has no {key:?}; every document needs apiVersion and kind (e.g. apiVersion: kubeadm.k8s.io/v1beta4, kind: InitConfiguration)"
                    ),
                }),
            }
        };
        out.push(RawDocument {
            line,
            api_version: get("apiVersion")?,
            kind: get("kind")?,
            text: doc,
        });
    }
    Ok(out)
}

fn typed<T: DeserializeOwned>(file: &str, doc: &RawDocument) -> Result<T, ConfigError> {
    serde_saphyr::from_str(&doc.text).map_err(|e| yaml_error(file, &doc.text, &e))
}

/// Kinds of the kubeadm API group.
const KUBEADM_KINDS: &[&str] = &[
    "InitConfiguration",
    "ClusterConfiguration",
    "JoinConfiguration",
    "ResetConfiguration",
    "UpgradeConfiguration",
];

/// Decodes a whole configuration file strictly.
pub fn decode(file: &str, text: &str) -> Result<Documents, ConfigError> {
    let raw = documents(file, text)?;
    if raw.is_empty() {
        return Err(ConfigError::Document {
            file: file.to_string(),
            line: 1,
            message: "the file holds no configuration document".into(),
        });
    }
    let mut out = Documents::default();
    let mut b3_cluster_timeout = None;
    let mut b3_init: Option<b3::InitConfiguration> = None;
    let dup = |doc: &RawDocument| ConfigError::Document {
        file: file.to_string(),
        line: doc.line,
        message: format!("more than one {} document; give each kind once", doc.kind),
    };
    for doc in &raw {
        let group_version = doc.api_version.as_str();
        let kind = doc.kind.as_str();
        match (group_version, kind) {
            (b4::API_VERSION | b3::API_VERSION, _) if !KUBEADM_KINDS.contains(&kind) => {
                return Err(ConfigError::Document {
                    file: file.to_string(),
                    line: doc.line,
                    message: format!(
                        "unknown kind {kind:?} for apiVersion {group_version}; expected one of {}",
                        KUBEADM_KINDS.join(", ")
                    ),
                });
            }
            (b3::API_VERSION, "ResetConfiguration" | "UpgradeConfiguration") => {
                return Err(ConfigError::Document {
                    file: file.to_string(),
                    line: doc.line,
                    message: format!(
                        "{kind} does not exist in {group_version}; use apiVersion: {}",
                        b4::API_VERSION
                    ),
                });
            }
            (b4::API_VERSION | b3::API_VERSION, _) => match &out.source_api_version {
                Some(v) if v != group_version => {
                    return Err(ConfigError::Document {
                        file: file.to_string(),
                        line: doc.line,
                        message: format!(
                            "mixed kubeadm API versions ({v} and {group_version}) in one file; run `kubeadm config migrate` and use {} throughout",
                            b4::API_VERSION
                        ),
                    });
                }
                _ => out.source_api_version = Some(group_version.to_string()),
            },
            (KUBELET_API_VERSION, "KubeletConfiguration") => {
                if out.kubelet.is_some() {
                    return Err(dup(doc));
                }
                schema::check::<schema::kubelet::KubeletConfiguration>(&doc.text)
                    .map_err(|e| yaml_error(file, &doc.text, &e))?;
                out.kubelet = Some(typed(file, doc)?);
                continue;
            }
            (KUBE_PROXY_API_VERSION, "KubeProxyConfiguration") => {
                if out.kube_proxy.is_some() {
                    return Err(dup(doc));
                }
                schema::check::<schema::kube_proxy::KubeProxyConfiguration>(&doc.text)
                    .map_err(|e| yaml_error(file, &doc.text, &e))?;
                out.kube_proxy = Some(typed(file, doc)?);
                continue;
            }
            (crate::ha::API_VERSION, crate::ha::KIND) => {
                if out.ha.is_some() {
                    return Err(dup(doc));
                }
                out.ha = Some(typed(file, doc)?);
                continue;
            }
            (crate::ha::API_VERSION, crate::mode::KIND) => {
                if out.control_plane.is_some() {
                    return Err(dup(doc));
                }
                out.control_plane = Some(typed(file, doc)?);
                continue;
            }
            (gv, _) if gv.starts_with("kubeadm.k8s.io/") => {
                return Err(ConfigError::Document {
                    file: file.to_string(),
                    line: doc.line,
                    message: format!(
                        "apiVersion {gv:?} is not supported; use {} (or {}), converting older files with `kubeadm config migrate` of an older kubeadm",
                        b4::API_VERSION,
                        b3::API_VERSION
                    ),
                });
            }
            (gv, k) => {
                return Err(ConfigError::Document {
                    file: file.to_string(),
                    line: doc.line,
                    message: format!(
                        "unknown configuration {gv}, Kind={k}; expected kubeadm.k8s.io/v1beta4 (or v1beta3) kinds, {KUBELET_API_VERSION} KubeletConfiguration, {KUBE_PROXY_API_VERSION} KubeProxyConfiguration or {} {}/{}",
                        crate::ha::API_VERSION,
                        crate::ha::KIND,
                        crate::mode::KIND
                    ),
                });
            }
        }
        let v1beta3 = group_version == b3::API_VERSION;
        match kind {
            "InitConfiguration" if out.init.is_some() || b3_init.is_some() => return Err(dup(doc)),
            "InitConfiguration" if v1beta3 => b3_init = Some(typed(file, doc)?),
            "InitConfiguration" => out.init = Some(typed(file, doc)?),
            "ClusterConfiguration" if out.cluster.is_some() => return Err(dup(doc)),
            "ClusterConfiguration" if v1beta3 => {
                let c: b3::ClusterConfiguration = typed(file, doc)?;
                let (c, timeout) = c.to_v1beta4();
                b3_cluster_timeout = timeout;
                out.cluster = Some(c);
            }
            "ClusterConfiguration" => out.cluster = Some(typed(file, doc)?),
            "JoinConfiguration" if out.join.is_some() => return Err(dup(doc)),
            "JoinConfiguration" if v1beta3 => {
                let j: b3::JoinConfiguration = typed(file, doc)?;
                out.join = Some(j.to_v1beta4());
            }
            "JoinConfiguration" => out.join = Some(typed(file, doc)?),
            "ResetConfiguration" if out.reset.is_some() => return Err(dup(doc)),
            "ResetConfiguration" => out.reset = Some(typed(file, doc)?),
            "UpgradeConfiguration" if out.upgrade.is_some() => return Err(dup(doc)),
            _ => out.upgrade = Some(typed(file, doc)?),
        }
    }
    if let Some(init) = b3_init {
        out.init = Some(init.to_v1beta4(b3_cluster_timeout));
    } else if let (Some(t), None) = (b3_cluster_timeout, &out.init) {
        // A lone v1beta3 ClusterConfiguration still carries the timeout into an InitConfiguration
        // only when init runs; keep it for that case.
        out.init = Some(b4::InitConfiguration {
            timeouts: Some(b4::Timeouts {
                control_plane_component_health_check: Some(t),
                ..Default::default()
            }),
            ..Default::default()
        });
        out.init_was_synthesized();
    }
    Ok(out)
}

impl Documents {
    fn init_was_synthesized(&mut self) {
        if let Some(init) = &mut self.init {
            init.api_version = b4::API_VERSION.into();
            init.kind = "InitConfiguration".into();
        }
    }
}
