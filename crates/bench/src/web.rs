//! The web app in Debian's Chromium (headless, driven by `chromedriver`), against the real server
//! serving it: how long from opening the URL to a usable chat, with an empty browser cache (cold)
//! and with the app's assets cached (warm), and what the page holds after scrolling through a room
//! of 100,000 messages to its beginning (JS heap after a forced collection, DOM size).
//!
//! "Usable" is the app's own User Timing mark `tidings:interactive`: the chat has started and
//! the open room's newest page is drawn. Its time is from the navigation's start, read in the
//! page, so the driver's round trips are not counted.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::cookies::Cookie;
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::process::{Child, Command};

use crate::process::ServerProcess;
use crate::seed::SeededHistory;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The session cookie the server issues on login.
const SESSION_COOKIE: &str = "tidings_session";
/// One page's start may take this long.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one driver call scrolls before reporting progress.
const SCROLL_SLICE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Messages in the room scrolled through.
    pub rows: u64,
    /// Fresh browser profiles, each opened once cold.
    pub cold: usize,
    /// Reloads with the cache filled, after the last cold start.
    pub warm: usize,
    /// The scroll through the room gives up after this long.
    pub scroll_budget_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub rows: u64,
    /// Navigation start → `tidings:interactive`, an empty cache, in ms.
    pub cold_ms: Vec<f64>,
    /// The same with the assets cached.
    pub warm_ms: Vec<f64>,
    /// JS heap in use with the newest page shown, after a forced collection.
    pub heap_start_bytes: u64,
    /// JS heap in use after scrolling to the room's first message, after a forced collection.
    pub heap_scrolled_bytes: u64,
    /// Most elements in the document at any step of the scroll.
    pub dom_elements_max: u64,
    /// Most message rows drawn at any step of the scroll.
    pub rows_drawn_max: u64,
    /// From the newest page to the beginning of the room.
    pub scroll_secs: f64,
}

/// What one slice of the scroll reports.
#[derive(Debug, Deserialize)]
struct Progress {
    done: bool,
    elements: u64,
    rows: u64,
}

/// chromedriver on a port of its own, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    async fn start(home: &Path, log: &Path) -> Result<Driver> {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(binary).is_file() {
                bail!("{binary} is missing (Debian's chromium and chromium-driver)");
            }
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("a free port for chromedriver")?
            .port();
        let log_file = std::fs::File::create(log).context("creating chromedriver's log")?;
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .context("starting chromedriver")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                bail!("chromedriver did not listen on {port} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Driver { child, port })
    }

    /// A browser with a profile of its own in `profile` (empty: a cold cache).
    async fn browser(&self, profile: &Path) -> Result<Client> {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    // Exact heap figures, and `gc()` to collect before reading them.
                    "--enable-precise-memory-info",
                    "--js-flags=--expose-gc",
                    "--window-size=1280,800",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .context("a WebDriver session with Chromium")?;
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(START_TIMEOUT),
                Some(START_TIMEOUT),
                None,
            ))
            .await?;
        Ok(client)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Measures the page against `server`, logged in as the reader of `seeded`'s room.
