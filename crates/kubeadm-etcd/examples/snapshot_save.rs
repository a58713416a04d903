//! Saves a snapshot from a plain-HTTP etcd endpoint into a file under a root, printing MB/s:
//! `cargo run -p kubeadm-etcd --example snapshot_save -- http://127.0.0.1:2379 /tmp/root /x.db`.

use std::path::Path;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, endpoint, root, file] = args.as_slice() else {
        return Err("usage: snapshot_save ENDPOINT ROOT FILE".into());
    };
    let client = kubeadm_etcd::EtcdClient::new(
        std::slice::from_ref(endpoint),
        None,
        Duration::from_secs(10),
    )?;
    let fx = kubeadm_effects::RealEffects::new(root);
    let start = Instant::now();
    let record = kubeadm_etcd::backup::save(&fx, &client, Path::new(file), 0)?.ok_or("dry run")?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} bytes, revision {}, {} keys, {:.2} s, {:.1} MB/s",
        record.size,
        record.revision,
        record.total_keys,
        secs,
        record.size as f64 / 1e6 / secs
    );
    Ok(())
}
