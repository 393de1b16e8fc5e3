//! Waiting for the signal to stop: Ctrl-C or SIGTERM (what a process
//! manager sends), shared by the bus and the services' binaries.

/// Resolves at the first SIGINT or SIGTERM.
pub async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).ok();
    let terminated = async {
        match terminate.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminated => {},
    }
}
