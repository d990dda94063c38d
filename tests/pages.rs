//! Notice pages, the auditor page and the JSON read routes, against a server
//! on 127.0.0.1 (ephemeral port) over a generated county-year with planted
//! misuse, a signed checkpoint, and a few events recorded after it (one a
//! village and household whose names try to inject HTML).

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use sunledger::envelope::Envelope;
use sunledger::generate::{county_year, CountyOptions, Generated};
use sunledger::ledger::{Ledger, OnRejection, Outcome};
use sunledger::projection::Projections;
use sunledger::state::State;
use support::http::{get, request, TestServer};

const SEED: u64 = 11;
/// A village registered after the checkpoint, with a name that tries to inject a script.
const XSS_VILLAGE: &str = "422822100299";
const XSS_VILLAGE_NAME: &str = "<script>alert(\"x\")</script>村";
const XSS_HOUSEHOLD: &str = "422822100299-0001";
/// A masked head name that tries to break out of an attribute.
const XSS_HEAD_NAME: &str = "\"<b>'*&";
const AUDITOR_KEY: &str = "422822-aud/k1";

/// One world at a time: sled 0.34 shares one concurrency lock between all
/// databases of a process, and several stores closing at once have hung
/// (a writer waiting for readers that wait on another store's flush).
static ONE_WORLD_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Fields drop in order: the server stops, then the directory goes, then
/// the next test may start.
struct World {
    server: TestServer,
    _dir: tempfile::TempDir,
    generated: Generated,
    state: State,
    projections: Projections,
    checkpoint_size: u64,
    _serial: MutexGuard<'static, ()>,
}

fn key(generated: &Generated, key_id: &str) -> ed25519_dalek::SigningKey {
    generated.keys.iter().find(|(id, _)| id == key_id).unwrap_or_else(|| panic!("no key {key_id}")).1.clone()
}

fn signed(generated: &Generated, key_ids: &[&str], id: &str, kind: &str, office: &str, body: Value) -> String {
    let payload = json!({"v": 1, "ledger": generated.ledger_id, "id": id, "kind": kind, "office": office,
                         "at": "2019-12-28", "body": body});
    let signers: Vec<(String, ed25519_dalek::SigningKey)> =
        key_ids.iter().map(|k| (k.to_string(), key(generated, k))).collect();
    Envelope::sign(payload.to_string().into_bytes(), &signers).to_json()
}

/// After the checkpoint: a village, a household in it, money for it and a payout.
fn after_checkpoint(generated: &Generated) -> Vec<String> {
    let village = json!({"office_id": XSS_VILLAGE, "name": XSS_VILLAGE_NAME, "level": "village",
        "parent": "422822100", "region_code": XSS_VILLAGE, "contact": "监督举报电话 <12317>",
        "keys": [{"key_id": "422822100299/k1", "public_key": sunledger::encoding::base64_encode(
            ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key().as_bytes()), "roles": ["registrar"]}]});
    let household = json!({"household_id": XSS_HOUSEHOLD, "village": XSS_VILLAGE, "head_name_masked": XSS_HEAD_NAME,
        "members": [{"person_digest": "ab".repeat(32), "name_masked": XSS_HEAD_NAME}],
        "card": {"card_digest": "cd".repeat(32), "card_masked": "6228********4321", "bank": "湖北农信"}});
    let money = json!({"program": "dibao", "amount_fen": 30000, "budget_ref": "test", "fiscal_year": 2019});
    let payout = json!({"household_id": XSS_HOUSEHOLD, "program": "dibao", "amount_fen": 30000,
        "period": "2019-12", "card_digest": "cd".repeat(32)});
    vec![
        signed(generated, &["422822100/k1"], "xss-village", "office_register", "422822100", village),
        signed(generated, &["422822-fpb/k1"], "xss-household", "household_register", "422822-fpb", household),
        signed(generated, &["422822/k1"], "xss-money", "appropriate", "422822", money),
        signed(generated, &["422822/k1"], "xss-payout", "payout", "422822", payout),
    ]
}

