//! A client frame carried out: the one mechanism behind the WebSocket's frames and
//! `POST /api/frames` (the HTTP transports' way up).

use std::pin::Pin;

use tidings_proto::v1::{ClientFrame, ErrorBody, MessageId, SendMessage, ServerFrame};
use tidings_store::{Change, User};

use crate::app::AppState;
use crate::error::ApiError;
use crate::message;

/// A frame's outcome, once it is known: an `ack`, an `error`, a `history` page, or nothing (a
/// read marker or typing that worked; the hub tells everyone who needs to know). Boxed: a frame
/// is large, and a connection's task would otherwise keep room for several while idle.
pub type Reply = Pin<Box<dyn Future<Output = Option<Box<ServerFrame>>> + Send>>;

/// Starts `frame` for `user`. A send is queued for its commit before this returns, so frames
/// started in order are stored in order; only the wait for the outcome is left to the caller,
/// who may run many at once. A `sync` belongs to the transport (it answers from its
/// subscription, in line with the live events): it is handed back as the cursor it asks for.
pub async fn start(state: &AppState, user: &User, frame: ClientFrame) -> Result<Reply, MessageId> {
    let state = state.clone();
    let user = user.clone();
    let kind = frame.kind();
    Ok(match frame {
        ClientFrame::Send {
            room,
            client_id,
            body,
            reply_to,
            attachments,
        } => {
            let send = SendMessage {
                client_id: Some(client_id.clone()),
                body,
                reply_to,
                attachments,
            };
            let queued = message::queue(&state, &user, room, send).await;
            Box::pin(async move {
                let answer = match queued {
                    Ok(committing) => committing.await,
                    Err(err) => Err(err),
                };
                Some(Box::new(match answer {
                    Ok(sent) => ServerFrame::Ack {
                        client_id,
                        id: sent.message.id,
                        room,
                    },
                    Err(err) => error_frame(err, kind, Some(client_id)),
                }))
            })
        }
        ClientFrame::Read { room, message_id } => Box::pin(async move {
            message::mark_read(&state, user.id, room, message_id)
                .await
                .err()
                .map(|err| Box::new(error_frame(err, kind, None)))
        }),
        ClientFrame::Typing { room } => Box::pin(async move {
            crate::room::is_typing(&state, room, &user)
                .await
                .err()
                .map(|err| Box::new(error_frame(err, kind, None)))
        }),
        ClientFrame::History {
            room,
            before,
            limit,
        } => Box::pin(async move {
            Some(Box::new(
                match message::page(&state, user.id, room, before, limit).await {
                    Ok(page) => ServerFrame::History(page),
                    Err(err) => error_frame(err, kind, None),
                },
            ))
        }),
        ClientFrame::Sync { since } => return Err(since),
        ClientFrame::Edit { message_id, body } => {
            changing(state, user, message_id, Change::Edit { body }, kind)
        }
        ClientFrame::Delete { message_id } => {
            changing(state, user, message_id, Change::Delete, kind)
        }
        ClientFrame::React { message_id, emoji } => {
            changing(state, user, message_id, Change::React { emoji }, kind)
        }
        ClientFrame::Unreact { message_id, emoji } => {
            changing(state, user, message_id, Change::Unreact { emoji }, kind)
        }
    })
}

/// A change to a message: nothing comes back but a refusal; the change itself reaches everyone
/// in the room (the user's own connections too) as `changed`, from the store's log.
fn changing(
    state: AppState,
    user: User,
    message_id: MessageId,
    change: Change,
    kind: &'static str,
) -> Reply {
    Box::pin(async move {
        message::change(&state, &user, message_id, change)
            .await
            .err()
            .map(|err| Box::new(error_frame(err, kind, None)))
    })
}

/// The `error` frame answering a frame of type `frame`.
pub fn error_frame(err: ApiError, frame: &str, client_id: Option<String>) -> ServerFrame {
    let mut body: ErrorBody = err.body;
    body.frame = Some(frame.to_owned());
    body.client_id = client_id;
    ServerFrame::Error(body)
}
