//! Kubernetes versions, version labels, and the one table of what differs per minor.
//!
//! kubeadm-rs deploys Kubernetes v1.24 through v1.37. For a cluster of minor `1.N` it behaves as
//! upstream kubeadm `v1.N` does: the same image tags, config API version in the cluster, labels,
//! taints and flags. Everything that depends on the minor is either a column of [`TABLE`] or a
//! method of [`MinorInfo`] with the cut-over version in one place.

use std::fmt;

/// The oldest minor we deploy.
pub const MIN_MINOR: u32 = 24;
/// The newest minor we deploy; also what `stable`, `stable-1` and `latest` resolve to.
pub const MAX_MINOR: u32 = 37;

/// What differs between Kubernetes minors, as shipped by upstream kubeadm of that minor.
///
/// Sources: `cmd/kubeadm/app/constants/constants.go` of each release branch
/// (`SupportedEtcdVersion`/`DefaultEtcdVersion`, `CoreDNSVersion`, `PauseVersion`), read through
/// the project's search tool; rows marked "extrapolated" in [`MinorInfo::source`] are past what
/// the stored sources covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinorInfo {
    /// The `N` of `1.N`.
    pub minor: u32,
    /// Newest patch release known offline (what `stable-1.N` resolves to).
    pub latest_patch: u32,
    /// etcd image tag of kubeadm `v1.N`.
    pub etcd: &'static str,
    /// CoreDNS image tag of kubeadm `v1.N`.
    pub coredns: &'static str,
    /// pause image tag of kubeadm `v1.N`.
    pub pause: &'static str,
    /// Where the row's values come from.
    pub source: &'static str,
}

/// One row per supported minor, oldest first.
pub const TABLE: &[MinorInfo] = &[
    MinorInfo {
        minor: 24,
        latest_patch: 17,
        etcd: "3.5.6-0",
        coredns: "v1.8.6",
        pause: "3.7",
        source: "release-1.24 constants.go",
    },
    MinorInfo {
        minor: 25,
        latest_patch: 16,
        etcd: "3.5.6-0",
        coredns: "v1.9.3",
        pause: "3.8",
        source: "release-1.25 constants.go",
    },
    MinorInfo {
        minor: 26,
        latest_patch: 15,
        etcd: "3.5.6-0",
        coredns: "v1.9.3",
        pause: "3.9",
        source: "release-1.26 constants.go",
    },
    MinorInfo {
        minor: 27,
        latest_patch: 16,
        etcd: "3.5.12-0",
        coredns: "v1.10.1",
        pause: "3.9",
        source: "release-1.27 constants.go",
    },
    MinorInfo {
        minor: 28,
        latest_patch: 15,
        etcd: "3.5.15-0",
        coredns: "v1.10.1",
        pause: "3.9",
        source: "release-1.28 constants.go",
    },
    MinorInfo {
        minor: 29,
        latest_patch: 15,
        etcd: "3.5.16-0",
        coredns: "v1.11.1",
        pause: "3.9",
        source: "release-1.29 constants.go",
    },
    MinorInfo {
        minor: 30,
        latest_patch: 14,
        etcd: "3.5.15-0",
        coredns: "v1.11.3",
        pause: "3.9",
        source: "release-1.30 constants.go",
    },
    MinorInfo {
        minor: 31,
        latest_patch: 14,
        etcd: "3.5.24-0",
        coredns: "v1.11.3",
        pause: "3.10",
        source: "release-1.31 constants.go",
    },
    MinorInfo {
        minor: 32,
        latest_patch: 10,
        etcd: "3.5.24-0",
        coredns: "v1.11.3",
        pause: "3.10",
        source: "release-1.32 constants.go",
    },
    MinorInfo {
        minor: 33,
        latest_patch: 6,
        etcd: "3.5.24-0",
        coredns: "v1.12.0",
        pause: "3.10",
        source: "release-1.33 constants.go",
    },
    MinorInfo {
        minor: 34,
        latest_patch: 2,
        etcd: "3.6.5-0",
        coredns: "v1.12.1",
        pause: "3.10.1",
        source: "release-1.34 constants.go",
    },
    MinorInfo {
        minor: 35,
        latest_patch: 0,
        etcd: "3.6.6-0",
        coredns: "v1.13.1",
        pause: "3.10.1",
        source: "master constants.go",
    },
    MinorInfo {
        minor: 36,
        latest_patch: 0,
        etcd: "3.6.9-0",
        coredns: "v1.13.1",
        pause: "3.10.1",
        source: "master constants.go",
    },
    MinorInfo {
        minor: 37,
        latest_patch: 0,
        etcd: "3.6.9-0",
        coredns: "v1.13.1",
        pause: "3.10.1",
        source: "extrapolated from 1.36",
    },
];

