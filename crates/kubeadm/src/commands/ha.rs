//! `kubeadm ha render` (beyond upstream): the built-in control-plane endpoint's files for this
//! node — keepalived.conf, its check script, haproxy.cfg and the two static Pods — printed for
//! operators who run the daemons themselves, from the `HighAvailabilityConfiguration` document
//! of a configuration file.

use std::net::IpAddr;
use std::path::Path;

use kubeadm_api::ha::{self, ControlPlaneNode, HighAvailabilityConfiguration};
use kubeadm_render::ha as render;

use super::read_config;
use crate::cli::{HaCommand, HaRenderArgs, HaStatusArgs, ListFormat};
use crate::error::{Error, Result};

/// Runs a `ha` sub-command.
pub fn run(root: &Path, command: HaCommand) -> Result<()> {
    match command {
        HaCommand::Render(args) => render_files(&args),
        HaCommand::Status(args) => status(root, &args),
    }
}

/// One API server behind the load balancer, as `ha status` saw it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendStatus {
    /// The node name (haproxy's server name).
    pub name: String,
    /// `address:port`.
    pub address: String,
    /// Whether `/readyz` answered 200.
    pub healthy: bool,
    /// What went wrong otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What `ha status` reports.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HaStatus {
    /// `keepalived+haproxy` or `haproxy-local`.
    pub mode: String,
    /// The VIP (keepalived mode).
    #[serde(rename = "virtualIP", skip_serializing_if = "Option::is_none")]
    pub virtual_ip: Option<String>,
    /// The interface it floats on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Whether this node holds the VIP now.
    #[serde(rename = "holdsVIP")]
    pub holds_vip: bool,
    /// The endpoint clients use.
    pub endpoint: String,
    /// Whether the endpoint answered `/readyz` with 200.
    pub endpoint_healthy: bool,
    /// Every backend.
    pub backends: Vec<BackendStatus>,
}

/// The VIP and interface of our keepalived.conf (`virtual_ipaddress { VIP/P dev IF }`).
fn vip_of(keepalived_conf: &str) -> Option<(String, String)> {
    let mut lines = keepalived_conf.lines().map(str::trim);
    lines.find(|l| l.starts_with("virtual_ipaddress"))?;
    let entry: Vec<&str> = lines.next()?.split_whitespace().collect();
    let vip = entry.first()?.split('/').next()?.to_string();
    let dev = entry
        .iter()
        .position(|w| *w == "dev")
        .and_then(|i| entry.get(i + 1))
        .map(|s| s.to_string())?;
    Some((vip, dev))
}

/// The listening port and `(name, address:port)` servers of our haproxy.cfg.
fn haproxy_of(haproxy_cfg: &str) -> (Option<u16>, Vec<(String, String)>) {
    let mut port = None;
    let mut servers = Vec::new();
    for line in haproxy_cfg.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["bind", addr, ..] => port = addr.rsplit(':').next().and_then(|p| p.parse().ok()),
            ["server", name, addr, ..] => servers.push((name.to_string(), addr.to_string())),
            _ => {}
        }
    }
    (port, servers)
}

