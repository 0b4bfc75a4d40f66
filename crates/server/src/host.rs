//! The `tidings-server` binary's administration commands, run by the host on the data dir (or
//! the PostgreSQL database) directly: the same operations as the admin screen (`admin`), done
//! as the host — audited with no account as the actor — and printed for a terminal.
//!
//! On SQLite these may run while the server serves: the server looks for sessions revoked by
//! another process every 2 s (`AppState::follow_outside_revocations`) and closes their
//! connections.

use anyhow::{Result, bail};
use tidings_proto::v1::MemberAction;
use tidings_server::admin::{self, InviteTerms};
use tidings_server::{ApiError, Clock};
use tidings_store::{AuditAction, Role, Store, User};

use crate::{InviteCommand, UserCommand};

/// A point in time as people read it, to the second, in UTC.
fn when(at: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(at).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

async fn named(store: &Store, name: &str) -> Result<User> {
    match store.user_by_name(name).await? {
        Some(found) => Ok(found.user),
        None => bail!("no member named {name}"),
    }
}

/// `user list|disable|enable|reset-password|promote|demote`.
pub async fn user(store: &Store, command: UserCommand) -> Result<()> {
    let now = Clock::System.now_ms();
    let (name, action) = match command {
        UserCommand::Add { .. } => unreachable!("adding a user reads a password first"),
        UserCommand::List => {
            println!(
                "{:>5}  {:<32}  {:<6}  {:<8}  {:>8}  last seen",
                "id", "name", "role", "state", "sessions"
            );
            for member in store.members_for_admin(now).await? {
                println!(
                    "{:>5}  {:<32}  {:<6}  {:<8}  {:>8}  {}",
                    member.user.id,
                    member.user.name,
                    match member.user.role {
                        Role::Owner => "owner",
                        Role::Member => "member",
                    },
                    if member.disabled_at.is_some() {
                        "disabled"
                    } else {
                        "enabled"
                    },
                    member.live_sessions,
                    member.last_seen_at.map_or_else(|| "never".to_owned(), when),
                );
            }
            return Ok(());
        }
        UserCommand::Disable { name } => (name, MemberAction::Disable),
        UserCommand::Enable { name } => (name, MemberAction::Enable),
        UserCommand::ResetPassword { name } => (name, MemberAction::ResetPassword),
        UserCommand::Promote { name } => (name, MemberAction::Promote),
        UserCommand::Demote { name } => (name, MemberAction::Demote),
    };
    let user = named(store, &name).await?;
    let (managed, password) = admin::manage(store, None, user.id, action, now)
        .await
        .map_err(plain)?;
    let done = match action {
        MemberAction::Disable => "disabled",
        MemberAction::Enable => "enabled",
        MemberAction::ResetPassword => "has a new password",
        MemberAction::Promote => "is an owner",
        MemberAction::Demote => "is a member",
    };
    if managed.changed {
        println!("{} {done}", user.name);
    } else {
        println!("{} already {done}", user.name);
    }
    if !managed.revoked.is_empty() {
        println!("  {} sessions ended", managed.revoked.len());
    }
    if let Some(password) = password {
        println!("  New password: {password}   (shown once; hand it over)");
    }
    Ok(())
}

/// `invite [--uses N] [--hours H | --no-expiry]`: prints the new code.
pub async fn invite(store: &Store, uses: u32, hours: Option<u32>, no_expiry: bool) -> Result<()> {
    let hours = match (hours, no_expiry) {
        (_, true) => None,
        (Some(hours), false) => Some(hours),
        (None, false) => Some(7 * 24),
    };
    let terms = InviteTerms::new(hours, uses).map_err(plain)?;
    let (_, invite) = admin::create_invite(store, None, Clock::System.now_ms(), terms)
        .await
        .map_err(plain)?;
    println!("{}", invite.code);
    Ok(())
}

/// `invite list|revoke`.
pub async fn invites(store: &Store, command: InviteCommand) -> Result<()> {
    let now = Clock::System.now_ms();
    match command {
        InviteCommand::List => {
            let users = store.users().await?;
            let name = |id: Option<i64>| match id.and_then(|id| users.iter().find(|u| u.id == id)) {
                Some(user) => user.name.clone(),
                None => "(the host)".to_owned(),
            };
            println!(
                "{:>5}  {:<20}  {:<10}  {:<9}  {:<20}  state",
                "id", "made", "by", "used", "expires"
            );
            for invite in store.invites().await? {
                let state = if invite.revoked_at.is_some() {
                    "revoked"
                } else if invite.uses >= invite.max_uses {
                    "spent"
                } else if invite.expires_at.is_some_and(|at| at <= now) {
                    "expired"
                } else {
                    "usable"
                };
                println!(
                    "{:>5}  {:<20}  {:<10}  {:<9}  {:<20}  {state}",
                    invite.id,
                    when(invite.created_at),
                    name(invite.created_by),
                    format!("{} of {}", invite.uses, invite.max_uses),
                    invite.expires_at.map_or_else(|| "never".to_owned(), when),
                );
            }
            Ok(())
        }
        InviteCommand::Revoke { id } => {
            match store.revoke_invite(None, id, now).await {
                Ok(true) => println!("invite {id} revoked"),
                Ok(false) => println!("invite {id} was already revoked"),
                Err(tidings_store::StoreError::NotFound) => bail!("no invite {id}"),
                Err(err) => return Err(err.into()),
            }
            Ok(())
        }
    }
}

/// `status`: what the database holds.
pub async fn status(store: &Store) -> Result<()> {
    let now = Clock::System.now_ms();
    let members = store.members_for_admin(now).await?;
    let owners = members
        .iter()
        .filter(|m| m.user.role == Role::Owner)
        .count();
    let disabled = members.iter().filter(|m| m.disabled_at.is_some()).count();
    let sessions: u64 = members.iter().map(|m| u64::from(m.live_sessions)).sum();
    let usable = store
        .invites()
        .await?
        .iter()
        .filter(|i| {
            i.revoked_at.is_none() && i.uses < i.max_uses && i.expires_at.is_none_or(|at| at > now)
        })
        .count();
    println!("tidings-server {}", env!("CARGO_PKG_VERSION"));
    println!(
        "  database:      {}, {} bytes",
        store.backend_name(),
        store.size().await?
    );
    println!(
        "  members:       {} ({owners} owners, {disabled} disabled)",
        members.len()
    );
    println!("  live sessions: {sessions}");
    println!("  usable invites: {usable}");
    Ok(())
}

/// `audit`: the latest administrative actions, newest first.
pub async fn audit(store: &Store, limit: u32) -> Result<()> {
    let users = store.users().await?;
    let name = |id: Option<i64>| match id.and_then(|id| users.iter().find(|u| u.id == id)) {
        Some(user) => user.name.clone(),
        None if id.is_some() => format!("user {}", id.unwrap_or_default()),
        None => "(the host)".to_owned(),
    };
    for entry in store.audit_log(limit).await? {
        let what = match entry.action {
            AuditAction::Disabled => format!("disabled {}", name(entry.user)),
            AuditAction::Enabled => format!("enabled {}", name(entry.user)),
            AuditAction::PasswordReset => format!("reset the password of {}", name(entry.user)),
            AuditAction::RoleChanged => format!(
                "made {} {}",
                name(entry.user),
                entry.detail.as_deref().unwrap_or("?")
            ),
            AuditAction::InviteCreated => {
                format!("made invite {}", entry.invite.unwrap_or_default())
            }
            AuditAction::InviteRevoked => {
                format!("revoked invite {}", entry.invite.unwrap_or_default())
            }
            AuditAction::MessageDeleted => format!(
                "deleted message {} by {}",
                entry.message.unwrap_or_default(),
                name(entry.user)
            ),
        };
        println!("{}  {}  {what}", when(entry.at), name(entry.actor));
    }
    Ok(())
}

/// An API error as a command's error: its message.
fn plain(err: ApiError) -> anyhow::Error {
    anyhow::anyhow!("{err}")
}
