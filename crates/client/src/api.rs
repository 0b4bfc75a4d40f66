//! The server's HTTP API, typed. One [`Api`] per server; the token is passed per call so a
//! locked client can never send a stale one by accident.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use rustls::ClientConfig;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tidings_proto::v1::{
    AdminOverview, CreateInvite, CreatedInvite, ManageMember, MemberAction, MemberManaged, UserId,
};
use tidings_proto::v1::{
    Attachment, CreateRoom, EditMessage, ErrorBody, ErrorCode, HistoryPage, Invite, LoginRequest,
    LoginResponse, Me, Message, MessageId, OpenDm, ReadMarker, RegisterRequest, Revoked, Room,
    RoomId, RoomState, SearchResults, SendMessage, SessionId, SessionInfo, TRANSPORTS_PATH,
    Transports, UserRef,
};

use crate::error::ClientError;
use crate::tls::Trust;

/// The body of a successful response (empty for 204); an error's body as the error it says.
async fn answer(response: reqwest::Response) -> Result<Bytes, ClientError> {
    let status = response.status();
    let bytes = response.bytes().await?;
    if status == StatusCode::NO_CONTENT {
        return Ok(Bytes::new());
    }
    if status.is_success() {
        return Ok(bytes);
    }
    let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| {
        ErrorBody::new(
            ErrorCode::Unknown,
            format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
        )
    });
    if body.code == ErrorCode::Unauthorized {
        return Err(ClientError::Locked);
    }
    Err(ClientError::Server(body))
}

/// How much of an upload goes out between two progress reports.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// How long one HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    /// For responses that last (the chat's HTTP streams): no overall timeout, only one between
    /// reads.
    streaming: reqwest::Client,
    base: String,
    /// The forward proxy requests to `base` go through, if any.
    proxy: Option<String>,
    /// Which certificates `base` may show, for every connection to it.
    trust: Trust,
}

/// The proxy `env` names for `base` (`HTTPS_PROXY` for https, `HTTP_PROXY` for http, either
/// case), unless `NO_PROXY` covers its host (`*`, the host, or a domain it ends in).
fn proxy_from_env(base: &str, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let https = base.starts_with("https://");
    let names: [&str; 2] = if https {
        ["HTTPS_PROXY", "https_proxy"]
    } else {
        ["HTTP_PROXY", "http_proxy"]
    };
    let proxy = names
        .iter()
        .find_map(|name| env(name))
        .filter(|p| !p.trim().is_empty())?;
    let authority = base.split("://").nth(1).unwrap_or(base);
    let authority = authority.split('/').next().unwrap_or(authority);
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let no_proxy = ["NO_PROXY", "no_proxy"]
        .iter()
        .find_map(|name| env(name))
        .unwrap_or_default();
    let bypassed = no_proxy.split(',').map(str::trim).any(|entry| {
        let domain = entry.trim_start_matches('.');
        entry == "*"
            || (!domain.is_empty()
                && (host.eq_ignore_ascii_case(domain)
                    || host
                        .to_ascii_lowercase()
                        .ends_with(&format!(".{}", domain.to_ascii_lowercase()))))
    });
    (!bypassed).then_some(proxy)
}

/// Normalizes a server URL: `http(s)://host[:port][/prefix]`, no trailing slash.
pub fn normalize_server_url(url: &str) -> Result<String, ClientError> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            ClientError::BadUrl(format!("{url:?} must start with http:// or https://"))
        })?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(ClientError::BadUrl(format!("{url:?} has no host")));
    }
    Ok(url.to_owned())
}