fn status(root: &Path, args: &HaStatusArgs) -> Result<()> {
    let fx = super::init::effects(root, true);
    let haproxy = fx
        .read_to_string(Path::new(render::HAPROXY_CFG))?
        .ok_or_else(|| {
            Error::with_hint(
                format!("this node has no built-in control-plane endpoint: {} is missing", render::HAPROXY_CFG),
                "kubeadm init or join --control-plane with a HighAvailabilityConfiguration document writes it",
            )
        })?;
    let (port, servers) = haproxy_of(&haproxy);
    let port = port.unwrap_or(ha::DEFAULT_PORT);
    let keepalived = fx.read_to_string(Path::new(render::KEEPALIVED_CONF))?;
    let vip = keepalived.as_deref().and_then(vip_of);
    let holds_vip = match &vip {
        Some((v, _)) => {
            let v: IpAddr = v.parse().map_err(|_| {
                Error::msg(format!(
                    "{}: bad virtual_ipaddress {v:?}",
                    render::KEEPALIVED_CONF
                ))
            })?;
            interface_addresses()?.iter().any(|a| a.address == v)
        }
        None => false,
    };
    let host = match &vip {
        Some((v, _)) if v.contains(':') => format!("[{v}]"),
        Some((v, _)) => v.clone(),
        None => "127.0.0.1".into(),
    };
    let endpoint = format!("{host}:{port}");
    let rt = crate::apiclient::runtime()?;
    let (endpoint_result, results) = rt.block_on(async {
        // Every backend at once: each probe waits at most its own timeout.
        let tasks: Vec<_> = servers
            .iter()
            .map(|(_, addr)| {
                let url = format!("https://{addr}/readyz");
                tokio::spawn(async move { crate::waiter::probe(&url).await })
            })
            .collect();
        let endpoint_result = crate::waiter::probe(&format!("https://{endpoint}/readyz")).await;
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap_or_else(|e| Err(e.to_string())));
        }
        (endpoint_result, results)
    });
    let report = HaStatus {
        mode: if vip.is_some() {
            ha::MODE_KEEPALIVED_HAPROXY.into()
        } else {
            ha::MODE_HAPROXY_LOCAL.into()
        },
        virtual_ip: vip.as_ref().map(|(v, _)| v.clone()),
        interface: vip.as_ref().map(|(_, i)| i.clone()),
        holds_vip,
        endpoint,
        endpoint_healthy: endpoint_result.is_ok(),
        backends: servers
            .iter()
            .zip(results)
            .map(|((name, address), r)| BackendStatus {
                name: name.clone(),
                address: address.clone(),
                healthy: r.is_ok(),
                error: r.err(),
            })
            .collect(),
    };
    match args.output {
        ListFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| Error::msg(e.to_string()))?
        ),
        ListFormat::Yaml => print!("{}", kubeadm_api::encode::to_yaml(&report)?),
        ListFormat::Text => {
            println!("MODE\t{}", report.mode);
            if let Some(v) = &report.virtual_ip {
                println!(
                    "VIP\t{v} on {} ({})",
                    report.interface.as_deref().unwrap_or("?"),
                    if report.holds_vip {
                        "held by this node"
                    } else {
                        "held by another node"
                    }
                );
            }
            println!(
                "ENDPOINT\t{} ({})",
                report.endpoint,
                if report.endpoint_healthy {
                    "healthy"
                } else {
                    "not answering"
                }
            );
            println!("BACKEND\tADDRESS\tHEALTH");
            for b in &report.backends {
                println!(
                    "{}\t{}\t{}",
                    b.name,
                    b.address,
                    match &b.error {
                        None => "healthy".to_string(),
                        Some(e) => format!("unhealthy: {e}"),
                    }
                );
            }
        }
    }
    Ok(())
}

/// The document's own rules (see [`HighAvailabilityConfiguration::validate`]): every invalid
/// field at once, naming `file`.
pub fn check(cfg: &HighAvailabilityConfiguration, file: &str, api_port: u16) -> Result<()> {
    let errors = cfg.validate(api_port);
    if errors.is_empty() {
        return Ok(());
    }
    Err(Error::with_hint(
        format!("{file}: invalid {}:\n{}", ha::KIND, errors.join("\n")),
        "fix the fields named above",
    ))
}

/// Writes this node's endpoint files (configs under [`render::HA_DIR`], the two static Pods)
/// for a control-plane node at `address` named `name`: init's and a control-plane join's
/// part. The interface and the VIP's subnet are checked on the host first, so nothing is
/// written for a VIP that cannot float here.
pub fn write_node_files(
    fx: &dyn kubeadm_effects::Effects,
    cfg: &HighAvailabilityConfiguration,
    name: &str,
    address: IpAddr,
    api_port: u16,
) -> Result<()> {
    let (interface, prefix) = if cfg.has_vip() {
        vip_interface(cfg, address, &interface_addresses()?)?
    } else {
        (String::new(), 0)
    };
    let password = if cfg.vrrp_version == Some(2) && cfg.auth_password.is_empty() {
        ha::generate_password().map_err(Error::msg)?
    } else {
        cfg.auth_password.clone()
    };
    let address_text = address.to_string();
    let node = render::HaNode {
        name,
        address: &address_text,
        interface: &interface,
        prefix,
        auth_password: &password,
    };
    let files = files_for_node(cfg, &node, api_port)?;
    fx.create_dir_all(Path::new(render::HA_DIR), 0o755)?;
    println!(
        "[control-plane] Creating the control-plane endpoint's files ({}) and static Pods",
        if cfg.has_vip() {
            format!(
                "keepalived VIP {} and haproxy on port {}",
                cfg.virtual_ip,
                cfg.lb_port()
            )
        } else {
            format!("haproxy on 127.0.0.1:{}", cfg.lb_port())
        }
    );
    for (path, content) in files {
        // keepalived.conf may hold the VRRP password; the check script must run.
        let mode = match path.as_str() {
            render::KEEPALIVED_CONF => 0o600,
            render::CHECK_SCRIPT => 0o755,
            _ => 0o644,
        };
        // Static Pod manifests get kubeadm's manifest mode, as the control plane's.
        let mode = if path.starts_with(kubeadm_render::staticpod::MANIFESTS_DIR) {
            0o600
        } else {
            mode
        };
        fx.write_file(
            Path::new(&path),
            kubeadm_effects::Content::Plain(content.into_bytes()),
            mode,
        )?;
    }
    Ok(())
}

