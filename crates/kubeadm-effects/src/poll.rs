//! The one wait loop: poll a readiness check with a growing interval until it answers or a
//! deadline passes. Every wait of kubeadm (kubelet healthz, TLS bootstrap, control-plane
//! components) goes through [`poll_until`], for real runs through [`crate::Effects::wait_until`].

use std::time::{Duration, Instant};

/// First pause between two checks.
pub const FIRST_INTERVAL: Duration = Duration::from_millis(50);
/// Longest pause between two checks: a component that turns healthy is seen within this.
pub const MAX_INTERVAL: Duration = Duration::from_millis(500);

/// The pause after `current`: one and a half times longer, at most [`MAX_INTERVAL`].
pub fn next_interval(current: Duration) -> Duration {
    (current + current / 2).min(MAX_INTERVAL)
}

/// Calls `ready` until it returns true (then the time it took) or `timeout` has passed
/// (`None`). The first check is immediate; the pause then grows from [`FIRST_INTERVAL`] to
/// [`MAX_INTERVAL`], and never sleeps past the deadline.
pub fn poll_until(timeout: Duration, ready: &mut dyn FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    let mut interval = FIRST_INTERVAL;
    loop {
        if ready() {
            return Some(start.elapsed());
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return None;
        }
        std::thread::sleep(interval.min(timeout - elapsed));
        interval = next_interval(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_soon_as_ready_and_gives_up_at_the_deadline() {
        let mut n = 0;
        let took = poll_until(Duration::from_secs(5), &mut || {
            n += 1;
            n == 3
        });
        assert!(took.is_some_and(|d| d < Duration::from_secs(1)));
        assert_eq!(n, 3);
        let start = Instant::now();
        assert!(poll_until(Duration::from_millis(120), &mut || false).is_none());
        let spent = start.elapsed();
        assert!(spent >= Duration::from_millis(120) && spent < Duration::from_millis(600));
    }

    #[test]
    fn the_interval_grows_to_its_cap() {
        let mut i = FIRST_INTERVAL;
        for _ in 0..20 {
            let next = next_interval(i);
            assert!(next >= i && next <= MAX_INTERVAL);
            i = next;
        }
        assert_eq!(i, MAX_INTERVAL);
    }
}
