//! Who is asking: session tokens, password hashes, invite codes, and the extractor that turns a
//! request's `Authorization: Bearer` header or session cookie into an [`Authed`] user.
//!
//! Tokens are 32 random bytes; the store keeps only their SHA-256 (a fast hash is right for
//! high-entropy secrets: there is nothing to brute-force). Passwords are hashed with argon2id.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum_extra::extract::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{Rng, RngExt};
use sha2::{Digest, Sha256};
use tidings_proto::v1::{CSRF_HEADER, ErrorCode, SESSION_COOKIE, SessionState, SessionStatus};
use tidings_store::{Millis, Session, SessionId, User};

use crate::app::AppState;
use crate::config::SessionConfig;
use crate::error::ApiError;

/// A fresh session token: 256 random bits, URL-safe.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a token (or of an invite code).
pub fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Characters of invite codes: lowercase, without the ones people confuse (0/o, 1/l/i).
const INVITE_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A one-time invite code people can read aloud: `xxxx-xxxx-xxxx-xxxx` (about 79 bits).
pub fn new_invite_code() -> String {
    let mut rng = rand::rng();
    let mut code = String::with_capacity(19);
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            code.push('-');
        }
        let pick = rng.random_range(0..INVITE_ALPHABET.len());
        code.push(INVITE_ALPHABET[pick] as char);
    }
    code
}

/// The hash of an invite code as typed: case, spaces and dashes do not matter.
pub fn invite_hash(code: &str) -> [u8; 32] {
    let normalized: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    secret_hash(&normalized)
}

/// Hashes a password with argon2id and a random salt. Slow on purpose: call from a blocking task.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(ApiError::internal)
}

/// Checks a password against a stored hash. Slow on purpose: call from a blocking task.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// The hash compared against when a user name does not exist, so that a login for an unknown name
/// takes as long as one with a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password").unwrap_or_default())
}

/// Where `session` stands at `now` under `config`.
pub fn session_status(session: &Session, now: Millis, config: &SessionConfig) -> SessionStatus {
    let idle_expires_at = session.last_seen_at + millis(config.idle_timeout);
    let deadline = session.expires_at.min(idle_expires_at);
    let state = if session.revoked_at.is_some() {
        SessionState::Revoked
    } else if now >= deadline {
        SessionState::Expired
    } else if deadline - now <= millis(config.expiring_warning) {
        SessionState::Expiring
    } else {
        SessionState::Active
    };
    SessionStatus {
        state,
        now,
        expires_at: session.expires_at,
        idle_expires_at,
    }
}

pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A request made by a logged-in user with a live session.
#[derive(Debug, Clone)]
pub struct Authed {
    pub user: User,
    pub session: Session,
}

/// Like [`Authed`], but the request does not count as activity: the session feed polls by itself,
/// and must not keep an idle session alive.
#[derive(Debug, Clone)]
pub struct Passive(pub Authed);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let by_cookie = matches!(token_of(&parts.headers), Some((_, true)));
        let csrf_missing = by_cookie && !safe && !parts.headers.contains_key(CSRF_HEADER);
        // The origin first (inside), then the header: a foreign origin is told so, whatever else.
        let authed = authenticate(&parts.headers, state, !csrf_missing).await?;
        if csrf_missing {
            // A cross-site form can post with the user's cookie (where SameSite does not stop
            // it) but cannot set a header; the app's own requests always do.
            return Err(ApiError::new(
                ErrorCode::CsrfHeaderRequired,
                format!("requests authenticated by the session cookie must send {CSRF_HEADER}"),
            ));
        }
        Ok(authed)
    }
}

impl FromRequestParts<AppState> for Passive {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let hash = token_hash(&parts.headers, state)?;
        let now = state.now_ms();
        let (user, session) = match state.sessions.get(&hash, now) {
            Some(found) => found,
            None => load(state, hash).await?,
        };
        live(state, user, session, false).map(Passive)
    }
}

/// The token a request carries, and whether it came from the cookie (which only a browser sends).
fn token_of(headers: &HeaderMap) -> Option<(String, bool)> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let token = value.strip_prefix("Bearer ")?.trim();
        return (!token.is_empty()).then(|| (token.to_owned(), false));
    }
    let jar = CookieJar::from_headers(headers);
    jar.get(SESSION_COOKIE)
        .map(|c| (c.value().to_owned(), true))
        .filter(|(t, _)| !t.is_empty())
}

/// Whether a cookie-authenticated request may proceed: a browser always says where the page came
/// from on WebSocket upgrades and cross-origin requests, so an Origin that is neither this server
/// nor allowlisted is a cross-site request riding on the user's cookie.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Same-origin GETs may omit it; the cookie is SameSite=Strict, so a cross-site page
        // cannot make the browser send it here.
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    !host.is_empty()
        && (origin.eq_ignore_ascii_case(&format!("http://{host}"))
            || origin.eq_ignore_ascii_case(&format!("https://{host}")))
}

