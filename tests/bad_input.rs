//! Bad-input catalogue, through the CLI (`sunledger import`) and HTTP
//! (`POST /v1/events`): every SPEC §4 code (`cases::rejection_cases`), then
//! malformed bytes — oversized bodies and lines, deep nesting, non-UTF-8, NUL
//! bytes, truncated lines, huge and non-positive amounts, impossible dates —
//! and slow or abandoned connections. Each gets its error code, and the
//! ledger's export is byte-for-byte unchanged.

mod support;

use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::http::{get, post, TestServer};
use support::*;

/// Nesting depth of the deep-JSON cases (serde_json stops at 128).
const NESTING_DEPTH: usize = 100_000;

/// A payout by the county of the vector ledger, with `amount` written verbatim.
fn payout_with_amount(id: &str, amount: &str) -> String {
    let body = json!({"household_id": "422822101201-0001", "program": "ranger", "amount_fen": 7,
                      "period": "2019", "card_digest": "a".repeat(64)});
    payload(id, "payout", "422822", "2018-12-22", body).replace("\"amount_fen\":7", &format!("\"amount_fen\":{amount}"))
}

/// Signs arbitrary payload bytes with the county key (DSSE over the exact bytes).
fn sign_bytes(bytes: &[u8]) -> Vec<u8> {
    let key = keys()["422822/k1"].clone();
    sunledger::envelope::Envelope::sign(bytes.to_vec(), &[("422822/k1".to_string(), key)]).to_json().into_bytes()
}

/// An envelope line whose payload is `at`-dated `date` (written verbatim).
fn payout_dated(id: &str, date: &str) -> Vec<u8> {
    sign_bytes(payout_with_amount(id, "100").replace("2018-12-22", date).as_bytes())
}

