//! The container runtime of a command: the CRI client on the configured socket (resolved under
//! `--rootfs`), or its dry-run twin, and the image pulls every command shares (`config images
//! pull|export`, init's and join's preflight, `upgrade apply`).

use kubeadm_errors::Hint;
use std::path::Path;

use kubeadm_api::config::InitConfig;
use kubeadm_api::images;
use kubeadm_cri::{CriClient, CriError, DryRun, PullPolicy, Pulled, Runtime};
use kubeadm_effects::Effects;

use crate::error::{Error, Result};

/// Connects to the runtime at `endpoint`. Under `--dry-run` the twin reads through a client
/// when the runtime answers and prints the changes; a real run needs the runtime.
pub fn connect(fx: &dyn Effects, endpoint: &str) -> Result<Box<dyn Runtime>, CriError> {
    let client = connect_client(fx, endpoint);
    if fx.is_dry_run() {
        if let Err(e) = &client {
            println!(
                "[dryrun] The container runtime does not answer ({e}); showing the changes without it"
            );
        }
        return Ok(Box::new(DryRun::new(endpoint, client.ok())));
    }
    Ok(Box::new(client?))
}

/// A client on the host path of `endpoint` under the effects root.
pub fn connect_client(fx: &dyn Effects, endpoint: &str) -> Result<CriClient, CriError> {
    let path = kubeadm_cri::socket_path(endpoint)?;
    let real =
        kubeadm_effects::resolve(fx.root(), Path::new(path)).map_err(|e| CriError::Connect {
            endpoint: endpoint.to_string(),
            message: e.to_string(),
        })?;
    CriClient::connect(endpoint, &real)
}

/// Every image the configuration needs (`config images list`'s list).
pub fn images_of(cfg: &InitConfig) -> Vec<String> {
    images::all_images(&cfg.cluster, &cfg.version, cfg.info())
}

/// The pull policy of a configuration's `nodeRegistration.imagePullPolicy` (validated on load).
pub fn policy(value: &str) -> Result<PullPolicy> {
    PullPolicy::parse(value).ok_or_else(|| {
        Error::with_hint(
            format!("unsupported imagePullPolicy {value:?}"),
            "use Always, IfNotPresent or Never in nodeRegistration.imagePullPolicy",
        )
    })
}

/// How a preflight pulls: the heading its lines carry, and the pull policy and seriality
/// (`nodeRegistration`'s for init and join; `UpgradeConfiguration`'s apply or node fields for
/// upgrades).
#[derive(Debug, Clone)]
pub struct PreflightPull<'a> {
    /// `preflight` or `upgrade/preflight`.
    pub prefix: &'a str,
    /// `imagePullPolicy`.
    pub policy: &'a str,
    /// `imagePullSerial`.
    pub serial: bool,
}

impl<'a> PreflightPull<'a> {
    /// init's and join's: under `[preflight]`, as the configuration's `nodeRegistration` says.
    pub fn of_node(cfg: &'a InitConfig) -> Self {
        let n = &cfg.init.node_registration;
        PreflightPull {
            prefix: "preflight",
            policy: &n.image_pull_policy,
            serial: n.image_pull_serial.unwrap_or(true),
        }
    }
}

/// The preflight's image pull of init, a control-plane join and the upgrades of a
/// control-plane node (upstream prints the same three lines, then runs `ImagePullCheck`): every
/// image of `cfg` present or pulled as `how` says, and the runtime's sandbox image compared
/// with kubeadm's pause image where the version does; a failure is the `ImagePull` preflight
/// error (`--ignore-preflight-errors=ImagePull` turns it into a warning). A dry run only says so.
pub fn preflight_pull(
    fx: &dyn Effects,
    cfg: &InitConfig,
    how: &PreflightPull<'_>,
    ignore: &[String],
    dry_run: bool,
) -> Result<()> {
    let prefix = how.prefix;
    if dry_run {
        println!("[{prefix}] Would pull the required images (like 'kubeadm config images pull')");
        return Ok(());
    }
    let info = cfg.info();
    let check = kubeadm_preflight::ImagePull {
        socket: cfg.init.node_registration.cri_socket.clone(),
        images: images_of(cfg),
        policy: policy(how.policy)?,
        serial: how.serial,
        sandbox_image: info
            .checks_sandbox_image()
            .then(|| images::pause_image(&cfg.cluster, info)),
    };
    println!("[{prefix}] Pulling images required for setting up a Kubernetes cluster");
    println!(
        "[{prefix}] This might take a minute or two, depending on the speed of your internet connection"
    );
    println!(
        "[{prefix}] You can also perform this action beforehand using 'kubeadm config images pull'"
    );
    kubeadm_preflight::run_more_checks(fx, &[Box::new(check)], ignore)?;
    Ok(())
}

/// Ensures `images` are present as `policy` says, printing one line per image under `prefix`
/// (`config/images`, `preflight`); every image is tried, the failures are reported together.
pub fn ensure(
    rt: &dyn Runtime,
    images: &[String],
    policy: PullPolicy,
    serial: bool,
    dry_run: bool,
    prefix: &str,
) -> Result<usize> {
    let results = kubeadm_cri::ensure_images(rt, images, policy, serial);
    let mut failed = Vec::new();
    let mut pulled = 0;
    for (image, r) in results {
        match r {
            Ok(Pulled::Pulled) => {
                pulled += 1;
                if !dry_run {
                    println!("[{prefix}] Pulled {image}");
                }
            }
            Ok(Pulled::Present) => println!("[{prefix}] Image is present: {image}"),
            Err(e) => failed.push(e),
        }
    }
    match failed.len() {
        0 => Ok(pulled),
        1 => Err(failed.remove(0).into()),
        n => Err(Error::Message {
            message: format!(
                "{n} images could not be pulled:\n{}",
                failed
                    .iter()
                    .map(|e| format!("  - {e}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            hint: failed[0].hint(),
        }),
    }
}
