//! Runs `sunledger demo --addr 127.0.0.1:0` as a child process and reads the
//! URLs it prints (tests/demo.rs, tests/browser.rs).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the demo may take to print its URLs (a debug build on a busy machine).
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long it may take to stop after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Demo {
    child: Child,
    /// Label → URL, as printed (`village notice`, `auditor page`, …).
    pub urls: BTreeMap<String, String>,
    /// Everything printed on stdout up to the ready line.
    pub output: String,
    pub data: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Demo {
    /// Starts the demo with its data in a new temporary directory; waits for its URLs.
    pub fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("demo");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sunledger"))
            .args(["demo", "--addr", "127.0.0.1:0", "--data", data.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the demo starts");
        let (lines_tx, lines_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut output = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    output.push_str(&line);
                    output.push('\n');
                    if line.contains(sunledger::demo::READY_LINE) {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the demo printed no ready line within {READY_TIMEOUT:?}; it printed:\n{output}");
                }
            }
        }
        let urls = output
            .lines()
            .filter_map(|line| {
                let (label, rest) = line.trim().split_once(": ")?;
                let url = rest.split_whitespace().find(|word| word.starts_with("http://"))?;
                Some((label.to_string(), url.to_string()))
            })
            .collect();
        Demo { child, urls, output, data, _dir: dir }
    }

    pub fn url(&self, label: &str) -> &str {
        self.urls.get(label).unwrap_or_else(|| panic!("the demo printed no {label:?} URL:\n{}", self.output))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (by the child's pid) and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the demo did not stop within {STOP_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// GET a full URL with the library's client.
pub fn fetch(url: &str) -> sunledger::http_client::Response {
    let (host, path) = sunledger::http_client::split_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    sunledger::http_client::request(&host, "GET", &path, &[], b"").unwrap_or_else(|e| panic!("GET {url}: {e}"))
}
