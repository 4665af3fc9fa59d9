//! The catalog page in a real browser, as a storefront runs: headless
//! Chromium (Debian's `chromium` and `chromium-driver`, which the test
//! command installs), driven over chromedriver's W3C WebDriver protocol.
//! The page is served by one server and calls the API of another (another
//! port, so another origin): every call crosses origins and needs CORS. The
//! test walks list → product → another style → a related product, checks
//! what the page shows against the API's JSON, requires no console errors
//! (failed loads of the catalog's unreachable image host excepted: the page
//! shows its placeholder instead), and saves screenshots in out/browser/.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{app, catalog_lock, get, project_root, spawn_server, test_config};

/// How long the page may take to show what it was asked for.
const RENDER_TIMEOUT: Duration = Duration::from_secs(20);

fn program(env: &str, default: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| default.to_string())
}

/// A chromedriver process and one browser session.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

impl Browser {
    fn start() -> Browser {
        let chromedriver = program("ATELIER_CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = program("ATELIER_CHROMIUM", "/usr/bin/chromium");
        assert!(
            std::path::Path::new(&chromedriver).exists() && std::path::Path::new(&chromium).exists(),
            "{chromedriver} or {chromium} is missing: run scripts/test.sh (it installs Debian's chromium and \
             chromium-driver) or `sudo apt-get install -y chromium chromium-driver`"
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}"));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut browser = Browser { driver, addr, session: String::new() };
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = std::env::temp_dir().join(format!("atelier-chromium-{}", std::process::id()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": [
                // Headless as root needs --no-sandbox; the rest keep Chromium
                // from calling out of this closed machine.
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1400,1000", format!("--user-data-dir={}", profile.display()),
            ]},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_string();
        browser
    }

    /// One WebDriver call; returns its "value".
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut length = None;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let mut raw = vec![0; length.unwrap_or(0)];
        reader.read_exact(&mut raw).unwrap();
        let answer: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        answer["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn open(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({"url": url})));
    }

    /// Runs `script` (a function body) in the page and returns its result.
    fn run(&self, script: &str) -> Value {
        self.session_call("POST", "/execute/sync", Some(json!({"script": script, "args": []})))
    }

    /// Waits until `condition` (a JavaScript expression) is true.
    fn wait_for(&self, what: &str, condition: &str) {
        let started = Instant::now();
        loop {
            if self.run(&format!("return Boolean({condition});")) == json!(true) {
                return;
            }
            if started.elapsed() > RENDER_TIMEOUT {
                let view = self.run("return document.getElementById('view').innerText;");
                panic!("the page never showed {what}; it shows: {view}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The product view is ready: the product and its related cards.
    fn wait_until_ready(&self, what: &str) {
        self.wait_for(what, "document.querySelector('[data-test=view]').dataset.state === 'ready'");
    }

    fn text(&self, selector: &str) -> String {
        let value =
            self.run(&format!("const e = document.querySelector({}); return e ? e.textContent : null;", js(selector)));
        value.as_str().unwrap_or_else(|| panic!("nothing matches {selector}")).to_string()
    }

    fn texts(&self, selector: &str) -> Vec<String> {
        let value = self
            .run(&format!("return Array.from(document.querySelectorAll({})).map(e => e.textContent);", js(selector)));
        value.as_array().unwrap().iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()
    }

    fn click(&self, selector: &str) {
        let clicked = self.run(&format!(
            "const e = document.querySelector({}); if (!e) return false; e.click(); return true;",
            js(selector)
        ));
        assert_eq!(clicked, json!(true), "nothing to click at {selector}");
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.session_call("GET", "/screenshot", None);
        let png = base64_decode(encoded.as_str().unwrap_or_default());
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let dir = project_root().join("out/browser");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The browser console's errors, less failed loads of the fixture's
    /// image host (unreachable here, as in most test set-ups; the page draws
    /// its placeholder instead).
    fn console_errors(&self) -> Vec<String> {
        let entries = self.session_call("POST", "/se/log", Some(json!({"type": "browser"})));
        entries
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .filter(|m| !m.contains("images.example"))
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.call("DELETE", &format!("/session/{}", self.session), None)
            }));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A JavaScript string literal.
fn js(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// Standard base64 (the screenshot's encoding).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text.bytes().filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/').collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, c)| n | (u32::from(value(*c)) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn money(price: &Value) -> String {
    format!("${}", price.as_str().unwrap())
}

#[test]
fn the_catalog_page_shows_the_api_from_another_origin() {
    // The page's list is compared with the API's: no other test may add or
    // remove products meanwhile.
    let _catalog = catalog_lock();
    let api = app().addr;
    let page_server = spawn_server(test_config());
    assert_ne!(api.port(), page_server.port());
    let browser = Browser::start();
    browser.open(&format!("http://{page_server}/browse?api=http://{api}"));

    // The list: page 1 of 20, as GET /products shows it.
    browser.wait_for("the product list", "document.querySelectorAll('[data-test=product-row]').length > 0");
    browser.wait_until_ready("the product list");
    let listed = get("/products?page=1&count=20").json();
    let names: Vec<String> =
        listed.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(browser.texts("[data-test=row-name]"), names, "the list shows the API's first page");
    browser.screenshot("1-list.png");

    // Product 1: overview, features, the default style with its photos and sizes.
    browser.click("[data-test=product-row][data-id='1']");
    browser.wait_until_ready("product 1");
    let detail = get("/products/1").json();
    let styles = get("/products/1/styles").json();
    assert_eq!(browser.text("[data-test=product-name]"), detail["name"].as_str().unwrap());
    assert_eq!(browser.text("[data-test=product-category]"), detail["category"].as_str().unwrap());
    assert_eq!(browser.text("[data-test=product-slogan]"), detail["slogan"].as_str().unwrap());
    assert_eq!(browser.text("[data-test=product-description]"), detail["description"].as_str().unwrap());
    let features: Vec<String> = detail["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}: {}", f["feature"].as_str().unwrap(), f["value"].as_str().unwrap_or("—")))
        .collect();
    assert_eq!(browser.texts("[data-test=feature]"), features, "features, a null value shown as —");
    let results = styles["results"].as_array().unwrap();
    assert_eq!(browser.texts("[data-test=style]").len(), results.len(), "one button per style");
    let default = results.iter().find(|s| s["default?"] == true).unwrap();
    assert_eq!(browser.text("[data-test=style-name]"), default["name"].as_str().unwrap(), "the default style first");
    assert_eq!(browser.text("[data-test=product-price]"), money(&default["original_price"]));
    let sizes: Vec<String> = default["skus"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| format!("{} — {} in stock", s["size"].as_str().unwrap(), s["quantity"]))
        .collect();
    assert_eq!(browser.texts("[data-test=size-option]"), sizes, "sizes and stock from skus");
    assert_eq!(browser.texts("[data-test=thumbnail]").len(), default["photos"].as_array().unwrap().len());
    browser.wait_for(
        "a placeholder for the unreachable photo",
        "document.querySelector('[data-test=main-photo]').dataset.placeholder === 'true'",
    );
    browser.screenshot("2-product.png");

    // Another style: on sale, no photos (the all-null photo), no skus.
    let other = results.iter().find(|s| s["default?"] == false).unwrap();
    browser.click(&format!("[data-test=style][data-style-id='{}']", other["style_id"]));
    assert_eq!(browser.text("[data-test=style-name]"), other["name"].as_str().unwrap());
    assert_eq!(browser.text("[data-test=product-sale-price]"), money(&other["sale_price"]));
    assert_eq!(browser.text("[data-test=product-price]"), money(&other["original_price"]), "struck through");
    assert_eq!(
        browser.run("return document.querySelector('[data-test=main-photo]').dataset.placeholder;"),
        json!("true"),
        "a style whose photo is null shows the placeholder"
    );
    assert!(browser.texts("[data-test=size-option]").is_empty(), "no skus: nothing to choose");
    browser.screenshot("3-other-style.png");

    // The related products, as cards, then one of them.
    let related = get("/products/1/related").json();
    let ids: Vec<String> = browser
        .run("return Array.from(document.querySelectorAll('[data-test=related-card]')).map(c => c.dataset.id);")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = related.as_array().unwrap().iter().map(|id| id.to_string()).collect();
    assert_eq!(ids, want, "related cards in the API's order");
    let related_names: Vec<String> = related
        .as_array()
        .unwrap()
        .iter()
        .map(|id| get(&format!("/products/{id}")).json()["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(browser.texts("[data-test=related-name]"), related_names);
    let last = want.last().unwrap().clone();
    browser.click(&format!("[data-test=related-card][data-id='{last}']"));
    browser.wait_for(
        "the related product",
        &format!("location.hash === '#/products/{last}' && document.querySelector('[data-test=view]').dataset.state === 'ready'"),
    );
    assert_eq!(
        browser.text("[data-test=product-name]"),
        get(&format!("/products/{last}")).json()["name"].as_str().unwrap()
    );
    browser.screenshot("4-related-product.png");

    // Going back to the list revalidates with If-None-Match: the API answers 304.
    browser.run("location.hash = '#/list/1'; return true;");
    browser.wait_for("a 304 in the request log", "document.getElementById('log').textContent.includes('→ 304')");

    let errors = browser.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

/// A storefront that adds `Cache-Control`, `Pragma` and `X-Requested-With`
/// to every call (as several React ones do): each call needs a preflight
/// that allows them, from another origin. The page renders, shows no
/// write button until a token is pasted, and then writes with it.
#[test]
fn a_storefront_with_headers_of_its_own_renders_and_writes_only_with_a_token() {
    let _catalog = catalog_lock();
    let product = crate::helpers::create_product("Browser Storefront Headers");
    let style = crate::helpers::send(
        "POST",
        &format!("/products/{product}/styles"),
        &json!({"name": "Only", "original_price": "9", "default?": true, "skus": [{"size": "M", "quantity": 3}]}),
    );
    assert_eq!(style.status, 201, "{}", style.text());
    let sku = style.json()["skus"].as_object().unwrap().keys().next().unwrap().clone();
    let api = app().addr;
    // Serves only the page: small pools.
    let mut config = test_config();
    config.pools.write_pool_size = 1;
    config.pools.read_pool_size = 1;
    config.pools.read_pipeline_connections = 1;
    config.cache.cache_bytes = 0;
    let page_server = spawn_server(config);
    let browser = Browser::start();
    browser.open(&format!("http://{page_server}/browse?api=http://{api}&storefront_headers=1#/products/{product}"));
    browser.wait_until_ready("the product, through preflights that allow the storefront's headers");
    assert_eq!(browser.text("[data-test=product-name]"), "Browser Storefront Headers");
    assert_eq!(browser.run("return document.querySelector('[data-test=sell]') === null;"), json!(true));
    assert!(browser.text("[data-test=no-writes]").contains("token"), "the page says why it cannot write");
    browser.screenshot("5-storefront-headers-no-token.png");

    browser.run(&format!(
        "const t = document.querySelector('[data-test=token]'); t.value = {}; \
         t.dispatchEvent(new Event('input')); return true;",
        js(crate::helpers::token())
    ));
    browser.wait_for("the write buttons", "document.querySelector('[data-test=restock]') !== null");
    browser.wait_until_ready("the product with its write buttons");
    assert!(browser.text("[data-test=writes]").contains("change the catalog's real stock"));
    browser.run(&format!("document.querySelector('[data-test=sizes]').value = {}; return true;", js(&sku)));
    browser.click("[data-test=restock]");
    let posted = format!("POST /skus/{sku}/movements → 201");
    browser.wait_for(
        "the restock's 201",
        &format!("document.getElementById('log').textContent.includes({})", js(&posted)),
    );
    let quantity: i64 = crate::helpers::query(
        &app().primary,
        &format!("select sum(delta)::bigint from stock_movement where sku_id = {sku}"),
    )[0]
    .get(0);
    assert_eq!(quantity, 4, "the restock reached the ledger");
    browser.screenshot("6-storefront-headers-wrote.png");
    let errors = browser.console_errors();
    assert!(errors.is_empty(), "console errors (a refused preflight shows here): {errors:#?}");
    let deleted = crate::helpers::request("DELETE", &format!("/products/{product}"), &[], None);
    assert_eq!(deleted.status, 204);
}