/// One address of a network interface, as `ip -j addr` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The interface name.
    pub interface: String,
    /// The address.
    pub address: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
}

/// The host's interface addresses (`ip -j addr show`; iproute2 is a preflight requirement).
/// Read-only, so it runs under `--dry-run` too.
pub fn interface_addresses() -> Result<Vec<InterfaceAddress>> {
    let out = std::process::Command::new("ip")
        .args(["-j", "addr", "show"])
        .output()
        .map_err(|e| {
            Error::with_hint(
                format!("cannot list the network interfaces (ip -j addr show): {e}"),
                "install iproute2, or set interface in the HighAvailabilityConfiguration",
            )
        })?;
    if !out.status.success() {
        return Err(Error::with_hint(
            format!(
                "ip -j addr show failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "set interface in the HighAvailabilityConfiguration",
        ));
    }
    Ok(parse_addresses(&out.stdout))
}

/// The addresses in `ip -j addr show` output (entries it cannot read are left out).
pub fn parse_addresses(json: &[u8]) -> Vec<InterfaceAddress> {
    let Ok(serde_json::Value::Array(links)) = serde_json::from_slice(json) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for link in &links {
        let Some(name) = link["ifname"].as_str() else {
            continue;
        };
        for a in link["addr_info"].as_array().into_iter().flatten() {
            let (Some(local), Some(prefix)) = (a["local"].as_str(), a["prefixlen"].as_u64()) else {
                continue;
            };
            if let (Ok(address), Ok(prefix)) = (local.parse(), u8::try_from(prefix)) {
                out.push(InterfaceAddress {
                    interface: name.to_string(),
                    address,
                    prefix,
                });
            }
        }
    }
    out
}

/// Where the VIP floats on this node: the interface named in the document (its address in the
/// VIP's subnet) or the one carrying `address`; the VIP must be inside that subnet.
pub fn vip_interface(
    cfg: &HighAvailabilityConfiguration,
    address: IpAddr,
    addresses: &[InterfaceAddress],
) -> Result<(String, u8)> {
    let vip: IpAddr = cfg.virtual_ip.parse().map_err(|_| {
        Error::with_hint(
            format!(
                "{}.virtualIP: Invalid value: {:?}",
                ha::KIND,
                cfg.virtual_ip
            ),
            "give the virtual IP as an address",
        )
    })?;
    let found = if cfg.interface.is_empty() {
        addresses.iter().find(|a| a.address == address)
    } else {
        addresses
            .iter()
            .filter(|a| a.interface == cfg.interface)
            .find(|a| ha::in_subnet(vip, a.address, a.prefix))
            .or_else(|| addresses.iter().find(|a| a.interface == cfg.interface))
    };
    let Some(found) = found else {
        return Err(Error::with_hint(
            if cfg.interface.is_empty() {
                format!(
                    "{}.interface: no network interface of this host has the address {address}",
                    ha::KIND
                )
            } else {
                format!(
                    "{}.interface: Invalid value: {:?}: no such interface with an address on this host",
                    ha::KIND,
                    cfg.interface
                )
            },
            "set interface to the one the VIP should float on (`ip addr` lists them), or fix the advertise address",
        ));
    };
    if !ha::in_subnet(vip, found.address, found.prefix) {
        return Err(Error::with_hint(
            format!(
                "{}.virtualIP: Invalid value: {vip:?}: not inside {}/{} of interface {}",
                ha::KIND,
                found.address,
                found.prefix,
                found.interface
            ),
            "pick a free address of that subnet for the VIP, or set interface to the link it belongs to",
        ));
    }
    if addresses.iter().any(|a| a.address == vip) {
        return Err(Error::with_hint(
            format!(
                "{}.virtualIP: Invalid value: {vip:?}: already an address of this host ({})",
                ha::KIND,
                found.interface
            ),
            "the VIP must be an address no node owns; keepalived adds it to the node holding it",
        ));
    }
    Ok((found.interface.clone(), found.prefix))
}

/// Every file of the endpoint for one node, as `(host path, content)`.
pub fn files_for_node(
    cfg: &HighAvailabilityConfiguration,
    node: &render::HaNode<'_>,
    api_port: u16,
) -> Result<Vec<(String, String)>> {
    let mut backends = cfg.control_plane_nodes.clone();
    if !backends
        .iter()
        .any(|b| b.name == node.name || b.address == node.address)
    {
        backends.push(ControlPlaneNode {
            name: node.name.to_string(),
            address: node.address.to_string(),
            port: Some(api_port),
        });
    }
    let mut files = vec![(
        render::HAPROXY_CFG.to_string(),
        render::haproxy_cfg(cfg, &backends),
    )];
    let mut pods = vec![render::haproxy_pod(cfg)];
    if cfg.has_vip() {
        files.push((
            render::KEEPALIVED_CONF.to_string(),
            render::keepalived_conf(cfg, node, &backends),
        ));
        files.push((
            render::CHECK_SCRIPT.to_string(),
            render::check_script(cfg, node.address, api_port),
        ));
        pods.push(render::keepalived_pod(cfg));
    }
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        files.push((
            kubeadm_render::staticpod::manifest_path(&name),
            kubeadm_render::pod_yaml(&pod)?,
        ));
    }
    Ok(files)
}

