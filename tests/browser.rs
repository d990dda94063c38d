//! The demo's pages in a real browser: headless Chromium (Debian's
//! `chromium`, installed by .ci/run) takes screenshots and dumps the rendered
//! DOM of the village notice page and the auditor page.
//!
//! A missing browser or missing Chinese fonts fail the test with the
//! command that installs them: a skipped browser test would let a broken
//! page through.

mod demo_process;

use demo_process::{fetch, Demo};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
/// One browser run (start, load, render, exit).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);
/// A screenshot of a real page is far larger than a blank one (a blank 1280×2000 PNG is a few KB).
const SCREENSHOT_BYTES_MIN: u64 = 30_000;
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

fn require_browser() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the browser test needs Debian's chromium package \
         (apt-get update && apt-get install -y chromium; .ci/run does this)"
    );
    let fonts = Command::new("fc-list").arg(":lang=zh").output();
    let has_cjk = fonts.is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    assert!(
        has_cjk,
        "no Chinese font is installed, so the zh-CN pages would render as boxes \
         (apt-get install -y fonts-noto-cjk; .ci/run does this)"
    );
}

/// Runs headless Chromium with a fresh profile; kills it past the timeout.
fn chromium(profile: &Path, arguments: &[&str]) -> Output {
    let mut command = Command::new(CHROMIUM);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("chromium starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut { stdout }, &mut bytes).map(|_| bytes)
    });
    let stderr = child.stderr.take().unwrap();
    let error_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut { stderr }, &mut bytes).map(|_| bytes)
    });
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {arguments:?} did not finish within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = reader.join().unwrap().unwrap_or_default();
    let stderr = error_reader.join().unwrap().unwrap_or_default();
    Output { status, stdout, stderr }
}

struct Browser {
    dir: tempfile::TempDir,
    runs: usize,
}

impl Browser {
    fn new() -> Browser {
        Browser { dir: tempfile::tempdir().unwrap(), runs: 0 }
    }

    fn profile(&mut self) -> PathBuf {
        self.runs += 1;
        self.dir.path().join(format!("profile-{}", self.runs))
    }

    /// A screenshot of `url` at `width`×`height`; returns the PNG's path.
    fn screenshot(&mut self, url: &str, name: &str, width: u32, height: u32) -> PathBuf {
        let file = self.dir.path().join(name);
        let profile = self.profile();
        let output = chromium(
            &profile,
            &[&format!("--screenshot={}", file.display()), &format!("--window-size={width},{height}"), url],
        );
        assert!(output.status.success(), "screenshot of {url}: {}", String::from_utf8_lossy(&output.stderr));
        check_png(&file, width, height);
        file
    }

    /// The DOM of `url` after rendering.
    fn dom(&mut self, url: &str) -> String {
        let profile = self.profile();
        let output = chromium(&profile, &["--dump-dom", url]);
        assert!(output.status.success(), "dump-dom of {url}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("the DOM is UTF-8")
    }
}

/// A PNG of the window's size, large enough to hold a rendered page.
fn check_png(file: &Path, width: u32, height: u32) {
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("no screenshot {}: {e}", file.display()));
    assert!(bytes.len() > 24 && bytes[..8] == PNG_SIGNATURE, "{} is not a PNG", file.display());
    assert_eq!(&bytes[12..16], b"IHDR");
    let png_width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let png_height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((png_width, png_height), (width, height), "{}", file.display());
    assert!(
        bytes.len() as u64 >= SCREENSHOT_BYTES_MIN,
        "{} is only {} bytes: a blank page?",
        file.display(),
        bytes.len()
    );
}

/// Text content of an HTML document: tags dropped, entities of the page decoded.
fn text_of(html: &str) -> String {
    let body = html.split("</style>").last().unwrap_or(html);
    let mut text = String::with_capacity(body.len());
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
}

fn longest_run(text: &str, accept: impl Fn(char) -> bool) -> usize {
    let (mut longest, mut current) = (0, 0);
    for c in text.chars() {
        current = if accept(c) { current + 1 } else { 0 };
        longest = longest.max(current);
    }
    longest
}

fn assert_no_raw_digest(what: &str, text: &str) {
    let hex = longest_run(text, |c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    assert!(hex < 64, "{what} shows a run of {hex} hex characters (a digest?)");
    let digits = longest_run(text, |c| c.is_ascii_digit());
    assert!(digits < 16, "{what} shows a run of {digits} digits (an ID or card number?)");
}

#[test]
fn pages_render_in_chromium() {
    // Goal: Chromium renders the demo's village notice page (desktop and phone widths) and auditor
    // page into non-trivial screenshots; the rendered DOM holds the roster — every masked head name
    // and amount of the village's CSV — the checkpoint and the charts, and no raw digest or number.
    require_browser();
    let demo = Demo::start();
    let mut browser = Browser::new();
    let village = demo.url("village notice").to_string();
    let audit = demo.url("auditor page").to_string();

    browser.screenshot(&village, "village.png", 1280, 2000);
    browser.screenshot(&village, "village-phone.png", 390, 1600);
    browser.screenshot(&audit, "audit.png", 1280, 2000);

    let dom = browser.dom(&village);
    assert!(dom.contains("<html lang=\"zh-CN\""), "the page rendered");
    let text = text_of(&dom);
    assert!(text.contains("发放公示") && text.contains("合计"), "roster titles and totals");
    assert!(text.contains("公示期") && text.contains("监督举报"), "notice period and complaint channel");
    assert!(dom.contains("<pre class=\"checkpoint\">"), "the checkpoint");
    assert_no_raw_digest("the rendered village page", &text);
    let csv = fetch(demo.url("village CSV")).body;
    let csv = String::from_utf8(csv[3..].to_vec()).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap();
        assert!(text.contains(&record[1]), "the rendered roster shows {}", &record[1]);
        assert!(text.contains(&record[6]), "the rendered roster shows {} yuan", &record[6]);
        assert!(text.contains(&record[9]), "the rendered roster shows card {}", &record[9]);
        rows += 1;
    }
    assert!(rows > 50, "the village has a year of rosters ({rows} rows)");

    let dom = browser.dom(&audit);
    let text = text_of(&dom);
    assert!(text.contains("审计疑点与资金走势"), "the auditor page rendered");
    assert!(dom.contains("<svg") && dom.contains("<rect"), "the fund-flow charts");
    assert!(dom.contains("href=\"/v1/records/"), "evidence links");
    for rule in ["idle_funds", "shared_card", "paid_before_notice"] {
        assert!(text.contains(rule), "the planted {rule} case is listed");
    }
    assert_no_raw_digest("the rendered auditor page", &text);
}
