//! The commands the UI invokes: each a short adapter over the client core (or, for hosting, the
//! server library). No protocol and no SQL here.

use serde::Serialize;
use tauri::ipc::Channel;
use tauri::{AppHandle, State};
use tidings_client::ConnectionState;
use tidings_client::notify::NotifyLevel;
use tidings_client::store::Draft;
use tidings_proto::v1::{
    AdminOverview, CreateInvite, CreatedInvite, Me, MemberAction, MemberManaged, UserId,
};
use tidings_proto::v1::{
    Attachment, HistoryPage, Message, MessageId, Room, RoomId, RoomState, SearchResults, SessionId,
    SessionInfo, TransportKind, UserRef,
};

use crate::Desktop;
use crate::error::{CommandError, CommandResult};
use crate::host::{Host, HostInfo};
use crate::view::{UiEvent, UploadProgressEvent};

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AccountView {
    server: String,
    user: UserRef,
    locked: bool,
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AppStatus {
    account: Option<AccountView>,
    state: ConnectionState,
    hosting: Option<HostInfo>,
    dnd: bool,
}

#[tauri::command]
pub async fn status(desktop: State<'_, Desktop>) -> CommandResult<AppStatus> {
    let account = desktop.client.account().map(|a| AccountView {
        server: a.server,
        user: a.user,
        locked: a.token.is_none(),
    });
    Ok(AppStatus {
        account,
        state: desktop.client.state(),
        hosting: desktop.host_info(),
        dnd: desktop.client.do_not_disturb().await?,
    })
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Hosted {
    host: HostInfo,
    invite: String,
}

#[tauri::command]
pub async fn host_group(
    app: AppHandle,
    desktop: State<'_, Desktop>,
    owner: String,
    password: String,
    lan: bool,
) -> CommandResult<Hosted> {
    let (host, invite) = Host::create(&desktop.data_dir, &owner, &password, lan).await?;
    let info = host.info();
    desktop.client.login(&host.local, &owner, &password).await?;
    desktop.set_host(host);
    crate::tray::show_hosting(&app, &info.address);
    Ok(Hosted { host: info, invite })
}

#[tauri::command]
pub async fn join_server(
    desktop: State<'_, Desktop>,
    url: String,
    name: String,
    password: String,
    invite: Option<String>,
) -> CommandResult<UserRef> {
    let client = &desktop.client;
    Ok(match invite.filter(|i| !i.trim().is_empty()) {
        Some(invite) => client.register(&url, &invite, &name, &password).await?,
        None => client.login(&url, &name, &password).await?,
    })
}

/// Trusts `url`'s certificate by its fingerprint, once the user compared it with the host's.
#[tauri::command]
pub async fn trust_certificate(
    desktop: State<'_, Desktop>,
    url: String,
    fingerprint: String,
) -> CommandResult<()> {
    Ok(desktop.client.trust_certificate(&url, &fingerprint).await?)
}

#[tauri::command]
pub async fn rooms(desktop: State<'_, Desktop>) -> CommandResult<Vec<RoomState>> {
    let client = desktop.client.clone();
    // The cache answers now; the server's list follows as a `rooms` event.
    tokio::spawn(async move { client.refresh_rooms().await });
    Ok(desktop.client.rooms().await?)
}

#[tauri::command]
pub async fn history(
    desktop: State<'_, Desktop>,
    room: RoomId,
    before: Option<MessageId>,
    limit: u32,
    pages: Channel<HistoryPage>,
) -> CommandResult<()> {
    let cached = desktop.client.cached_history(room, before, limit).await?;
    let complete = cached.messages.len() >= limit as usize;
    pages.send(cached).map_err(CommandError::internal)?;
    if !complete {
        let page = desktop.client.history(room, before, limit).await?;
        pages.send(page).map_err(CommandError::internal)?;
    }
    Ok(())
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Queued {
    client_id: String,
}

#[tauri::command(rename_all = "snake_case")]
pub async fn send(
    desktop: State<'_, Desktop>,
    room: RoomId,
    body: String,
    reply_to: Option<MessageId>,
    attachments: Option<Vec<Attachment>>,
) -> CommandResult<Queued> {
    let draft = Draft {
        room,
        body,
        reply_to,
        attachments: attachments.unwrap_or_default(),
    };
    let outgoing = desktop.client.send_message(draft).await?;
    Ok(Queued {
        client_id: outgoing.client_id,
    })
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Pending {
    client_id: String,
    room: RoomId,
    body: String,
    created_at: i64,
    #[cfg_attr(test, ts(optional))]
    reply_to: Option<MessageId>,
    attachments: Vec<Attachment>,
}

#[tauri::command]
pub async fn outbox(desktop: State<'_, Desktop>) -> CommandResult<Vec<Pending>> {
    Ok(desktop
        .client
        .outbox()
        .await?
        .into_iter()
        .map(|o| Pending {
            client_id: o.client_id,
            room: o.room,
            body: o.body,
            created_at: o.created_at,
            reply_to: o.reply_to,
            attachments: o.attachments,
        })
        .collect())
}

/// Uploads a file to a room for a message to carry. The file is the request's raw body; its
/// room, name (percent-encoded) and the UI's id for the upload come as the headers `x-room`,
/// `x-name` and `x-upload`, its type as `content-type`. Progress comes as `upload_progress`
/// events; `cancel_upload` with the same id stops it.
#[tauri::command]
pub async fn upload(
    desktop: State<'_, Desktop>,
    app: AppHandle,
    request: tauri::ipc::Request<'_>,
) -> CommandResult<Attachment> {
    let tauri::ipc::InvokeBody::Raw(bytes) = request.body() else {
        return Err(CommandError::new(
            "invalid",
            "the file comes as the request's raw body",
        ));
    };
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let room: RoomId = header("x-room")
        .parse()
        .map_err(|_| CommandError::new("invalid", "x-room names the room"))?;
    let name = percent_encoding::percent_decode_str(&header("x-name"))
        .decode_utf8_lossy()
        .into_owned();
    let content_type = Some(header("content-type"))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let id = header("x-upload");
    let bytes = bytes::Bytes::copy_from_slice(bytes);
    let client = desktop.client.clone();
    let progress_id = id.clone();
    let task = tokio::spawn(async move {
        client
            .upload(room, &name, &content_type, bytes, move |sent, total| {
                let progress = UploadProgressEvent {
                    upload: progress_id.clone(),
                    sent,
                    total,
                };
                crate::view::emit(&app, &UiEvent::UploadProgress(progress));
            })
            .await
    });
    desktop.uploads().insert(id.clone(), task.abort_handle());
    let outcome = task.await;
    desktop.uploads().remove(&id);
    match outcome {
        Ok(result) => Ok(result?),
        Err(err) if err.is_cancelled() => {
            Err(CommandError::new("cancelled", "The upload was cancelled."))
        }
        Err(err) => Err(CommandError::internal(err)),
    }
}

/// Stops the upload the UI named `upload`, if it is still going.
#[tauri::command]
pub fn cancel_upload(desktop: State<'_, Desktop>, upload: String) -> CommandResult<()> {
    if let Some(task) = desktop.uploads().remove(&upload) {
        task.abort();
    }
    Ok(())
}

/// The bytes of an attachment (or of an image's thumbnail), for the UI to show: the webview
/// cannot ask the server itself.
#[tauri::command]
pub async fn attachment(
    desktop: State<'_, Desktop>,
    id: String,
    thumbnail: bool,
) -> CommandResult<tauri::ipc::Response> {
    let bytes = desktop.client.attachment(&id, thumbnail).await?;
    Ok(tauri::ipc::Response::new(bytes.to_vec()))
}

// Arguments arrive with the contract's snake_case names, not Tauri's default camelCase.
#[tauri::command(rename_all = "snake_case")]
pub async fn mark_read(
    desktop: State<'_, Desktop>,
    app: AppHandle,
    room: RoomId,
    message_id: MessageId,
) -> CommandResult<()> {
    let result = desktop.client.mark_read(room, message_id).await;
    crate::tray::refresh_unread(&app, &desktop.client).await;
    Ok(result?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn search(
    desktop: State<'_, Desktop>,
    query: String,
    room: Option<RoomId>,
    before: Option<MessageId>,
) -> CommandResult<SearchResults> {
    Ok(desktop.client.search(&query, room, before).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn edit_message(
    desktop: State<'_, Desktop>,
    message_id: MessageId,
    body: String,
) -> CommandResult<Message> {
    Ok(desktop.client.edit_message(message_id, &body).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn delete_message(
    desktop: State<'_, Desktop>,
    message_id: MessageId,
) -> CommandResult<Message> {
    Ok(desktop.client.delete_message(message_id).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn react(
    desktop: State<'_, Desktop>,
    message_id: MessageId,
    emoji: String,
    on: bool,
) -> CommandResult<Message> {
    Ok(desktop.client.react(message_id, &emoji, on).await?)
}

#[tauri::command]
pub fn typing(desktop: State<'_, Desktop>, room: RoomId) {
    desktop.client.typing(room);
}

#[tauri::command]
pub async fn set_draft(
    desktop: State<'_, Desktop>,
    room: RoomId,
    text: String,
) -> CommandResult<()> {
    Ok(desktop.client.set_draft(room, &text).await?)
}

#[tauri::command]
pub async fn draft(desktop: State<'_, Desktop>, room: RoomId) -> CommandResult<Option<String>> {
    Ok(desktop.client.draft(room).await?)
}

#[tauri::command]
pub fn set_focused_room(desktop: State<'_, Desktop>, room: Option<RoomId>) {
    desktop.client.set_focused_room(room);
}

#[tauri::command]
pub async fn create_room(desktop: State<'_, Desktop>, name: String) -> CommandResult<RoomState> {
    Ok(desktop.client.create_room(&name).await?)
}

#[tauri::command]
pub async fn open_dm(desktop: State<'_, Desktop>, user: String) -> CommandResult<RoomState> {
    Ok(desktop.client.open_dm(&user).await?)
}

#[tauri::command]
pub async fn join_room(desktop: State<'_, Desktop>, room: RoomId) -> CommandResult<RoomState> {
    Ok(desktop.client.join_room(room).await?)
}

#[tauri::command]
pub async fn directory(desktop: State<'_, Desktop>) -> CommandResult<Vec<Room>> {
    Ok(desktop.client.directory().await?)
}

#[tauri::command]
pub async fn users(desktop: State<'_, Desktop>) -> CommandResult<Vec<UserRef>> {
    Ok(desktop.client.users().await?)
}

#[tauri::command]
pub async fn members(desktop: State<'_, Desktop>, room: RoomId) -> CommandResult<Vec<UserRef>> {
    Ok(desktop.client.members(room).await?)
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct InviteCode {
    code: String,
}

#[tauri::command]
pub async fn invite(desktop: State<'_, Desktop>) -> CommandResult<InviteCode> {
    Ok(InviteCode {
        code: desktop.client.invite().await?.code,
    })
}

#[tauri::command]
pub async fn me(desktop: State<'_, Desktop>) -> CommandResult<Me> {
    Ok(desktop.client.whoami().await?)
}

#[tauri::command]
pub async fn admin(desktop: State<'_, Desktop>) -> CommandResult<AdminOverview> {
    Ok(desktop.client.admin().await?)
}

#[tauri::command]
pub async fn manage_member(
    desktop: State<'_, Desktop>,
    user: UserId,
    action: MemberAction,
) -> CommandResult<MemberManaged> {
    Ok(desktop.client.manage_member(user, action).await?)
}

#[tauri::command]
pub async fn create_invite(
    desktop: State<'_, Desktop>,
    expires_in_hours: Option<u32>,
    max_uses: u32,
) -> CommandResult<CreatedInvite> {
    let terms = CreateInvite {
        expires_in_hours,
        max_uses,
    };
    Ok(desktop.client.create_invite(terms).await?)
}

#[tauri::command]
pub async fn revoke_invite(desktop: State<'_, Desktop>, invite: i64) -> CommandResult<()> {
    Ok(desktop.client.revoke_invite(invite).await?)
}

#[tauri::command]
pub async fn lock_now(desktop: State<'_, Desktop>) -> CommandResult<()> {
    desktop.client.lock_now().await;
    Ok(())
}

#[tauri::command]
pub async fn unlock(desktop: State<'_, Desktop>, password: String) -> CommandResult<()> {
    Ok(desktop.client.unlock(&password).await?)
}

#[tauri::command]
pub async fn sessions(desktop: State<'_, Desktop>) -> CommandResult<Vec<SessionInfo>> {
    Ok(desktop.client.sessions().await?)
}

#[tauri::command]
pub async fn revoke(desktop: State<'_, Desktop>, session: SessionId) -> CommandResult<()> {
    Ok(desktop.client.revoke(session).await?)
}

#[tauri::command]
pub async fn set_room_level(
    desktop: State<'_, Desktop>,
    room: RoomId,
    level: Option<NotifyLevel>,
) -> CommandResult<()> {
    Ok(desktop.client.set_room_notify_level(room, level).await?)
}

#[tauri::command]
pub async fn room_level(desktop: State<'_, Desktop>, room: RoomId) -> CommandResult<NotifyLevel> {
    Ok(desktop.client.room_notify_level(room).await?)
}

#[tauri::command]
pub async fn set_dnd(desktop: State<'_, Desktop>, app: AppHandle, on: bool) -> CommandResult<()> {
    desktop.client.set_do_not_disturb(on).await?;
    crate::tray::show_dnd(&app, on);
    Ok(())
}

/// The transport pinned in the settings; `null` for "the best the network allows".
#[tauri::command]
pub async fn transport(desktop: State<'_, Desktop>) -> CommandResult<Option<TransportKind>> {
    Ok(desktop.client.transport().await?)
}

#[tauri::command]
pub async fn set_transport(
    desktop: State<'_, Desktop>,
    transport: Option<TransportKind>,
) -> CommandResult<()> {
    Ok(desktop.client.set_transport(transport).await?)
}

/// Opens an http(s) link in the system browser; anything else is refused.
#[tauri::command]
pub fn open_link(app: AppHandle, url: String) -> CommandResult<()> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(CommandError::new(
            "invalid",
            "only http and https links open",
        ));
    }
    use tauri_plugin_opener::OpenerExt;
    app.opener()
        .open_url(url, None::<&str>)
        .map_err(CommandError::internal)
}

/// Whether the app starts (in the tray) when the user logs in.
#[tauri::command]
pub async fn autostart(app: AppHandle) -> CommandResult<bool> {
    use tauri_plugin_autostart::ManagerExt;
    app.autolaunch()
        .is_enabled()
        .map_err(CommandError::internal)
}

/// Starts the app (in the tray) when the user logs in, or no longer: an XDG autostart entry.
#[tauri::command]
pub async fn set_autostart(app: AppHandle, on: bool) -> CommandResult<()> {
    use tauri_plugin_autostart::ManagerExt;
    let autostart = app.autolaunch();
    if on {
        autostart.enable()
    } else {
        autostart.disable()
    }
    .map_err(CommandError::internal)
}

/// Quits the app, the hosted server with it (what the window asks before, while hosting).
#[tauri::command]
pub fn quit(app: AppHandle) {
    app.exit(0);
}
