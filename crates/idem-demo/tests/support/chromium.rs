//! Headless Chromium over the DevTools protocol (chromiumoxide), for the
//! checkout page's tests. Debian's `chromium` package at /usr/bin/chromium
//! (or `IDEM_CHROMIUM`); a missing browser fails the test, unless
//! `IDEM_BROWSER=off` asks to skip it, loudly (and `IDEM_REQUIRE` does not
//! name `browser`).

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::{Page, ScreenshotParams};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

/// Where Debian's `chromium` package puts the browser.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// A headless Chromium with a profile of its own, closed by [`close`](Self::close).
pub struct Chromium {
    browser: Browser,
    handler: JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts Chromium, or returns `None` after printing a SKIPPED line when
    /// `IDEM_BROWSER=off`. Panics, saying what to install, when there is no
    /// browser.
    pub async fn launch(test: &str) -> Option<Self> {
        if std::env::var("IDEM_BROWSER").is_ok_and(|v| v == "off") {
            let required = std::env::var("IDEM_REQUIRE").unwrap_or_default();
            assert!(
                !required.split(',').any(|b| b.trim() == "browser"),
                "{test}: IDEM_REQUIRE names `browser`, but IDEM_BROWSER=off"
            );
            // Past the test harness's capture, so it shows on a passing run.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED {test}: IDEM_BROWSER=off (this browser test did NOT run) ***"
            );
            return None;
        }
        let executable = std::env::var_os("IDEM_CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM));
        assert!(
            executable.is_file(),
            "{test}: no Chromium at {} — install Debian's `chromium` package \
             (`apt-get install chromium`), or set IDEM_CHROMIUM to a Chromium or Chrome \
             binary; IDEM_BROWSER=off skips the browser tests",
            executable.display()
        );
        let profile = tempfile::tempdir().unwrap();
        let (width, height) = (1200, 900);
        let config = BrowserConfig::builder()
            .chrome_executable(&executable)
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(width, height)
            .viewport(Viewport {
                width,
                height,
                device_scale_factor: Some(1.0),
                ..Viewport::default()
            })
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(60))
            .args([
                // Nothing but the demo on loopback: no name resolves but
                // 127.0.0.1, no proxy, no background traffic.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--no-proxy-server",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-domain-reliability",
                "--disable-gpu",
            ])
            .build()
            .unwrap_or_else(|e| panic!("{test}: Chromium config: {e}"));
        let (browser, mut handler) = Browser::launch(config).await.unwrap_or_else(|e| {
            panic!(
                "{test}: Chromium at {} did not start: {e}",
                executable.display()
            )
        });
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Some(Self {
            browser,
            handler,
            _profile: profile,
        })
    }

    /// Opens `url` in a new tab.
    pub async fn open(&self, url: &str) -> Page {
        self.browser.new_page(url).await.unwrap()
    }

    /// Closes the browser and waits for its process.
    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.handler).await;
        self.handler.abort();
    }
}

/// Evaluates `expression` in the page and reads its value.
pub async fn eval<T: DeserializeOwned>(page: &Page, expression: &str) -> T {
    page.evaluate(expression)
        .await
        .unwrap_or_else(|e| panic!("evaluating {expression}: {e}"))
        .into_value()
        .unwrap_or_else(|e| panic!("the value of {expression}: {e}"))
}

/// Waits until `expression` is true in the page, for at most `bound`.
pub async fn wait_until(page: &Page, expression: &str, bound: Duration) {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if eval::<bool>(page, expression).await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not true within {bound:?}: {expression}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clicks the element that `selector` finds.
pub async fn click(page: &Page, selector: &str) {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("no {selector}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
}

/// Saves a PNG of the whole page at `path`, creating its directory.
pub async fn screenshot(page: &Page, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    page.save_screenshot(ScreenshotParams::builder().full_page(true).build(), path)
        .await
        .unwrap_or_else(|e| panic!("screenshot {}: {e}", path.display()));
}