/// Resolves the request's token to a live session and its user. `touch` records the request as
/// activity (at most every few seconds per session, to keep writes rare).
pub async fn authenticate(
    headers: &HeaderMap,
    state: &AppState,
    touch: bool,
) -> Result<Authed, ApiError> {
    let hash = token_hash(headers, state)?;
    let (user, session) = load(state, hash).await?;
    live(state, user, session, touch)
}

/// The hash of the request's token, once the token is there and, from a cookie, the origin is
/// allowed.
fn token_hash(headers: &HeaderMap, state: &AppState) -> Result<[u8; 32], ApiError> {
    let (token, from_cookie) = token_of(headers).ok_or_else(ApiError::unauthorized)?;
    if from_cookie && !origin_allowed(headers, &state.config.allowed_origins) {
        return Err(ApiError::new(
            ErrorCode::OriginNotAllowed,
            "this origin may not use the session cookie",
        ));
    }
    Ok(secret_hash(&token))
}

/// The session of a token hash and its user, read from the store (and kept in the cache).
async fn load(state: &AppState, hash: [u8; 32]) -> Result<(User, Session), ApiError> {
    let revision = state.sessions.revision();
    let found = match state.store.session_by_token_hash(&hash).await? {
        Some(session) => state
            .store
            .user(session.user_id)
            .await?
            .map(|user| (user, session)),
        None => None,
    };
    let (user, session) = found.ok_or_else(ApiError::unauthorized)?;
    state
        .sessions
        .put(hash, &user, &session, state.now_ms(), revision);
    Ok((user, session))
}

/// The request's user, if its session is neither expired nor revoked.
fn live(state: &AppState, user: User, session: Session, touch: bool) -> Result<Authed, ApiError> {
    let status = session_status(&session, state.now_ms(), &state.config.session);
    if matches!(status.state, SessionState::Expired | SessionState::Revoked) {
        return Err(ApiError::unauthorized());
    }
    let mut session = session;
    if touch {
        self::touch(state, &mut session);
    }
    Ok(Authed { user, session })
}

/// Sessions read moments ago, for the requests that come back again and again without being
/// activity ([`Passive`]: a long-poll every few seconds, a stream reopened, the feed's
/// reconnects). A thousand long-polls answered at once come back at once, and each would
/// otherwise read its session and user from the store while the rest of the answers are still
/// going out.
///
/// An entry is used for [`SessionCache::KEPT_FOR`] after it was read, and forgotten as soon as
/// this server revokes its session ([`AppState::lock_session`]); a revocation written to the
/// store by anything else is seen within that time. Everything else — requests that act, the
/// chat channel — reads the store each time.
#[derive(Debug, Default)]
pub struct SessionCache {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_hash: HashMap<[u8; 32], Cached>,
    /// Counts the sessions forgotten: a read that began before one was forgotten may have seen
    /// it still live, and is not kept.
    revision: u64,
}

#[derive(Debug, Clone)]
struct Cached {
    user: User,
    session: Session,
    read_at: Millis,
}

impl SessionCache {
    /// How long an entry is used after it was read.
    pub const KEPT_FOR: Millis = 1_000;
    /// Past this many entries, the stale ones are dropped (and, if none is, all of them).
    const MOST: usize = 100_000;

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Taken before a store read whose result is to be kept ([`Self::put`]).
    pub fn revision(&self) -> u64 {
        self.entries().revision
    }

    /// The session and user of a token hash, if read less than [`Self::KEPT_FOR`] before `now`.
    pub fn get(&self, hash: &[u8; 32], now: Millis) -> Option<(User, Session)> {
        let entries = self.entries();
        let cached = entries.by_hash.get(hash)?;
        (now - cached.read_at < Self::KEPT_FOR && now >= cached.read_at)
            .then(|| (cached.user.clone(), cached.session.clone()))
    }

    /// Keeps what was just read for a token hash, unless a session was forgotten since the
    /// read began (`revision`, from [`Self::revision`]): the read may predate a revocation.
    pub fn put(&self, hash: [u8; 32], user: &User, session: &Session, now: Millis, revision: u64) {
        let mut entries = self.entries();
        if entries.revision != revision {
            return;
        }
        let by_hash = &mut entries.by_hash;
        if by_hash.len() >= Self::MOST {
            by_hash.retain(|_, cached| now - cached.read_at < Self::KEPT_FOR);
            if by_hash.len() >= Self::MOST {
                by_hash.clear();
            }
        }
        let cached = Cached {
            user: user.clone(),
            session: session.clone(),
            read_at: now,
        };
        by_hash.insert(hash, cached);
    }

    /// Forgets a session that has ended, and any read of it still under way.
    pub fn forget(&self, session: SessionId) {
        let mut entries = self.entries();
        entries.revision += 1;
        entries
            .by_hash
            .retain(|_, cached| cached.session.id != session);
    }
}

