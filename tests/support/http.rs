//! HTTP helpers for the API tests (the library's minimal client), and an
//! in-process server on an ephemeral loopback port.

use std::net::SocketAddr;
use std::path::Path;

pub struct Response(pub sunledger::http_client::Response);

impl std::ops::Deref for Response {
    type Target = sunledger::http_client::Response;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.0.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.0.text()))
    }
}

pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    Response(
        sunledger::http_client::request(&addr.to_string(), method, path, headers, body).expect("the request completes"),
    )
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], b"")
}

pub fn post(addr: SocketAddr, path: &str, body: &[u8]) -> Response {
    request(addr, "POST", path, &[("Content-Type", "application/json")], body)
}

/// A server on 127.0.0.1:0 over the ledger in `data`; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(data: &Path, log_key: Option<sunledger::keys::KeyMaterial>) -> TestServer {
        TestServer::start_with(data, log_key, sunledger::server::flags::FlagCache::default())
    }

    /// `start` with a given flag cache.
    pub fn start_with(
        data: &Path,
        log_key: Option<sunledger::keys::KeyMaterial>,
        flags: sunledger::server::flags::FlagCache,
    ) -> TestServer {
        let ledger = sunledger::ledger::Ledger::open(data).expect("the ledger opens");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
                let server = tokio::spawn(sunledger::server::serve_async_with(
                    ledger,
                    log_key,
                    "127.0.0.1:0",
                    Some(bound_tx),
                    Some(stop_rx),
                    flags,
                ));
                ready_tx.send(bound_rx.await.expect("the server binds")).unwrap();
                server.await.unwrap().expect("the server runs");
            });
        });
        let addr = ready_rx.recv().expect("the server reports its address");
        TestServer { addr, stop: Some(stop_tx), thread: Some(thread) }
    }
}

impl Drop for TestServer {
    /// Stops the server and waits for it, at most `SHUTDOWN_WAIT`: a server
    /// that does not finish (sled 0.34 has been seen to hang at shutdown with
    /// several stores in one process) is left behind rather than hanging the
    /// test run.
    fn drop(&mut self) {
        const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(15);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let started = std::time::Instant::now();
            while !thread.is_finished() && started.elapsed() < SHUTDOWN_WAIT {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}
