//! Driving a real web page over WebDriver (fantoccini), for the desktop app's window and for the
//! browser app in Chromium alike: the processes a test starts (killed with their descendants when
//! dropped), a virtual display, and a [`Page`] with bounded waits on the DOM, the actions a person
//! takes and screenshots in `target/e2e-screenshots/`.
//!
//! Waits poll the DOM through fantoccini's bounded `wait()`; nothing sleeps.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use fantoccini::elements::Element;
use fantoccini::error::{CmdError, ErrorStatus};
use tidings_proto::v1::RoomId;

/// The longest a test waits for something to show on a page. Longer than the harness's `WAIT`:
/// a browser engine on a shared machine is slower than a socket.
pub const UI_WAIT: Duration = Duration::from_secs(20);
/// How often a wait looks at the DOM again.
const POLL: Duration = Duration::from_millis(25);

/// `target/` (wherever CARGO_TARGET_DIR put it): test binaries run from `target/<profile>/deps/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary sits in target/<profile>/deps/")
        .to_path_buf()
}

/// Where screenshots (and the processes' logs) go.
pub fn artifacts_dir() -> PathBuf {
    let dir = target_dir().join("e2e-screenshots");
    std::fs::create_dir_all(&dir).expect("creating target/e2e-screenshots");
    dir
}

/// Removes the screenshots of an earlier run of `test`, which would pass for this run's.
pub fn clear_shots(test: &str) {
    let prefix = format!("{test}-");
    for entry in std::fs::read_dir(artifacts_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".png") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A process this harness started, killed (with its descendants, by PID) when dropped.
pub struct Process {
    pub name: &'static str,
    pub child: Child,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics, with `log`'s contents, if the process has already exited.
    pub fn check_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{} exited early ({status}):\n{text}", self.name);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The whole tree first: once the parent is gone, its children are re-parented and can no
        // longer be found from it.
        let tree = descendants(self.pid());
        for &pid in &tree {
            kill(pid);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Only our own child can be waited for; the rest are gone once they are zombies or
        // reaped, and only then are their ports free for the next test.
        let deadline = Instant::now() + UI_WAIT;
        while tree.iter().any(|&pid| alive(pid)) && Instant::now() < deadline {
            std::thread::yield_now();
        }
    }
}

/// Whether `pid` still runs (exists and is not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

fn kill(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        // Already gone is fine.
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Every process's parent, from `/proc/<pid>/stat`.
fn parents() -> HashMap<u32, u32> {
    let mut parents = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return parents;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the
        // last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.insert(pid, ppid);
        }
    }
    parents
}

/// The descendants of `root` (not `root` itself), parents before children.
pub fn descendants(root: u32) -> Vec<u32> {
    let parents = parents();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        let mut children: Vec<u32> = parents
            .iter()
            .filter(|&(_, &ppid)| ppid == parent)
            .map(|(&pid, _)| pid)
            .collect();
        children.sort_unstable();
        found.extend(children);
        i += 1;
    }
    found.remove(0);
    found
}

/// The short name of a process (`/proc/<pid>/comm`, at most 15 bytes).
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// A process's proportional set size in KiB (`Pss:` of `/proc/<pid>/smaps_rollup`): its private
/// memory plus its share of what it shares. 0 for a process that is gone.
pub fn pss_kib(pid: u32) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return 0;
    };
    text.lines()
        .find_map(|line| line.strip_prefix("Pss:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until something accepts connections on `port` of loopback, retrying a connect with a
/// short timeout up to a deadline (no sleeping: a refused connect returns at once and is tried
/// again after yielding).
pub async fn wait_for_port(port: u16, driver: &mut Process, log: &Path) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + UI_WAIT;
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_millis(100),
            tokio::net::TcpStream::connect(addr),
        )
        .await;
        if let Ok(Ok(_)) = attempt {
            return;
        }
        driver.check_running(log);
        assert!(
            Instant::now() < deadline,
            "nothing listens on port {port} within {UI_WAIT:?}"
        );
        tokio::task::yield_now().await;
    }
}