impl Api {
    /// The API of `server`, through `proxy` when given, else through the proxy the environment
    /// names for it (`HTTP_PROXY`/`HTTPS_PROXY`, minus `NO_PROXY`), if any. Over `https://` the
    /// server's certificate must chain to the system's roots, or be the one whose fingerprint is
    /// `pinned` (see `tls`).
    pub fn new(
        server: &str,
        proxy: Option<&str>,
        pinned: Option<String>,
    ) -> Result<Api, ClientError> {
        let base = normalize_server_url(server)?;
        let trust = Trust::new(pinned)?;
        let protocol = |e: reqwest::Error| ClientError::Protocol(e.to_string());
        let mut http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .use_preconfigured_tls(ClientConfig::clone(&trust.config()));
        let mut streaming = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(60))
            .use_preconfigured_tls(ClientConfig::clone(&trust.config()));
        // Without one given, reqwest reads the same environment itself.
        if let Some(proxy) = proxy {
            http = http.proxy(reqwest::Proxy::all(proxy).map_err(protocol)?);
            streaming = streaming.proxy(reqwest::Proxy::all(proxy).map_err(protocol)?);
        }
        let proxy = match proxy {
            Some(proxy) => Some(proxy.to_owned()),
            None => proxy_from_env(&base, |name| std::env::var(name).ok()),
        };
        Ok(Api {
            http: http.build().map_err(protocol)?,
            streaming: streaming.build().map_err(protocol)?,
            base,
            proxy,
            trust,
        })
    }

    /// What every connection to this server is made with over TLS.
    pub(crate) fn tls(&self) -> Arc<ClientConfig> {
        self.trust.config()
    }

    /// The error a connection's failure is: [`ClientError::UntrustedCertificate`] when it failed
    /// because the server showed a certificate this client does not believe.
    pub(crate) fn refused(&self) -> Option<ClientError> {
        self.trust
            .take_refused()
            .map(|refused| ClientError::UntrustedCertificate {
                server: self.base.clone(),
                fingerprint: refused.fingerprint,
                reason: refused.reason,
                pinned: self.trust.pinned().map(str::to_owned),
            })
    }

    /// Whether a connection to this server failed on its certificate (left for [`Api::refused`]).
    pub(crate) fn has_refused(&self) -> bool {
        self.trust.has_refused()
    }

    /// A request's failure as the error to tell: which certificate, when that was it.
    fn failed(&self, err: reqwest::Error) -> ClientError {
        self.refused().unwrap_or_else(|| err.into())
    }

    /// The forward proxy for this server, as a URL (`http://host:port`).
    pub(crate) fn proxy(&self) -> Option<&str> {
        self.proxy.as_deref()
    }

    /// `host:port` of the server, for a proxy's `CONNECT`.
    pub(crate) fn authority(&self) -> String {
        let (rest, port) = match self.base.strip_prefix("https://") {
            Some(rest) => (rest, 443),
            None => (self.base.trim_start_matches("http://"), 80),
        };
        let host = rest.split('/').next().unwrap_or(rest);
        if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_owned()
        } else {
            format!("{host}:{port}")
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The HTTP client for requests with an answer (polls set their own timeout). Both clients
    /// go through `HTTP_PROXY`/`HTTPS_PROXY` when the environment names one.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn streaming(&self) -> &reqwest::Client {
        &self.streaming
    }

    /// What the server offers for carrying the chat channel.
    pub async fn transports(&self) -> Result<Transports, ClientError> {
        self.call(Method::GET, TRANSPORTS_PATH, None, None).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&(dyn ErasedJson + Sync)>,
    ) -> Result<T, ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_json());
        }
        let bytes = answer(request.send().await.map_err(|e| self.failed(e))?).await?;
        let bytes = if bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes[..]
        };
        serde_json::from_slice(bytes).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Uploads `bytes` to `room` as the file `name`, calling `progress(sent, total)` as the
    /// body goes out. Dropping the future cancels the upload: the server keeps nothing of it.
    pub async fn upload(
        &self,
        token: &str,
        room: RoomId,
        name: &str,
        content_type: &str,
        bytes: Bytes,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<Attachment, ClientError> {
        let total = bytes.len() as u64;
        let mut sent = 0;
        let chunks = futures_util::stream::iter(
            (0..bytes.len())
                .step_by(UPLOAD_CHUNK)
                .map(move |at| bytes.slice(at..bytes.len().min(at + UPLOAD_CHUNK))),
        )
        .map(move |chunk| {
            sent += chunk.len() as u64;
            progress(sent, total);
            Ok::<_, std::io::Error>(chunk)
        });
        let name = utf8_percent_encode(name, NON_ALPHANUMERIC);
        let request = self
            .streaming
            .post(format!(
                "{}/api/rooms/{room}/attachments?name={name}",
                self.base
            ))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(reqwest::header::CONTENT_LENGTH, total)
            .body(reqwest::Body::wrap_stream(chunks));
        let answer = answer(request.send().await.map_err(|e| self.failed(e))?).await?;
        serde_json::from_slice(&answer).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// The bytes of attachment `id`, or of its thumbnail.
    pub async fn download(
        &self,
        token: &str,
        id: &str,
        thumbnail: bool,
    ) -> Result<Bytes, ClientError> {
        let id = utf8_percent_encode(id, NON_ALPHANUMERIC);
        let suffix = if thumbnail { "/thumbnail" } else { "" };
        let request = self
            .streaming
            .get(format!("{}/api/attachments/{id}{suffix}", self.base))
            .bearer_auth(token);
        answer(request.send().await.map_err(|e| self.failed(e))?).await
    }

    pub async fn login(
        &self,
        name: &str,
        password: &str,
        device: &str,
    ) -> Result<LoginResponse, ClientError> {
        let body = LoginRequest {
            name: name.into(),
            password: password.into(),
            device: Some(device.into()),
        };
        self.call(Method::POST, "/api/login", None, Some(&body))
            .await
    }

    pub async fn register(
        &self,
        invite: &str,
        name: &str,
        password: &str,
        device: &str,
    ) -> Result<LoginResponse, ClientError> {
        let body = RegisterRequest {
            invite: invite.into(),
            name: name.into(),
            password: password.into(),
            device: Some(device.into()),
        };
        self.call(Method::POST, "/api/register", None, Some(&body))
            .await
    }

    pub async fn logout(&self, token: &str) -> Result<(), ClientError> {
        self.call::<Option<()>>(Method::POST, "/api/logout", Some(token), None)
            .await
            .map(|_| ())
    }

    pub async fn me(&self, token: &str) -> Result<Me, ClientError> {
        self.call(Method::GET, "/api/me", Some(token), None).await
    }

    pub async fn users(&self, token: &str) -> Result<Vec<UserRef>, ClientError> {
        self.call(Method::GET, "/api/users", Some(token), None)
            .await
    }

    pub async fn members(&self, token: &str, room: RoomId) -> Result<Vec<UserRef>, ClientError> {
        let path = format!("/api/rooms/{room}/members");
        self.call(Method::GET, &path, Some(token), None).await
    }

    pub async fn rooms(&self, token: &str) -> Result<Vec<RoomState>, ClientError> {
        self.call(Method::GET, "/api/rooms", Some(token), None)
            .await
    }

    pub async fn directory(&self, token: &str) -> Result<Vec<Room>, ClientError> {
        self.call(Method::GET, "/api/rooms/directory", Some(token), None)
            .await
    }

    pub async fn create_room(&self, token: &str, name: &str) -> Result<RoomState, ClientError> {
        let body = CreateRoom { name: name.into() };
        self.call(Method::POST, "/api/rooms", Some(token), Some(&body))
            .await
    }

    pub async fn open_dm(&self, token: &str, user: &str) -> Result<RoomState, ClientError> {
        let body = OpenDm { user: user.into() };
        self.call(Method::POST, "/api/dms", Some(token), Some(&body))
            .await
    }

    pub async fn join(&self, token: &str, room: RoomId) -> Result<RoomState, ClientError> {
        self.call(
            Method::POST,
            &format!("/api/rooms/{room}/join"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn leave(&self, token: &str, room: RoomId) -> Result<(), ClientError> {
        self.call::<Option<()>>(
            Method::POST,
            &format!("/api/rooms/{room}/leave"),
            Some(token),
            None,
        )
        .await
        .map(|_| ())
    }

    pub async fn history(
        &self,
        token: &str,
        room: RoomId,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<HistoryPage, ClientError> {
        let mut path = format!("/api/rooms/{room}/messages?limit={limit}");
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        self.call(Method::GET, &path, Some(token), None).await
    }

    /// Searches the user's rooms (or `room`) for what was typed, older than `before` when set.
    pub async fn search(
        &self,
        token: &str,
        typed: &str,
        room: Option<RoomId>,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<SearchResults, ClientError> {
        let q = utf8_percent_encode(typed, NON_ALPHANUMERIC);
        let mut path = format!("/api/search?q={q}&limit={limit}");
        if let Some(room) = room {
            path.push_str(&format!("&room={room}"));
        }
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        self.call(Method::GET, &path, Some(token), None).await
    }

    pub async fn send(
        &self,
        token: &str,
        room: RoomId,
        client_id: &str,
        body: &str,
    ) -> Result<Message, ClientError> {
        let body = SendMessage {
            client_id: Some(client_id.into()),
            body: body.into(),
            reply_to: None,
            attachments: Vec::new(),
        };
        self.call(
            Method::POST,
            &format!("/api/rooms/{room}/messages"),
            Some(token),
            Some(&body),
        )
        .await
    }

    pub async fn mark_read(
        &self,
        token: &str,
        room: RoomId,
        message_id: MessageId,
    ) -> Result<ReadMarker, ClientError> {
        let body = ReadMarker { message_id };
        self.call(
            Method::POST,
            &format!("/api/rooms/{room}/read"),
            Some(token),
            Some(&body),
        )
        .await
    }

    /// Gives one's own message a new body; answers the message as it now is.
    pub async fn edit_message(
        &self,
        token: &str,
        message_id: MessageId,
        body: &str,
    ) -> Result<Message, ClientError> {
        let body = EditMessage {
            body: body.to_owned(),
        };
        let path = format!("/api/messages/{message_id}");
        self.call(Method::PATCH, &path, Some(token), Some(&body))
            .await
    }

    /// Deletes a message (one's own, or as an owner anyone's).
    pub async fn delete_message(
        &self,
        token: &str,
        message_id: MessageId,
    ) -> Result<Message, ClientError> {
        let path = format!("/api/messages/{message_id}");
        self.call(Method::DELETE, &path, Some(token), None).await
    }

    /// Adds (`on`) or takes back one's reaction `emoji` to a message.
    pub async fn react(
        &self,
        token: &str,
        message_id: MessageId,
        emoji: &str,
        on: bool,
    ) -> Result<Message, ClientError> {
        let emoji = utf8_percent_encode(emoji, NON_ALPHANUMERIC);
        let path = format!("/api/messages/{message_id}/reactions/{emoji}");
        let method = if on { Method::PUT } else { Method::DELETE };
        self.call(method, &path, Some(token), None).await
    }

    pub async fn sessions(&self, token: &str) -> Result<Vec<SessionInfo>, ClientError> {
        self.call(Method::GET, "/api/sessions", Some(token), None)
            .await
    }

    pub async fn revoke(&self, token: &str, session: SessionId) -> Result<(), ClientError> {
        self.call::<Option<()>>(
            Method::DELETE,
            &format!("/api/sessions/{session}"),
            Some(token),
            None,
        )
        .await
        .map(|_| ())
    }

    pub async fn revoke_others(&self, token: &str) -> Result<Revoked, ClientError> {
        self.call(Method::DELETE, "/api/sessions", Some(token), None)
            .await
    }

    pub async fn invite(&self, token: &str) -> Result<Invite, ClientError> {
        self.call(Method::POST, "/api/invites", Some(token), None)
            .await
    }

    pub async fn admin(&self, token: &str) -> Result<AdminOverview, ClientError> {
        self.call(Method::GET, "/api/admin", Some(token), None)
            .await
    }

    pub async fn manage_member(
        &self,
        token: &str,
        user: UserId,
        action: MemberAction,
    ) -> Result<MemberManaged, ClientError> {
        let path = format!("/api/admin/members/{user}");
        let body = ManageMember { action };
        self.call(Method::POST, &path, Some(token), Some(&body))
            .await
    }

    pub async fn create_invite(
        &self,
        token: &str,
        terms: &CreateInvite,
    ) -> Result<CreatedInvite, ClientError> {
        self.call(Method::POST, "/api/admin/invites", Some(token), Some(terms))
            .await
    }

    pub async fn revoke_invite(&self, token: &str, invite: i64) -> Result<(), ClientError> {
        let path = format!("/api/admin/invites/{invite}");
        self.call::<Option<()>>(Method::DELETE, &path, Some(token), None)
            .await
            .map(|_| ())
    }
}

/// A request body, whatever its type (keeps `call` non-generic over bodies).
trait ErasedJson {
    fn to_json(&self) -> Vec<u8>;
}

impl<T: Serialize> ErasedJson for T {
    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_the_proxy_unless_no_proxy_covers_the_host() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let proxied = env(&[("HTTP_PROXY", "http://proxy:3128")]);
        assert_eq!(
            proxy_from_env("http://chat.example:7878", proxied).as_deref(),
            Some("http://proxy:3128")
        );
        let https_only = env(&[("https_proxy", "http://proxy:3128")]);
        assert_eq!(proxy_from_env("http://chat.example", https_only), None);
        let bypass = env(&[
            ("HTTP_PROXY", "http://proxy:3128"),
            ("NO_PROXY", "localhost, .example"),
        ]);
        assert_eq!(proxy_from_env("http://chat.example:7878", bypass), None);
        let other = env(&[
            ("HTTP_PROXY", "http://proxy:3128"),
            ("NO_PROXY", "localhost"),
        ]);
        assert!(proxy_from_env("http://chat.example", other).is_some());
    }

    #[test]
    fn server_urls_are_checked_and_normalized() {
        assert_eq!(
            normalize_server_url(" http://127.0.0.1:7878/ ").unwrap(),
            "http://127.0.0.1:7878"
        );
        assert!(normalize_server_url("127.0.0.1:7878").is_err());
        assert!(normalize_server_url("ftp://x").is_err());
        assert!(normalize_server_url("http://").is_err());
    }
}
