//! Accounts and sessions: registration with an invite, login and logout, the sessions list and
//! revocation, invites. Also the account operations the `tidings-server` command runs directly on
//! a data dir.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tidings_proto::v1::{
    self as proto, ErrorBody, ErrorCode, LoginRequest, LoginResponse, Me, RegisterRequest, Revoked,
    SESSION_COOKIE, SessionInfo, UserRef,
};
use tidings_store::{Role, SessionId, Store, User, UserId};

use crate::app::AppState;
use crate::auth::{self, Authed, millis};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::wire;

/// Longest user name.
pub const MAX_NAME_LEN: usize = 32;
/// Shortest password accepted for a new account, in characters.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// How long an invite code stays valid.
pub const INVITE_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Checks a user or room name: 1–32 characters of letters, digits, `_`, `.`, `-`, so that
/// `@name` mentions can find it.
pub fn validate_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !name.ends_with('.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Invalid,
            "names are 1-32 letters, digits, '_', '.' or '-'",
        ))
    }
}

fn validate_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::new(
            ErrorCode::Invalid,
            format!("passwords are at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    Ok(())
}

fn device_label(device: Option<String>) -> String {
    let device = device.unwrap_or_default();
    let device: String = device.trim().chars().take(64).collect();
    if device.is_empty() {
        "unknown device".to_owned()
    } else {
        device
    }
}

/// Hashes on the blocking pool: argon2 takes tens of milliseconds of CPU by design.
pub(crate) async fn hash(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password)).await?
}

/// Creates a user (the owner at `init`, or a member added by the host), created at `now`.
pub async fn add_user(
    store: &Store,
    name: &str,
    password: &str,
    role: Role,
    now: i64,
) -> ApiResult<User> {
    validate_name(name)?;
    validate_password(password)?;
    let hash = hash(password.to_owned()).await?;
    Ok(store.create_user(name, &hash, role, now).await?)
}

/// The room a new group starts with; everyone who joins the group is in it.
pub const GENERAL: &str = "general";

/// Starts a group: its owner, and `#general` with the owner in it (everyone made later joins
/// it too), so the first person in finds somewhere to talk.
pub async fn found_group(store: &Store, owner: &str, password: &str, now: i64) -> ApiResult<User> {
    let owner = add_user(store, owner, password, Role::Owner, now).await?;
    store.create_everyone_room(GENERAL, owner.id, now).await?;
    Ok(owner)
}

/// Over TLS the session cookie is sent back only over TLS.
fn secure_attribute(state: &AppState) -> &'static str {
    if state.config.tls_cert.is_some() {
        "; Secure"
    } else {
        ""
    }
}

/// Starts a session and answers with its token, also as an HttpOnly cookie for browsers.
async fn start_session(state: &AppState, user: User, device: String) -> ApiResult<Response> {
    let token = auth::new_token();
    let now = state.now_ms();
    let expires_at = now + millis(state.config.session.lifetime);
    let session = state
        .store
        .create_session(user.id, auth::secret_hash(&token), &device, now, expires_at)
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        state.config.session.lifetime.as_secs(),
        secure_attribute(state)
    );
    let body = LoginResponse {
        token,
        user: wire::user_ref(&user),
        role: wire::role(user.role),
        session: wire::session_info(&session, session.id),
    };
    Ok(([(header::SET_COOKIE, cookie)], axum::Json(body)).into_response())
}

/// Logs in with a user name and password. The token comes in the body and as the session cookie.
#[utoipa::path(
    post, path = "/api/login", tag = "accounts", security(()),
    request_body = LoginRequest,
    responses(
        (status = OK, description = "Logged in", body = LoginResponse),
        (status = UNAUTHORIZED, description = "Wrong user name or password", body = ErrorBody),
        (status = FORBIDDEN, description = "The account is disabled", body = ErrorBody),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let found = state.store.user_by_name(&req.name).await?;
    let password = req.password;
    let (found, ok) = tokio::task::spawn_blocking(move || match found {
        Some(found) => {
            let ok = auth::verify_password(&password, &found.password_hash);
            (Some(found), ok)
        }
        None => {
            // Spend the same time as a real check, so timing does not reveal which names exist.
            auth::verify_password(&password, auth::decoy_hash());
            (None, false)
        }
    })
    .await?;
    match found {
        // Told only to whoever knows the password.
        Some(found) if ok && found.disabled => Err(ApiError::new(
            ErrorCode::AccountDisabled,
            "this account is disabled; ask the group's owner",
        )),
        Some(found) if ok => start_session(&state, found.user, device_label(req.device)).await,
        _ => {
            state.metrics.logins_rejected.inc();
            Err(ApiError::new(
                ErrorCode::BadCredentials,
                "wrong user name or password",
            ))
        }
    }
}