/// Starts a virtual display on a free display number (`-displayfd`: Xvfb picks it and writes it
/// to the given descriptor, here its stdout) and returns it with the display's name.
pub fn start_xvfb(log: &Path) -> (Process, String) {
    let log_file = std::fs::File::create(log).expect("creating the Xvfb log");
    let child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .expect("starting Xvfb (Debian package xvfb; scripts/deps.sh --test installs it)");
    let mut xvfb = Process {
        name: "Xvfb",
        child,
    };
    let stdout = xvfb.child.stdout.take().expect("Xvfb's stdout");
    let mut line = String::new();
    // Xvfb writes the number once the display is ready, or exits (closing the pipe) on failure.
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reading Xvfb's display number");
    let number = line.trim();
    if number.is_empty() {
        xvfb.check_running(log);
        panic!("Xvfb printed no display number");
    }
    let display = format!(":{number}");
    (xvfb, display)
}

/// A page under WebDriver: the desktop app's window or a browser tab.
pub struct Page {
    pub driver: fantoccini::Client,
    /// The test's name, which its screenshots start with.
    pub test: &'static str,
}

impl Page {
    /// Saves a screenshot of the page as `target/e2e-screenshots/<test>-<step>.png`.
    pub async fn shot(&self, step: &str) {
        // A screenshot is the last frame painted, which may predate the DOM just read: wait for
        // the next two animation frames (the second starts after the first was painted).
        let painted = self.driver.execute_async(
            "const done = arguments[arguments.length - 1];\
             requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
            vec![],
        );
        let _ = tokio::time::timeout(Duration::from_secs(5), painted).await;
        let png = self.driver.screenshot().await.expect("a screenshot");
        let path = artifacts_dir().join(format!("{}-{step}.png", self.test));
        std::fs::write(&path, png).expect("saving the screenshot");
    }

    // ---- finding things ----

    /// The first element matching `locator` within [`UI_WAIT`]; panics naming `what`.
    pub async fn wait_for(&self, locator: Locator<'_>, what: &str) -> Element {
        self.wait_within(locator, what, UI_WAIT, POLL).await
    }

