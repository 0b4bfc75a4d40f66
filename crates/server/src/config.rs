//! The server's one typed configuration: defaults, then a TOML file, then `TIDINGS_*` environment
//! variables, then command-line flags. Loaded once in `main` and passed down by value.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything the server can be told. See `tidings.example.toml` for each setting explained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where to accept connections.
    pub listen: SocketAddr,
    /// Holds the database (`tidings.db`) and nothing else the server needs.
    pub data_dir: PathBuf,
    /// Where the data lives instead of `data_dir`'s SQLite file: a PostgreSQL database as a
    /// `postgres://user:password@host:port/database` URL, which several server nodes may share.
    pub store: Option<String>,
    /// A Redis server (`redis://host:port`) that carries presence and typing between the server
    /// nodes sharing a PostgreSQL `store`. Without it each node shows only its own users' presence.
    pub redis: Option<String>,
    /// Origins (`scheme://host[:port]`) whose pages may use the session cookie, besides the
    /// server's own origin. Requests authenticated by `Authorization: Bearer` are not affected.
    pub allowed_origins: Vec<String>,
    /// How long a graceful shutdown lets connections finish (in-flight sends acked, closes
    /// exchanged) before it closes whatever is still open.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// The server's certificate chain, PEM (its own certificate first): with `tls_key`, the
    /// server speaks only TLS (`https://`, `wss://`) and sends HSTS. Reloaded on SIGHUP and when
    /// the file changes.
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert`, PEM (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// How the log is written to standard error: `text` for people, or `json`, one object per
    /// line, for a log collector.
    pub log_format: LogFormat,
    pub session: SessionConfig,
    pub limits: LimitsConfig,
    pub chat: ChatConfig,
    pub feed: FeedConfig,
    pub transports: TransportsConfig,
    pub attachments: AttachmentsConfig,
    pub metrics: MetricsConfig,
    pub backup: BackupConfig,
    pub testing: TestingConfig,
}

/// How the log is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// What the server counts, for Prometheus.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` (with `/healthz` and `/readyz`) on this address of its own; unset: no
    /// metrics are served. Keep it private (loopback, or a network only the scraper reaches).
    pub listen: Option<SocketAddr>,
}

/// Backups the server makes of itself while serving (on its SQLite database; see `backup`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Back up this often, the first one this long after the start; unset: never.
    #[serde(with = "humantime_serde")]
    pub every: Option<Duration>,
    /// Where the backups go; unset: `data_dir/backups`.
    pub dir: Option<PathBuf>,
    /// How many of the newest backups there are kept; older ones are deleted.
    pub keep: usize,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            every: None,
            dir: None,
            keep: 7,
        }
    }
}

/// Files and images shared in rooms, kept in `data_dir/attachments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttachmentsConfig {
    /// The largest file one upload may carry, in bytes.
    pub max_size: u64,
    /// The most bytes one user's attachments may add up to.
    pub quota_per_user: u64,
    /// An upload must arrive within this long: room for a slow connection, not for a stalled one.
    #[serde(with = "humantime_serde")]
    pub upload_timeout: Duration,
    /// Where the bytes are kept, as an object store URL: `file:///path` for a directory of its
    /// own, `s3://bucket/prefix` in a build with the `s3` feature (credentials, region and
    /// endpoint from the `AWS_*` environment variables). Unset: `data_dir/attachments`.
    pub object_store: Option<String>,
    /// An upload no message carries is deleted after this long (a message then cannot carry it).
    #[serde(with = "humantime_serde")]
    pub unsent_kept_for: Duration,
}

