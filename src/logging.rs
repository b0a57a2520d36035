//! Process plumbing shared by the node executables: logging and shutdown on SIGINT/SIGTERM.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Logs to stderr with `tracing`. The filter is, in order: `RUST_LOG`, the node's
/// `--ros-args --log-level` (as a tracing filter), or `info`; RustDDS stays quiet unless the
/// filter names `rustdds`.
pub fn init(ros_log_filter: Option<&str>) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| ros_log_filter.map(str::to_owned))
        .unwrap_or_else(|| "info".into());
    // RustDDS reports routine shutdown and discovery events at warn/error level; show them only
    // when asked for (RUST_LOG=rustdds=debug).
    let filter = if filter.contains("rustdds") {
        filter
    } else {
        format!("{filter},rustdds=off,ros2_client=warn,k=warn")
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// A flag that turns true on SIGINT or SIGTERM (what `ros2 launch` sends), so the node's loop can
/// finish its iteration and drop its DDS entities cleanly.
///
/// # Errors
/// When a handler is already installed in this process.
pub fn stop_flag() -> Result<Arc<AtomicBool>, ctrlc::Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))?;
    Ok(stop)
}