impl MinorInfo {
    /// The kubeadm config API version upstream kubeadm of this minor writes to the cluster
    /// (`kubeadm-config` ConfigMap): v1beta4 from 1.31, v1beta3 before.
    pub fn config_api_version(&self) -> &'static str {
        if self.minor >= 31 {
            crate::v1beta4::API_VERSION
        } else {
            crate::v1beta3::API_VERSION
        }
    }

    /// `super-admin.conf` exists from 1.29, and admin.conf's O changes to kubeadm:cluster-admins.
    pub fn has_super_admin(&self) -> bool {
        self.minor >= 29
    }

    /// Control-plane nodes also get the legacy `node-role.kubernetes.io/master` label (1.24 only).
    pub fn has_master_label(&self) -> bool {
        self.minor < 25
    }

    /// The kubelet is given `--pod-infra-container-image` (removed in 1.27).
    pub fn kubelet_pod_infra_flag(&self) -> bool {
        self.minor < 27
    }

    /// kubelet-start runs after the control-plane manifests are written (1.28 and later).
    pub fn kubelet_start_after_control_plane(&self) -> bool {
        self.minor >= 28
    }

    /// The node is annotated with `kubeadm.alpha.kubernetes.io/cri-socket` (before 1.27).
    pub fn cri_socket_annotation(&self) -> bool {
        self.minor < 27
    }

    /// etcd gets `--experimental-watch-progress-notify-interval=5s` (1.29 and later; etcd 3.6
    /// renamed it `--watch-progress-notify-interval`).
    pub fn etcd_watch_progress_flag(&self) -> Option<&'static str> {
        if self.minor < 29 {
            None
        } else if self.etcd.starts_with("3.5") {
            Some("experimental-watch-progress-notify-interval")
        } else {
            Some("watch-progress-notify-interval")
        }
    }
}

/// The row for minor `1.N`, if supported.
pub fn minor_info(minor: u32) -> Option<&'static MinorInfo> {
    TABLE.iter().find(|r| r.minor == minor)
}

/// The newest supported minor's row.
pub fn newest() -> &'static MinorInfo {
    &TABLE[TABLE.len() - 1]
}

/// A Kubernetes release version such as `v1.31.2` or `v1.32.0-rc.1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    /// Major version (always 1 for supported releases).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
    /// Pre-release suffix without the dash (`rc.1`), empty for releases.
    pub pre: String,
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

impl KubeVersion {
    /// Parses `v1.31.2`, `1.31.2` or `v1.31.0-rc.1` (a `+build` suffix is accepted and dropped).
    pub fn parse(s: &str) -> Result<Self, String> {
        let err = || format!("invalid version {s:?}: expected a version like \"v1.31.2\"");
        let body = s.strip_prefix('v').unwrap_or(s);
        let body = body.split('+').next().unwrap_or(body);
        let (core, pre) = match body.split_once('-') {
            Some((c, p)) if !p.is_empty() => (c, p.to_string()),
            Some(_) => return Err(err()),
            None => (body, String::new()),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3 {
            return Err(err());
        }
        let num = |p: &str| -> Result<u32, String> {
            if p.is_empty()
                || (p.len() > 1 && p.starts_with('0'))
                || !p.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(err());
            }
            p.parse().map_err(|_| err())
        };
        Ok(KubeVersion {
            major: num(parts[0])?,
            minor: num(parts[1])?,
            patch: num(parts[2])?,
            pre,
        })
    }

