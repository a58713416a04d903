//! The `etcd`, `control-plane` and `kubelet-start` phases of `kubeadm init`: build the static Pod
//! manifests and kubelet files with `kubeadm-render`, apply `--patches`, write them through the
//! effects layer, and (re)start the kubelet.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use kubeadm_effects::{CommandKind, Content};
use kubeadm_render::patches::{self, PatchSet};
use kubeadm_render::staticpod::{self, HostInfo, MANIFESTS_DIR};
use kubeadm_render::{controlplane, etcd, kubelet, pod_yaml};
use kubeadm_workflow::Phase;

use super::InitContext;
use crate::error::{Error, Result};
use crate::host;

/// Mode of static Pod manifests.
const MANIFEST_MODE: u32 = 0o600;
/// Mode of the kubelet's files.
const KUBELET_FILE_MODE: u32 = 0o644;

/// `etcd` with its `local` sub-phase (runs only with local etcd).
pub fn etcd_phase() -> Phase<InitContext, Error> {
    Phase::group(
        "etcd",
        "Generate static Pod manifest file for local etcd",
        vec![
            Phase::leaf("local", "Generate the static Pod manifest file for a local, single-node local etcd instance", run_etcd_local)
                .when(|c| c.cfg.local_etcd().is_some()),
        ],
    )
}

/// `control-plane` with `apiserver`, `controller-manager` and `scheduler`.
pub fn control_plane_phase() -> Phase<InitContext, Error> {
    Phase::group(
        "control-plane",
        "Generate all static Pod manifest files necessary to establish the control plane",
        vec![
            Phase::leaf(
                "apiserver",
                "Generates the kube-apiserver static Pod manifest",
                |c| run_component(c, "kube-apiserver"),
            ),
            Phase::leaf(
                "controller-manager",
                "Generates the kube-controller-manager static Pod manifest",
                |c| run_component(c, "kube-controller-manager"),
            ),
            Phase::leaf(
                "scheduler",
                "Generates the kube-scheduler static Pod manifest",
                |c| run_component(c, "kube-scheduler"),
            ),
        ],
    )
}

/// `kubelet-start`: write the kubelet's files and (re)start it.
pub fn kubelet_start_phase() -> Phase<InitContext, Error> {
    Phase::leaf(
        "kubelet-start",
        "Write kubelet settings and (re)start the kubelet",
        run_kubelet_start,
    )
}

/// Reads and parses every file of the configured patches directory (none configured → `None`).
/// A malformed file is an error before anything is written.
pub fn load_patches(ctx: &InitContext) -> Result<Option<PatchSet>> {
    let Some(dir) = ctx
        .cfg
        .init
        .patches
        .as_ref()
        .map(|p| p.directory.clone())
        .filter(|d| !d.is_empty())
    else {
        return Ok(None);
    };
    let path = Path::new(&dir);
    if !ctx.fx.exists(path) {
        return Err(Error::with_hint(
            format!("the patches directory {dir} does not exist"),
            "create it, or drop --patches / patches.directory",
        ));
    }
    let mut entries = Vec::new();
    for name in ctx.fx.list_dir(path)? {
        let bytes = if !matches!(patches::parse_name(&name), Ok(None)) {
            ctx.fx.read(&path.join(&name))?.unwrap_or_default()
        } else {
            Vec::new()
        };
        entries.push((name, bytes));
    }
    let set = PatchSet::parse(&dir, entries)?;
    // Upstream reads a patches directory once per run and says so once.
    static ANNOUNCED: AtomicBool = AtomicBool::new(false);
    if !ANNOUNCED.swap(true, Ordering::Relaxed) {
        println!("[patches] Reading patches from path {dir:?}");
        if !set.files.is_empty() {
            let names: Vec<&str> = set.files.iter().map(|f| f.file.as_str()).collect();
            println!(
                "[patches] Found the following patch files: [{}]",
                names.join(" ")
            );
        }
        if !set.ignored.is_empty() {
            println!(
                "[patches] Ignored the following files: [{}]",
                set.ignored.join(" ")
            );
        }
    }
    Ok(Some(set))
}

