//! Restarting static Pods the way upstream documents it: move the manifest out of the manifests
//! directory, wait for the kubelet to notice (it looks every `fileCheckFrequency`, 20 s by
//! default), move it back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kubeadm_effects::Effects;

use crate::error::Result;

/// The static Pod manifests directory.
pub const MANIFESTS: &str = "/etc/kubernetes/manifests";
/// Where manifests wait while their Pods are stopped (as upstream's upgrade uses it).
pub const PARKING: &str = "/etc/kubernetes/tmp";

/// Manifests moved out of the manifests directory, to be moved back.
pub struct Parked {
    moves: Vec<(PathBuf, PathBuf)>,
}

/// Moves the manifests of `components` (`etcd`, `kube-apiserver`, …) that exist out of the
/// manifests directory; `tag` makes the parking names unique to this run.
pub fn park(fx: &dyn Effects, components: &[&str], tag: &str) -> Result<Parked> {
    let mut moves = Vec::new();
    for c in components {
        let from = Path::new(MANIFESTS).join(format!("{c}.yaml"));
        if !fx.exists(&from) {
            continue;
        }
        let to = Path::new(PARKING).join(format!("{c}.yaml.{tag}"));
        fx.rename(&from, &to)?;
        println!("[restart] Moved {} to {}", from.display(), to.display());
        moves.push((from, to));
    }
    Ok(Parked { moves })
}

impl Parked {
    /// The manifests parked, as (original, parked) host paths.
    pub fn moves(&self) -> &[(PathBuf, PathBuf)] {
        &self.moves
    }

    /// Moves every parked manifest back.
    pub fn restore(self, fx: &dyn Effects) -> Result<()> {
        for (from, to) in &self.moves {
            fx.rename(to, from)?;
            println!("[restart] Moved {} back", from.display());
        }
        fx.sync()?;
        Ok(())
    }
}

/// Waits `wait` (shown in dry-run instead of waited).
pub fn pause(fx: &dyn Effects, wait: Duration, why: &str) {
    if fx.is_dry_run() {
        fx.note(&format!("Would wait {wait:?} {why}"));
    } else if !wait.is_zero() {
        println!("[restart] Waiting {wait:?} {why}");
        std::thread::sleep(wait);
    }
}

/// Restarts the static Pods of `components`: park, wait, move back.
pub fn restart(fx: &dyn Effects, components: &[&str], wait: Duration, tag: &str) -> Result<()> {
    let parked = park(fx, components, tag)?;
    if parked.moves().is_empty() {
        return Ok(());
    }
    pause(fx, wait, "for the kubelet to stop the static Pods");
    parked.restore(fx)
}