/// Records activity on `session` unless it was recorded moments ago; the write happens in the
/// background and `session.last_seen_at` is updated in place.
pub fn touch(state: &AppState, session: &mut Session) {
    let now = state.now_ms();
    if now - session.last_seen_at < touch_every(&state.config.session) {
        return;
    }
    session.last_seen_at = now;
    let store = state.store.clone();
    let id = session.id;
    state.tasks.spawn(async move {
        if let Err(err) = store.touch_session(id, now).await {
            tracing::warn!(%err, session = id, "could not record session activity");
        }
    });
}

/// How stale `last_seen_at` may get before a request refreshes it: a tenth of the idle timeout,
/// at most a minute. The idle deadline is therefore at most that much early.
fn touch_every(config: &SessionConfig) -> i64 {
    millis(config.idle_timeout / 10).min(60_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use tidings_store::Role;

    fn session(last_seen_at: Millis, expires_at: Millis, revoked: bool) -> Session {
        Session {
            id: 1,
            user_id: 1,
            device: "test".into(),
            created_at: 0,
            last_seen_at,
            expires_at,
            revoked_at: revoked.then_some(1),
        }
    }

    fn config() -> SessionConfig {
        SessionConfig {
            lifetime: Duration::from_secs(1000),
            idle_timeout: Duration::from_secs(100),
            expiring_warning: Duration::from_secs(10),
            feed_interval: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_session_cache_keeps_an_entry_for_a_second_and_forgets_an_ended_session_at_once() {
        let cache = SessionCache::default();
        let user = User {
            id: 1,
            name: "ana".into(),
            role: Role::Member,
            created_at: 0,
        };
        let (one, two) = ([1u8; 32], [2u8; 32]);
        let mut other = session(0, 1_000_000, false);
        other.id = 2;
        let revision = cache.revision();
        cache.put(one, &user, &session(0, 1_000_000, false), 5_000, revision);
        cache.put(two, &user, &other, 5_000, revision);
        assert_eq!(cache.get(&one, 5_000).map(|(_, s)| s.id), Some(1));
        let last = 5_000 + SessionCache::KEPT_FOR - 1;
        assert_eq!(
            cache.get(&one, last).map(|(u, _)| u.name),
            Some("ana".into())
        );
        assert!(cache.get(&one, 5_000 + SessionCache::KEPT_FOR).is_none());
        // A clock that went back does not make an entry young.
        assert!(cache.get(&one, 4_000).is_none());
        assert!(cache.get(&[3u8; 32], 5_000).is_none());
        cache.forget(1);
        assert!(cache.get(&one, 5_000).is_none());
        assert_eq!(cache.get(&two, 5_000).map(|(_, s)| s.id), Some(2));
        // A read that began before the revocation is not kept: it may have seen it live.
        cache.put(one, &user, &session(0, 1_000_000, false), 5_000, revision);
        assert!(cache.get(&one, 5_000).is_none());
        let revision = cache.revision();
        cache.put(one, &user, &session(0, 1_000_000, false), 5_000, revision);
        assert!(cache.get(&one, 5_000).is_some());
    }

    #[test]
    fn session_states_follow_both_deadlines() {
        let c = config();
        let s = session(0, 1_000_000, false);
        assert_eq!(session_status(&s, 0, &c).state, SessionState::Active);
        assert_eq!(session_status(&s, 95_000, &c).state, SessionState::Expiring);
        assert_eq!(session_status(&s, 100_000, &c).state, SessionState::Expired);
        let s = session(990_000, 1_000_000, false);
        assert_eq!(
            session_status(&s, 995_000, &c).state,
            SessionState::Expiring
        );
        assert_eq!(
            session_status(&s, 1_000_000, &c).state,
            SessionState::Expired
        );
        let s = session(0, 1_000_000, true);
        assert_eq!(session_status(&s, 0, &c).state, SessionState::Revoked);
    }

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_long() {
        let a = new_token();
        assert_ne!(a, new_token());
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
    }

    #[test]
    fn invite_codes_survive_sloppy_typing() {
        let code = new_invite_code();
        assert_eq!(code.len(), 19);
        let sloppy = code.to_uppercase().replace('-', " ");
        assert_eq!(invite_hash(&code), invite_hash(&sloppy));
        assert_ne!(invite_hash(&code), invite_hash(&new_invite_code()));
    }

    #[test]
    fn origins_are_checked_against_host_and_allowlist() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("chat.example:7878"));
        assert!(origin_allowed(&h, &[]), "no Origin header");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://chat.example:7878"),
        );
        assert!(origin_allowed(&h, &[]), "same origin");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!origin_allowed(&h, &[]), "cross origin");
        assert!(
            origin_allowed(&h, &["https://evil.example".into()]),
            "allowlisted"
        );
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!origin_allowed(&h, &[]), "opaque origin");
    }
}
