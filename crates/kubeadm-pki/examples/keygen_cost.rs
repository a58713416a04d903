//! Prints the CPU cost of generating keys one at a time (mean, median, p90, max), to tell the
//! key generation floor of the PKI benchmark from everything else:
//! `cargo run --release -p kubeadm-pki --example keygen_cost -- RSA-2048 40`.

use std::time::Instant;

use kubeadm_pki::{KeyAlgorithm, PrivateKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let alg = KeyAlgorithm::parse(&args.next().unwrap_or_default())?;
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(40);
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        PrivateKey::generate(alg)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / n as f64;
    let at = |q: f64| ms[((n as f64 * q) as usize).min(n - 1)];
    println!(
        "{} x{n}: mean {mean:.2} ms, median {:.2}, p90 {:.2}, max {:.2}",
        alg.name(),
        at(0.5),
        at(0.9),
        at(1.0)
    );
    Ok(())
}