/// Creates an account with a one-time invite code, and logs in.
#[utoipa::path(
    post, path = "/api/register", tag = "accounts", security(()),
    request_body = RegisterRequest,
    responses(
        (status = CREATED, description = "Registered and logged in", body = LoginResponse),
        (status = BAD_REQUEST, description = "A name or password that is not allowed", body = ErrorBody),
        (status = FORBIDDEN, description = "The invite code is unknown, used or expired", body = ErrorBody),
        (status = CONFLICT, description = "The name is taken", body = ErrorBody),
    ),
)]
pub async fn register(
    State(state): State<AppState>,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<Response> {
    validate_name(&req.name)?;
    validate_password(&req.password)?;
    let hash = hash(req.password).await?;
    let user = state
        .store
        .register_with_invite(
            auth::invite_hash(&req.invite),
            &req.name,
            &hash,
            state.now_ms(),
        )
        .await?;
    tracing::info!(user = %user.name, "registered with an invite");
    let mut response = start_session(&state, user, device_label(req.device)).await?;
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// Ends this session; its live connections are closed and the cookie cleared.
#[utoipa::path(
    post, path = "/api/logout", tag = "accounts",
    responses((status = NO_CONTENT, description = "Logged out")),
)]
pub async fn logout(State(state): State<AppState>, authed: Authed) -> ApiResult<Response> {
    end_session(&state, authed.user.id, authed.session.id).await?;
    let clear = format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        secure_attribute(&state)
    );
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

/// Revokes a session in the store; following the store's log, every node then closes its live
/// connections (the feed sends `lock`).
async fn end_session(state: &AppState, user: UserId, session: SessionId) -> ApiResult<bool> {
    Ok(state
        .store
        .revoke_session(user, session, state.now_ms())
        .await?)
}

/// Who is asking, with this session.
#[utoipa::path(
    get, path = "/api/me", tag = "accounts",
    responses((status = OK, description = "The user and this session", body = Me)),
)]
pub async fn me(authed: Authed) -> axum::Json<Me> {
    axum::Json(Me {
        user: wire::user_ref(&authed.user),
        role: wire::role(authed.user.role),
        session: wire::session_info(&authed.session, authed.session.id),
    })
}

/// Every user on the server.
#[utoipa::path(
    get, path = "/api/users", tag = "accounts",
    responses((status = OK, description = "The users", body = Vec<UserRef>)),
)]
pub async fn users(
    State(state): State<AppState>,
    _authed: Authed,
) -> ApiResult<axum::Json<Vec<UserRef>>> {
    let users = state.store.users().await?;
    Ok(axum::Json(users.iter().map(wire::user_ref).collect()))
}

/// The user's live sessions (neither expired nor revoked).
#[utoipa::path(
    get, path = "/api/sessions", tag = "accounts",
    responses((status = OK, description = "The live sessions", body = Vec<SessionInfo>)),
)]
pub async fn sessions(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<axum::Json<Vec<SessionInfo>>> {
    let user = authed.user.id;
    let sessions = state.store.sessions_of(user).await?;
    let now = state.now_ms();
    let live = sessions
        .iter()
        .filter(|s| {
            let status = auth::session_status(s, now, &state.config.session);
            !matches!(
                status.state,
                proto::SessionState::Expired | proto::SessionState::Revoked
            )
        })
        .map(|s| wire::session_info(s, authed.session.id))
        .collect();
    Ok(axum::Json(live))
}

/// Revokes one of the user's sessions; its devices lock at once.
#[utoipa::path(
    delete, path = "/api/sessions/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "The session's id")),
    responses(
        (status = NO_CONTENT, description = "Revoked"),
        (status = NOT_FOUND, description = "No such live session of this user", body = ErrorBody),
    ),
)]
pub async fn revoke(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<SessionId>,
) -> ApiResult<StatusCode> {
    if end_session(&state, authed.user.id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(ErrorCode::NotFound, "no such live session"))
    }
}

/// Revokes every session of the user but this one.
#[utoipa::path(
    delete, path = "/api/sessions", tag = "accounts",
    responses((status = OK, description = "The sessions revoked", body = Revoked)),
)]
pub async fn revoke_others(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<axum::Json<Revoked>> {
    let user = authed.user.id;
    let revoked = state
        .store
        .revoke_other_sessions(user, authed.session.id, state.now_ms())
        .await?;
    Ok(axum::Json(Revoked { revoked }))
}

/// Creates a one-time invite code (the owner only); it is shown once.
#[utoipa::path(
    post, path = "/api/invites", tag = "accounts",
    responses(
        (status = CREATED, description = "The invite", body = proto::Invite),
        (status = FORBIDDEN, description = "Only the owner can invite", body = ErrorBody),
    ),
)]
pub async fn invite(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<(StatusCode, axum::Json<proto::Invite>)> {
    if authed.user.role != Role::Owner {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the server's owner can invite",
        ));
    }
    let (_, invite) = crate::admin::create_invite(
        &state.store,
        Some(authed.user.id),
        state.now_ms(),
        crate::admin::InviteTerms::default(),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(invite)))
}

/// A password for an account the host did not choose one for: 16 characters from the invite
/// alphabet (about 79 bits).
pub fn generated_password() -> String {
    auth::new_invite_code()
}
