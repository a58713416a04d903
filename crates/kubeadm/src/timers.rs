//! kubeadm's periodic jobs as systemd timers (`etcd snapshot schedule`, `certs renew
//! schedule`): the units come from `kubeadm_render::systemd`, are written through the effects
//! layer and enabled with `systemctl` when systemd runs the host.

use std::path::{Path, PathBuf};

use kubeadm_effects::{CommandKind, Content, Effects};
use kubeadm_render::systemd::{TimerJob, UNIT_DIR};

use crate::error::{Error, Result};

/// True when systemd manages the host (its runtime directory exists under the root).
pub(crate) fn systemd_runs(fx: &dyn Effects) -> bool {
    fx.exists(Path::new("/run/systemd/system"))
}

/// The host path of a unit file.
pub fn unit_path(unit: &str) -> PathBuf {
    Path::new(UNIT_DIR).join(unit)
}

/// True when the job's timer unit is installed.
pub fn installed(fx: &dyn Effects, name: &str) -> bool {
    fx.exists(&unit_path(&format!("{name}.timer")))
}

/// This binary and `args` as the job's command line; `--rootfs` is passed on when given, so the
/// job acts on the same root as the command that scheduled it.
pub fn kubeadm_command(root: &Path, args: &[&str]) -> Result<Vec<String>> {
    let exe = std::env::current_exe().map_err(|e| {
        Error::msg(format!(
            "cannot find the path of this kubeadm binary for the unit: {e}"
        ))
    })?;
    let mut cmd = vec![exe.display().to_string()];
    if root != Path::new("/") {
        cmd.push("--rootfs".into());
        cmd.push(root.display().to_string());
    }
    cmd.extend(args.iter().map(|a| a.to_string()));
    Ok(cmd)
}

/// Runs `systemctl ARGS`; a failure is an error with its stderr.
pub(crate) fn systemctl(fx: &dyn Effects, args: &[&str]) -> Result<()> {
    let out = fx.run(CommandKind::Mutate, "systemctl", args)?;
    if out.success() {
        Ok(())
    } else {
        Err(Error::with_hint(
            format!("systemctl {} failed: {}", args.join(" "), out.stderr.trim()),
            "look with `systemctl status` and `journalctl -xe`",
        ))
    }
}

/// Writes the job's service and timer (0644) and, when systemd runs, reloads it and starts the
/// timer; both units are built before either is written.
pub fn install(fx: &dyn Effects, job: &TimerJob) -> Result<()> {
    let service = job.service()?;
    let timer = job.timer()?;
    for (unit, text) in [(job.service_name(), service), (job.timer_name(), timer)] {
        let path = unit_path(&unit);
        fx.write_file(&path, Content::Plain(text.into_bytes()), 0o644)?;
        println!("[schedule] Wrote {}", path.display());
    }
    fx.sync()?;
    if systemd_runs(fx) {
        systemctl(fx, &["daemon-reload"])?;
        systemctl(fx, &["enable", "--now", &job.timer_name()])?;
        println!("[schedule] Enabled and started {}", job.timer_name());
    } else {
        fx.note(&format!(
            "systemd does not run this host: start the timer later with `systemctl daemon-reload && systemctl enable --now {}`",
            job.timer_name()
        ));
    }
    Ok(())
}

/// Stops and removes the job's units (absent units are fine).
pub fn remove(fx: &dyn Effects, name: &str) -> Result<()> {
    let timer = format!("{name}.timer");
    if systemd_runs(fx) && installed(fx, name) {
        systemctl(fx, &["disable", "--now", &timer])?;
    }
    for unit in [timer, format!("{name}.service")] {
        let path = unit_path(&unit);
        if fx.exists(&path) {
            fx.remove_file(&path)?;
            println!("[schedule] Removed {}", path.display());
        }
    }
    if systemd_runs(fx) {
        systemctl(fx, &["daemon-reload"])?;
    }
    Ok(())
}