fn report_patches(target: &str, applied: &[&patches::PatchFile]) {
    for f in applied {
        println!(
            "[patches] Applied patch of type {:?} to target {target:?}",
            f.kind.media_type()
        );
    }
}

/// Which of the host's CA directories exist (they are mounted into the control plane).
fn host_info(ctx: &InitContext) -> HostInfo {
    let minor = ctx.cfg.info().minor;
    HostInfo {
        ca_dirs: staticpod::ca_cert_extra_dirs(minor)
            .iter()
            .filter(|d| ctx.fx.exists(Path::new(d)))
            .map(|d| d.to_string())
            .collect(),
        proxy_env: staticpod::proxy_env(std::env::vars()),
        external_ca: {
            let cd = Path::new(&ctx.cfg.cluster.certificates_dir);
            ctx.fx.exists(&cd.join("ca.crt")) && !ctx.fx.exists(&cd.join("ca.key"))
        },
    }
}

/// Creates `dir` with `mode` when it is missing (its missing parents get 0755).
/// Once per run and directory: a dry run cannot see the directories it only pretended to
/// create, and would otherwise announce them again for every file.
pub(crate) fn ensure_private_dir(ctx: &InitContext, dir: &Path, mode: u32) -> Result<()> {
    static ENSURED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let first = ENSURED
        .lock()
        .map(|mut set| set.insert(dir.to_path_buf()))
        .unwrap_or(true);
    if first && !ctx.fx.exists(dir) {
        if let Some(parent) = dir.parent().filter(|p| !ctx.fx.exists(p)) {
            ctx.fx.create_dir_all(parent, 0o755)?;
        }
        ctx.fx.create_dir_all(dir, mode)?;
    }
    Ok(())
}

/// Writes a static Pod manifest (0600) into the manifests directory.
pub(crate) fn write_manifest(ctx: &InitContext, component: &str, yaml: String) -> Result<()> {
    let path = staticpod::manifest_path(component);
    // Upstream creates the manifests directory 0700.
    ensure_private_dir(ctx, Path::new(MANIFESTS_DIR), 0o700)?;
    ctx.fx.write_file(
        Path::new(&path),
        Content::Plain(yaml.into_bytes()),
        MANIFEST_MODE,
    )?;
    Ok(())
}

fn run_etcd_local(ctx: &mut InitContext) -> Result<()> {
    let Some(local) = ctx.cfg.local_etcd().cloned() else {
        return Ok(());
    };
    let patches = load_patches(ctx)?;
    let mut pod = etcd::pod(&ctx.cfg, &local, &[]);
    if let Some(set) = &patches {
        let (patched, applied) = set.apply_pod("etcd", pod)?;
        report_patches("etcd", &applied);
        pod = patched;
    }
    let yaml = pod_yaml(&pod)?;
    // etcd's data directory is private to it (upstream creates it 0700 before the manifest).
    ensure_private_dir(ctx, Path::new(&local.data_dir), 0o700)?;
    println!("[etcd] Creating static Pod manifest for local etcd in {MANIFESTS_DIR:?}");
    write_manifest(ctx, "etcd", yaml)
}

/// Builds, patches and writes one control-plane component's manifest.
pub(crate) fn run_component(ctx: &mut InitContext, component: &str) -> Result<()> {
    let patches = load_patches(ctx)?;
    let host = host_info(ctx);
    let Some(mut pod) = controlplane::pod(&ctx.cfg, component, &host) else {
        return Err(Error::msg(format!(
            "unknown control-plane component {component}"
        )));
    };
    if let Some(set) = &patches {
        let (patched, applied) = set.apply_pod(component, pod)?;
        report_patches(component, &applied);
        pod = patched;
    }
    let yaml = pod_yaml(&pod)?;
    if component == "kube-apiserver" {
        println!("[control-plane] Using manifest folder {MANIFESTS_DIR:?}");
    }
    println!("[control-plane] Creating static Pod manifest for {component:?}");
    write_manifest(ctx, component, yaml)
}