fn append(ledger: &mut Ledger, lines: &[String]) {
    for chunk in lines.chunks(sunledger::ledger::GROUP_EVENTS_MAX) {
        let envelopes: Vec<&[u8]> = chunk.iter().map(|l| l.as_bytes()).collect();
        let outcomes = ledger.append_group(&envelopes, OnRejection::Stop).unwrap();
        for outcome in &outcomes {
            assert!(matches!(outcome, Outcome::Appended { .. }), "{outcome:?}");
        }
        assert_eq!(outcomes.len(), chunk.len());
    }
}

fn log_key(generated: &Generated) -> sunledger::keys::KeyMaterial {
    let secret = key(generated, "log/k1");
    sunledger::keys::KeyMaterial {
        key_id: "log/k1".into(),
        public_key: secret.verifying_key().to_bytes(),
        secret: Some(secret),
    }
}

fn world() -> World {
    let serial = ONE_WORLD_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let generated = county_year(SEED, CountyOptions { misuse: true, ..CountyOptions::default() });
    let mut ledger = Ledger::open(&data).unwrap();
    append(&mut ledger, &generated.lines);
    let log = log_key(&generated);
    ledger.issue_checkpoint(&log.key_id, log.signing_key().unwrap()).unwrap();
    let checkpoint_size = ledger.head().size;
    append(&mut ledger, &after_checkpoint(&generated));
    let (state, projections) = (ledger.state().clone(), ledger.projections().clone());
    drop(ledger);
    // No log key: the server issues no checkpoint of its own (it would at start), so the page
    // carries the one issued above and the events after it stay pending.
    drop(log);
    let server = TestServer::start(&data, None);
    World { server, _dir: dir, generated, state, projections, checkpoint_size, _serial: serial }
}

/// The longest run of characters satisfying `accept`.
fn longest_run(text: &str, accept: impl Fn(char) -> bool) -> usize {
    let (mut longest, mut current) = (0, 0);
    for c in text.chars() {
        current = if accept(c) { current + 1 } else { 0 };
        longest = longest.max(current);
    }
    longest
}

