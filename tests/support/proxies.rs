//! Real proxies from Debian's packages, each run by the test on a loopback port in a temp dir:
//! nginx as a reverse proxy in front of a server, squid as a client's forward proxy. Both start
//! hostile — as the networks the transport ladder exists for — and can be made friendly in place
//! (their configuration rewritten and reloaded), the way a network lets the WebSocket through
//! again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A free loopback port (bound and let go: the proxy takes it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits until `port` accepts connections (the proxy is up), at most 10 s.
async fn until_listening(port: u16, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("the proxy exited ({status}) before listening:\n{log}");
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not listen on {port} within 10 s"
        );
        // A child process's listening socket has no event to wait on: look again shortly.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How nginx treats the chat channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NginxMode {
    /// A plain `proxy_pass`: `Upgrade` is not passed on (the WebSocket fails) and responses are
    /// buffered, the server's `X-Accel-Buffering: no` ignored (streams are held back).
    Hostile,
    /// Passes the upgrade on and streams responses as they come.
    Friendly,
}

/// nginx in front of a server.
pub struct Nginx {
    pub port: u16,
    dir: TempDir,
    upstream: SocketAddr,
    child: Child,
}

impl Nginx {
    pub async fn start(upstream: SocketAddr, mode: NginxMode) -> Nginx {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        Nginx::write_config(dir.path(), port, upstream, mode);
        let mut child = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (Debian's nginx package; scripts/deps.sh --test installs it)");
        until_listening(port, &mut child, &dir.path().join("error.log")).await;
        Nginx {
            port,
            dir,
            upstream,
            child,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    fn write_config(dir: &Path, port: u16, upstream: SocketAddr, mode: NginxMode) {
        let config_path = dir.join("nginx.conf");
        let dir = dir.display();
        let proxying = match mode {
            NginxMode::Hostile => "\
                proxy_buffering on;\n\
                proxy_ignore_headers X-Accel-Buffering;\n"
                .to_owned(),
            NginxMode::Friendly => "\
                proxy_http_version 1.1;\n\
                proxy_set_header Upgrade $http_upgrade;\n\
                proxy_set_header Connection $connection_upgrade;\n\
                proxy_buffering off;\n"
                .to_owned(),
        };
        let config = format!(
            "worker_processes 1;\n\
             pid {dir}/nginx.pid;\n\
             error_log {dir}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
               access_log off;\n\
               client_body_temp_path {dir}/body;\n\
               proxy_temp_path {dir}/proxy;\n\
               fastcgi_temp_path {dir}/fastcgi;\n\
               uwsgi_temp_path {dir}/uwsgi;\n\
               scgi_temp_path {dir}/scgi;\n\
               map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
               server {{\n\
                 listen 127.0.0.1:{port};\n\
                 location / {{\n\
                   proxy_pass http://{upstream};\n\
                   {proxying}\
                 }}\n\
               }}\n\
             }}\n",
        );
        std::fs::write(config_path, config).expect("write nginx.conf");
    }

    /// Rewrites the configuration and has nginx reload it (new connections get the new one).
    pub fn reconfigure(&self, mode: NginxMode) {
        Nginx::write_config(self.dir.path(), self.port, self.upstream, mode);
        let status = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.config())
            .args(["-s", "reload"])
            .status()
            .expect("nginx -s reload");
        assert!(status.success(), "nginx -s reload: {status}");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How squid treats a client's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SquidMode {
    /// As shipped: plain HTTP is forwarded (without `Upgrade`), `CONNECT` only to port 443.
    Hostile,
    /// `CONNECT` allowed to any port: a WebSocket can tunnel through.
    Friendly,
}

/// squid as a forward proxy.
pub struct Squid {
    pub port: u16,
    dir: TempDir,
    child: Child,
}

impl Squid {
    pub async fn start(mode: SquidMode) -> Squid {
        let dir = tempfile::tempdir().expect("temp dir");
        // squid drops root for its own user, which must be able to write its log and pid here.
        let mut permissions = std::fs::metadata(dir.path())
            .expect("temp dir")
            .permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o777);
        std::fs::set_permissions(dir.path(), permissions).expect("chmod the temp dir");
        let port = free_port();
        Squid::write_config(dir.path(), port, mode);
        let mut child = Command::new("/usr/sbin/squid")
            .args(["-N", "-f"])
            .arg(dir.path().join("squid.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("squid (Debian's squid package; scripts/deps.sh --test installs it)");
        until_listening(port, &mut child, &dir.path().join("cache.log")).await;
        Squid { port, dir, child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("squid.conf")
    }

    fn write_config(dir: &Path, port: u16, mode: SquidMode) {
        let config_path = dir.join("squid.conf");
        let dir = dir.display();
        let connect = match mode {
            SquidMode::Hostile => "http_access deny CONNECT !SSL_ports\n",
            SquidMode::Friendly => "",
        };
        let config = format!(
            "http_port 127.0.0.1:{port}\n\
             acl SSL_ports port 443\n\
             acl CONNECT method CONNECT\n\
             {connect}\
             http_access allow localhost\n\
             http_access deny all\n\
             cache deny all\n\
             access_log none\n\
             cache_log {dir}/cache.log\n\
             pid_filename {dir}/squid.pid\n\
             coredump_dir {dir}\n\
             shutdown_lifetime 0 seconds\n",
        );
        std::fs::write(config_path, config).expect("write squid.conf");
    }

    /// Rewrites the configuration and has squid reload it.
    pub fn reconfigure(&self, mode: SquidMode) {
        Squid::write_config(self.dir.path(), self.port, mode);
        let status = Command::new("/usr/sbin/squid")
            .args(["-k", "reconfigure", "-f"])
            .arg(self.config())
            .status()
            .expect("squid -k reconfigure");
        assert!(status.success(), "squid -k reconfigure: {status}");
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