fn render_files(args: &HaRenderArgs) -> Result<()> {
    let docs = read_config(&args.config)?;
    let file = args.config.display().to_string();
    let Some(mut cfg) = docs.ha.clone() else {
        return Err(Error::with_hint(
            format!("{file} holds no {} document", ha::KIND),
            format!(
                "add a document with apiVersion: {} and kind: {}",
                ha::API_VERSION,
                ha::KIND
            ),
        ));
    };
    cfg.set_defaults();
    let init = docs.init.clone().unwrap_or_default();
    let api_port = u16::try_from(init.local_api_endpoint.bind_port)
        .ok()
        .filter(|p| *p != 0)
        .unwrap_or(6443);
    check(&cfg, &file, api_port)?;
    let name = args
        .node_name
        .clone()
        .or_else(|| Some(init.node_registration.name.clone()).filter(|n| !n.is_empty()))
        .unwrap_or_else(|| crate::host::hostname().to_lowercase());
    let address: IpAddr = match args.advertise_address.clone().or_else(|| {
        Some(init.local_api_endpoint.advertise_address.clone()).filter(|a| !a.is_empty())
    }) {
        Some(a) => a.parse().map_err(|_| {
            Error::with_hint(
                format!("advertise address {a:?} is not an IP address"),
                "give --advertise-address as an address of this node",
            )
        })?,
        None => crate::host::default_route_ip().ok_or_else(|| {
            Error::with_hint(
                "this host has no default route to take its address from",
                "give --advertise-address",
            )
        })?,
    };
    let (interface, prefix) = if cfg.has_vip() {
        vip_interface(&cfg, address, &interface_addresses()?)?
    } else {
        (String::new(), 0)
    };
    let password = if cfg.vrrp_version == Some(2) && cfg.auth_password.is_empty() {
        let p = ha::generate_password().map_err(Error::msg)?;
        // On stderr: stdout holds only the files.
        eprintln!(
            "[ha] authPassword was empty: generated {p:?} for VRRPv2; put it in the document so every node uses the same"
        );
        p
    } else {
        cfg.auth_password.clone()
    };
    let address_text = address.to_string();
    let node = render::HaNode {
        name: &name,
        address: &address_text,
        interface: &interface,
        prefix,
        auth_password: &password,
    };
    for (path, content) in files_for_node(&cfg, &node, api_port)? {
        println!("# {path}");
        print!("{content}");
        if !content.ends_with('\n') {
            println!();
        }
        println!("---");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_ip_json() {
        let json = br#"[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
            {"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet","local":"10.0.0.11","prefixlen":24},{"family":"inet6","local":"fd00::11","prefixlen":64}]},
            {"ifindex":3,"ifname":"weird"}]"#;
        let a = parse_addresses(json);
        assert_eq!(a.len(), 3);
        assert_eq!(a[1].interface, "eth0");
        assert_eq!(a[1].prefix, 24);
        assert!(parse_addresses(b"not json").is_empty());
        let mut cfg = HighAvailabilityConfiguration {
            virtual_ip: "10.0.0.100".into(),
            ..Default::default()
        };
        let me: IpAddr = "10.0.0.11".parse().unwrap();
        assert_eq!(vip_interface(&cfg, me, &a).unwrap(), ("eth0".into(), 24));
        cfg.virtual_ip = "10.0.1.100".into();
        let e = vip_interface(&cfg, me, &a).unwrap_err().to_string();
        assert!(
            e.contains("not inside 10.0.0.11/24 of interface eth0"),
            "{e}"
        );
        cfg.virtual_ip = "10.0.0.11".into();
        let e = vip_interface(&cfg, me, &a).unwrap_err().to_string();
        assert!(e.contains("already an address of this host"), "{e}");
        cfg.virtual_ip = "10.0.0.100".into();
        cfg.interface = "eth9".into();
        let e = vip_interface(&cfg, me, &a).unwrap_err().to_string();
        assert!(e.contains("interface: Invalid value: \"eth9\""), "{e}");
    }
}
