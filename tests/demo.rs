//! `sunledger demo` as a user runs it: the real binary on an ephemeral port.

mod demo_process;

use demo_process::{fetch, Demo};

#[test]
fn demo_serves_its_printed_urls_and_stops_cleanly() {
    // Goal: the demo builds, imports and checkpoints a county-year with planted misuse, prints the
    // URLs of a village notice, the county summary and the auditor page with the bound port; each
    // answers 200 with what it should; its keys are private; SIGTERM stops it with exit status 0.
    let mut demo = Demo::start();
    assert!(demo.output.contains("17 planted misuse cases"), "{}", demo.output);
    assert!(demo.output.contains("checkpoint:      tree size"), "{}", demo.output);
    for label in ["village notice", "village CSV", "county notice", "county summary", "auditor page"] {
        let url = demo.url(label);
        assert!(!url.contains(":0/"), "{label}: the bound port is printed, not 0: {url}");
        let response = fetch(url);
        assert_eq!(response.status, 200, "{label} {url}: {}", response.text());
    }
    let village = fetch(demo.url("village notice")).text();
    assert!(village.contains("发放公示") && village.contains("<pre class=\"checkpoint\">"));
    assert!(village.contains("/v1/proofs/inclusion?seq="), "proof links against the demo's checkpoint");
    let summary = fetch(demo.url("county summary")).json_value();
    assert!(!summary["accounts"].as_array().unwrap().is_empty());
    let audit = fetch(demo.url("auditor page")).text();
    assert!(audit.contains("审计疑点") && audit.contains("<svg"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(demo.data.join("keys.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the demo's keys are private");
    }
    let status = demo.terminate();
    assert!(status.success(), "the demo exits cleanly on SIGTERM: {status:?}");
}

#[test]
fn demo_refuses_a_directory_that_is_not_empty() {
    // Goal: --data must be empty or absent: the demo never writes over an existing ledger.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("something"), "x").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sunledger"))
        .args(["demo", "--addr", "127.0.0.1:0", "--data", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not empty"));
}

trait JsonValue {
    fn json_value(&self) -> serde_json::Value;
}

impl JsonValue for sunledger::http_client::Response {
    fn json_value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}
