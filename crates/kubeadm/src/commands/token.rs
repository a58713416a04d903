//! `kubeadm token create|list|delete` against the cluster named by `--kubeconfig`.

use std::path::{Path, PathBuf};

use base64::Engine;
use clap::Args;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kubeadm_api::BootstrapTokenString;
use kubeadm_api::v1beta4::BootstrapToken;
use kubeadm_cluster::token::{self as tok, DEFAULT_GROUP, TokenInfo};

use crate::apiclient::{self, ApiError};
use crate::cli::{ListFormat, TokenCommand};
use crate::error::{Error, Result};

/// Where the admin kubeconfig is by default (under `--rootfs`).
pub const DEFAULT_KUBECONFIG: &str = "/etc/kubernetes/admin.conf";

/// Flags every token command shares.
#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    /// The kubeconfig file to use when talking to the cluster.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// Flags of `kubeadm token create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The token to create (`[a-z0-9]{6}.[a-z0-9]{16}`); generated when omitted.
    pub token: Option<String>,
    /// The duration before the token is automatically deleted (e.g. 1s, 2m, 3h). '0' means never.
    #[arg(long, default_value = "24h0m0s")]
    pub ttl: String,
    /// Describes the ways in which this token can be used.
    #[arg(long, value_delimiter = ',', default_value = "signing,authentication")]
    pub usages: Vec<String>,
    /// Extra groups that this token will authenticate as when used for authentication.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_GROUP)]
    pub groups: Vec<String>,
    /// A human friendly description of how this token is used.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Instead of printing only the token, print the full 'kubeadm join' flag needed to join the cluster.
    #[arg(long)]
    pub print_join_command: bool,
    /// Kubeconfig flags.
    #[command(flatten)]
    pub kc: KubeconfigArgs,
}

/// Flags of `kubeadm token list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
    /// Kubeconfig flags.
    #[command(flatten)]
    pub kc: KubeconfigArgs,
}

/// Flags of `kubeadm token delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Token ids or whole tokens to delete.
    #[arg(required = true, value_name = "TOKEN-VALUE")]
    pub tokens: Vec<String>,
    /// Kubeconfig flags.
    #[command(flatten)]
    pub kc: KubeconfigArgs,
}

fn kubeconfig_path(root: &Path, given: &Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p.clone()),
        // Resolved inside the root, links included, as every other host path.
        None => Ok(kubeadm_effects::resolve(
            root,
            Path::new(DEFAULT_KUBECONFIG),
        )?),
    }
}

fn read_kubeconfig(root: &Path, given: &Option<PathBuf>) -> Result<(String, String)> {
    let path = kubeconfig_path(root, given)?;
    let text = super::read_input_text(&path)?;
    Ok((path.display().to_string(), text))
}

/// Runs a `kubeadm token` sub-command.
pub fn run(root: &Path, cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Generate => {
            let t = kubeadm_api::BootstrapTokenString::generate().map_err(Error::msg)?;
            println!("{t}");
            Ok(())
        }
        TokenCommand::Create(a) => create(root, a),
        TokenCommand::List(a) => list(root, a),
        TokenCommand::Delete(a) => delete(root, a),
    }
}

/// Checks `--groups` as upstream: each `system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]`.
fn validate_groups(groups: &[String]) -> Result<()> {
    for g in groups {
        let rest = g.strip_prefix("system:bootstrappers:");
        let ok = rest.is_some_and(|r| {
            !r.is_empty()
                && r.len() <= 256
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-')
                && r.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        });
        if !ok {
            return Err(super::flag_error(
                "groups",
                g,
                "must match ^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$",
            ));
        }
    }
    Ok(())
}

