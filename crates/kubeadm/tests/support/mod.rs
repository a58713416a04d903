//! Helpers of the etcd snapshot and certificate renewal tests: finding real peer programs and
//! taking a picture of a root to show that nothing changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Finds a peer program: the `env` override, else PATH. Missing: a failure under CI, else a
/// loud skip (`None`).
pub fn peer(name: &str, env: Option<&str>) -> Option<PathBuf> {
    let found = env
        .and_then(std::env::var_os)
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        let how = env.map(|e| format!("set {e} or ")).unwrap_or_default();
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is required under CI ({how}put it on PATH; scripts/test.sh installs it)"
        );
        eprintln!("skipping: {name} not found ({how}put it on PATH)");
    }
    found
}

/// Every directory and file under `root`, files with their content and modification time.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
                out.insert(p, (Vec::new(), SystemTime::UNIX_EPOCH));
            } else if p.is_file() {
                let m = std::fs::metadata(&p).unwrap().modified().unwrap();
                out.insert(p.clone(), (std::fs::read(&p).unwrap(), m));
            }
        }
    }
    out
}
