//! A real browser on the page: Debian's Chromium, headless, driven through its WebDriver
//! (chromedriver) by fantoccini. One chromedriver per test binary, one browser session per
//! test. Steps return `Result` so that a failure can photograph the screen before the test
//! fails (`$CARGO_TARGET_TMPDIR/page-screenshots/`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use localdb::Watched;
use serde_json::{json, Value};

/// How long a step waits for the page (loads, API calls, the pool) before it fails.
const WAIT: Duration = Duration::from_secs(20);

pub type Step<T = ()> = Result<T, String>;

/// Fails the step with `message` unless `condition` holds.
pub fn ensure(condition: bool, message: impl Into<String>) -> Step {
    if condition {
        Ok(())
    } else {
        Err(message.into())
    }
}

struct Driver {
    url: String,
    _process: std::sync::Mutex<Watched>,
}

static DRIVER: OnceLock<Driver> = OnceLock::new();

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

fn driver() -> &'static Driver {
    DRIVER.get_or_init(|| {
        let chromedriver = which("chromedriver").expect(
            "chromedriver is not installed: `make test` installs Debian's chromium and chromium-driver",
        );
        let port = localdb::dynamodb_local::free_port().unwrap();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let watched = Watched::new(child).expect("chromedriver is watched");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "chromedriver did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver {
            url,
            _process: std::sync::Mutex::new(watched),
        }
    })
}

pub fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("page-screenshots")
}

/// The axe-core script `make test` installs (AXE_CORE_JS names it; this is its place).
fn axe_source() -> String {
    let path = std::env::var_os("AXE_CORE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            localdb::workspace_root().join(".local/axe/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is not installed at {} ({e}): `make test` installs it",
            path.display()
        )
    })
}

pub struct Browser {
    pub client: Client,
    base: String,
    name: String,
    shots: usize,
    /// Where this browser saves downloads.
    pub downloads: PathBuf,
}