    pub async fn wait_within(
        &self,
        locator: Locator<'_>,
        what: &str,
        within: Duration,
        every: Duration,
    ) -> Element {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let found = self
                .driver
                .wait()
                .at_most(left)
                .every(every)
                .for_element(locator)
                .await;
            match found {
                Ok(element) => return element,
                // Found, but redrawn before the driver could hand it over (a row going from
                // pending to sent, say): look again.
                Err(CmdError::Standard(e))
                    if e.error == ErrorStatus::StaleElementReference && !left.is_zero() =>
                {
                    continue;
                }
                Err(err) => {
                    self.shot("failed").await;
                    panic!("{what}: not found within {within:?}: {err}")
                }
            }
        }
    }

    /// The element with `data-testid` `id`, once it exists.
    pub async fn find(&self, id: &str) -> Element {
        self.wait_for(Locator::Css(&testid(id)), id).await
    }

    /// The element with `data-testid` `id`, once it is displayed and enabled: first waits until
    /// neither it nor an ancestor is `hidden` and it is not `disabled`, then asks the browser.
    pub async fn interactable(&self, id: &str) -> Element {
        let xpath = format!(
            "//*[@data-testid={}][not(ancestor-or-self::*[@hidden])][not(@disabled)]",
            literal(id)
        );
        let deadline = Instant::now() + UI_WAIT;
        loop {
            let element = self.wait_for(Locator::XPath(&xpath), id).await;
            let ready = element.is_displayed().await.unwrap_or(false)
                && element.is_enabled().await.unwrap_or(false);
            if ready {
                return element;
            }
            if Instant::now() >= deadline {
                self.shot("failed").await;
                panic!("{id} is not displayed and enabled within {UI_WAIT:?}");
            }
            tokio::task::yield_now().await;
        }
    }

    /// Waits until the element with `data-testid` `id` has `attr` equal to `value`.
    pub async fn attr_is(&self, id: &str, attr: &str, value: &str) -> Element {
        let css = format!("{}[{attr}=\"{value}\"]", testid(id));
        self.wait_for(Locator::Css(&css), &format!("{id} with {attr}={value}"))
            .await
    }

    /// The visible text of the element with `data-testid` `id`, once it has some.
    pub async fn text(&self, id: &str) -> String {
        let xpath = format!("//*[@data-testid={}][normalize-space(.)!='']", literal(id));
        let deadline = Instant::now() + UI_WAIT;
        loop {
            let element = self.wait_for(Locator::XPath(&xpath), id).await;
            match element.text().await {
                Ok(text) => return text,
                // Redrawn between finding and reading: read the new one.
                Err(CmdError::Standard(e))
                    if e.error == ErrorStatus::StaleElementReference
                        && Instant::now() < deadline => {}
                Err(err) => panic!("reading the text of {id}: {err}"),
            }
        }
    }

    /// The `message-body` whose text is exactly `body`, once it is shown.
    pub async fn message(&self, body: &str) -> Element {
        let xpath = message_xpath(body);
        self.wait_for(Locator::XPath(&xpath), &format!("the message {body:?}"))
            .await
    }

    /// How many `message-body` elements with text `body` the timeline shows.
    pub async fn count_messages(&self, body: &str) -> usize {
        self.driver
            .find_all(Locator::XPath(&message_xpath(body)))
            .await
            .expect("finding messages")
            .len()
    }

    // ---- doing things ----

    pub async fn click(&self, id: &str) {
        self.interactable(id)
            .await
            .click()
            .await
            .unwrap_or_else(|err| panic!("clicking {id}: {err}"));
    }

    /// Moves the mouse over `element`, as a person pointing at it (a message's toolbar shows
    /// on hover).
    pub async fn hover(&self, element: &Element) {
        use fantoccini::actions::{InputSource, MouseActions, PointerAction};
        let pointing = MouseActions::new("mouse".to_owned()).then(PointerAction::MoveToElement {
            element: element.clone(),
            duration: None,
            x: 0.0,
            y: 0.0,
        });
        self.driver
            .perform_actions(pointing)
            .await
            .expect("moving the mouse");
    }

    /// Types `text` into the element with `data-testid` `id`.
    pub async fn type_into(&self, id: &str, text: &str) {
        self.interactable(id)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|err| panic!("typing into {id}: {err}"));
    }

    /// Waits until the connection bar says online.
    pub async fn online(&self) -> Element {
        self.attr_is("connection", "data-state", "online").await
    }

    /// Creates a group room from the sidebar's "+ New room" dialog; returns its id once the
    /// window shows it.
    pub async fn create_room(&self, name: &str) -> RoomId {
        self.click("new-room").await;
        self.type_into("new-room-name", name).await;
        self.click("new-room-submit").await;
        let xpath = format!(
            "//button[starts-with(@data-testid,'room-')][@aria-current='true']\
             [.//*[@class='room-name'][.={}]]",
            literal(&format!("#{name}"))
        );
        let button = self
            .wait_for(
                Locator::XPath(&xpath),
                &format!("#{name} open in the sidebar"),
            )
            .await;
        let id: RoomId = button
            .attr("data-testid")
            .await
            .expect("reading data-testid")
            .and_then(|t| t.strip_prefix("room-").and_then(|n| n.parse().ok()))
            .expect("a room button's data-testid is room-<id>");
        self.attr_is("timeline", "data-room", &id.to_string()).await;
        id
    }

    /// Waits until room `room` is the one open: the timeline shows it and the sidebar marks it.
    pub async fn room_open(&self, room: RoomId) {
        self.attr_is("timeline", "data-room", &room.to_string())
            .await;
        self.attr_is(&format!("room-{room}"), "aria-current", "true")
            .await;
    }

    /// Attaches `files` from the composer's file picker (as a person choosing them) and waits
    /// until every one has uploaded.
    pub async fn attach(&self, files: &[&Path]) {
        let paths: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        self.find("attach-input")
            .await
            .send_keys(&paths.join("\n"))
            .await
            .unwrap_or_else(|err| panic!("choosing {paths:?}: {err}"));
        let done = format!("{}[data-state=\"done\"]", testid("upload"));
        let deadline = Instant::now() + UI_WAIT;
        loop {
            let uploaded = self
                .driver
                .find_all(Locator::Css(&done))
                .await
                .expect("finding uploads")
                .len();
            if uploaded == files.len() {
                return;
            }
            if Instant::now() >= deadline {
                self.shot("failed").await;
                panic!(
                    "{uploaded} of {} files uploaded within {UI_WAIT:?}",
                    files.len()
                );
            }
            tokio::task::yield_now().await;
        }
    }

    /// The natural width of the first image matching `css` once it has loaded (0 never).
    pub async fn image_width(&self, css: &str) -> u64 {
        let script = format!(
            "const img = document.querySelector({}); \
             return img !== null && img.complete ? img.naturalWidth : 0;",
            serde_json::Value::String(css.to_owned())
        );
        let deadline = Instant::now() + UI_WAIT;
        loop {
            let width = self
                .driver
                .execute(&script, vec![])
                .await
                .expect("reading an image")
                .as_u64()
                .unwrap_or(0);
            if width > 0 {
                return width;
            }
            if Instant::now() >= deadline {
                self.shot("failed").await;
                panic!("{css} has not loaded within {UI_WAIT:?}");
            }
            tokio::task::yield_now().await;
        }
    }

    /// Writes `text` in the composer and presses Enter.
    pub async fn send(&self, text: &str) {
        self.type_into(
            "composer",
            &format!("{text}{}", fantoccini::key::Key::Enter),
        )
        .await;
    }
}

