//! The owner's administration: members (disable, enable, reset a password, promote, demote),
//! invites (made with an expiry and a use count, listed, revoked), the server's status and the
//! audit log. The HTTP handlers (`/api/admin/…`, owners only) and the `tidings-server`
//! subcommands call the same functions here; the store audits each action in the transaction
//! that does it.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use tidings_proto::v1::{
    self as proto, AdminInvite, AdminMember, AdminOverview, AuditEntry, CreateInvite,
    CreatedInvite, ErrorBody, ErrorCode, ManageMember, MemberManaged, ServerStatus,
};
use tidings_store::{self as store, InviteId, MemberAction, Role, Store, User, UserId};

use crate::account;
use crate::app::AppState;
use crate::auth::{Authed, millis};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::wire;

/// The most accounts one invite may make.
pub const MAX_INVITE_USES: u32 = 1000;
/// The longest an invite may stay valid, in hours (a year).
pub const MAX_INVITE_HOURS: u32 = 365 * 24;
/// How many audit entries the admin screen shows.
const AUDIT_SHOWN: u32 = 100;

/// How long an invite stays valid and how many it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InviteTerms {
    /// `None`: until revoked.
    pub expires_in: Option<Duration>,
    pub max_uses: u32,
}

impl Default for InviteTerms {
    /// One person, within a week: the invite the chat's "Invite people" hands out.
    fn default() -> Self {
        InviteTerms {
            expires_in: Some(account::INVITE_TTL),
            max_uses: 1,
        }
    }
}

impl InviteTerms {
    /// Terms as asked for over HTTP or on the command line, checked.
    pub fn new(expires_in_hours: Option<u32>, max_uses: u32) -> ApiResult<InviteTerms> {
        if !(1..=MAX_INVITE_USES).contains(&max_uses) {
            return Err(ApiError::new(
                ErrorCode::Invalid,
                format!("an invite admits 1 to {MAX_INVITE_USES} people"),
            ));
        }
        if expires_in_hours.is_some_and(|h| !(1..=MAX_INVITE_HOURS).contains(&h)) {
            return Err(ApiError::new(
                ErrorCode::Invalid,
                format!("an invite lasts 1 to {MAX_INVITE_HOURS} hours, or until revoked"),
            ));
        }
        Ok(InviteTerms {
            expires_in: expires_in_hours.map(|h| Duration::from_secs(u64::from(h) * 3600)),
            max_uses,
        })
    }
}

/// Makes an invite on `terms`, audited as made by `by` (`None`: the host at the command line).
/// Only the code's hash is stored; the code is in the answer, this once.
pub async fn create_invite(
    store: &Store,
    by: Option<UserId>,
    now: i64,
    terms: InviteTerms,
) -> ApiResult<(InviteId, proto::Invite)> {
    let code = crate::auth::new_invite_code();
    let expires_at = terms.expires_in.map(|ttl| now + millis(ttl));
    let id = store
        .create_invite(store::NewInvite {
            code_hash: crate::auth::invite_hash(&code),
            created_by: by,
            created_at: now,
            expires_at,
            max_uses: terms.max_uses,
        })
        .await?;
    Ok((id, proto::Invite { code, expires_at }))
}

/// What an owner asks, as the store does it; a reset's new password comes back to be shown.
pub async fn manage(
    store: &Store,
    actor: Option<UserId>,
    user: UserId,
    action: proto::MemberAction,
    now: i64,
) -> ApiResult<(store::Managed, Option<String>)> {
    let mut password = None;
    let action = match action {
        proto::MemberAction::Disable => MemberAction::Disable,
        proto::MemberAction::Enable => MemberAction::Enable,
        proto::MemberAction::Promote => MemberAction::SetRole(Role::Owner),
        proto::MemberAction::Demote => MemberAction::SetRole(Role::Member),
        proto::MemberAction::ResetPassword => {
            let new = account::generated_password();
            let password_hash = account::hash(new.clone()).await?;
            password = Some(new);
            MemberAction::ResetPassword { password_hash }
        }
    };
    let managed = store
        .manage_member(actor, user, action, now)
        .await
        .map_err(|err| match err {
            store::StoreError::NotAllowed => ApiError::new(
                ErrorCode::Forbidden,
                "an owner cannot disable, demote or reset the password of themself, and the \
                 group keeps at least one enabled owner",
            ),
            other => other.into(),
        })?;
    Ok((managed, password))
}

