//! `kubeadm config print|migrate|validate|images`.

use std::path::Path;

use kubeadm_api::config::{InitConfig, JoinConfig};
use kubeadm_api::decode::Documents;
use kubeadm_api::defaults::{self, *};
use kubeadm_api::v1beta4::*;
use kubeadm_api::{component, encode, images, validate, version};
use serde_json::Value;

use super::{flag_error, parse_feature_gates, read_config};
use crate::cli::{
    ConfigCommand, ImagesCommand, ImagesListArgs, ListFormat, MigrateArgs, PrintArgs, PrintCommand,
    ValidateArgs,
};
use crate::error::{Error, Result};
use crate::host;

/// Dispatches `kubeadm config …`.
pub fn run(root: &Path, cmd: ConfigCommand) -> Result<()> {
    match cmd {
        ConfigCommand::Print(p) => {
            print!("{}", print_defaults(&p)?);
            Ok(())
        }
        ConfigCommand::Migrate(m) => migrate(&m),
        ConfigCommand::Validate(v) => validate_file(root, &v),
        ConfigCommand::Images(ImagesCommand::List(l)) => images_list(&l),
        ConfigCommand::Images(ImagesCommand::Pull(p)) => super::images::pull(root, &p),
        ConfigCommand::Images(ImagesCommand::Export(e)) => super::images::export(root, &e),
        ConfigCommand::Images(ImagesCommand::Import(i)) => super::images::import(root, &i),
    }
}

/// The placeholder-filled defaults `config print init-defaults` shows.
pub fn init_defaults() -> (InitConfiguration, ClusterConfiguration) {
    let mut init = InitConfiguration::default();
    defaults::init(&mut init, true);
    init.node_registration.name = PLACEHOLDER_NODE_NAME.into();
    init.local_api_endpoint.advertise_address = PLACEHOLDER_ADVERTISE_ADDRESS.into();
    let mut cluster = ClusterConfiguration::default();
    defaults::cluster(&mut cluster);
    (init, cluster)
}

fn component_docs(kinds: &[String], cluster: &ClusterConfiguration) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for kind in kinds {
        match kind.as_str() {
            "KubeletConfiguration" => out.push(component::kubelet_defaults(cluster)),
            "KubeProxyConfiguration" => out.push(component::kube_proxy_defaults(cluster, false)),
            other => {
                return Err(flag_error(
                    "component-configs",
                    other,
                    "available values: KubeProxyConfiguration, KubeletConfiguration",
                ));
            }
        }
    }
    Ok(out)
}