/// Goal of every public text: no digest, no ID or card number.
fn assert_nothing_raw(what: &str, text: &str) {
    let hex = longest_run(text, |c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    assert!(hex < 64, "{what} holds a run of {hex} hex characters (a digest?)");
    let digits = longest_run(text, |c| c.is_ascii_digit());
    assert!(digits < 16, "{what} holds a run of {digits} digits (an ID or card number?)");
    let id_like = longest_run(text, |c| c.is_ascii_digit() || c == 'X' || c == 'x');
    assert!(id_like < 18, "{what} holds an 18-character ID-like run");
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// Every `href` on the page that starts with `prefix`, unescaped.
fn links(page: &str, prefix: &str) -> Vec<String> {
    let needle = format!("href=\"{prefix}");
    page.match_indices(&needle)
        .map(|(start, _)| {
            let rest = &page[start + 6..];
            unescape(&rest[..rest.find('"').unwrap()])
        })
        .collect()
}

fn fen(yuan: &str) -> u64 {
    let (whole, cents) = yuan.split_once('.').expect("two decimals");
    assert_eq!(cents.len(), 2, "{yuan}");
    whole.parse::<u64>().unwrap() * 100 + cents.parse::<u64>().unwrap()
}

fn village_payouts(world: &World, village: &str) -> Vec<(u64, u64)> {
    let mut payouts: Vec<(u64, u64)> = world
        .projections
        .households
        .values()
        .filter(|h| h.village == village)
        .flat_map(|h| h.payouts.iter().map(|p| (p.seq, p.amount_fen)))
        .collect();
    payouts.sort();
    payouts
}

#[test]
fn village_notice_shows_masked_rosters_and_nothing_raw() {
    // Goal: a village's page has its rosters (SPEC §9 title, masked names, yuan with two decimals,
    // masked cards, totals), projects, fund flow, complaint channel, issuer and checkpoint — and no
    // digest, ID or card number.
    let world = world();
    let village = &world.generated.villages[0];
    let response = get(world.server.addr, &format!("/notice/{village}"));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/html; charset=utf-8"));
    let page = response.text();
    assert_nothing_raw("the village page", &page);
    let village_name = &world.state.offices[village].name;
    assert!(page.contains(&format!("{village_name}2019年1月农村最低生活保障金（低保）发放公示")));
    for column in
        ["序号", "户主", "组/村", "家庭人口", "项目", "标准（元）", "金额（元）", "期间", "发放日期", "银行卡"]
    {
        assert!(page.contains(&format!(">{column}</th>")), "column {column}");
    }
    let households: Vec<_> =
        world.projections.households.values().filter(|h| &h.village == village && !h.payouts.is_empty()).collect();
    assert!(households.len() >= 10, "a village of paid households");
    for household in &households {
        let masked = sunledger::notice::mask_name(&household.head_name_masked);
        assert!(page.contains(&format!(">{masked}</td>")), "{masked} is on the roster");
        assert!(page.contains(&household.card.card_masked), "{}", household.card.card_masked);
    }
    let total: u64 = village_payouts(&world, village).iter().map(|(_, amount)| amount).sum();
    let shown: u64 = page
        .match_indices("data-label=\"合计金额（元）\">")
        .map(|(at, needle)| fen(page[at + needle.len()..].split('<').next().unwrap()))
        .sum();
    assert_eq!(shown, total, "the roster totals add up to the ledger's payouts");
    for section in ["id=\"projects\"", "id=\"flows\"", "id=\"verify\"", "id=\"contact\""] {
        assert!(page.contains(section), "{section}");
    }
    assert!(page.contains("监督举报电话 12317；建始县财政局"), "the county bureau's contact");
    assert!(page.contains(&format!("公示单位：{village_name}")));
    assert!(page.contains("<pre class=\"checkpoint\">"));
    assert!(page.contains("@page{size:A4"), "print stylesheet");
    assert!(page.contains("name=\"viewport\""), "phone layout");
    assert!(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"), "self-contained");
}

#[test]
fn notice_csv_parses_and_adds_up() {
    // Goal: the CSV is a UTF-8 attachment with a BOM, the roster header, one parseable row per payout
    // of the village's households (amounts as the ledger has them), nothing raw; filters narrow it.
    let world = world();
    let village = &world.generated.villages[0];
    let response = get(world.server.addr, &format!("/notice/{village}.csv"));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/csv; charset=utf-8"));
    let disposition = response.header("content-disposition").unwrap();
    assert!(disposition.starts_with("attachment;") && disposition.contains(".csv"), "{disposition}");
    assert!(response.body.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 BOM");
    let text = String::from_utf8(response.body[3..].to_vec()).unwrap();
    assert_nothing_raw("the CSV", &text);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, sunledger::server::pages::CSV_COLUMNS);
    let column = |name: &str| header.iter().position(|c| c == name).unwrap();
    let mut rows: Vec<(u64, u64)> = Vec::new();
    for (number, record) in reader.records().enumerate() {
        let record = record.expect("every row parses");
        assert_eq!(record.len(), header.len());
        assert_eq!(record[column("序号")].parse::<usize>().unwrap(), number + 1);
        assert!(record[column("银行卡")].contains("********"));
        rows.push((record[column("记录序号")].parse().unwrap(), fen(&record[column("金额（元）")])));
    }
    rows.sort();
    assert_eq!(rows, village_payouts(&world, village), "one row per payout, amounts as recorded");

    let filtered = get(world.server.addr, &format!("/notice/{village}.csv?program=dibao&period=2019-01"));
    let text = String::from_utf8(filtered.body[3..].to_vec()).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let periods: Vec<String> = reader.records().map(|r| r.unwrap()[column("期间")].to_string()).collect();
    assert!(!periods.is_empty() && periods.iter().all(|p| p == "2019-01"), "{periods:?}");
    assert_eq!(get(world.server.addr, &format!("/notice/{village}.csv?period=2019-13")).status, 400);
    assert_eq!(get(world.server.addr, "/notice/nowhere.csv").status, 404);
    assert_eq!(get(world.server.addr, "/notice/nowhere").status, 404);
}

#[test]
fn every_proof_link_verifies_against_the_checkpoint_on_the_page() {
    // Goal: the checkpoint in the page's <pre> is signed by the genesis log key; every row's proof
    // link is for the checkpoint's size and proves the row's record (leaf = record hash) against
    // the checkpoint's root; the record is the payout the row shows; rows recorded after the
    // checkpoint say they wait for the next one.
    let world = world();
    let county = &world.generated.county;
    let page = get(world.server.addr, &format!("/notice/{county}")).text();
    let pre = page.split("<pre class=\"checkpoint\">").nth(1).unwrap().split("</pre>").next().unwrap();
    let note = sunledger::checkpoint::Note::parse(&unescape(pre)).expect("the page's note parses");
    let (log_id, log_public) = world.state.log_key.clone().unwrap();
    let known = [(log_id.clone(), ed25519_dalek::VerifyingKey::from_bytes(&log_public).unwrap())];
    let verified = sunledger::checkpoint::verify(&note, &log_id, &known).expect("signed by the log key");
    let checkpoint = verified.checkpoint;
    assert_eq!(checkpoint.size, world.checkpoint_size);
    let proofs = links(&page, "/v1/proofs/inclusion?");
    let covered: usize =
        world.projections.households.values().flat_map(|h| &h.payouts).filter(|p| p.seq < checkpoint.size).count();
    assert_eq!(proofs.len(), covered, "one proof link per roster row under the checkpoint");
    for link in proofs {
        let query = link.split_once('?').unwrap().1;
        let parameters: BTreeMap<&str, u64> =
            query.split('&').map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k, v.parse().unwrap())).collect();
        let (seq, size) = (parameters["seq"], parameters["size"]);
        assert_eq!(size, checkpoint.size);
        let proof = get(world.server.addr, &link).json();
        let record = get(world.server.addr, &format!("/v1/records/{seq}")).json();
        let leaf: [u8; 32] = sunledger::encoding::hex_array(record["hash"].as_str().unwrap()).unwrap();
        let path: Vec<[u8; 32]> = proof["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| sunledger::encoding::hex_array(h.as_str().unwrap()).unwrap())
            .collect();
        sunledger::merkle::verify_inclusion(&leaf, seq, size, &path, &checkpoint.root)
            .unwrap_or_else(|e| panic!("row {seq}: {e}"));
        let envelope = Envelope::parse(record["envelope"].to_string().as_bytes()).unwrap();
        let payload = sunledger::payload::parse_payload(&envelope.payload).unwrap();
        assert_eq!(payload.body.kind(), "payout", "row {seq} links to a payout");
    }
    let xss_payout = world.projections.households[XSS_HOUSEHOLD].payouts[0].seq;
    assert!(xss_payout >= checkpoint.size);
    assert!(page.contains(&format!("记录{xss_payout}</a>（待下一检查点）")));
}

#[test]
fn ledger_text_is_escaped() {
    // Goal: office names, contacts and masked names from the chain cannot inject markup.
    let world = world();
    let page = get(world.server.addr, &format!("/notice/{XSS_VILLAGE}")).text();
    assert!(!page.contains("<script"), "no script element");
    assert!(!page.contains("<b>"));
    assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;村"), "the name, escaped");
    assert!(page.contains("监督举报电话 &lt;12317&gt;"), "the contact, escaped");
    let masked = sunledger::notice::mask_name(XSS_HEAD_NAME);
    assert_eq!(masked, "\"*****&");
    assert!(page.contains(">&quot;*****&amp;</td>"), "the head name, masked then escaped");
    let csv = get(world.server.addr, &format!("/notice/{XSS_VILLAGE}.csv")).text();
    assert!(csv.contains(",\"\"\"*****&\","), "CSV quoting of the masked name: {csv}");
    let audit = get(world.server.addr, "/audit").text();
    assert!(!audit.contains("<script") && audit.contains("&lt;script&gt;"));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn signed_get(world: &World, path: &str) -> support::http::Response {
    let key = key(&world.generated, AUDITOR_KEY);
    let authorization = sunledger::server::auth::authorization(AUDITOR_KEY, &key, "GET", path, now_ms());
    request(world.server.addr, "GET", path, &[("Authorization", &authorization)], b"")
}

#[test]
fn personal_data_needs_a_signed_request() {
    // Goal: /v1/households/{id} and /v1/flags refuse unsigned (or wrongly signed) requests with 401
    // and answer signed ones: masked members with digests, never raw numbers; the SPEC §7 flags
    // with their filters. /audit answers loopback, not a proxied request.
    let world = world();
    let household = world.generated.planted.iter().find(|p| p.rule == "card_mismatch").unwrap().subject_id.clone();
    let path = format!("/v1/households/{household}");
    let unsigned = get(world.server.addr, &path);
    assert_eq!(unsigned.status, 401);
    assert_eq!(unsigned.json()["error"], "unauthorized");
    let key = key(&world.generated, AUDITOR_KEY);
    let other_path = sunledger::server::auth::authorization(AUDITOR_KEY, &key, "GET", "/v1/flags", now_ms());
    assert_eq!(request(world.server.addr, "GET", &path, &[("Authorization", &other_path)], b"").status, 401);
    let answer = signed_get(&world, &path);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["household_id"], household.as_str());
    assert!(body["members"].as_array().unwrap().iter().all(|m| m["name_masked"].as_str().unwrap().contains('*')));
    assert!(body["card"]["card_masked"].as_str().unwrap().contains("********"));
    assert!(body["flags"].as_array().unwrap().iter().any(|f| f["rule"] == "card_mismatch"));
    assert_eq!(signed_get(&world, "/v1/households/none").status, 404);

    assert_eq!(get(world.server.addr, "/v1/flags").status, 401);
    let flags = signed_get(&world, "/v1/flags").json();
    let rules: std::collections::BTreeSet<&str> =
        flags["flags"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    for planted in &world.generated.planted {
        assert!(rules.contains(planted.rule), "{} is flagged", planted.rule);
    }
    assert_eq!(flags["count"], flags["flags"].as_array().unwrap().len());
    let shared = signed_get(&world, "/v1/flags?rule=shared_card").json();
    assert_eq!(shared["count"], 1);
    assert_eq!(shared["flags"][0]["subject"]["kind"], "card");
    let high = signed_get(&world, "/v1/flags?severity=high&office=422822").json();
    assert!(high["flags"].as_array().unwrap().iter().all(|f| f["severity"] == "high"));
    assert_eq!(signed_get(&world, "/v1/flags?severity=dire").status, 400);

    let audit = get(world.server.addr, "/audit");
    assert_eq!(audit.status, 200);
    assert_nothing_raw("the auditor page", &audit.text());
    assert!(audit.text().contains("href=\"/v1/records/"), "evidence links");
    assert!(audit.text().contains("<svg"), "charts");
    let proxied = request(world.server.addr, "GET", "/audit", &[("X-Forwarded-For", "203.0.113.9")], b"");
    assert_eq!(proxied.status, 403);
    assert_eq!(signed_get(&world, "/audit?rule=structuring").status, 200);
}

#[test]
fn summary_and_accounts_equal_the_projections() {
    // Goal: /v1/summary (public) gives exactly report::summary_rows over the projections, for the
    // whole ledger and for one office; /v1/accounts gives lots with ages and flows.
    let world = world();
    let county = world.generated.county.as_str();
    for (path, office) in [("/v1/summary".to_string(), None), (format!("/v1/summary?office={county}"), Some(county))] {
        let response = get(world.server.addr, &path);
        assert_eq!(response.status, 200);
        let want = sunledger::report::summary_rows(&world.state, &world.projections, office).unwrap();
        assert_eq!(response.json()["accounts"], serde_json::to_value(&want).unwrap(), "{path}");
    }
    assert_eq!(get(world.server.addr, "/v1/summary?office=nowhere").status, 404);
    let idle = world.generated.planted.iter().find(|p| p.rule == "idle_funds").unwrap().subject_id.clone();
    let account = get(world.server.addr, &format!("/v1/accounts/{idle}")).json();
    let held = &world.projections.accounts[&idle];
    assert_eq!(account["balance_fen"], held.balance_fen());
    assert_eq!(account["lots"].as_array().unwrap().len(), held.lots.len());
    assert!(account["lots"][0]["age_days"].as_i64().unwrap() >= 365, "the planted idle lot is old");
    assert_eq!(account["flows"]["received_fen"], held.flows.received_fen());
    assert_eq!(account["oldest_lot_age_days"], account["lots"][0]["age_days"]);
}

#[test]
fn before_any_checkpoint_the_page_says_it_is_pending() {
    // Goal: with no checkpoint issued, the page gives the tree size, says the checkpoint is pending,
    // links each row to its record but to no proof, and issues no checkpoint itself; with no
    // contact anywhere up the office tree it says so.
    let _serial = ONE_WORLD_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let data = support::vector_ledger(dir.path());
    let server = TestServer::start(&data, None);
    let page = get(server.addr, "/notice/422822101201").text();
    assert!(page.contains("检查点待签发：账本现有 27 条记录"), "pending, with the tree size");
    assert!(!page.contains("<pre class=\"checkpoint\">"));
    assert!(links(&page, "/v1/proofs/inclusion?").is_empty(), "no proof without a checkpoint");
    assert_eq!(links(&page, "/v1/records/").len(), 3, "the three payouts link to their records");
    assert!(page.contains("均未在账本中登记监督举报渠道"));
    assert_eq!(get(server.addr, "/v1/checkpoint").status, 404, "rendering issued no checkpoint");
}

#[test]
fn rosters_mark_exactly_the_payouts_no_notice_covers() {
    // Goal (guards the notice index): across every village's CSV, the rows marked 未列入 are exactly the
    // payouts whose household no roster notice of the program lists for that period (or for no period),
    // counted here straight from the projections; and every village lists every one of its payouts.
    let world = world();
    let projections = &world.projections;
    let (mut unlisted_want, mut rows_want, mut unlisted_shown, mut rows_shown) = (0, 0, 0, 0);
    for village in &world.generated.villages {
        for household in projections.households.values().filter(|h| &h.village == village) {
            for payout in &household.payouts {
                rows_want += 1;
                let covered = household.notices.get(payout.program.as_str()).into_iter().flatten().any(|seq| {
                    projections.roster_notices.get(seq).is_some_and(|n| n.period.is_none_or(|p| p == payout.period))
                });
                unlisted_want += usize::from(!covered);
            }
        }
        let response = get(world.server.addr, &format!("/notice/{village}.csv"));
        assert_eq!(response.status, 200);
        let text = String::from_utf8(response.body[3..].to_vec()).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        for record in reader.records() {
            let record = record.unwrap();
            rows_shown += 1;
            unlisted_shown += usize::from(record.iter().any(|cell| cell == "未列入"));
        }
    }
    assert_eq!(rows_shown, rows_want, "every payout of every village is on its page");
    assert_eq!(unlisted_shown, unlisted_want, "未列入 marks exactly the uncovered payouts");
    assert!(unlisted_want > 0, "the planted paid_before_notice case makes at least one");
}

#[test]
fn pages_show_each_payouts_card_at_its_place_and_exactly_their_regions_projects() {
    // Goal (guards the page's shortcuts, `NoticeIndex::paid_card_masked` and `projects_by_place`): on the
    // page of every office, each roster row shows the card its payout credited — the card bound to the
    // household at that place in ledger order, or the card the payout names if another — as a walk over
    // the chain gives it; and the projects shown are exactly those registered by or located at an office
    // of the page's region.
    use sunledger::notice::{office_notice, CheckpointView, NoticeQuery};
    use sunledger::payload::{parse_payload, Body};
    use sunledger::projection::is_within;
    let world = world();
    let (state, projections) = (&world.state, &world.projections);
    let lines: Vec<String> = world.generated.lines.iter().cloned().chain(after_checkpoint(&world.generated)).collect();
    assert_eq!(lines.len() as u64, state.size, "line i is the event of seq i");
    // The walk: each household's bound card, each digest's masked forms, each payout's card digest.
    let mut bound = BTreeMap::new();
    let mut masks: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut paid_digest: BTreeMap<u64, String> = BTreeMap::new();
    let mut placed: Vec<(String, String, Option<String>)> = Vec::new();
    let (mut strays, mut before_a_change) = (0, 0);
    let mut changed_at: BTreeMap<String, u64> = BTreeMap::new();
    for (seq, line) in lines.iter().enumerate() {
        let envelope = Envelope::parse(line.as_bytes()).unwrap();
        let payload = parse_payload(&envelope.payload).unwrap();
        let mut bind = |household: &str, card: &sunledger::payload::Card| {
            masks.entry(card.card_digest.as_str().to_string()).or_default().insert(card.card_masked.0.clone());
            bound.insert(household.to_string(), card.card_digest.as_str().to_string());
        };
        match &payload.body {
            Body::HouseholdRegister(b) => bind(b.household_id.as_str(), &b.card),
            Body::HouseholdUpdate(b) => {
                if let Some(card) = &b.card {
                    bind(b.household_id.as_str(), card);
                    changed_at.insert(b.household_id.as_str().to_string(), seq as u64);
                }
            }
            Body::Payout(b) => {
                let digest = b.card_digest.as_str();
                strays += usize::from(bound.get(b.household_id.as_str()).map(String::as_str) != Some(digest));
                paid_digest.insert(seq as u64, digest.to_string());
            }
            Body::ProjectRegister(b) => placed.push((
                b.project_id.as_str().to_string(),
                payload.office.as_str().to_string(),
                b.location.as_ref().map(|l| l.0.clone()),
            )),
            _ => {}
        }
    }
    // Each card has one masked form in this chain, so the card a payout credited has one way to be
    // shown: its masked form, wherever in the chain it was registered (a payout may name a card
    // registered only later), or 未登记卡 if none registers it.
    assert!(masks.values().all(|forms| forms.len() == 1), "one masked form per card digest");
    let paid_card = |seq: u64| match masks.get(&paid_digest[&seq]) {
        Some(forms) => forms.first().unwrap().clone(),
        None => "（未登记卡）".to_string(),
    };
    let (mut rows, mut projects_seen) = (0, 0);
    for office in state.offices.keys() {
        let checkpoint = CheckpointView::new(state, None);
        let page = office_notice(state, projections, office, &NoticeQuery::default(), checkpoint).unwrap();
        for row in page.rosters.iter().flat_map(|r| &r.rows) {
            rows += 1;
            assert_eq!(row.card_masked, paid_card(row.seq), "{office}: payout {}", row.seq);
            before_a_change += usize::from(changed_at.get(&row.household_id).is_some_and(|&at| at > row.seq));
        }
        let shown: Vec<&str> = page.projects.iter().map(|p| p.project_id.as_str()).collect();
        let region = |place: &str| state.offices.contains_key(place) && is_within(state, place, office);
        let want: Vec<&str> = placed
            .iter()
            .filter(|(_, by, at)| region(by) || at.as_deref().is_some_and(region))
            .map(|(id, _, _)| id.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(shown, want, "{office}: projects");
        projects_seen += shown.len();
    }
    // Not vacuous: rows on pages, payouts to a card other than the bound one, payouts made before the
    // household's card changed (the page must not show the new card for them), and projects shown.
    assert!(
        rows > 0 && strays > 0 && before_a_change > 0 && projects_seen > 0,
        "rows {rows}, strays {strays}, before a change {before_a_change}, projects {projects_seen}"
    );
}
