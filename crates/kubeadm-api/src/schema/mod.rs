//! The schemas of the component configurations kubeadm carries for others: every field of
//! `kubelet.config.k8s.io/v1beta1` KubeletConfiguration and `kubeproxy.config.k8s.io/v1alpha1`
//! KubeProxyConfiguration with its type, as upstream's Go types declare them.
//!
//! The documents themselves stay `serde_json::Value`s (what the user wrote is what gets
//! written, defaults filled around it); these types exist to decode each document once,
//! strictly, so that an unknown field or a wrong type is an error with its file, line and
//! field path instead of a kubelet that refuses its configuration later.

// The fields are read by the decoder only: their names and types are the check.
#![allow(dead_code)]

pub mod kube_proxy;
pub mod kubelet;

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A Kubernetes quantity (`100Mi`, `0.5`, `2`): a string or a number in YAML.
#[derive(Debug)]
pub struct Quantity;

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as \"100Mi\", \"500m\" or 2")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Quantity, E> {
                let ok = !s.is_empty()
                    && s.starts_with(|c: char| c.is_ascii_digit() || "+-.".contains(c))
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
                if ok {
                    Ok(Quantity)
                } else {
                    Err(E::custom(format!(
                        "invalid quantity {s:?}: expected e.g. \"100Mi\", \"500m\" or \"2\""
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Quantity, E> {
                Ok(Quantity)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Quantity, E> {
                Ok(Quantity)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Quantity, E> {
                Ok(Quantity)
            }
        }
        d.deserialize_any(V)
    }
}

/// `LoggingConfiguration` of k8s.io/component-base/logs/api/v1.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Logging {
    format: Option<String>,
    /// A duration string, or nanoseconds as a number (`TimeOrMetaDuration`).
    flush_frequency: Option<DurationOrNanos>,
    verbosity: Option<u32>,
    vmodule: Option<Vec<VModule>>,
    options: Option<LoggingOptions>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VModule {
    file_path: Option<String>,
    verbosity: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LoggingOptions {
    text: Option<StreamOptions>,
    json: Option<StreamOptions>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StreamOptions {
    split_stream: Option<bool>,
    info_buffer_size: Option<Quantity>,
}

/// A Go duration string, or a number of nanoseconds.
#[derive(Debug)]
pub struct DurationOrNanos;

impl<'de> Deserialize<'de> for DurationOrNanos {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationOrNanos;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"5s\", or nanoseconds")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DurationOrNanos, E> {
                crate::Duration::parse(s)
                    .map(|_| DurationOrNanos)
                    .map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<DurationOrNanos, E> {
                Ok(DurationOrNanos)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<DurationOrNanos, E> {
                Ok(DurationOrNanos)
            }
        }
        d.deserialize_any(V)
    }
}

/// `map[string]string`.
pub type StringMap = BTreeMap<String, String>;

/// Decodes `text` (one document) strictly as `T`, with numbers and booleans not accepted where
/// a string is declared (Go's JSON decoder refuses them too).
pub(crate) fn check<T: for<'de> Deserialize<'de>>(text: &str) -> Result<(), serde_saphyr::Error> {
    let options = serde_saphyr::options! { no_schema: true };
    serde_saphyr::from_str_with_options::<T>(text, options).map(drop)
}
