//! Upstream's upgrade version policy (`EnforceVersionPolicies`) and the targets `upgrade plan`
//! offers, both from the offline version table.
//!
//! Unlike upstream, one kubeadm-rs binary deploys every minor of the table, so "not beyond the
//! kubeadm version" means "not beyond the table's newest minor", and there is no "kubeadm is
//! newer than the target" error.

use crate::version::{self, KubeVersion, MAX_MINOR, MinorInfo};

/// One reason an upgrade target is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// What is wrong, in upstream's words where upstream has them.
    pub message: String,
    /// Whether `--force` lets the upgrade go ahead anyway (upstream's "skippable" errors).
    pub skippable: bool,
}

/// What the policy found: every problem at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyReport {
    /// The problems, mandatory ones first.
    pub errors: Vec<PolicyError>,
}

impl PolicyReport {
    /// Whether the upgrade may go ahead (`force` lets skippable problems pass).
    pub fn allows(&self, force: bool) -> bool {
        self.errors.iter().all(|e| force && e.skippable)
    }

    /// The problems as one text, one per line, each marked when `--force` would pass it.
    pub fn describe(&self) -> String {
        self.errors
            .iter()
            .map(|e| {
                if e.skippable {
                    format!("- {} (skippable with --force)", e.message)
                } else {
                    format!("- {}", e.message)
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Which unstable targets are allowed (`--allow-experimental-upgrades`, `--allow-release-candidate-upgrades`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unstable {
    /// alpha, beta and rc targets.
    pub experimental: bool,
    /// rc targets.
    pub release_candidates: bool,
}

impl Unstable {
    fn allows(&self, v: &KubeVersion) -> bool {
        v.pre.is_empty()
            || self.experimental
            || (self.release_candidates && v.pre.starts_with("rc"))
    }
}

/// Checks an upgrade from `cluster` (the API server's version) to `target`, with the kubelets'
/// versions from the Nodes, as upstream's policy does: one minor at a time, no downgrade, not
/// beyond the newest minor this binary knows, kubelets within the target's skew, unstable
/// targets only when allowed.
pub fn check(
    cluster: &KubeVersion,
    target: &KubeVersion,
    kubelets: &[KubeVersion],
    unstable: Unstable,
) -> PolicyReport {
    let mut mandatory = Vec::new();
    let mut skippable = Vec::new();
    let mut must = |m: String| {
        mandatory.push(PolicyError {
            message: m,
            skippable: false,
        })
    };
    if target.major != 1 || version::minor_info(target.minor).is_none() {
        must(format!(
            "Specified version to upgrade to \"{target}\" is not supported: this kubeadm deploys v1.{}.x through v1.{MAX_MINOR}.x",
            version::MIN_MINOR
        ));
    }
    if target.minor > cluster.minor + 1 {
        must(format!(
            "Specified version to upgrade to \"{target}\" is too high; kubeadm can upgrade only 1 minor version at a time"
        ));
    }
    if target.minor < cluster.minor {
        must(format!(
            "Specified version to upgrade to \"{target}\" is lower than the cluster version \"{cluster}\". Downgrades are not supported yet"
        ));
    }
    if !unstable.allows(target) {
        must(format!(
            "Specified version to upgrade to \"{target}\" is an unstable version and such upgrades weren't allowed via setting the --allow-*-upgrades flags"
        ));
    }
    if target.minor == cluster.minor && target < cluster {
        skippable.push(PolicyError {
            message: format!(
                "Specified version to upgrade to \"{target}\" is an older patch version than the cluster version \"{cluster}\". Downgrades are not supported yet"
            ),
            skippable: true,
        });
    }
    if let Some(info) = version::minor_info(target.minor) {
        let oldest = info.oldest_kubelet_minor();
        let mut old: Vec<String> = kubelets
            .iter()
            .filter(|k| k.minor < oldest)
            .map(|k| k.to_string())
            .collect();
        old.sort();
        old.dedup();
        if !old.is_empty() {
            skippable.push(PolicyError {
                message: format!(
                    "There are kubelets in this cluster that are too old that have these versions [{}]; upgrade them to at least v1.{oldest} first",
                    old.join(" ")
                ),
                skippable: true,
            });
        }
        let newer: Vec<String> = kubelets
            .iter()
            .filter(|k| k.minor > target.minor)
            .map(|k| k.to_string())
            .collect();
        if !newer.is_empty() {
            skippable.push(PolicyError {
                message: format!(
                    "Kubelet version {} is newer than the target control plane version \"{target}\"",
                    newer.join(", ")
                ),
                skippable: true,
            });
        }
    }
    mandatory.extend(skippable);
    PolicyReport { errors: mandatory }
}

/// One upgrade `upgrade plan` offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Why this target (`patch` within the current minor, `minor` for the next one).
    pub kind: TargetKind,
    /// The version.
    pub version: KubeVersion,
    /// Its row of the table (image tags).
    pub info: &'static MinorInfo,
}

/// Upstream's two kinds of plan entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// The newest patch of the cluster's minor ("latest version in the v1.N series").
    Patch,
    /// The newest patch of the next minor ("latest stable version").
    Minor,
}

/// The upgrades of a cluster at `cluster` the table offers (newest patch of its minor when newer,
/// newest patch of the next minor when known), or just `wanted` when the operator named one.
pub fn targets(cluster: &KubeVersion, wanted: Option<&KubeVersion>) -> Vec<Target> {
    let mut out = Vec::new();
    if let Some(w) = wanted {
        if let Some(info) = version::minor_info(w.minor) {
            let kind = if w.minor == cluster.minor {
                TargetKind::Patch
            } else {
                TargetKind::Minor
            };
            out.push(Target {
                kind,
                version: w.clone(),
                info,
            });
        }
        return out;
    }
    let newest_of = |info: &'static MinorInfo| KubeVersion {
        major: 1,
        minor: info.minor,
        patch: info.latest_patch,
        pre: String::new(),
    };
    if let Some(info) = version::minor_info(cluster.minor) {
        let v = newest_of(info);
        if &v > cluster {
            out.push(Target {
                kind: TargetKind::Patch,
                version: v,
                info,
            });
        }
    }
    if let Some(info) = version::minor_info(cluster.minor + 1) {
        out.push(Target {
            kind: TargetKind::Minor,
            version: newest_of(info),
            info,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KubeVersion {
        KubeVersion::parse(s).unwrap()
    }

    #[test]
    fn one_minor_at_a_time_and_no_downgrade() {
        let ok = check(
            &v("v1.31.2"),
            &v("v1.32.0"),
            &[v("v1.31.2")],
            Unstable::default(),
        );
        assert!(ok.errors.is_empty(), "{ok:?}");
        let high = check(&v("v1.31.2"), &v("v1.33.0"), &[], Unstable::default());
        assert!(!high.allows(true));
        assert!(high.describe().contains("only 1 minor version at a time"));
        let down = check(&v("v1.31.2"), &v("v1.30.0"), &[], Unstable::default());
        assert!(!down.allows(true));
        assert!(down.describe().contains("Downgrades are not supported"));
    }

    #[test]
    fn older_patch_and_old_kubelets_need_force() {
        let r = check(&v("v1.31.5"), &v("v1.31.2"), &[], Unstable::default());
        assert!(!r.allows(false));
        assert!(r.allows(true));
        let r = check(
            &v("v1.31.5"),
            &v("v1.32.0"),
            &[v("v1.28.1")],
            Unstable::default(),
        );
        assert!(r.describe().contains("too old"), "{}", r.describe());
        assert!(r.allows(true) && !r.allows(false));
    }

    #[test]
    fn unstable_targets_need_their_flag() {
        let rc = v("v1.32.0-rc.1");
        assert!(!check(&v("v1.31.0"), &rc, &[], Unstable::default()).allows(true));
        let rcs = Unstable {
            release_candidates: true,
            ..Default::default()
        };
        assert!(check(&v("v1.31.0"), &rc, &[], rcs).allows(false));
        assert!(!check(&v("v1.31.0"), &v("v1.32.0-beta.0"), &[], rcs).allows(true));
    }

    #[test]
    fn beyond_the_table_is_refused() {
        let r = check(
            &v(&format!("v1.{MAX_MINOR}.0")),
            &v(&format!("v1.{}.0", MAX_MINOR + 1)),
            &[],
            Unstable::default(),
        );
        assert!(r.describe().contains("not supported"), "{}", r.describe());
    }

    #[test]
    fn plan_offers_newest_patch_and_next_minor() {
        let t = targets(&v("v1.31.0"), None);
        let kinds: Vec<_> = t.iter().map(|t| (t.kind, t.version.minor)).collect();
        assert_eq!(
            kinds,
            vec![(TargetKind::Patch, 31), (TargetKind::Minor, 32)]
        );
        let newest = version::newest();
        let top = v(&format!("v1.{}.{}", newest.minor, newest.latest_patch));
        assert!(targets(&top, None).is_empty());
    }
}