/// Answers 403 unless the request is an owner's.
fn owner_only(authed: &Authed) -> ApiResult<()> {
    if authed.user.role == Role::Owner {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the group's owners can administer it",
        ))
    }
}

/// Store rows as the wire has them, with the users they name.
struct Names(HashMap<UserId, User>);

impl Names {
    fn of(members: &[store::Member]) -> Names {
        Names(
            members
                .iter()
                .map(|m| (m.user.id, m.user.clone()))
                .collect(),
        )
    }

    fn user(&self, id: Option<UserId>) -> Option<proto::UserRef> {
        id.map(|id| match self.0.get(&id) {
            Some(user) => wire::user_ref(user),
            None => proto::UserRef {
                id,
                name: format!("user {id}"),
            },
        })
    }

    fn invite(&self, invite: store::Invite) -> AdminInvite {
        AdminInvite {
            id: invite.id,
            created_by: self.user(invite.created_by),
            created_at: invite.created_at,
            expires_at: invite.expires_at,
            max_uses: invite.max_uses,
            uses: invite.uses,
            last_used_at: invite.last_used_at,
            revoked_at: invite.revoked_at,
        }
    }

    fn audit(&self, entry: store::AuditEntry) -> AuditEntry {
        let role = entry.detail.as_deref().and_then(|detail| match detail {
            "owner" => Some(proto::Role::Owner),
            "member" => Some(proto::Role::Member),
            _ => None,
        });
        AuditEntry {
            id: entry.id,
            at: entry.at,
            actor: self.user(entry.actor),
            action: match entry.action {
                store::AuditAction::Disabled => proto::AuditAction::Disabled,
                store::AuditAction::Enabled => proto::AuditAction::Enabled,
                store::AuditAction::PasswordReset => proto::AuditAction::PasswordReset,
                store::AuditAction::RoleChanged => proto::AuditAction::RoleChanged,
                store::AuditAction::InviteCreated => proto::AuditAction::InviteCreated,
                store::AuditAction::InviteRevoked => proto::AuditAction::InviteRevoked,
                store::AuditAction::MessageDeleted => proto::AuditAction::MessageDeleted,
            },
            user: self.user(entry.user),
            invite: entry.invite,
            message: entry.message,
            role,
        }
    }
}

fn member(member: &store::Member) -> AdminMember {
    AdminMember {
        user: wire::user_ref(&member.user),
        role: wire::role(member.user.role),
        created_at: member.user.created_at,
        disabled_at: member.disabled_at,
        live_sessions: member.live_sessions,
        last_seen_at: member.last_seen_at,
    }
}

/// This server's status.
async fn status(state: &AppState) -> ApiResult<ServerStatus> {
    let now = state.now_ms();
    Ok(ServerStatus {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: state.started_at,
        uptime_secs: u64::try_from(now - state.started_at).unwrap_or(0) / 1000,
        database_bytes: state.store.size().await?,
        database: state.store.backend_name().to_owned(),
        connections: state
            .metrics
            .connections_by_transport()
            .into_iter()
            .map(|(transport, count)| proto::TransportConnections {
                transport: transport.to_owned(),
                count,
            })
            .collect(),
    })
}