/// A CSS selector for `data-testid` `id`.
pub fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// `s` as an XPath string literal (XPath 1.0 has no escapes: quotes are spliced with concat).
pub fn literal(s: &str) -> String {
    if !s.contains('\'') {
        format!("'{s}'")
    } else if !s.contains('"') {
        format!("\"{s}\"")
    } else {
        let parts: Vec<String> = s.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

/// A pending (outbox) row whose body is `body`.
pub fn message_xpath_pending(body: &str) -> String {
    format!(
        "//*[@data-testid='timeline']//*[@data-testid='message-pending']\
         [.//*[@data-testid='message-body'][.={}]]",
        literal(body)
    )
}

/// A sent (stored) row whose body is `body`.
pub fn message_xpath_sent(body: &str) -> String {
    format!(
        "//*[@data-testid='timeline']//*[@data-testid='message']\
         [.//*[@data-testid='message-body'][.={}]]",
        literal(body)
    )
}

pub fn message_xpath(body: &str) -> String {
    format!(
        "//*[@data-testid='timeline']//*[@data-testid='message-body'][.={}]",
        literal(body)
    )
}

/// Makes `XDG_RUNTIME_DIR` private to its owner, as the spec of that variable asks.
pub fn set_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .expect("making the runtime dir private");
}

/// Writes `line` to the real stderr, past the test harness's output capture, so that a
/// measurement shows in every run.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// An error from the driver that says the element cannot be interacted with.
pub fn not_interactable(err: &CmdError) -> bool {
    matches!(err, CmdError::Standard(e) if matches!(
        e.error,
        ErrorStatus::ElementNotInteractable
            | ErrorStatus::ElementClickIntercepted
            | ErrorStatus::InvalidElementState
    ))
}
