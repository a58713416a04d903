//! A background supply of freshly generated private keys.
//!
//! RSA key generation dominates the time of `init phase certs|kubeconfig` (≈ 60 ms of CPU per
//! RSA-2048 key in AWS-LC, with a long tail: the prime search takes a random number of tries).
//! A [`KeySupply`] starts generating on every core as soon as the number of missing keys is
//! known and hands keys out one at a time, so that signing and writing files overlap with the
//! generation of the next keys instead of waiting for the whole batch.
//!
//! Workers keep generating until `n` keys are *finished*, not merely started: near the end an
//! idle worker races the one still searching for primes, and whichever finishes first supplies
//! the last key (the other result is dropped). This cuts the tail without changing what a key
//! is: AWS-LC draws every prime candidate independently and uniformly, so how long a search took
//! says nothing about the key it produced. Workers are detached threads: a process that has its
//! keys exits without waiting for a racing search to end.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::{KeyAlgorithm, PkiError, PrivateKey};

/// A handle on keys of one algorithm being generated in the background. Cloning shares them.
#[derive(Clone)]
pub struct KeySupply {
    alg: KeyAlgorithm,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for KeySupply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySupply({:?})", self.alg)
    }
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

struct State {
    /// Keys to produce in total.
    wanted: usize,
    /// Keys finished so far (handed out or waiting in `keys`).
    produced: usize,
    /// Finished keys not yet taken.
    keys: Vec<PrivateKey>,
    /// Workers still running.
    running: usize,
    /// The first generation error, reported to the next taker.
    error: Option<String>,
}

/// Decrements the running count even when a worker panics, so takers never wait forever.
struct RunningGuard(Arc<Shared>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let mut st = lock(&self.0.state);
        st.running = st.running.saturating_sub(1);
        drop(st);
        self.0.ready.notify_all();
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A worker that panicked while holding the lock leaves consistent counters behind (every
    // update is a single assignment), so the poisoned state is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl KeySupply {
    /// Starts generating `n` keys of `alg` on every core (at most `n` threads) and returns at once.
    pub fn start(alg: KeyAlgorithm, n: usize) -> Self {
        let threads = std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(2)
            .min(n);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                wanted: n,
                produced: 0,
                keys: Vec::with_capacity(n),
                running: threads,
                error: None,
            }),
            ready: Condvar::new(),
        });
        for _ in 0..threads {
            let guard = RunningGuard(Arc::clone(&shared));
            // When a thread cannot be spawned, the guard is dropped with the closure and the
            // running count stays right; takers generate inline once no worker runs.
            let _ = std::thread::Builder::new()
                .name("keygen".into())
                .spawn(move || work(alg, guard));
        }
        KeySupply { alg, shared }
    }

    /// The algorithm of the keys.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.alg
    }

    /// The next key: waits for a worker when one is generating, generates in the calling
    /// thread when the supply is exhausted or its workers are gone.
    pub fn take(&self) -> Result<PrivateKey, PkiError> {
        let mut st = lock(&self.shared.state);
        loop {
            if let Some(k) = st.keys.pop() {
                return Ok(k);
            }
            if let Some(e) = st.error.take() {
                return Err(PkiError::Crypto(e));
            }
            if st.produced >= st.wanted || st.running == 0 {
                drop(st);
                return PrivateKey::generate(self.alg);
            }
            st = self
                .shared
                .ready
                .wait(st)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

fn work(alg: KeyAlgorithm, guard: RunningGuard) {
    let shared = &guard.0;
    loop {
        {
            let st = lock(&shared.state);
            if st.produced >= st.wanted || st.error.is_some() {
                return;
            }
        }
        let result = PrivateKey::generate(alg);
        let mut st = lock(&shared.state);
        match result {
            Ok(k) if st.produced < st.wanted => {
                st.produced += 1;
                st.keys.push(k);
            }
            // The other worker won the race for the last key.
            Ok(_) => return,
            Err(e) => {
                st.error.get_or_insert_with(|| e.to_string());
            }
        }
        drop(st);
        shared.ready.notify_all();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_distinct_keys_and_more_than_asked_for() {
        let supply = KeySupply::start(KeyAlgorithm::EcdsaP256, 3);
        let mut spkis: Vec<_> = (0..5)
            .map(|_| supply.take().unwrap().public_spki_der())
            .collect();
        spkis.sort();
        spkis.dedup();
        assert_eq!(
            spkis.len(),
            5,
            "every key is new, including the inline ones"
        );
    }

    #[test]
    fn an_empty_supply_generates_inline() {
        let supply = KeySupply::start(KeyAlgorithm::EcdsaP384, 0);
        let k = supply.take().unwrap();
        assert_eq!(k.algorithm, Some(KeyAlgorithm::EcdsaP384));
    }

    #[test]
    fn shared_between_threads() {
        let supply = KeySupply::start(KeyAlgorithm::EcdsaP256, 4);
        let keys: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4).map(|_| s.spawn(|| supply.take().unwrap())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(keys.len(), 4);
        assert!(
            keys.iter()
                .all(|k| k.algorithm == Some(KeyAlgorithm::EcdsaP256))
        );
    }
}