pub async fn run(
    server: &ServerProcess,
    seeded: &SeededHistory,
    plan: &Plan,
    work: &Path,
) -> Result<Outcome> {
    let home = work.join("browser-home");
    std::fs::create_dir_all(&home)?;
    let driver = Driver::start(&home, &work.join("chromedriver.log")).await?;
    let base = format!("http://{}", server.addr);
    let newest = format!("history message {}:", seeded.rows - 1);
    let first = "history message 0:";

    let mut cold_ms = Vec::with_capacity(plan.cold);
    let mut warm_ms = Vec::with_capacity(plan.warm);
    let mut last: Option<Client> = None;
    for i in 0..plan.cold.max(1) {
        if let Some(client) = last.take() {
            client.close().await?;
        }
        let profile: PathBuf = work.join(format!("profile-{i}"));
        std::fs::create_dir_all(&profile)?;
        let client = driver.browser(&profile).await?;
        // The cookie belongs to the server's origin: be there first (a page that loads nothing).
        client.goto(&format!("{base}/api/transports")).await?;
        let mut cookie = Cookie::new(SESSION_COOKIE, seeded.token.clone());
        cookie.set_path("/");
        cookie.set_domain(server.addr.ip().to_string());
        cookie.set_http_only(true);
        // As the server issues it; a cookie without SameSite goes as `None`, which Chromium
        // refuses on plain HTTP.
        cookie.set_same_site(cookie::SameSite::Strict);
        client.add_cookie(cookie).await?;
        cold_ms.push(open(&client, &base, &newest).await?);
        last = Some(client);
    }
    let client = last.context("no browser")?;
    for _ in 0..plan.warm {
        warm_ms.push(open(&client, &base, &newest).await?);
    }

    let heap_start_bytes = heap(&client).await?;
    let started = Instant::now();
    let mut elements_max = 0;
    let mut rows_max = 0;
    loop {
        let progress: Progress = serde_json::from_value(
            client
                .execute_async(SCROLL_SCRIPT, vec![json!(SCROLL_SLICE.as_millis() as u64)])
                .await
                .context("scrolling")?,
        )?;
        elements_max = elements_max.max(progress.elements);
        rows_max = rows_max.max(progress.rows);
        if progress.done {
            break;
        }
        if started.elapsed().as_secs_f64() > plan.scroll_budget_secs {
            bail!(
                "the scroll did not reach the room's beginning within {} s",
                plan.scroll_budget_secs
            );
        }
    }
    let scroll_secs = started.elapsed().as_secs_f64();
    let drawn = client
        .execute(
            "return [...document.querySelectorAll('.timeline-rows .message-body')]\
             .some((b) => b.textContent.startsWith(arguments[0]));",
            vec![json!(first)],
        )
        .await?;
    if drawn != json!(true) {
        bail!("at the room's beginning, its first message is not drawn");
    }
    let heap_scrolled_bytes = heap(&client).await?;
    client.close().await?;
    Ok(Outcome {
        rows: seeded.rows,
        cold_ms,
        warm_ms,
        heap_start_bytes,
        heap_scrolled_bytes,
        dom_elements_max: elements_max,
        rows_drawn_max: rows_max,
        scroll_secs,
    })
}

/// Opens the app and returns its `tidings:interactive` time, checking the newest message shows.
async fn open(client: &Client, base: &str, newest: &str) -> Result<f64> {
    client.goto(&format!("{base}/")).await?;
    let value = client
        .execute_async(INTERACTIVE_SCRIPT, vec![json!(newest)])
        .await
        .context("waiting for the chat")?;
    match value {
        serde_json::Value::Number(ms) => ms.as_f64().context("a time"),
        other => bail!("the chat did not become usable: {other}"),
    }
}

/// The JS heap in use after a full collection.
async fn heap(client: &Client) -> Result<u64> {
    let value = client
        .execute(
            "window.gc(); return performance.memory.usedJSHeapSize;",
            vec![],
        )
        .await?;
    value.as_u64().context("performance.memory.usedJSHeapSize")
}

/// Resolves with the mark's time once it exists and the newest message (arguments[0]) is drawn.
const INTERACTIVE_SCRIPT: &str = r#"
const [newest, done] = arguments;
const check = () => {
  const mark = performance.getEntriesByName('tidings:interactive')[0];
  const shown = [...document.querySelectorAll('.timeline-rows .message-body')]
    .some((b) => b.textContent.startsWith(newest));
  if (mark !== undefined && shown) done(mark.startTime);
  else if (performance.now() > 55000) done('not usable after 55 s');
  else setTimeout(check, 5);
};
check();
"#;

/// Scrolls the timeline to its top, again and again, for at most arguments[0] ms or until the
/// room's beginning shows; reports the largest document and row count seen.
const SCROLL_SCRIPT: &str = r#"
const [slice, done] = arguments;
const timeline = document.querySelector('[data-testid="timeline"]');
const header = timeline.querySelector('.timeline-header');
const until = performance.now() + slice;
let elements = 0;
let rows = 0;
const step = () => {
  elements = Math.max(elements, document.getElementsByTagName('*').length);
  rows = Math.max(rows, timeline.querySelectorAll('.timeline-rows > *').length);
  const finished = header.textContent.startsWith('This is the beginning');
  if (finished) {
    // The last page was prepended below the view's anchor: go to the very top and let it draw.
    timeline.scrollTop = 0;
    requestAnimationFrame(() => requestAnimationFrame(() => done({ done: true, elements, rows })));
    return;
  }
  if (performance.now() > until) {
    done({ done: false, elements, rows });
    return;
  }
  timeline.scrollTop = 0;
  requestAnimationFrame(step);
};
step();
"#;
