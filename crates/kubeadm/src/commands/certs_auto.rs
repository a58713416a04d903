//! `kubeadm certs renew --auto [--within 30d]` and `kubeadm certs renew schedule` (beyond
//! upstream, as k3s and KubeKey do): renew the leaf certificates and the kubeconfigs' client
//! certificates that expire within a window, never a CA, then restart the static Pods that use
//! them by moving their manifests out and back as upstream's documentation says.

use std::path::Path;
use std::time::Duration;

use kubeadm_render::systemd::{TimerJob, parse_interval};

use super::certs::{cluster_config, not_after, renew_names, renewable_names, signable};
use super::flag_error;
use crate::cli::RenewArgs;
use crate::error::Result;
use crate::{restart, timers};

/// The systemd unit name (without suffix) of scheduled renewals.
pub const RENEW_UNIT: &str = "kubeadm-certs-renew";

/// The static Pods reading a certificate or kubeconfig, which must restart to use a renewed
/// one (admin.conf and super-admin.conf serve people, the healthcheck client only probes).
pub(crate) fn users(name: &str) -> &'static [&'static str] {
    match name {
        "apiserver"
        | "apiserver-kubelet-client"
        | "apiserver-etcd-client"
        | "front-proxy-client" => &["kube-apiserver"],
        "etcd-server" | "etcd-peer" => &["etcd"],
        "controller-manager.conf" => &["kube-controller-manager"],
        "scheduler.conf" => &["kube-scheduler"],
        _ => &[],
    }
}

fn interval(flag: &str, value: &str) -> Result<Duration> {
    parse_interval(value).map_err(|e| flag_error(flag, value, &e))
}

/// Runs `--auto` or `schedule`.
pub fn run(root: &Path, args: RenewArgs) -> Result<()> {
    if args.name.as_deref() == Some("schedule") {
        return schedule(root, &args);
    }
    if let Some(name) = &args.name {
        return Err(flag_error(
            "auto",
            name,
            "--auto chooses what to renew itself: leave out the certificate name",
        ));
    }
    let within = interval("within", &args.within)?;
    let wait = kubeadm_api::Duration::parse(&args.restart_wait)
        .map_err(|e| flag_error("restart-wait", &args.restart_wait, &e))?
        .to_std();
    let fx = crate::commands::init::effects(root, args.dry_run);
    let fx = fx.as_ref();
    let (cluster, _) = cluster_config(args.config.as_deref(), args.cert_dir.as_deref())?;
    let kdir = Path::new(&args.kubeconfig_dir);
    let now = kubeadm_api::dates::now_unix();
    let limit = now.saturating_add(i64::try_from(within.as_secs()).unwrap_or(i64::MAX));
    let mut due = Vec::new();
    for name in renewable_names() {
        let Some(expiry) = not_after(fx, &cluster, kdir, &name)? else {
            continue;
        };
        if expiry > limit {
            continue;
        }
        if !signable(fx, &cluster, &name) {
            println!(
                "[renew] WARNING: {name} expires within {} but its CA key is not here (external CA): renew it with that CA",
                args.within
            );
            continue;
        }
        due.push(name);
    }
    if due.is_empty() {
        println!("[renew] Nothing expires within {}", args.within);
        return Ok(());
    }
    println!(
        "[renew] Expiring within {}: {}",
        args.within,
        due.join(", ")
    );
    let renewed = renew_names(fx, &cluster, kdir, &due.join(","))?;
    let mut components: Vec<&str> = renewed.iter().flat_map(|n| users(n)).copied().collect();
    components.sort();
    components.dedup();
    if components.is_empty() {
        return Ok(());
    }
    println!(
        "[renew] Restarting the static Pods using them: {}",
        components.join(", ")
    );
    let tag = format!("certs-renew-{now}");
    restart::restart(fx, &components, wait, &tag)
}

/// `kubeadm certs renew schedule [--every 24h] [--within 30d] [--disable]`.
fn schedule(root: &Path, args: &RenewArgs) -> Result<()> {
    let fx = crate::commands::init::effects(root, args.dry_run);
    let fx = fx.as_ref();
    if args.disable {
        return timers::remove(fx, RENEW_UNIT);
    }
    let every = interval("every", &args.every)?;
    interval("within", &args.within)?;
    let mut cmd = vec!["certs", "renew", "--auto", "--within", args.within.as_str()];
    let config = args.config.as_ref().map(|c| c.display().to_string());
    if let Some(c) = &config {
        cmd.extend(["--config", c.as_str()]);
    }
    if let Some(d) = &args.cert_dir {
        cmd.extend(["--cert-dir", d.as_str()]);
    }
    if args.kubeconfig_dir != "/etc/kubernetes" {
        cmd.extend(["--kubeconfig-dir", args.kubeconfig_dir.as_str()]);
    }
    let job = TimerJob {
        name: RENEW_UNIT.into(),
        description: format!(
            "kubeadm certificate renewal (every {}, renewing what expires within {})",
            args.every, args.within
        ),
        command: timers::kubeadm_command(root, &cmd)?,
        every,
        randomized_delay: (every / 20).min(Duration::from_secs(3600)),
    };
    timers::install(fx, &job)
}

/// True when the renewal timer is installed (for `check-expiration`'s warning).
pub fn scheduled(fx: &dyn kubeadm_effects::Effects) -> bool {
    timers::installed(fx, RENEW_UNIT)
}
