//! The event feed, client side: one supervisor task per live session reading the server's SSE
//! stream with eventsource-client, resuming with `Last-Event-ID` from the local store (on a
//! client's first connection, from where its chat's first sync left off).
//!
//! - `session` events go to the UI as they are;
//! - `lock` locks the client;
//! - `message` alerts go through the notification policy to the notifier, and their id is kept
//!   as the resume cursor;
//! - `retract` (a message deleted) withdraws its notification if one shows it, and moves the
//!   cursor;
//! - `reset` moves the cursor to the newest id (the chat channel's sync fetches the messages).
//!
//! While the chat channel runs on one of its HTTP transports (where SSE is as likely broken), the
//! feed waits and the chat's loop does its work from the frames it receives.
//!
//! The task manages its own reconnects (the library's are off) so that a 401 can lock the client
//! instead of being retried, and so that retries use the same jittered backoff as the chat channel.

use std::sync::Arc;

use eventsource_client::{self as es, Client as _};
use futures_util::StreamExt;
use tidings_proto::v1::{
    EVENT_LOCK, EVENT_MESSAGE, EVENT_RESET, EVENT_RETRACT, EVENT_SESSION, Lock, LockReason,
    MessageAlert, MessageId, Retract, RoomKind, RoomState, SessionStatus,
};
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::backoff::Backoff;
use crate::client::Inner;
use crate::event::{ClientEvent, LockCause};

pub(crate) async fn run(inner: Arc<Inner>, api: Api, token: String, cancel: CancellationToken) {
    let mut backoff = Backoff::new(inner.options.backoff_base, inner.options.backoff_cap);
    let mut rides = inner.feed_rides_chat();
    loop {
        // While the chat channel is on an HTTP transport it carries the feed's work.
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = rides.wait_for(|rides| !rides) => {}
        }
        let outcome = tokio::select! {
            _ = cancel.cancelled() => return,
            outcome = stream(&inner, &api, &token, &mut backoff) => outcome,
            _ = rides.wait_for(|rides| *rides) => continue,
        };
        if let Some(cause) = outcome {
            inner.lock(cause).await;
            return;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = sleep(backoff.next_delay()) => {}
            _ = inner.reconnect_now.notified() => {}
        }
    }
}

/// Reads one stream until it ends; `Some(cause)` when the session is over.
async fn stream(
    inner: &Arc<Inner>,
    api: &Api,
    token: &str,
    backoff: &mut Backoff,
) -> Option<LockCause> {
    let cursor = start_cursor(inner).await;
    let client = match build(api, token, &cursor) {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(%err, "cannot build the feed client");
            return None;
        }
    };
    let mut events = client.stream();
    while let Some(item) = events.next().await {
        match item {
            Ok(es::SSE::Connected(_)) => backoff.reset(),
            Ok(es::SSE::Comment(_)) => {}
            Ok(es::SSE::Event(event)) => {
                if let Some(cause) = on_event(inner, event).await {
                    return Some(cause);
                }
            }
            Err(es::Error::UnexpectedResponse(response, _)) if response.status() == 401 => {
                return Some(LockCause::Rejected);
            }
            Err(err) => {
                tracing::debug!(%err, "feed ended");
                return None;
            }
        }
    }
    None
}

/// Where the feed resumes. A client that has never had a feed waits for its chat's first sync
/// to say where that left off: a feed opened without a cursor would start from whenever its
/// request happened to land, and a message committed between the sync and then would be in the
/// history yet never notified.
async fn start_cursor(inner: &Arc<Inner>) -> String {
    loop {
        let started = inner.feed_cursor_started.notified();
        tokio::pin!(started);
        started.as_mut().enable();
        match inner.local(|s| s.feed_cursor()).await {
            Ok(Some(cursor)) => return cursor,
            Ok(None) => started.await,
            Err(err) => {
                tracing::warn!(%err, "cannot read the feed cursor");
                started.await
            }
        }
    }
}

fn build(api: &Api, token: &str, cursor: &str) -> Result<impl es::Client, es::Error> {
    // `https://` as every other connection to the server: the same roots and pin.
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(rustls::ClientConfig::clone(&api.tls()))
        .https_or_http()
        .enable_http1()
        .build();
    let transport = launchdarkly_sdk_transport::HyperTransport::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .build_with_connector(connector)
        .map_err(|e| es::Error::InvalidParameter(Box::new(e)))?;
    let builder = es::ClientBuilder::for_url(&format!("{}/api/events", api.base()))?
        .header("Authorization", &format!("Bearer {token}"))?
        .reconnect(es::ReconnectOptions::reconnect(false).build())
        .last_event_id(cursor.to_owned());
    Ok(builder.build_with_transport(transport))
}