impl Default for AttachmentsConfig {
    fn default() -> Self {
        AttachmentsConfig {
            max_size: 25 * 1024 * 1024,
            quota_per_user: 1024 * 1024 * 1024,
            upload_timeout: Duration::from_secs(10 * 60),
            object_store: None,
            unsent_kept_for: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// Hooks for tests of the server itself; all off. Never turn one on for a server people use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestingConfig {
    /// Serve `/api/test/echo`: a WebSocket echo with the chat channel's exact configuration, for
    /// protocol conformance suites. Unauthenticated.
    pub websocket_echo: bool,
    /// Take wall time from the async runtime's clock ([`crate::Clock::Runtime`]) and wait for
    /// store writes where the runtime sees them, so tests can pause tokio's clock and advance it
    /// past expiries, heartbeats and timeouts instead of waiting for them.
    pub paused_clock: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Absolute lifetime of a login.
    #[serde(with = "humantime_serde")]
    pub lifetime: Duration,
    /// A login ends when it is not used for this long.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// The session feed reports `expiring` when a deadline is this close.
    #[serde(with = "humantime_serde")]
    pub expiring_warning: Duration,
    /// How often the session feed pushes the session's status.
    #[serde(with = "humantime_serde")]
    pub feed_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest message body, in bytes.
    pub max_body_bytes: usize,
    /// Largest WebSocket frame (and message), in bytes; bigger ones close the connection (1009).
    pub max_frame_bytes: usize,
    /// Sustained messages per second per user.
    pub messages_per_second: u32,
    /// Messages a user may send at once before the rate applies.
    pub message_burst: u32,
    /// Live chat and feed connections, in all; more are refused (1013 / 503).
    pub max_connections: usize,
    /// Frames queued for one connection before it counts as lagging and is disconnected.
    pub send_queue: usize,
    /// A new connection must send a complete request head within this, or it is closed.
    #[serde(with = "humantime_serde")]
    pub head_timeout: Duration,
    /// A request body must arrive whole within this.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Connections that have not sent a complete request head yet, at most; while that many are
    /// open, new ones wait in the kernel's accept queue. As deep as that queue by default: in a
    /// reconnect storm thousands of clients connect at once and send their heads a moment later.
    pub max_pending_requests: usize,
    /// Chat and feed connections being set up at once (authenticated, and sent their hello or
    /// their feed's status and replay); more wait their turn, at most `head_timeout`, then get
    /// 503. A reconnect storm then cannot take the CPU from everything else.
    pub max_connecting: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// The server pings every connection this often; two silent intervals close it.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// A write to a client that takes longer than this closes the connection.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedConfig {
    /// The feed sends something at least this often so proxies keep the stream open: a comment
    /// line when the session's status (`session.feed_interval`) comes less often.
    #[serde(with = "humantime_serde")]
    pub keepalive: Duration,
    /// The `retry:` hint: how long a client waits before reconnecting.
    #[serde(with = "humantime_serde")]
    pub retry: Duration,
    /// At most this many missed `message` events are replayed on reconnect; a client further
    /// behind gets `event: reset` and reloads history instead.
    pub replay_limit: u32,
}

/// The chat channel's transports: the WebSocket (`/api/ws`) and the HTTP transports
/// (`/api/poll`, `/api/stream`, `/api/stream/iframe`). Streams send something at least every
/// `feed.keepalive` so proxies keep them open: an empty batch when the session's status
/// (`session.feed_interval`) comes less often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransportsConfig {
    /// Offer the chat channel over the WebSocket (`/api/ws`). Off, `/api/ws` answers 404 and
    /// `/api/transports` leaves it out, so clients take the HTTP transports at once: for hosts
    /// behind proxies that break WebSockets.
    pub websocket: bool,
    /// How long a poll is held when it asks for no timeout: under the 60 s after which common
    /// proxies give up on a quiet response.
    #[serde(with = "humantime_serde")]
    pub poll_timeout: Duration,
    /// The longest timeout a poll may ask for.
    #[serde(with = "humantime_serde")]
    pub max_poll_timeout: Duration,
    /// How often a short-polling client is told to poll.
    #[serde(with = "humantime_serde")]
    pub short_poll_interval: Duration,
    /// An iframe stream ends after about this many bytes and the client reopens it from its
    /// cursor: the iframe's document would otherwise grow for as long as it is open.
    pub stream_max_bytes: u64,
    /// Streams one session may hold at once; opening one more ends its oldest.
    pub streams_per_session: usize,
    /// A user whose last polling or streaming connection ended stays online this long: the
    /// time between two polls, or a stream's reopening.
    #[serde(with = "humantime_serde")]
    pub presence_grace: Duration,
}

impl Default for TransportsConfig {
    fn default() -> Self {
        TransportsConfig {
            websocket: true,
            poll_timeout: Duration::from_secs(25),
            max_poll_timeout: Duration::from_secs(55),
            short_poll_interval: Duration::from_secs(3),
            stream_max_bytes: 256 * 1024,
            streams_per_session: 2,
            presence_grace: Duration::from_secs(10),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            data_dir: PathBuf::from("tidings-data"),
            store: None,
            redis: None,
            allowed_origins: Vec::new(),
            drain_timeout: Duration::from_secs(10),
            tls_cert: None,
            tls_key: None,
            log_format: LogFormat::Text,
            session: SessionConfig::default(),
            limits: LimitsConfig::default(),
            chat: ChatConfig::default(),
            feed: FeedConfig::default(),
            transports: TransportsConfig::default(),
            attachments: AttachmentsConfig::default(),
            metrics: MetricsConfig::default(),
            backup: BackupConfig::default(),
            testing: TestingConfig::default(),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            lifetime: Duration::from_secs(30 * 24 * 3600),
            idle_timeout: Duration::from_secs(7 * 24 * 3600),
            expiring_warning: Duration::from_secs(10 * 60),
            feed_interval: Duration::from_secs(5),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 64 * 1024,
            // Room for the largest body once JSON-escaped, plus the envelope.
            max_frame_bytes: 160 * 1024,
            messages_per_second: 10,
            message_burst: 30,
            max_connections: 20_000,
            send_queue: 256,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_pending_requests: 4096,
            max_connecting: 32,
        }
    }
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            heartbeat: Duration::from_secs(20),
            write_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            keepalive: Duration::from_secs(15),
            retry: Duration::from_secs(3),
            replay_limit: 1000,
        }
    }
}