fn create(root: &Path, a: CreateArgs) -> Result<()> {
    // Validate everything before talking to the cluster.
    let token = match &a.token {
        // The token is the positional argument here (`kubeadm token create [token]`), not a flag.
        Some(t) => BootstrapTokenString::parse(t).map_err(|e| {
            Error::with_hint(
                format!(
                    "invalid token argument {:?}: {e}",
                    kubeadm_api::token::redact(t)
                ),
                "give a token of the form [a-z0-9]{6}.[a-z0-9]{16} (e.g. from `kubeadm token generate`), or none to have one generated",
            )
        })?,
        None => BootstrapTokenString::generate().map_err(Error::msg)?,
    };
    let ttl =
        kubeadm_api::Duration::parse(&a.ttl).map_err(|e| super::flag_error("ttl", &a.ttl, &e))?;
    if ttl.as_nanos() < 0 {
        return Err(super::flag_error("ttl", &a.ttl, "must not be negative"));
    }
    let usages: Vec<String> = a
        .usages
        .iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    for u in &usages {
        if !tok::USAGES.contains(&u.as_str()) {
            return Err(super::flag_error(
                "usages",
                u,
                "valid usages are signing, authentication",
            ));
        }
    }
    let groups: Vec<String> = a
        .groups
        .iter()
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
        .collect();
    validate_groups(&groups)?;
    if !groups.is_empty() && !usages.iter().any(|u| u == "authentication") {
        return Err(super::flag_error(
            "groups",
            &groups.join(","),
            "token groups are only allowed with the authentication usage",
        ));
    }
    let bt = BootstrapToken {
        token: token.clone(),
        description: a.description.clone(),
        ttl: Some(ttl),
        expires: None,
        usages,
        groups,
    };
    let secret = tok::secret(&bt, jiff::Timestamp::now())?;
    let (path, text) = read_kubeconfig(root, &a.kc.kubeconfig)?;
    let join = if a.print_join_command {
        Some(join_command(&path, &text, &token)?)
    } else {
        None
    };
    let rt = apiclient::runtime()?;
    rt.block_on(async {
        let client = apiclient::client_from_kubeconfig(&path, &text).await?;
        match apiclient::create_new(&apiclient::namespaced_api(&client, &secret), &secret).await {
            Err(e) if e.is_already_exists() => Err(Error::with_hint(
                format!("a token with id {:?} already exists", token.id()),
                "choose another token, or delete the existing one with `kubeadm token delete`",
            )),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    })?;
    match join {
        Some(j) => println!("{j}"),
        None => println!("{token}"),
    }
    Ok(())
}

/// `kubeadm join <endpoint> --token … --discovery-token-ca-cert-hash sha256:…` from the
/// kubeconfig's current cluster.
fn join_command(path: &str, text: &str, token: &BootstrapTokenString) -> Result<String> {
    let bad = |detail: &str| {
        Error::from(ApiError::Kubeconfig {
            path: path.to_string(),
            detail: detail.to_string(),
        })
    };
    let kc = kube::config::Kubeconfig::from_yaml(text).map_err(|e| bad(&e.to_string()))?;
    let ctx_name = kc.current_context.clone().unwrap_or_default();
    let cluster_name = kc
        .contexts
        .iter()
        .find(|c| c.name == ctx_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(|| bad("no current context"))?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| bad("the current context's cluster is missing"))?;
    let server = cluster
        .server
        .ok_or_else(|| bad("the cluster has no server"))?;
    let endpoint = server
        .strip_prefix("https://")
        .unwrap_or(&server)
        .trim_end_matches('/');
    let ca_b64 = cluster
        .certificate_authority_data
        .ok_or_else(|| bad("the cluster has no certificate-authority-data"))?;
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(ca_b64.trim())
        .map_err(|e| bad(&format!("certificate-authority-data: {e}")))?;
    let hash = ca_cert_hash(&ca_pem).ok_or_else(|| bad("cannot parse the CA certificate"))?;
    Ok(format!(
        "kubeadm join {endpoint} --token {token} --discovery-token-ca-cert-hash {hash} "
    ))
}

/// `sha256:<hex>` of the DER SubjectPublicKeyInfo of the first certificate in `pem`.
pub fn ca_cert_hash(pem: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(pem).ok()?;
    let ca = kubeadm_pki::CertInfo::from_pem("ca.crt", text).ok()?;
    Some(kubeadm_pki::ca_cert_hash(&ca))
}

async fn fetch(client: &kube::Client) -> Result<Vec<TokenInfo>, ApiError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    let lp = ListParams::default().fields(&format!("type={}", tok::SECRET_TYPE));
    let list = apiclient::retry("list bootstrap tokens", 5, || api.list(&lp)).await?;
    Ok(list.items.iter().filter_map(tok::from_secret).collect())
}