    /// The table row of this version's minor, or an error that names the supported range.
    pub fn info(&self) -> Result<&'static MinorInfo, String> {
        if self.major != 1 {
            return Err(unsupported(self));
        }
        minor_info(self.minor).ok_or_else(|| unsupported(self))
    }
}

fn unsupported(v: &KubeVersion) -> String {
    format!(
        "Kubernetes version {v} is not supported: this kubeadm deploys v1.{MIN_MINOR} through v1.{MAX_MINOR}"
    )
}

/// Resolves what an operator may pass as `--kubernetes-version`: an exact version, or one of
/// upstream's labels (`stable`, `stable-1`, `latest`, `latest-1`, `stable-1.N`, `latest-1.N`).
/// Labels resolve offline from [`TABLE`] rather than over the network, so init works air-gapped;
/// `ci/…` builds cannot be resolved offline and are refused with a hint.
pub fn resolve(s: &str) -> Result<KubeVersion, String> {
    let s = s.trim();
    let label = s.strip_prefix("release/").unwrap_or(s);
    let newest_of = |row: &MinorInfo| KubeVersion {
        major: 1,
        minor: row.minor,
        patch: row.latest_patch,
        pre: String::new(),
    };
    match label {
        "stable" | "stable-1" | "latest" | "latest-1" => return Ok(newest_of(newest())),
        _ => {}
    }
    for prefix in ["stable-", "latest-"] {
        if let Some(rest) = label.strip_prefix(prefix) {
            let minor = rest
                .strip_prefix("1.")
                .and_then(|m| m.parse::<u32>().ok())
                .ok_or_else(|| {
                    format!("invalid version label {s:?}: expected e.g. \"stable-1.31\"")
                })?;
            let row = minor_info(minor).ok_or_else(|| {
                format!("version label {s:?} names v1.{minor}, which is not supported: this kubeadm deploys v1.{MIN_MINOR} through v1.{MAX_MINOR}")
            })?;
            return Ok(newest_of(row));
        }
    }
    if s.starts_with("ci/") || s.starts_with("ci-cross/") {
        return Err(format!(
            "version label {s:?} names a CI build, which cannot be resolved offline; pass an exact version such as \"v1.{MAX_MINOR}.0\""
        ));
    }
    let v = KubeVersion::parse(s)?;
    v.info()?;
    Ok(v)
}

/// The version `init` uses when none is given: the newest known release.
pub fn default_version() -> KubeVersion {
    let row = newest();
    KubeVersion {
        major: 1,
        minor: row.minor,
        patch: row.latest_patch,
        pre: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_contiguous_and_complete() {
        let minors: Vec<u32> = TABLE.iter().map(|r| r.minor).collect();
        assert_eq!(minors, (MIN_MINOR..=MAX_MINOR).collect::<Vec<_>>());
    }

    #[test]
    fn parses_versions() {
        let v = KubeVersion::parse("v1.31.2").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 31, 2));
        assert_eq!(
            KubeVersion::parse("1.30.0-rc.1").unwrap().to_string(),
            "v1.30.0-rc.1"
        );
        for bad in ["", "v1", "v1.30", "1.x.0", "v1.30.01", "v1.30.0-", "one"] {
            assert!(KubeVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolves_labels_offline() {
        assert_eq!(resolve("stable").unwrap().minor, MAX_MINOR);
        assert_eq!(resolve("stable-1").unwrap().minor, MAX_MINOR);
        assert_eq!(resolve("latest").unwrap().minor, MAX_MINOR);
        assert_eq!(resolve("stable-1.29").unwrap().to_string(), "v1.29.15");
        assert!(
            resolve("stable-1.20")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(
            resolve("v1.23.0")
                .unwrap_err()
                .contains("v1.24 through v1.37")
        );
        assert!(resolve("v1.38.0").is_err());
        assert!(resolve("ci/latest").unwrap_err().contains("offline"));
    }
}