/// Settings given as command-line flags; they win over the file and the environment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

/// Where the settings' environment variables start.
const ENV_PREFIX: &str = "TIDINGS_";

/// Sorts the environment's `TIDINGS_*` names that are not settings (`keys`, dotted): an error
/// for one inside a section (a misspelt setting), a warning for one within two edits of a
/// setting's name, nothing for the rest (another program's, or the CLI's own).
fn check_environment(
    keys: &[String],
    names: impl Iterator<Item = String>,
) -> Result<Vec<String>, Box<figment::Error>> {
    let sections: Vec<&str> = keys
        .iter()
        .filter(|k| keys.iter().any(|other| other.starts_with(&format!("{k}."))))
        .map(String::as_str)
        .collect();
    let mut warnings = Vec::new();
    for name in names {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let key = rest.to_ascii_lowercase().replace("__", ".");
        if keys.contains(&key) {
            continue;
        }
        if let Some((section, _)) = key.split_once('.')
            && sections.contains(&section)
        {
            return Err(Box::new(figment::Error::from(format!(
                "{name} names no setting of [{section}] (see tidings.example.toml)"
            ))));
        }
        if let Some(near) = keys.iter().find(|k| edit_distance(k, &key) <= 2) {
            let meant = format!(
                "{ENV_PREFIX}{}",
                near.replace('.', "__").to_ascii_uppercase()
            );
            warnings.push(format!(
                "{name} is not a setting and is ignored; did you mean {meant}?"
            ));
        }
    }
    Ok(warnings)
}

/// The Levenshtein distance between two short ASCII names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

