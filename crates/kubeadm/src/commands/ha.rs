//! `kubeadm ha render` (beyond upstream): the built-in control-plane endpoint's files for this
//! node — keepalived.conf, its check script, haproxy.cfg and the two static Pods — printed for
//! operators who run the daemons themselves, from the `HighAvailabilityConfiguration` document
//! of a configuration file.

use std::net::IpAddr;

use kubeadm_api::ha::{self, ControlPlaneNode, HighAvailabilityConfiguration};
use kubeadm_render::ha as render;

use super::read_config;
use crate::cli::{HaCommand, HaRenderArgs};
use crate::error::{Error, Result};

/// Runs a `ha` sub-command.
pub fn run(command: HaCommand) -> Result<()> {
    match command {
        HaCommand::Render(args) => render_files(&args),
    }
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
    let errors = cfg.validate(api_port);
    if !errors.is_empty() {
        return Err(Error::with_hint(
            format!("{file}: invalid {}:\n{}", ha::KIND, errors.join("\n")),
            "fix the fields named above",
        ));
    }
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