/// (what, line bytes, expected code). Each line is refused whatever the channel.
fn catalogue() -> Vec<(String, Vec<u8>, &'static str)> {
    let mut cases: Vec<(String, Vec<u8>, &'static str)> = Vec::new();
    let good = sign(&payout_with_amount("bad-1", "100"), &["422822/k1"]).into_bytes();
    // Sizes.
    let long_line = format!(
        "{{\"payload\":\"{}\",\"payloadType\":\"application/vnd.sunledger.event.v1+json\",\"signatures\":[]}}",
        "A".repeat(200_000)
    );
    cases.push(("a 200 KB line".into(), long_line.into_bytes(), "bad_envelope"));
    let mut big_payload = payout_with_amount("bad-2", "100").into_bytes();
    big_payload.pop();
    big_payload.extend_from_slice(format!(",\"memo\":\"{}\"}}", "x".repeat(70_000)).as_bytes());
    cases.push(("a 70 KB payload (limit 64 KiB)".into(), sign_bytes(&big_payload), "bad_envelope"));
    let long_memo =
        payout_with_amount("bad-3", "100").replacen('{', &format!("{{\"memo\":\"{}\",", "字".repeat(501)), 1);
    cases.push(("a 501-character string".into(), sign_bytes(long_memo.as_bytes()), "schema"));
    // Deep nesting, in the envelope and in the signed payload.
    cases.push(("100,000 [".into(), vec![b'['; NESTING_DEPTH], "bad_envelope"));
    let mut deep = b"{\"payload\":".to_vec();
    deep.extend(std::iter::repeat_n(b'[', NESTING_DEPTH));
    cases.push(("100,000 [ as the payload field".into(), deep, "bad_envelope"));
    let mut deep_payload = b"{\"v\":1,\"body\":".to_vec();
    // Within the 64 KiB payload limit, so that the nesting is what is refused.
    deep_payload.extend(std::iter::repeat_n(b'[', 60_000));
    cases.push(("60,000 [ inside a signed payload".into(), sign_bytes(&deep_payload), "schema"));
    let nested_objects = "{\"a\":".repeat(NESTING_DEPTH / 5);
    cases.push(("20,000 nested objects".into(), nested_objects.into_bytes(), "bad_envelope"));
    // Encoding.
    let mut not_utf8 = good.clone();
    let at = not_utf8.windows(7).position(|w| w == b"keyid\":").unwrap() + 8;
    not_utf8[at] = 0xff;
    cases.push(("non-UTF-8 in the envelope".into(), not_utf8, "bad_envelope"));
    // "café" in Latin-1: the 0xE9 byte alone is not UTF-8.
    let latin1 = payout_with_amount("bad-4", "100").replacen('{', "{\"memo\":\"cafE\",", 1);
    let latin1: Vec<u8> = latin1.into_bytes().into_iter().map(|b| if b == b'E' { 0xe9 } else { b }).collect();
    cases.push(("non-UTF-8 in the signed payload".into(), sign_bytes(&latin1), "schema"));
    cases.push(("a NUL byte in the envelope".into(), [&good[..10], b"\0", &good[10..]].concat(), "bad_envelope"));
    let nul_payload = payout_with_amount("bad-5", "100").replace("\"v\":1", "\"v\":1\0");
    cases.push(("a raw NUL in the signed payload".into(), sign_bytes(nul_payload.as_bytes()), "schema"));
    let escaped_nul = payout_with_amount("bad-nul", "100").replace("bad-nul", "bad\\u0000nul");
    cases.push(("an escaped NUL in the event id".into(), sign_bytes(escaped_nul.as_bytes()), "schema"));
    // Truncation.
    cases.push(("half an envelope line".into(), good[..good.len() / 2].to_vec(), "bad_envelope"));
    cases.push(("a line without its last brace".into(), good[..good.len() - 1].to_vec(), "bad_envelope"));
    let cut = payout_with_amount("bad-6", "100");
    cases.push(("a signed payload cut in half".into(), sign_bytes(&cut.as_bytes()[..cut.len() / 2]), "schema"));
    cases.push(("an empty payload".into(), sign_bytes(b""), "schema"));
    // Amounts.
    for (amount, code) in [
        ("1e400", "schema"),
        ("1.5", "schema"),
        ("100.0", "schema"),
        ("\"100\"", "schema"),
        ("null", "schema"),
        ("18446744073709551616", "invalid_amount"),
        ("99999999999999999999999", "invalid_amount"),
        ("9007199254740992", "invalid_amount"),
        ("-1", "invalid_amount"),
        ("-18446744073709551616", "invalid_amount"),
        ("0", "invalid_amount"),
        ("-0", "invalid_amount"),
    ] {
        cases.push((format!("amount {amount}"), sign_bytes(payout_with_amount("bad-7", amount).as_bytes()), code));
    }
    // Dates.
    for date in
        ["2019-02-30", "2019-02-29", "1900-02-29", "2019-13-01", "2019-00-10", "2019-04-31", "2019-1-5", "20190105"]
    {
        cases.push((format!("date {date}"), payout_dated("bad-8", date), "schema"));
    }
    // Raw personal numbers (SPEC §1), in free text and in ids: refused, and never echoed back.
    for (what, number) in PERSONAL_NUMBERS {
        let memo = payout_with_amount("bad-9", "100").replacen('{', &format!("{{\"memo\":\"户主 {number}\","), 1);
        cases.push((format!("personal: {what} in the memo"), sign_bytes(memo.as_bytes()), "schema"));
    }
    let household = payout_with_amount("bad-10", "100").replace("422822101201-0001", "11010519491231002X");
    cases.push(("personal: an ID number as the household id".into(), sign_bytes(household.as_bytes()), "schema"));
    cases
}

/// Raw numbers the catalogue smuggles into payloads, as written.
const PERSONAL_NUMBERS: [(&str, &str); 3] = [
    ("an ID number", "11010519491231002X"),
    ("a card number", "6228480402564890018"),
    ("a card number in groups", "6228 4804 0256 4890 018"),
];

/// A refusal of a personal number must not carry the number (stderr, HTTP body, logs).
fn assert_not_echoed(what: &str, output: &str) {
    for (_, number) in PERSONAL_NUMBERS {
        for digits in [number.to_string(), number.replace(' ', ""), number[..17].to_string()] {
            assert!(!output.contains(&digits), "{what}: the refusal echoes {digits}: {output}");
        }
    }
}

/// Imports one line through the CLI: exit 1, the expected code on line 1.
fn check_cli(data: &std::path::Path, dir: &std::path::Path, what: &str, line: &[u8], code: &str) {
    let path = dir.join("bad.jsonl");
    std::fs::write(&path, [line, b"\n"].concat()).unwrap();
    let output = run(&["import", "--data", data.to_str().unwrap(), path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{what}: {}", stderr(&output));
    let first = stderr(&output).lines().next().unwrap_or("").to_string();
    let report: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{what}: stderr is not JSON ({e}): {first}"));
    assert_eq!(report["error"], code, "{what}: {report}");
    assert_eq!(report["line"], 1, "{what}");
    assert_not_echoed(what, &String::from_utf8_lossy(&output.stderr));
    assert_not_echoed(what, &String::from_utf8_lossy(&output.stdout));
}

#[test]
fn cli_refuses_every_bad_line_and_changes_nothing() {
    // Goal: each catalogue line and each SPEC §4 case is refused by `import` with its code; the export is unchanged.
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    let before = export_bytes(&data);
    let mut cases = catalogue();
    for (code, line) in cases::rejection_cases() {
        cases.push((format!("SPEC §4 {code}"), line.into_bytes(), code));
    }
    for (what, line, code) in &cases {
        check_cli(&data, dir.path(), what, line, code);
    }
    assert_eq!(export_bytes(&data), before, "a refused line changed the ledger");
    // A file that ends in the middle of a line (no newline): the cut line is refused too.
    let good = sign(&payout_with_amount("tail-1", "100"), &["422822/k1"]);
    let path = dir.path().join("cut.jsonl");
    std::fs::write(&path, format!("{good}\n{}", &good[..good.len() - 20])).unwrap();
    let output = run(&["import", "--data", data.to_str().unwrap(), path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("\"line\":2") && stderr(&output).contains("bad_envelope"), "{}", stderr(&output));
    let after = export_bytes(&data);
    assert_eq!(&after[..before.len()], &before[..], "the good first line was appended after the old records");
    assert_eq!(after[before.len()..].iter().filter(|b| **b == b'\n').count(), 1, "exactly the good line was added");
}

#[test]
fn http_refuses_every_bad_body_and_changes_nothing() {
    // Goal: each catalogue body and each SPEC §4 case gets a 4xx {"error": code}, alone and inside
    // per-event and atomic batches; a body over the limit gets 413; /v1/export is unchanged.
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    let server = TestServer::start(&data, None);
    let before = get(server.addr, "/v1/export").body.clone();
    let mut cases = catalogue();
    for (code, line) in cases::rejection_cases() {
        cases.push((format!("SPEC §4 {code}"), line.into_bytes(), code));
    }
    for (what, body, code) in &cases {
        let response = post(server.addr, "/v1/events", body);
        assert!((400..500).contains(&response.status), "{what}: {} {}", response.status, response.text());
        assert_eq!(response.json()["error"], *code, "{what}: {}", response.text());
        assert!(response.json()["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}");
        assert_not_echoed(what, &response.text());
        // The same envelope inside batches, where it is JSON at all.
        if let Ok(envelope) = serde_json::from_slice::<serde_json::Value>(body) {
            let per_event = post(server.addr, "/v1/events", json!({"envelopes": [envelope]}).to_string().as_bytes());
            assert_eq!(per_event.status, 200, "{what}");
            assert_eq!(per_event.json()["results"][0]["error"], *code, "{what} in a batch");
            let atomic = json!({"envelopes": [envelope], "atomic": true});
            let atomic = post(server.addr, "/v1/events", atomic.to_string().as_bytes());
            assert_eq!(atomic.json()["error"], *code, "{what} in an atomic batch");
            assert_eq!(atomic.json()["index"], 0, "{what}");
        }
    }
    let too_big = vec![b' '; sunledger::server::REQUEST_BODY_BYTES_MAX + 1];
    let response = post(server.addr, "/v1/events", &too_big);
    assert_eq!(response.status, 413);
    assert_eq!(response.json()["error"], "bad_envelope", "a JSON error like every other: {}", response.text());
    let mut deep_batch = b"{\"envelopes\":".to_vec();
    deep_batch.extend(std::iter::repeat_n(b'[', NESTING_DEPTH));
    let response = post(server.addr, "/v1/events", &deep_batch);
    assert_eq!(response.status, 400, "{}", response.text());
    let too_many = json!({"envelopes": vec![json!({}); sunledger::server::BATCH_ENVELOPES_MAX + 1]});
    assert_eq!(post(server.addr, "/v1/events", too_many.to_string().as_bytes()).status, 400);
    assert_eq!(get(server.addr, "/v1/export").body, before, "a refused body changed the ledger");
    assert_eq!(get(server.addr, "/healthz").status, 200, "the server survived the catalogue");
}

/// Opens a connection and sends `bytes` (part of a request).
fn half_request(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(bytes).unwrap();
    stream
}

/// A request from a well-behaved client must answer quickly.
fn assert_responsive(addr: SocketAddr, id: &str) {
    let started = Instant::now();
    assert_eq!(get(addr, "/healthz").status, 200);
    let event = sign(&payout_with_amount(id, "1"), &["422822/k1"]);
    let response = post(addr, "/v1/events", event.as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(started.elapsed() < Duration::from_secs(5), "slow answer: {:?}", started.elapsed());
}

#[test]
fn slow_and_abandoned_connections_do_not_stall_the_server() {
    // Goal: 64 connections left holding half a request head or half a body, then abandoned, and a
    // slowloris trickling a body: other clients are answered at once throughout; the trickled request
    // ends with 408 within REQUEST_TIMEOUT; a half-sent event is never appended.
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    let server = TestServer::start(&data, None);
    let addr = server.addr;
    let before = get(addr, "/v1/export").body.clone();
    let event = sign(&payout_with_amount("half-1", "100"), &["422822/k1"]);
    let mut held = Vec::new();
    for n in 0..64 {
        let bytes = if n % 2 == 0 {
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Le".to_vec()
        } else {
            let head = format!("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", event.len());
            [head.as_bytes(), &event.as_bytes()[..event.len() / 2]].concat()
        };
        held.push(half_request(addr, &bytes));
    }
    assert_responsive(addr, "live-1");
    // A slowloris on the body: one byte every 250 ms of a 10,000-byte body.
    let trickle = std::thread::spawn(move || {
        let mut stream =
            half_request(addr, b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n{\"payload\":\"");
        stream.set_read_timeout(Some(Duration::from_millis(250))).unwrap();
        let started = Instant::now();
        let mut answer = Vec::new();
        while started.elapsed() < sunledger::server::REQUEST_TIMEOUT + Duration::from_secs(10) {
            if stream.write_all(b"A").is_err() {
                break;
            }
            let mut buffer = [0u8; 512];
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buffer[..n]);
                    break;
                }
                Err(_) => {}
            }
        }
        (started.elapsed(), String::from_utf8_lossy(&answer).into_owned())
    });
    for n in 0..6 {
        std::thread::sleep(Duration::from_secs(1));
        assert_responsive(addr, &format!("live-during-{n}"));
    }
    // Abandon every held connection mid-request.
    drop(held);
    assert_responsive(addr, "live-2");
    let (took, answer) = trickle.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "the trickled request got: {answer:?} after {took:?}");
    assert!(took <= sunledger::server::REQUEST_TIMEOUT + Duration::from_secs(2), "it took {took:?}");
    let export = get(addr, "/v1/export").text();
    let ids: Vec<String> = export
        .lines()
        .skip(before.iter().filter(|b| **b == b'\n').count())
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            let payload = sunledger::encoding::base64_decode(record["envelope"]["payload"].as_str().unwrap()).unwrap();
            serde_json::from_slice::<serde_json::Value>(&payload).unwrap()["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(ids.iter().all(|id| id.starts_with("live-")), "only the live clients' events were appended: {ids:?}");
    assert_eq!(ids.len(), 8);
}

/// Reads until the server closes the connection (EOF or reset); returns when it did, or None.
fn closed_within(stream: &mut TcpStream, limit: Duration, trickle: bool) -> Option<Duration> {
    stream.set_read_timeout(Some(Duration::from_millis(250))).unwrap();
    let started = Instant::now();
    while started.elapsed() < limit {
        if trickle && stream.write_all(b"a").is_err() {
            return Some(started.elapsed());
        }
        let mut buffer = [0u8; 256];
        match stream.read(&mut buffer) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

#[test]
fn header_slowloris_is_cut_off_within_request_timeout() {
    // Goal (regression: a client trickling its request head, or sending nothing, held its connection for
    // ever — axum::serve gives hyper no timer, so no header timeout applied): such connections are closed
    // within REQUEST_TIMEOUT, while other clients are answered throughout.
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    let server = TestServer::start(&data, None);
    let addr = server.addr;
    let limit = sunledger::server::REQUEST_TIMEOUT + Duration::from_secs(3);
    let trickler = std::thread::spawn(move || {
        let mut stream = half_request(addr, b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        closed_within(&mut stream, limit, true)
    });
    let silent = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        closed_within(&mut stream, limit, false)
    });
    for n in 0..5 {
        std::thread::sleep(Duration::from_secs(2));
        assert_responsive(addr, &format!("during-slowloris-{n}"));
    }
    let trickled = trickler.join().unwrap().expect("the trickling connection is closed");
    let idle = silent.join().unwrap().expect("the silent connection is closed");
    for took in [trickled, idle] {
        assert!(took <= sunledger::server::REQUEST_TIMEOUT + Duration::from_secs(2), "closed after {took:?}");
        assert!(took >= sunledger::server::REQUEST_TIMEOUT - Duration::from_secs(2), "closed early, after {took:?}");
    }
}

/// Reads one HTTP response with a Content-Length body from a keep-alive connection.
fn read_response(stream: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the connection closed mid-head");
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).to_lowercase();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("a content-length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    (status, body)
}

#[test]
fn keep_alive_connections_serve_several_requests() {
    // Goal: the head deadline does not disturb normal use: one keep-alive connection serves a GET, a POST
    // whose body follows its head in a later packet, and another GET after a pause.
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    let server = TestServer::start(&data, None);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (status, body) = read_response(&mut stream);
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["status"], "ok");
    let event = sign(&payout_with_amount("keep-alive-1", "100"), &["422822/k1"]);
    let head = format!("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", event.len());
    stream.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(event.as_bytes()).unwrap();
    let (status, body) = read_response(&mut stream);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    std::thread::sleep(Duration::from_secs(1));
    stream.write_all(b"GET /v1/records/27 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut stream).0, 200);
}
