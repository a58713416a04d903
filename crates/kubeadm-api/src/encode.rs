//! YAML output that Go's kubeadm reads back identically.
//!
//! Go marshals through JSON, so keys come out sorted; we do the same by going through
//! `serde_json::Value` (a sorted map). serde-saphyr quotes strings that a YAML 1.1 reader would
//! otherwise turn into booleans or numbers (`yes`, `0644`, `1.30`), and `prefer_block_scalars`
//! is off so long base64 values stay on one line.

use serde::Serialize;

use crate::ConfigError;

/// The serializer options every YAML writer of the project uses.
pub fn options() -> serde_saphyr::SerializerOptions {
    let mut o = serde_saphyr::SerializerOptions::default();
    o.prefer_block_scalars = false;
    o
}

/// One document as YAML with sorted keys.
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, ConfigError> {
    let json = serde_json::to_value(value).map_err(|e| ConfigError::Encode(e.to_string()))?;
    let mut out = String::new();
    serde_saphyr::to_fmt_writer_with_options(&mut out, &json, options())
        .map_err(|e| ConfigError::Encode(e.to_string()))?;
    Ok(out)
}

/// Several documents joined by `---` lines, as kubeadm prints them.
pub fn to_yaml_documents(docs: &[serde_json::Value]) -> Result<String, ConfigError> {
    let mut parts = Vec::with_capacity(docs.len());
    for d in docs {
        parts.push(to_yaml(d)?);
    }
    Ok(parts.join("---\n"))
}

/// Any serializable value as a JSON value (sorted keys).
pub fn to_value<T: Serialize>(value: &T) -> Result<serde_json::Value, ConfigError> {
    serde_json::to_value(value).map_err(|e| ConfigError::Encode(e.to_string()))
}
