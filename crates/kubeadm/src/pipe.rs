//! A closed stdout or stderr (`kubeadm completion bash | head`) ends the process quietly, as
//! it ends any conventional CLI: status 141 (128 + SIGPIPE, what a shell reports for a
//! process the signal ended), nothing printed.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe fails with EPIPE and `println!` (or
//! clap_complete's writer) panics. Restoring the signal's default would need `unsafe`
//! (forbidden here) and would also kill the process on a peer closing a socket; instead the
//! panic hook recognises the broken-pipe panic of a standard stream and exits.

/// The status of a process ended by SIGPIPE, as shells report it.
pub const EPIPE_STATUS: i32 = 128 + 13;

/// Installs the hook; other panics keep the default report.
pub fn install() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_broken_pipe(text) {
            std::process::exit(EPIPE_STATUS);
        }
        default(info);
    }));
}

/// True for the panic of a write to a closed pipe (`failed printing to stdout: Broken pipe
/// (os error 32)`, clap_complete's `failed to write completion file: Broken pipe …`).
fn is_broken_pipe(text: &str) -> bool {
    text.contains("Broken pipe") || text.contains("os error 32")
}

#[cfg(test)]
mod tests {
    #[test]
    fn recognises_the_standard_streams_panic() {
        assert!(super::is_broken_pipe(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!super::is_broken_pipe("index out of bounds"));
    }
}