/// Writes the kubelet's files and (re)starts it (shared by init and join).
pub(crate) fn run_kubelet_start(ctx: &mut InitContext) -> Result<()> {
    let patches = load_patches(ctx)?;
    let mut config = ctx.cfg.kubelet.clone();
    let systemd = ctx.fx.exists(Path::new("/run/systemd/system"));
    // Upstream's kubelet defaulting: with systemd-resolved active, /etc/resolv.conf points at
    // its stub resolver (127.0.0.53), which Pods cannot reach; hand the kubelet the real list.
    if systemd && config.get("resolvConf").is_none() {
        let resolved = ctx
            .fx
            .run(
                CommandKind::Query,
                "systemctl",
                &["is-active", "systemd-resolved"],
            )
            .is_ok_and(|o| o.success());
        if let (true, Some(obj)) = (resolved, config.as_object_mut()) {
            obj.insert("resolvConf".into(), kubelet::RESOLVED_RESOLV_CONF.into());
        }
    }
    if let Some(set) = &patches {
        let applied = set.apply("kubeletconfiguration", &mut config)?;
        report_patches("kubeletconfiguration", &applied);
    }
    // With NodeLocalCRISocket the node's CRI endpoint goes into its own file and is merged
    // into config.yaml after the patches, as upstream does.
    let instance = kubelet::instance_config(&ctx.cfg);
    kubelet::apply_instance_config(&ctx.cfg, &mut config);
    let config_yaml = kubelet::config_yaml(&config)?;
    let env = kubelet::flags_env(&ctx.cfg, &host::hostname());
    // Upstream keeps the kubelet's directory private.
    let kubelet_dir = Path::new(kubelet::CONFIG_PATH)
        .parent()
        .unwrap_or(Path::new("/"));
    ensure_private_dir(ctx, kubelet_dir, 0o700)?;
    if systemd {
        // Upstream stops the kubelet while its files change; a failure here is not fatal.
        let _ = ctx
            .fx
            .run(CommandKind::Mutate, "systemctl", &["stop", "kubelet"]);
    } else {
        println!(
            "[kubelet-start] WARNING: no supported init system detected (systemd is not running); the kubelet is not stopped while its configuration is written"
        );
    }
    println!(
        "[kubelet-start] Writing kubelet environment file with flags to file {:?}",
        kubelet::FLAGS_ENV_PATH
    );
    ctx.fx.write_file(
        Path::new(kubelet::FLAGS_ENV_PATH),
        Content::Plain(env.into_bytes()),
        KUBELET_FILE_MODE,
    )?;
    match instance {
        Some(text) => {
            println!(
                "[kubelet-start] Writing instance kubelet configuration to file {:?}",
                kubelet::INSTANCE_CONFIG_PATH
            );
            ctx.fx.write_file(
                Path::new(kubelet::INSTANCE_CONFIG_PATH),
                Content::Plain(text.into_bytes()),
                KUBELET_FILE_MODE,
            )?;
        }
        None if ctx.cfg.info().node_local_cri_socket_gate().is_some() => println!(
            "[kubelet-start] Skipping writing instance kubelet configuration file as the NodeLocalCRISocket feature gate is disabled"
        ),
        None => {}
    }
    println!(
        "[kubelet-start] Writing kubelet configuration to file {:?}",
        kubelet::CONFIG_PATH
    );
    ctx.fx.write_file(
        Path::new(kubelet::CONFIG_PATH),
        Content::Plain(config_yaml.into_bytes()),
        KUBELET_FILE_MODE,
    )?;
    if !systemd {
        println!(
            "[kubelet-start] WARNING: no supported init system detected: start the kubelet yourself"
        );
        return Ok(());
    }
    println!("[kubelet-start] Starting the kubelet");
    for args in [&["daemon-reload"][..], &["restart", "kubelet"][..]] {
        match ctx.fx.run(CommandKind::Mutate, "systemctl", args) {
            Ok(out) if out.success() => {}
            Ok(out) => {
                println!(
                    "[kubelet-start] WARNING: unable to start the kubelet service: systemctl {} failed: {}",
                    args.join(" "),
                    out.stderr.trim()
                );
                return Ok(());
            }
            Err(e) => {
                println!("[kubelet-start] WARNING: unable to start the kubelet service: {e}");
                return Ok(());
            }
        }
    }
    Ok(())
}