/// Renders `config print <kind>-defaults`.
pub fn print_defaults(cmd: &PrintCommand) -> Result<String> {
    let (args, docs): (&PrintArgs, Vec<Value>) = match cmd {
        PrintCommand::InitDefaults(a) => {
            let (init, cluster) = init_defaults();
            let mut docs = vec![encode::to_value(&init)?, encode::to_value(&cluster)?];
            docs.extend(component_docs(&a.component_configs, &cluster)?);
            return Ok(encode::to_yaml_documents(&docs)?);
        }
        PrintCommand::JoinDefaults(a) => {
            let mut join = JoinConfiguration {
                discovery: Discovery {
                    bootstrap_token: Some(BootstrapTokenDiscovery {
                        token: PLACEHOLDER_TOKEN.into(),
                        api_server_endpoint: PLACEHOLDER_API_SERVER_ENDPOINT.into(),
                        unsafe_skip_ca_verification: true,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            defaults::join(&mut join);
            join.node_registration.name = PLACEHOLDER_NODE_NAME.into();
            (a, vec![encode::to_value(&join)?])
        }
        PrintCommand::ResetDefaults(a) => {
            let mut reset = ResetConfiguration::default();
            defaults::reset(&mut reset);
            (a, vec![encode::to_value(&reset)?])
        }
        PrintCommand::UpgradeDefaults(a) => {
            let mut up = UpgradeConfiguration::default();
            defaults::upgrade(&mut up);
            (a, vec![encode::to_value(&up)?])
        }
    };
    let mut docs = docs;
    let (_, cluster) = init_defaults();
    docs.extend(component_docs(&args.component_configs, &cluster)?);
    Ok(encode::to_yaml_documents(&docs)?)
}

/// `config migrate`: reads v1beta3 or v1beta4, writes v1beta4 with static defaults applied.
fn migrate(args: &MigrateArgs) -> Result<()> {
    let path = args.old_config.as_ref().ok_or_else(|| {
        Error::with_hint(
            "the --old-config flag is mandatory",
            "run `kubeadm config migrate --old-config old.yaml --new-config new.yaml`",
        )
    })?;
    let docs = read_config(path)?;
    let out = migrate_documents(docs)?;
    match &args.new_config {
        Some(new) => kubeadm_effects::write_atomic(&absolute(new)?, out.as_bytes(), 0o600, new)?,
        None => print!("{out}"),
    }
    Ok(())
}

fn absolute(p: &Path) -> Result<std::path::PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|source| Error::ReadInput {
        path: ".".into(),
        source,
    })?;
    Ok(cwd.join(p))
}

/// The v1beta4 text for decoded documents (defaults applied, component configs carried).
pub fn migrate_documents(docs: Documents) -> Result<String> {
    let mut out = Vec::new();
    let has_init_side = docs.init.is_some() || docs.cluster.is_some();
    if has_init_side {
        let mut init = docs.init.unwrap_or_default();
        defaults::init(&mut init, false);
        // Tokens without a value stay out: migration must not invent secrets.
        init.bootstrap_tokens.retain(|t| !t.token.is_empty());
        let mut cluster = docs.cluster.unwrap_or_default();
        defaults::cluster(&mut cluster);
        out.push(encode::to_value(&init)?);
        out.push(encode::to_value(&cluster)?);
    }
    if let Some(mut join) = docs.join {
        defaults::join(&mut join);
        out.push(encode::to_value(&join)?);
    }
    if let Some(mut reset) = docs.reset {
        defaults::reset(&mut reset);
        out.push(encode::to_value(&reset)?);
    }
    if let Some(mut up) = docs.upgrade {
        defaults::upgrade(&mut up);
        out.push(encode::to_value(&up)?);
    }
    out.extend(docs.kubelet);
    out.extend(docs.kube_proxy);
    Ok(encode::to_yaml_documents(&out)?)
}

/// `config validate --config FILE`.
fn validate_file(root: &Path, args: &ValidateArgs) -> Result<()> {
    let path = args.config.as_ref().ok_or_else(|| {
        Error::with_hint(
            "the --config flag is mandatory",
            "run `kubeadm config validate --config kubeadm.yaml`",
        )
    })?;
    let docs = read_config(path)?;
    let file = path.display().to_string();
    let probe = kubeadm_effects::DryRunEffects::new(root, Box::new(std::io::sink()));
    let mut facts = host::facts(&probe);
    // Validation must not depend on this machine's network: a missing advertise address is
    // filled with a placeholder, as `config print` shows it.
    if facts.default_ip.is_none() {
        facts.default_ip = PLACEHOLDER_ADVERTISE_ADDRESS.parse().ok();
    }
    if let Some(join) = docs.join.clone() {
        let cri = !join.node_registration.cri_socket.is_empty();
        JoinConfig::complete(join, &facts, cri, &file)?;
    }
    if docs.init.is_some() || docs.cluster.is_some() {
        let cri = docs
            .init
            .as_ref()
            .is_some_and(|i| !i.node_registration.cri_socket.is_empty());
        let (init, cluster, kubelet, proxy) = InitConfig::start(docs.clone());
        InitConfig::complete(init, cluster, kubelet, proxy, &facts, cri, &file)?;
    }
    if let Some(mut reset) = docs.reset {
        defaults::reset(&mut reset);
        validate::reset(&reset).into_result().map_err(|errors| {
            kubeadm_api::ConfigError::Invalid {
                file: file.clone(),
                errors,
            }
        })?;
    }
    if let Some(mut up) = docs.upgrade {
        defaults::upgrade(&mut up);
        validate::upgrade(&up).into_result().map_err(|errors| {
            kubeadm_api::ConfigError::Invalid {
                file: file.clone(),
                errors,
            }
        })?;
    }
    println!("ok");
    Ok(())
}

/// The images for a configuration: file, then flags, then defaults.
pub fn image_list(args: &ImagesListArgs) -> Result<Vec<String>> {
    let mut cluster = match &args.config {
        Some(p) => read_config(p)?.cluster.unwrap_or_default(),
        None => ClusterConfiguration::default(),
    };
    if let Some(v) = &args.kubernetes_version {
        cluster.kubernetes_version = v.clone();
    }
    if let Some(v) = &args.image_repository {
        cluster.image_repository = v.clone();
    }
    if let Some(v) = &args.feature_gates {
        cluster.feature_gates = parse_feature_gates(v)?;
    }
    defaults::cluster(&mut cluster);
    let v = version::resolve(&cluster.kubernetes_version)
        .map_err(|e| flag_error("kubernetes-version", &cluster.kubernetes_version, &e))?;
    let info = v.info().map_err(Error::msg)?;
    Ok(images::all_images(&cluster, &v, info))
}

fn images_list(args: &ImagesListArgs) -> Result<()> {
    let list = image_list(args)?;
    match args.output {
        ListFormat::Text => list.iter().for_each(|i| println!("{i}")),
        ListFormat::Json | ListFormat::Yaml => {
            let v = serde_json::json!({"kind": "Images", "apiVersion": "output.kubeadm.k8s.io/v1alpha3", "images": list});
            if args.output == ListFormat::Json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).map_err(|e| Error::msg(e.to_string()))?
                );
            } else {
                print!("{}", encode::to_yaml(&v)?);
            }
        }
    }
    Ok(())
}
