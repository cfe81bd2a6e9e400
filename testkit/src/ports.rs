//! Loopback ports for the servers the kit starts.

use std::time::Duration;

/// A port free on 127.0.0.1 now. Someone else may take it before it is bound: callers that
/// start servers on it retry with another.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a loopback port")
}

/// Waits until something accepts connections on `addr` (`host:port`), for at most
/// `within`.
pub async fn wait_listening(addr: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("nothing listened on {addr} within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
