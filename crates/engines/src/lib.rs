//! Real database engines for tests and benchmarks: the system's PostgreSQL, started on a loopback
//! port in a temporary directory of its own, and its Redis.
//!
//! Nothing outlives the process that started an engine: each server is watched by a small shell
//! that holds the read end of a pipe whose write end only this process has. When the process
//! ends — returning, panicking or killed — the pipe closes and the watcher stops the server and
//! removes its directory. So a test run leaves no server behind, whatever happens to it.
//!
//! Set `TIDINGS_TEST_POSTGRES` to a `postgres://` URL of a server you run yourself to use it
//! instead; its user must be allowed to create databases.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Where Debian installs PostgreSQL's server programs (one directory per major version).
const POSTGRES_LIB: &str = "/usr/lib/postgresql";

/// A PostgreSQL server for this process. Dropping one that [`Postgres::start`] started stops it
/// (its watcher sees the pipe close).
#[derive(Debug)]
pub struct Postgres {
    /// `postgres://` URL of the server's `postgres` database, as its superuser.
    admin: String,
    /// The running server, when this process started it (not with `TIDINGS_TEST_POSTGRES`).
    local: Option<Local>,
}

#[derive(Debug)]
struct Local {
    /// The server's data directory (inside `root`).
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    /// The watcher; its stdin is the pipe that keeps the server alive.
    _watcher: Child,
    /// The temp dir holding the data, the socket and the log (the watcher removes it).
    root: PathBuf,
}

impl Postgres {
    /// The server every caller in this process shares, started on first use.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(|| Postgres::start().expect("starting PostgreSQL for this process"))
    }

    /// Starts a new server (or, with `TIDINGS_TEST_POSTGRES`, uses that one).
    pub fn start() -> io::Result<Postgres> {
        if let Ok(url) = std::env::var("TIDINGS_TEST_POSTGRES") {
            return Ok(Postgres {
                admin: url,
                local: None,
            });
        }
        let bin = server_programs()?;
        let root = tempfile::Builder::new()
            .prefix("tidings-postgres-")
            .tempdir()?
            .keep();
        let data = root.join("data");
        std::fs::create_dir(&data)?;
        // initdb refuses to run as root: the cluster belongs to the `postgres` user then.
        let as_root = is_root();
        if as_root {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&root))?;
        }
        run(as_postgres(as_root, &bin.join("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data))?;
        let port = free_port()?;
        // No TCP but loopback; the socket directory is the cluster's own.
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            root.display()
        );
        run(as_postgres(as_root, &bin.join("pg_ctl"))
            .args(["-w", "-l"])
            .arg(root.join("log"))
            .arg("-o")
            .arg(options)
            .arg("-D")
            .arg(&data)
            .arg("start"))?;
        let watcher = watch(as_root, &bin, &data, &root)?;
        Ok(Postgres {
            admin: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            local: Some(Local {
                data,
                bin,
                port,
                _watcher: watcher,
                root,
            }),
        })
    }

    /// A new, empty database on this server; returns its URL.
    pub fn fresh_database(&self) -> io::Result<String> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "tidings_{}_{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        self.psql(&format!("CREATE DATABASE {name}"))?;
        let (base, _) = self.admin.rsplit_once('/').expect("a URL with a database");
        Ok(format!("{base}/{name}"))
    }

    /// Runs one SQL command on the server's `postgres` database with `psql`, as the superuser.
    pub fn psql(&self, sql: &str) -> io::Result<String> {
        let out = Command::new("psql")
            .arg(&self.admin)
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql])
            .stderr(Stdio::inherit())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!("psql -c {sql:?} failed")));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The TCP port it listens on (loopback), when this process started it.
    pub fn port(&self) -> Option<u16> {
        self.local.as_ref().map(|local| local.port)
    }

    /// Stops the server this process started, at once (as a crash would: `immediate` mode),
    /// and starts it again on the same port and data; for tests of what a restart does to
    /// connections. Committed data survives, as after a crash.
    pub fn restart(&self) -> io::Result<()> {
        let local = self
            .local
            .as_ref()
            .ok_or_else(|| io::Error::other("not a server this process started"))?;
        let as_root = is_root();
        // The log file again: without it the new server would write to this process's pipes.
        run(as_postgres(as_root, &local.bin.join("pg_ctl"))
            .args(["-w", "-m", "immediate", "-l"])
            .arg(local.root.join("log"))
            .arg("-D")
            .arg(&local.data)
            .arg("restart"))
    }
}

/// The newest installed major version's `bin/` directory.
fn server_programs() -> io::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(POSTGRES_LIB)
        .map_err(|err| {
            io::Error::new(
                err.kind(),
                format!(
                    "PostgreSQL's server is not installed ({POSTGRES_LIB}: {err}); \
                     scripts/deps.sh --test installs it"
                ),
            )
        })?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major = entry.file_name().to_str()?.parse().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| io::Error::other(format!("no PostgreSQL server under {POSTGRES_LIB}")))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

/// `program`, run as the `postgres` user when this process is root.
fn as_postgres(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// A port free on loopback right now.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Starts the watcher that stops the server and removes `root` once this process is gone.
fn watch(as_root: bool, bin: &Path, data: &Path, root: &Path) -> io::Result<Child> {
    let stop = as_postgres(as_root, &bin.join("pg_ctl"));
    let mut stop_line = vec![stop.get_program().to_string_lossy().into_owned()];
    stop_line.extend(
        stop.get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    let script = format!(
        "cat >/dev/null; {} -m immediate -D \"$1\" stop >/dev/null 2>&1; rm -rf \"$2\"",
        stop_line.join(" ")
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("watcher")
        .arg(data)
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// A Redis server of this process, on a loopback port, keeping nothing on disk.
#[derive(Debug)]
pub struct Redis {
    port: u16,
    server: std::sync::Mutex<Option<(Child, Child)>>,
}

impl Redis {
    /// Starts a server; it answers `PING` before this returns.
    pub fn start() -> io::Result<Redis> {
        let redis = Redis {
            port: free_port()?,
            server: std::sync::Mutex::new(None),
        };
        redis.resume()?;
        Ok(redis)
    }

    /// `redis://` URL of the server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server at once (SIGKILL), as a crash would; [`Redis::resume`] starts it again.
    pub fn stop(&self) {
        let mut server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((mut redis, _watcher)) = server.take() {
            let _ = redis.kill();
            let _ = redis.wait();
        }
    }

    /// Starts the server (again) on the same port, empty.
    pub fn resume(&self) -> io::Result<()> {
        let mut server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        if server.is_some() {
            return Ok(());
        }
        let redis = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("redis-server: {err}; scripts/deps.sh --test installs it"),
                )
            })?;
        // The watcher kills it when this process is gone (see the crate's documentation).
        let watcher = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cat >/dev/null; kill -9 {} 2>/dev/null",
                redis.id()
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        *server = Some((redis, watcher));
        drop(server);
        // Ready when it accepts connections; bounded.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            if std::time::Instant::now() > deadline {
                return Err(io::Error::other("redis-server did not start listening"));
            }
            std::thread::yield_now();
        }
        Ok(())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
