//! The HTML report in a real browser: Debian's headless `chromium`, driven over WebDriver by
//! `chromedriver` (both installed by `scripts/setup`), through a small W3C WebDriver client over
//! HTTP/1.1 on a local socket.
//!
//! The report is made from a real run cut down: `tests/data/small-run-*.json` are the tests of
//! the five calls open, stat, link, unlink and close (per call pair the conflicted test with
//! the fewest shared bytes and two others) taken from a full POSIX run on Linux 6.12, with
//! their entries of the suite's `tests.json`. That run was written in conflicts version 3
//! (kernel-mode tracing only); the fixture is the same data in version 4, every access and code
//! site marked `"mode": "kernel"`, which is what version 3 traced.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use commuter_scan::ConflictsFile;
use serde_json::{Value, json};

const W3C_ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one browser session; both end when dropped.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    fn start() -> Browser {
        let chromium = which("chromium");
        let chromedriver = which("chromedriver");
        // A free port: bind to port 0, read it, let it go for chromedriver.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free local port")
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while b.request("GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1000"]
            },
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let v = b
            .request("POST", "/session", Some(&caps))
            .expect("new session");
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {v}"))
            .to_string();
        b
    }

    /// One WebDriver command; its `value`, or the error the driver returned.
    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        );
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        // chromedriver keeps the socket open after its answer: read by Content-Length.
        let mut resp = Vec::new();
        let mut buf = [0u8; 65536];
        let (head_len, body_len) = loop {
            let n = s.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed before the answer".into());
            }
            resp.extend_from_slice(&buf[..n]);
            if let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&resp[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or("no Content-Length")?;
                break (end + 4, len);
            }
        };
        while resp.len() < head_len + body_len {
            let n = s.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed inside the answer".into());
            }
            resp.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&resp[..head_len]);
        let text = String::from_utf8_lossy(&resp[head_len..head_len + body_len]);
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("{method} {path}: {}", v["value"]));
        }
        Ok(v["value"].clone())
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.request(method, &path, body.as_ref())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
        self.settle();
    }

    fn script(&self, js: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
    }

    fn find(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[W3C_ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        let v = self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[W3C_ELEMENT].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
        self.settle();
    }

    /// Waits until the viewer shows the current hash: a click or key changes the hash at once,
    /// the view follows on the `hashchange` event, which may not have run yet.
    fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.script("return document.body.getAttribute('data-shown') === location.hash;")
            != Value::Bool(true)
        {
            assert!(
                Instant::now() < deadline,
                "the view never followed the hash"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.cmd("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn keys(&self, text: &str) {
        let body = self.find("body");
        self.cmd(
            "POST",
            &format!("/element/{body}/value"),
            Some(json!({ "text": text })),
        );
        self.settle();
    }

    fn hash(&self) -> String {
        self.script("return decodeURIComponent(location.hash);")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The browser console's entries of level SEVERE (uncaught errors, console.error).
    fn console_errors(&self) -> Vec<String> {
        let v = self.cmd("POST", "/se/log", Some(json!({"type": "browser"})));
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn which(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|f| f.is_file())
        })
        .unwrap_or_else(|| panic!("`{name}` is not installed: ./scripts/setup installs it"))
}

fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write_report(name: &str, html: &str) -> String {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, html).expect("writing the report");
    format!("file://{}", path.display())
}

fn wait_ready(b: &Browser) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.script("return document.body.getAttribute('data-ready');") == Value::Null {
        assert!(Instant::now() < deadline, "the report never rendered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn report_in_a_real_browser() {
    let conflicts = ConflictsFile::from_json(&data("small-run-conflicts.json")).expect("fixture");
    let suite =
        commuter_tests_format::parse_suite("tests", data("small-run-tests.json").as_bytes())
            .expect("fixture suite");
    let pairs: Vec<commuter_report::PairTests> = suite
        .call_sets
        .iter()
        .map(|cs| commuter_report::PairTests {
            calls: cs.calls.clone(),
            tests: cs.tests.len(),
        })
        .collect();
    let html = commuter_report::report_html(&conflicts, &pairs, Some(&suite));
    let url = write_report("browser-report.html", &html);
    let b = Browser::start();
    b.goto(&url);
    wait_ready(&b);
    assert_eq!(b.find_all(".cell").len(), 15, "5 calls: 15 cells");

    // Click the open/stat cell: its tests are listed.
    let open_stat = b
        .script(
            "return [...document.querySelectorAll('.cell')].find(c => \
             c.querySelector('title').textContent.startsWith('open/stat:')).getAttribute('data-pair');",
        )
        .as_str()
        .expect("an open/stat cell")
        .to_string();
    b.click(&format!(".cell[data-pair=\"{open_stat}\"]"));
    assert_eq!(b.hash(), "#pair=open/stat");
    let all = b.find_all("#tests tr.row").len();
    assert!(
        all >= 2,
        "open/stat has a conflicted and a conflict-free test"
    );

    // Filter by outcome: only conflicted tests remain.
    b.click("select[data-filter=outcome] option[value=conflicted]");
    assert_eq!(b.hash(), "#pair=open/stat&outcome=conflicted");
    let rows = b.find_all("#tests tr.row");
    assert!(
        !rows.is_empty() && rows.len() < all,
        "{} of {all}",
        rows.len()
    );
    assert!(!b.text("#tests").contains("conflict-free"));

    // Filter by shared object too, then open the test.
    b.click("select[data-filter=object] option:nth-child(2)");
    assert!(b.hash().contains("object="), "{}", b.hash());
    b.click("#tests tr.row a");
    let hash = b.hash();
    assert!(hash.starts_with("#test=open_stat_"), "{hash}");
    let view = b.text("#view");
    for part in [
        "Calls",
        "Expected results",
        "Initial state",
        "Actual results",
        "Shared locations",
    ] {
        assert!(view.contains(part), "test view lacks {part}: {view}");
    }

    // Follow the test's code sites until one that other call pairs share, then go to another
    // pair through it.
    let sites: Vec<String> = b
        .script(
            "return [...new Set([...document.querySelectorAll('#view a[href^=\"#site=\"]')]\
             .map(a => a.getAttribute('href')))];",
        )
        .as_array()
        .expect("site links")
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    assert!(!sites.is_empty(), "a conflicted test names code sites");
    let mut followed = false;
    for site in &sites {
        b.click(&format!("#view a[href=\"{site}\"]"));
        let pairs = b.find_all("table.site-pairs tr.row a");
        if pairs.len() > 1 {
            let other = b
                .script(
                    "return [...document.querySelectorAll('table.site-pairs tr.row a')]\
                     .map(a => a.getAttribute('href')).find(h => !h.startsWith('#pair=open/stat&'));",
                )
                .as_str()
                .expect("another pair")
                .to_string();
            b.click(&format!("table.site-pairs a[href=\"{other}\"]"));
            let hash = b.hash();
            assert!(
                hash.starts_with("#pair=") && hash.contains("&site="),
                "{hash}"
            );
            assert!(
                !b.find_all("#tests tr.row").is_empty(),
                "the site's tests there"
            );
            followed = true;
            break;
        }
        b.goto(&format!("{url}{hash}"));
        wait_ready(&b);
    }
    assert!(
        followed,
        "no code site of the test is shared with another pair"
    );

    // Keyboard: j selects the first test, Enter opens it, Escape goes back to its pair.
    b.keys("j");
    b.keys("\u{E007}");
    let opened = b.hash();
    assert!(opened.starts_with("#test="), "{opened}");
    b.keys("\u{E00C}");
    assert!(b.hash().starts_with("#pair="), "{}", b.hash());
    b.keys("s");
    assert_eq!(b.hash(), "#sites");
    assert!(b.find_all("#sites tr.row").len() > 10, "code sites ranked");

    // A shared link opens the test directly.
    let id = opened.trim_start_matches("#test=");
    b.goto(&format!("{url}#test={id}"));
    wait_ready(&b);
    assert!(b.text("#view h2").contains(id));

    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}
