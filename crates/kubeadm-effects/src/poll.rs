//! The one wait loop: poll a readiness check with a growing interval until it answers or a
//! deadline passes. Every wait of kubeadm (kubelet healthz, TLS bootstrap, control-plane
//! components) goes through [`poll_until`], for real runs through [`crate::Effects::wait_until`];
//! waits inside an async runtime go through its twin [`poll_until_async`], on the same schedule.

use std::time::{Duration, Instant};

/// First pause between two checks.
pub const FIRST_INTERVAL: Duration = Duration::from_millis(50);
/// Longest pause between two checks: a component that turns healthy is seen within this.
pub const MAX_INTERVAL: Duration = Duration::from_millis(500);

/// The pause after `current`: one and a half times longer, at most [`MAX_INTERVAL`].
pub fn next_interval(current: Duration) -> Duration {
    Schedule::BACKOFF.next(current)
}

/// The pauses between two checks: `first`, then one and a half times longer each time, up to
/// `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The first pause.
    pub first: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Schedule {
    /// kubeadm's backoff: [`FIRST_INTERVAL`] growing to [`MAX_INTERVAL`].
    pub const BACKOFF: Schedule = Schedule {
        first: FIRST_INTERVAL,
        max: MAX_INTERVAL,
    };

    /// The same pause every time (a wait that must notice a change within `pause`).
    pub const fn every(pause: Duration) -> Schedule {
        Schedule {
            first: pause,
            max: pause,
        }
    }

    /// The pause after `current`.
    pub fn next(&self, current: Duration) -> Duration {
        (current + current / 2).min(self.max)
    }
}

/// Calls `ready` until it returns true (then the time it took) or `timeout` has passed
/// (`None`). The first check is immediate; the pause then grows from [`FIRST_INTERVAL`] to
/// [`MAX_INTERVAL`], and never sleeps past the deadline.
pub fn poll_until(timeout: Duration, ready: &mut dyn FnMut() -> bool) -> Option<Duration> {
    poll_until_on(timeout, Schedule::BACKOFF, ready)
}

/// [`poll_until`] with the pauses of `schedule` (e.g. [`Schedule::every`] for a wait that
/// must notice a change within a fixed time).
pub fn poll_until_on(
    timeout: Duration,
    schedule: Schedule,
    ready: &mut dyn FnMut() -> bool,
) -> Option<Duration> {
    // The one loop is the async one; here its check is ready at once and its sleep blocks.
    run_ready(poll_until_async(
        timeout,
        schedule,
        || std::future::ready(ready()),
        |d| {
            std::thread::sleep(d);
            std::future::ready(())
        },
    ))
}

/// Runs a future that never waits on anything outside itself (every future it awaits is ready
/// when polled), such as [`poll_until_async`] with a blocking check and sleep.
fn run_ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// The one wait loop, for a check that may itself be async (a probe inside a runtime): calls
/// `ready` until it answers true (then the time it took) or `timeout` has passed (`None`),
/// pausing as `schedule` says with `sleep` (the runtime's, `tokio::time::sleep`, so a wait does
/// not block the runtime's thread) and never past the deadline. [`poll_until`] is this with
/// [`Schedule::BACKOFF`] and blocking calls.
pub async fn poll_until_async<R, RF, S, SF>(
    timeout: Duration,
    schedule: Schedule,
    mut ready: R,
    sleep: S,
) -> Option<Duration>
where
    R: FnMut() -> RF,
    RF: std::future::Future<Output = bool>,
    S: Fn(Duration) -> SF,
    SF: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    let mut interval = schedule.first;
    loop {
        if ready().await {
            return Some(start.elapsed());
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return None;
        }
        sleep(interval.min(timeout - elapsed)).await;
        interval = schedule.next(interval);
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

    #[test]
    fn the_async_twin_keeps_the_schedule_and_the_deadline() {
        let sleeps = std::cell::RefCell::new(Vec::new());
        let sleep = |d: Duration| {
            sleeps.borrow_mut().push(d);
            std::thread::sleep(d);
            std::future::ready(())
        };
        let n = std::cell::Cell::new(0);
        let took = run_ready(poll_until_async(
            Duration::from_secs(5),
            Schedule::BACKOFF,
            || {
                n.set(n.get() + 1);
                std::future::ready(n.get() == 3)
            },
            sleep,
        ));
        assert!(took.is_some());
        assert_eq!(n.get(), 3);
        assert_eq!(
            *sleeps.borrow(),
            vec![FIRST_INTERVAL, next_interval(FIRST_INTERVAL)]
        );
        let start = Instant::now();
        assert!(
            run_ready(poll_until_async(
                Duration::from_millis(120),
                Schedule::every(Duration::from_millis(40)),
                || std::future::ready(false),
                sleep
            ))
            .is_none()
        );
        let spent = start.elapsed();
        assert!(spent >= Duration::from_millis(120) && spent < Duration::from_millis(600));
        // A fixed schedule: 40 ms each time (after the backoff case's two pauses), never past
        // the deadline.
        let fixed = sleeps.borrow()[2..].to_vec();
        assert!(fixed.len() >= 3, "{fixed:?}");
        assert!(
            fixed.iter().all(|d| *d <= Duration::from_millis(40)),
            "{fixed:?}"
        );
        assert!(
            fixed[..2].iter().all(|d| *d == Duration::from_millis(40)),
            "{fixed:?}"
        );
    }
}