/// Human TTL as upstream prints it (`23h`, `59m`, `<forever>`, `<invalid>`).
fn human_ttl(expires: Option<&str>, now: jiff::Timestamp) -> String {
    let Some(e) = expires else {
        return "<forever>".into();
    };
    let Ok(t) = e.parse::<jiff::Timestamp>() else {
        return "<invalid>".into();
    };
    let secs = t.as_second() - now.as_second();
    if secs <= 0 {
        "<invalid>".into()
    } else if secs < 120 {
        format!("{secs}s")
    } else if secs < 2 * 3600 {
        format!("{}m", secs / 60)
    } else if secs < 48 * 3600 {
        format!("{}h", secs / 3600)
    } else {
        format!("{}d", secs / 86400)
    }
}

fn list(root: &Path, a: ListArgs) -> Result<()> {
    let (path, text) = read_kubeconfig(root, &a.kc.kubeconfig)?;
    let rt = apiclient::runtime()?;
    let tokens = rt.block_on(async {
        let client = apiclient::client_from_kubeconfig(&path, &text).await?;
        fetch(&client).await
    })?;
    let now = jiff::Timestamp::now();
    match a.output {
        ListFormat::Text => {
            let mut rows = vec![[
                "TOKEN".to_string(),
                "TTL".into(),
                "EXPIRES".into(),
                "USAGES".into(),
                "DESCRIPTION".into(),
                "EXTRA GROUPS".into(),
            ]];
            for t in &tokens {
                rows.push([
                    t.token.clone(),
                    human_ttl(t.expires.as_deref(), now),
                    t.expires.clone().unwrap_or_else(|| "<never>".into()),
                    t.usages.join(","),
                    if t.description.is_empty() {
                        "<none>".into()
                    } else {
                        t.description.clone()
                    },
                    t.groups.join(","),
                ]);
            }
            let widths: Vec<usize> = (0..6)
                .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
                .collect();
            for r in rows {
                let line: Vec<String> = r
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                    .collect();
                println!("{}", line.join("   ").trim_end());
            }
        }
        ListFormat::Json | ListFormat::Yaml => {
            for t in &tokens {
                let mut v = serde_json::json!({
                    "kind": "BootstrapToken",
                    "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
                    "token": t.token,
                    "usages": t.usages,
                    "groups": t.groups,
                });
                if !t.description.is_empty() {
                    v["description"] = t.description.clone().into();
                }
                if let Some(e) = &t.expires {
                    v["expires"] = e.clone().into();
                }
                if a.output == ListFormat::Json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&v).map_err(|e| Error::msg(e.to_string()))?
                    );
                } else {
                    print!("{}", kubeadm_api::encode::to_yaml(&v)?);
                    println!("---");
                }
            }
        }
    }
    Ok(())
}

fn delete(root: &Path, a: DeleteArgs) -> Result<()> {
    let mut ids = Vec::new();
    for t in &a.tokens {
        let id_ok = t.len() == 6
            && t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if id_ok {
            ids.push(t.clone());
        } else {
            let parsed = BootstrapTokenString::parse(t).map_err(|e| {
                Error::with_hint(
                    format!("given token didn't match pattern \"[a-z0-9]{{6}}\" or \"[a-z0-9]{{6}}\\.[a-z0-9]{{16}}\": {e}"),
                    "pass a token id (6 characters) or a whole token",
                )
            })?;
            ids.push(parsed.id().to_string());
        }
    }
    let (path, text) = read_kubeconfig(root, &a.kc.kubeconfig)?;
    let rt = apiclient::runtime()?;
    rt.block_on(async {
        let client = apiclient::client_from_kubeconfig(&path, &text).await?;
        let api: Api<Secret> = Api::namespaced(client, "kube-system");
        for id in &ids {
            match apiclient::delete(&api, &tok::secret_name(id)).await {
                Ok(()) => println!("bootstrap token {id:?} deleted"),
                Err(e) if e.is_not_found() => {
                    return Err(Error::with_hint(
                        format!("bootstrap token {id:?} not found"),
                        "`kubeadm token list` shows the existing tokens",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok::<(), Error>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rendering() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(human_ttl(None, now), "<forever>");
        assert_eq!(human_ttl(Some("2026-01-01T23:00:00Z"), now), "23h");
        assert_eq!(human_ttl(Some("2025-01-01T00:00:00Z"), now), "<invalid>");
    }

    #[test]
    fn groups_validation() {
        assert!(validate_groups(&[DEFAULT_GROUP.into()]).is_ok());
        assert!(validate_groups(&["system:masters".into()]).is_err());
        assert!(validate_groups(&["system:bootstrappers:x-".into()]).is_err());
    }
}