impl Browser {
    /// A fresh headless Chromium (its own profile, so its own sessionStorage) at `base`,
    /// its viewport `width` × `height` CSS pixels (a phone's, below a window's minimum, is
    /// emulated as Chrome's device mode does).
    pub async fn open(base: &str, name: &str, width: u32, height: u32) -> Browser {
        let chromium =
            which("chromium").expect("chromium is not installed: `make test` installs it");
        let downloads = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("page-downloads")
            .join(format!("{name}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&downloads).unwrap();
        let mut options = json!({
            "binary": chromium,
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
            },
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--no-first-run",
                "--lang=en-US",
                format!("--window-size={},{}", width.max(800), height),
            ],
        });
        if width < 800 {
            options["mobileEmulation"] = json!({
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2, "touch": true},
            });
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver().url)
            .await
            .expect("a browser session");
        Browser {
            client,
            base: base.to_owned(),
            name: name.to_owned(),
            shots: 0,
            downloads,
        }
    }

    /// Runs `steps`; on failure writes a screenshot of the screen, then fails the test.
    pub async fn run<F>(mut self, steps: F)
    where
        F: AsyncFnOnce(&mut Browser) -> Step,
    {
        let outcome = steps(&mut self).await;
        if let Err(why) = outcome {
            let path = self.screenshot("failure").await;
            let _ = self.client.clone().close().await;
            panic!("{}: {why}\nscreenshot: {path}", self.name);
        }
        let _ = self.client.clone().close().await;
    }

    /// Saves what the browser shows now; returns where.
    pub async fn screenshot(&mut self, what: &str) -> String {
        self.shots += 1;
        let dir = screenshot_dir();
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{}-{:02}-{what}.png", self.name, self.shots));
        match self.client.screenshot().await {
            Ok(png) => match std::fs::write(&path, png) {
                Ok(()) => path.display().to_string(),
                Err(e) => format!("(not written: {e})"),
            },
            Err(e) => format!("(no screenshot: {e})"),
        }
    }

    /// Saves a screenshot for the docs when PAGE_SCREENSHOTS names a folder.
    pub async fn document(&mut self, name: &str) -> Step {
        let Some(dir) = std::env::var_os("PAGE_SCREENSHOTS") else {
            return Ok(());
        };
        let png = self.client.screenshot().await.map_err(|e| e.to_string())?;
        std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), png)
            .map_err(|e| e.to_string())
    }

    /// The stack's address the browser was opened at.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn goto(&self, path: &str) -> Step {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .map_err(|e| format!("goto {path}: {e}"))
    }

    pub async fn find(&self, css: &str) -> Step<Element> {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .map_err(|e| format!("no element {css}: {e}"))
    }

    pub async fn find_all(&self, css: &str) -> Step<Vec<Element>> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_err(|e| format!("find {css}: {e}"))
    }

    pub async fn click(&self, css: &str) -> Step {
        self.find(css)
            .await?
            .click()
            .await
            .map_err(|e| format!("click {css}: {e}"))
    }

    /// Clicks the button whose visible text starts with `text`, inside `within` (CSS). A
    /// screen that redraws between finding and clicking (a list reloading after a change)
    /// is looked at again: the button is found afresh until the deadline.
    pub async fn click_button(&self, within: &str, text: &str) -> Step {
        let xpath = format!(".//button[starts-with(normalize-space(.), '{text}')] | .//a[starts-with(normalize-space(.), '{text}')]");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let found = match self.client.find(Locator::Css(within)).await {
                Ok(scope) => scope.find(Locator::XPath(&xpath)).await.ok(),
                Err(_) => None,
            };
            if let Some(button) = found {
                match button.click().await {
                    Ok(()) => return Ok(()),
                    Err(e) if e.to_string().contains("stale element") => {}
                    Err(e) => return Err(format!("click {text:?} in {within}: {e}")),
                }
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("no button {text:?} in {within}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn fill(&self, css: &str, text: &str) -> Step {
        let field = self.find(css).await?;
        field
            .clear()
            .await
            .map_err(|e| format!("clear {css}: {e}"))?;
        field
            .send_keys(text)
            .await
            .map_err(|e| format!("type into {css}: {e}"))
    }

    pub async fn select(&self, css: &str, value: &str) -> Step {
        self.find(css)
            .await?
            .select_by_value(value)
            .await
            .map_err(|e| format!("select {value} in {css}: {e}"))
    }

    pub async fn text(&self, css: &str) -> Step<String> {
        self.find(css)
            .await?
            .text()
            .await
            .map_err(|e| format!("text of {css}: {e}"))
    }

    pub async fn js(&self, script: &str, args: Vec<Value>) -> Step<Value> {
        self.client
            .execute(script, args)
            .await
            .map_err(|e| format!("script failed: {e}"))
    }

    /// Waits until `expression` (JavaScript, evaluated in the page) is truthy.
    pub async fn wait_until(&self, expression: &str, what: &str) -> Step {
        let script = format!("return Boolean({expression});");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Ok(Value::Bool(true)) = self.client.execute(&script, vec![]).await {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("timed out waiting for {what} ({expression})"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of `css` contains `needle`.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> Step {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(needle) {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("{css} never said {needle:?}; it says {text:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of the one file downloaded so far, once it is complete.
    pub async fn downloaded(&self) -> Step<(String, String)> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let done: Vec<PathBuf> = std::fs::read_dir(&self.downloads)
                .map_err(|e| e.to_string())?
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                // Chrome writes `.org.chromium.…` and `….crdownload` first, then renames.
                .filter(|path| {
                    let name = path.file_name().unwrap_or_default().to_string_lossy();
                    !name.starts_with('.') && !name.ends_with(".crdownload")
                })
                .collect();
            if let [file] = done.as_slice() {
                let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                return Ok((name, text));
            }
            ensure(
                std::time::Instant::now() < deadline,
                format!(
                    "no single finished download in {}",
                    self.downloads.display()
                ),
            )?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs in on the sign-in form the page shows.
    pub async fn sign_in(&self, email: &str, password: &str) -> Step {
        self.fill("input[name=email]", email).await?;
        self.fill("input[name=password]", password).await?;
        self.click("form button[type=submit]").await?;
        self.wait_until(
            "!document.getElementById('who').hidden",
            "the signed-in header",
        )
        .await
    }

    /// The accessibility scan: axe-core run in the page; serious and critical violations.
    pub async fn axe_violations(&self) -> Step<Vec<String>> {
        let loaded = self
            .js("return typeof window.axe === 'object';", vec![])
            .await?;
        if loaded != Value::Bool(true) {
            self.js(&format!("{}\nreturn true;", axe_source()), vec![])
                .await?;
        }
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document).then(result => done(result.violations
                   .filter(v => v.impact === 'serious' || v.impact === 'critical')
                   .map(v => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)),
                   error => done([`axe failed: ${error}`]));",
                vec![],
            )
            .await
            .map_err(|e| format!("axe: {e}"))?;
        // Anything but a list of strings is a scan that did not run, never "no violations".
        let items = found
            .as_array()
            .ok_or_else(|| format!("axe answered {found}, not a list of violations"))?;
        items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("axe answered {v} among its violations"))
            })
            .collect()
    }

    /// Fails the step if the scan finds serious or critical violations on `screen`.
    pub async fn accessible(&self, screen: &str) -> Step {
        let violations = self.axe_violations().await?;
        ensure(
            violations.is_empty(),
            format!(
                "{screen}: accessibility violations:\n{}",
                violations.join("\n")
            ),
        )
    }
}
