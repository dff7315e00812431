//! A real browser for the console's tests: Debian's Chromium, headless, driven over WebDriver by
//! its chromedriver (`scripts/browser-tools` installs both; `scripts/test` exports
//! `LEADFLOW_CHROMEDRIVER`). Without a chromedriver these tests fail and say how to get one,
//! rather than pass without a browser.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

pub const DRIVER_VAR: &str = "LEADFLOW_CHROMEDRIVER";

/// A phone (iPhone X class) and a desktop.
pub const PHONE: (u32, u32) = (375, 812);
pub const DESKTOP: (u32, u32) = (1280, 900);

/// A chromedriver process and one browser session on it; both end when this is dropped, even by
/// a failing test's panic: chromedriver leads a process group of its own, which Chromium and its
/// helpers join, and the whole group is killed.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn driver_path() -> PathBuf {
    if let Ok(p) = std::env::var(DRIVER_VAR)
        && !p.is_empty()
    {
        return PathBuf::from(p);
    }
    let on_path = PathBuf::from("/usr/bin/chromedriver");
    if on_path.exists() {
        return on_path;
    }
    panic!(
        "{DRIVER_VAR} is not set and there is no /usr/bin/chromedriver: these tests drive a real \
         browser. Run scripts/browser-tools (it installs Debian's chromium and chromium-driver), \
         or ./scripts/test, which does it for you"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(9515)
}

impl Browser {
    /// Starts chromedriver and a headless Chromium whose window is `size` CSS pixels.
    pub async fn start(size: (u32, u32)) -> Browser {
        let port = free_port();
        let driver = Command::new(driver_path())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver does not start: {e}"));
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        // As root in CI: no sandbox. The network flags keep Chromium from calling home, which
        // this machine's closed network refuses, many times over.
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={},{}", size.0, size.1),
        ];
        let mut options = json!({ "binary": "/usr/bin/chromium", "args": args });
        if size.0 < 500 {
            // Chromium's windows are at least 500 px wide; a phone's viewport is emulated, with
            // its viewport meta tag honoured as a phone's browser does.
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": size.0, "height": size.1, "pixelRatio": 2.0, "mobile": true, "touch": true }
            });
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let mut builder = ClientBuilder::new(HttpConnector::new());
            match builder.capabilities(caps.clone()).connect(&url).await {
                Ok(c) => break c,
                Err(e) => {
                    assert!(Instant::now() < deadline, "no WebDriver session on {url} in 30 s: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        Browser { client, driver, _profile: profile }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.eval("return document.body ? document.body.innerText : '';").await.as_str().unwrap_or_default().to_string()
    }

    /// Waits for the page (after a click, the next one) to show `needle`; answers its text.
    pub async fn wait_for_text(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.text().await;
            if text.contains(needle) {
                return text;
            }
            assert!(Instant::now() < deadline, "the page never showed {needle:?}; it shows:\n{text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    /// How many CSS pixels the page is wider than the viewport (0: nothing overflows), and the
    /// elements that stick out past its right edge.
    pub async fn overflow(&self) -> (i64, Vec<String>) {
        let v = self
            .eval(
                "const w = document.documentElement.clientWidth;
                 const wide = [...document.querySelectorAll('body *')]
                   .filter(e => e.getBoundingClientRect().right > w + 0.5)
                   .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' + Math.round(e.getBoundingClientRect().right));
                 return [document.documentElement.scrollWidth - w, wide.slice(0, 5)];",
            )
            .await;
        let over = v[0].as_i64().unwrap_or(i64::MAX);
        let wide = v[1].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect());
        (over, wide.unwrap_or_default())
    }

    /// Saves a PNG of the viewport as `target/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("screenshot: {e}"));
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// Clicks the button whose text is `label`.
    pub async fn press(&self, label: &str) {
        let xpath = format!("//button[normalize-space(.)=\"{label}\"]");
        let button = self
            .client
            .find(fantoccini::Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no button {label:?}: {e}"));
        button.click().await.unwrap_or_else(|e| panic!("cannot press {label:?}: {e}"));
    }

    /// Asserts that the page lays out at the window's width (it has a viewport tag; without one
    /// a phone shows a 980 px page shrunk) and that nothing sticks out sideways.
    pub async fn assert_fits(&self, what: &str, width: u32) {
        let inner = self.eval("return window.innerWidth;").await;
        assert_eq!(inner, json!(width), "{what} is laid out {inner} px wide on a {width} px screen");
        let (over, wide) = self.overflow().await;
        assert_eq!(over, 0, "{what} is wider than the {width} px viewport: {wide:?}");
    }

    /// The address of the link whose text is `label` on the open page, with its origin replaced
    /// by `base` (the test configuration's public URL is a placeholder host).
    pub async fn link(&self, label: &str, base: &str) -> String {
        let script = format!(
            "const a = [...document.querySelectorAll('a')].find(a => a.textContent.trim() === {label:?}); return a ? a.href : null;"
        );
        let url = self.eval(&script).await;
        let url = url.as_str().unwrap_or_else(|| panic!("no {label:?} link on the page"));
        let path = url.split_once("/console/").map(|(_, rest)| rest).unwrap_or_else(|| panic!("{url}"));
        format!("{base}/console/{path}")
    }

    /// The address the browser is at.
    pub async fn url(&self) -> String {
        self.client.current_url().await.map(|u| u.to_string()).unwrap_or_else(|e| panic!("no current URL: {e}"))
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        // Drop ends the processes.
    }

    fn end_processes(&mut self) {
        let group = rustix::process::Pid::from_child(&self.driver);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.end_processes();
    }
}

/// The `.eml` in `outbox` whose file name starts with `prefix`, once it is there.
pub async fn wait_for_eml(outbox: &Path, prefix: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = std::fs::read_dir(outbox).ok().and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .find(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .and_then(|e| std::fs::read(e.path()).ok())
        });
        if let Some(bytes) = found {
            return bytes;
        }
        assert!(Instant::now() < deadline, "no {prefix}… email in the outbox in 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