async fn on_event(inner: &Arc<Inner>, event: es::Event) -> Option<LockCause> {
    match event.event_type.as_str() {
        EVENT_SESSION => {
            if let Ok(status) = serde_json::from_str::<SessionStatus>(&event.data) {
                inner.emit(ClientEvent::Session(status));
            }
        }
        EVENT_LOCK => {
            let cause = match serde_json::from_str::<Lock>(&event.data).map(|l| l.reason) {
                Ok(LockReason::Expired) => LockCause::Expired,
                _ => LockCause::Revoked,
            };
            return Some(cause);
        }
        EVENT_MESSAGE => {
            if let Ok(alert) = serde_json::from_str::<MessageAlert>(&event.data) {
                let id = alert.id.to_string();
                if let Err(err) = inner.local(move |s| s.set_feed_cursor(&id)).await {
                    tracing::warn!(%err, "could not keep the feed cursor");
                }
                notify(inner, &alert).await;
            }
        }
        EVENT_RETRACT => {
            if let Ok(retract) = serde_json::from_str::<Retract>(&event.data) {
                if let Some(id) = event.id {
                    let _ = inner.local(move |s| s.set_feed_cursor(&id)).await;
                }
                withdraw(inner, retract.id).await;
            }
        }
        EVENT_RESET => {
            if let Some(id) = event.id {
                let _ = inner.local(move |s| s.set_feed_cursor(&id)).await;
            }
        }
        other => tracing::debug!(event = other, "skipping an unknown feed event"),
    }
    None
}

/// Runs an alert through the policy and raises what it decides.
pub(crate) async fn notify(inner: &Arc<Inner>, alert: &MessageAlert) {
    let Some(notifier) = inner.options.notifier.clone() else {
        return;
    };
    let room = alert.room;
    let mut state = inner.local(move |s| s.room(room)).await.ok().flatten();
    if state.is_none() {
        // A room this client does not know yet (a new DM): learn it for its name.
        if let Ok(rooms) = inner.refresh_rooms().await {
            state = rooms.into_iter().find(|r| r.room.id == room);
        }
    }
    let label = state
        .as_ref()
        .map(room_label)
        .unwrap_or_else(|| "Tidings".to_owned());
    let settings = inner
        .local(move |s| {
            Ok((
                s.notify_level(room)?,
                s.do_not_disturb()?,
                s.default_notify_level()?,
            ))
        })
        .await;
    let decision = {
        let mut policy = inner.policy.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok((level, dnd, default)) = settings {
            policy.set_default_level(default);
            policy.set_room_level(room, Some(level));
            policy.set_do_not_disturb(dnd);
        }
        policy.on_alert(alert, &label, Instant::now().into_std())
    };
    let Some(notification) = decision else {
        return;
    };
    let shown = notification.clone();
    let result = tokio::task::spawn_blocking(move || notifier.show(&shown)).await;
    match result {
        Ok(Ok(())) => inner.emit(ClientEvent::Notified(notification)),
        Ok(Err(err)) => tracing::warn!(%err, "could not raise a notification"),
        Err(err) => tracing::warn!(%err, "notifier panicked"),
    }
}

/// Withdraws the notification of deleted message `message`, if one shows it.
pub(crate) async fn withdraw(inner: &Arc<Inner>, message: MessageId) {
    let Some(notifier) = inner.options.notifier.clone() else {
        return;
    };
    let key = {
        let mut policy = inner.policy.lock().unwrap_or_else(|p| p.into_inner());
        policy.on_retract(message)
    };
    let Some(key) = key else {
        return;
    };
    match tokio::task::spawn_blocking(move || notifier.withdraw(key)).await {
        Ok(Ok(())) => inner.emit(ClientEvent::Withdrawn { key }),
        Ok(Err(err)) => tracing::warn!(%err, "could not withdraw a notification"),
        Err(err) => tracing::warn!(%err, "notifier panicked"),
    }
}

/// How a room is named in a notification: `#name`, or the peer of a DM.
pub fn room_label(room: &RoomState) -> String {
    match (room.room.kind, &room.room.name, &room.room.dm_peer) {
        (RoomKind::Dm, _, Some(peer)) => peer.name.clone(),
        (_, Some(name), _) => format!("#{name}"),
        _ => format!("room {}", room.room.id),
    }
}