/// Everything the admin screen shows: the server's status, the members, the latest invites and
/// the latest administrative actions.
#[utoipa::path(
    get, path = "/api/admin", tag = "admin",
    responses(
        (status = OK, description = "The group, as its owner manages it", body = AdminOverview),
        (status = FORBIDDEN, description = "Not an owner", body = ErrorBody),
    ),
)]
pub async fn overview(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<axum::Json<AdminOverview>> {
    owner_only(&authed)?;
    let members = state.store.members_for_admin(state.now_ms()).await?;
    let names = Names::of(&members);
    let invites = state.store.invites().await?;
    let audit = state.store.audit_log(AUDIT_SHOWN).await?;
    Ok(axum::Json(AdminOverview {
        status: status(&state).await?,
        members: members.iter().map(member).collect(),
        invites: invites.into_iter().map(|i| names.invite(i)).collect(),
        audit: audit.into_iter().map(|e| names.audit(e)).collect(),
    }))
}

/// Disables, enables, promotes or demotes a member, or resets their password (the new one is in
/// the answer, once). Disabling and a reset end the member's sessions at once.
#[utoipa::path(
    post, path = "/api/admin/members/{id}", tag = "admin",
    params(("id" = i64, Path, description = "The member's user id")),
    request_body = ManageMember,
    responses(
        (status = OK, description = "Done (or already so)", body = MemberManaged),
        (status = FORBIDDEN, description = "Not an owner, or an action that would leave the group without an enabled owner", body = ErrorBody),
        (status = NOT_FOUND, description = "No such member", body = ErrorBody),
    ),
)]
pub async fn manage_member(
    State(state): State<AppState>,
    authed: Authed,
    Path(user): Path<UserId>,
    Json(req): Json<ManageMember>,
) -> ApiResult<axum::Json<MemberManaged>> {
    owner_only(&authed)?;
    let now = state.now_ms();
    let (managed, password) =
        manage(&state.store, Some(authed.user.id), user, req.action, now).await?;
    tracing::info!(by = %authed.user.name, user, action = ?req.action, "member managed");
    let members = state.store.members_for_admin(now).await?;
    let managed_member = members
        .iter()
        .find(|m| m.user.id == user)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such member"))?;
    Ok(axum::Json(MemberManaged {
        member: member(managed_member),
        sessions_ended: u32::try_from(managed.revoked.len()).unwrap_or(u32::MAX),
        password,
    }))
}

/// Makes an invite with an expiry and a use count; its code is in the answer, this once.
#[utoipa::path(
    post, path = "/api/admin/invites", tag = "admin",
    request_body = CreateInvite,
    responses(
        (status = CREATED, description = "The invite and its code", body = CreatedInvite),
        (status = BAD_REQUEST, description = "Terms out of range", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an owner", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    authed: Authed,
    Json(req): Json<CreateInvite>,
) -> ApiResult<(StatusCode, axum::Json<CreatedInvite>)> {
    owner_only(&authed)?;
    let terms = InviteTerms::new(req.expires_in_hours, req.max_uses)?;
    let now = state.now_ms();
    let (id, invite) = create_invite(&state.store, Some(authed.user.id), now, terms).await?;
    let made = store::Invite {
        id,
        created_by: Some(authed.user.id),
        created_at: now,
        expires_at: invite.expires_at,
        max_uses: terms.max_uses,
        uses: 0,
        last_used_at: None,
        revoked_at: None,
    };
    let names = Names(HashMap::from([(authed.user.id, authed.user.clone())]));
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedInvite {
            invite: names.invite(made),
            code: invite.code,
        }),
    ))
}

/// Revokes an invite: nobody joins with it from now on.
#[utoipa::path(
    delete, path = "/api/admin/invites/{id}", tag = "admin",
    params(("id" = i64, Path, description = "The invite's id")),
    responses(
        (status = NO_CONTENT, description = "Revoked (or already)"),
        (status = FORBIDDEN, description = "Not an owner", body = ErrorBody),
        (status = NOT_FOUND, description = "No such invite", body = ErrorBody),
    ),
)]
pub async fn revoke(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<InviteId>,
) -> ApiResult<StatusCode> {
    owner_only(&authed)?;
    state
        .store
        .revoke_invite(Some(authed.user.id), id, state.now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