impl Config {
    /// Layers the defaults, `file` (when given; it must exist), the `TIDINGS_*` environment
    /// (nested keys with `__`: `TIDINGS_SESSION__IDLE_TIMEOUT=30m`) and `overrides`.
    ///
    /// Only the environment variables that name a setting are read: `TIDINGS_HOME` (the CLI's)
    /// and `TIDINGS_CONFIG` (the `--config` flag's) are not settings. A variable inside a section
    /// that names no setting there (`TIDINGS_SESSION__IDLE_TIMOUT`) is refused, as a misspelt key
    /// in the file is; one that merely looks like a setting (`TIDINGS_LISTN`) is logged as a
    /// warning and ignored.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, Box<figment::Error>> {
        let keys = Config::keys();
        let names = std::env::vars_os().filter_map(|(name, _)| name.into_string().ok());
        for warning in check_environment(&keys, names)? {
            tracing::warn!("{warning}");
        }
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(Box::new(figment::Error::from(format!(
                    "config file {} does not exist",
                    file.display()
                ))));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(
                Env::prefixed(ENV_PREFIX)
                    .split("__")
                    .filter(move |key| keys.iter().any(|k| key.as_str().eq_ignore_ascii_case(k))),
            )
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(Box::new)
    }

    /// Every setting's key, dotted (`session.idle_timeout`), and every section's (`session`).
    fn keys() -> Vec<String> {
        fn walk(prefix: &str, value: &serde_json::Value, keys: &mut Vec<String>) {
            if let serde_json::Value::Object(fields) = value {
                for (name, value) in fields {
                    let key = format!("{prefix}{name}");
                    walk(&format!("{key}."), value, keys);
                    keys.push(key);
                }
            }
        }
        let mut keys = Vec::new();
        if let Ok(defaults) = serde_json::to_value(Config::default()) {
            walk("", &defaults, &mut keys);
        }
        keys
    }

    /// Parses a whole configuration from TOML text, on top of the defaults.
    pub fn from_toml(text: &str) -> Result<Config, Box<figment::Error>> {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(Box::new)
    }

    /// The database file inside the data dir.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("tidings.db")
    }

    /// Where scheduled backups go.
    pub fn backup_dir(&self) -> PathBuf {
        self.backup
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("backups"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_says_what_the_defaults_say() {
        let text = include_str!("../../../tidings.example.toml");
        let config = Config::from_toml(text).expect("example config parses");
        // The example documents the defaults; if one drifts, the example is lying.
        assert_eq!(config, Config::default());
    }

    #[test]
    fn a_postgres_store_comes_from_the_file() {
        assert_eq!(Config::default().store, None);
        let config = Config::from_toml("store = \"postgres://t@127.0.0.1:5432/t\"").unwrap();
        assert_eq!(
            config.store.as_deref(),
            Some("postgres://t@127.0.0.1:5432/t")
        );
        assert!(Config::keys().contains(&"store".to_owned()));
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let err = Config::from_toml("listne = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
    }

    fn names(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter().map(|n| (*n).to_owned())
    }

    #[test]
    fn environment_names_that_are_settings_pass_and_others_of_the_project_are_ignored() {
        let keys = Config::keys();
        for key in [
            "listen",
            "session.idle_timeout",
            "limits.head_timeout",
            "transports.websocket",
            "drain_timeout",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
        }
        let warnings = check_environment(
            &keys,
            names(&[
                "TIDINGS_LISTEN",
                "TIDINGS_SESSION__IDLE_TIMEOUT",
                "TIDINGS_HOME",
                "TIDINGS_CONFIG",
                "HOME",
            ]),
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_look_alike_is_a_warning_and_a_misspelt_section_key_an_error() {
        let keys = Config::keys();
        let warnings = check_environment(&keys, names(&["TIDINGS_LISTN"])).unwrap();
        assert_eq!(
            warnings,
            ["TIDINGS_LISTN is not a setting and is ignored; did you mean TIDINGS_LISTEN?"]
        );
        let err = check_environment(&keys, names(&["TIDINGS_SESSION__IDLE_TIMOUT"])).unwrap_err();
        assert!(
            err.to_string().contains("TIDINGS_SESSION__IDLE_TIMOUT"),
            "{err}"
        );
        assert!(err.to_string().contains("[session]"), "{err}");
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("listen", "listen"), 0);
        assert_eq!(edit_distance("listen", "listn"), 1);
        assert_eq!(edit_distance("listen", "lsiten"), 2);
        assert_eq!(edit_distance("home", "listen"), 5);
    }

    #[test]
    fn the_websocket_is_on_unless_switched_off() {
        assert!(Config::default().transports.websocket);
        let config = Config::from_toml("[transports]\nwebsocket = false").unwrap();
        assert!(!config.transports.websocket);
    }

    #[test]
    fn durations_are_human() {
        let config = Config::from_toml("[session]\nidle_timeout = \"90s\"").unwrap();
        assert_eq!(config.session.idle_timeout, Duration::from_secs(90));
    }
}
