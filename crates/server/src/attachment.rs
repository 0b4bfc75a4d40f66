//! Attachments: files and images uploaded to a room (`POST /api/rooms/{id}/attachments`) and
//! downloaded by its members (`GET /api/attachments/{id}`, and an image's `/thumbnail`).
//!
//! The bytes are kept through `object_store` under the attachment's random id, in
//! `data_dir/attachments` or the object store `attachments.object_store` names; the store
//! records the rest. An upload is refused whole, with nothing
//! kept, when it is over `attachments.max_size`, over the uploader's quota, compressed in transit,
//! or says it is an image and is not one the server can open within its limits (a decompression
//! bomb is refused by the decoder's limits before it is unpacked). Images are opened and their
//! thumbnails made on the blocking pool, at most [`IMAGES_AT_ONCE`] at a time. A download is
//! never shown as a page: only an image the server opened is served as itself and inline;
//! anything else is `application/octet-stream` with `Content-Disposition: attachment`, and
//! everything is `nosniff` under a CSP that allows nothing.

use std::io::Cursor;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::TryStreamExt;
use image::{ImageFormat, ImageReader, Limits};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Deserialize;
use std::time::Duration;
use tidings_proto::v1::{Attachment, ErrorBody, ErrorCode, ImageSize, RoomId};
use tidings_store::{NewAttachment, StoreError};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult, Path, Query};
use crate::room::ensure_member;

/// Images opened (and thumbnails made) at once: each may hold up to [`IMAGE_MAX_ALLOC`].
pub const IMAGES_AT_ONCE: usize = 2;
/// The widest and tallest image the server opens, in pixels.
pub const IMAGE_MAX_SIDE: u32 = 16_384;
/// The most memory opening one image may take: past it the image is refused unopened.
pub const IMAGE_MAX_ALLOC: u64 = 256 * 1024 * 1024;
/// The image formats the server opens, shows inline and makes thumbnails of.
const SHOWN: [ImageFormat; 4] = [
    ImageFormat::Png,
    ImageFormat::Jpeg,
    ImageFormat::Gif,
    ImageFormat::WebP,
];
/// A thumbnail fits in a square of this many pixels.
pub const THUMBNAIL_SIDE: u32 = 320;
/// The longest file name kept, in characters.
const MAX_NAME_CHARS: usize = 200;

/// How often attachments no one reads again are looked for, at most (see [`sweep`]).
pub const SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);
/// Attachments forgotten per store call while sweeping.
const SWEEP_BATCH: u32 = 256;

/// Where attachments' bytes are kept, and the turns to open images.
pub struct Attachments {
    objects: Arc<dyn ObjectStore>,
    images: Semaphore,
    /// Wakes the sweeper (a message was deleted).
    sweep_now: Notify,
}

impl Attachments {
    /// Keeps the bytes where `url` says (see `attachments.object_store`), or in `data_dir`'s
    /// `attachments` directory; a directory is created if missing.
    pub fn open(url: Option<&str>, data_dir: &std::path::Path) -> Result<Attachments, String> {
        let objects: Arc<dyn ObjectStore> = match url {
            None => {
                let dir = data_dir.join("attachments");
                std::fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
                Arc::new(LocalFileSystem::new_with_prefix(&dir).map_err(|err| err.to_string())?)
            }
            Some(url) => {
                let parsed = url::Url::parse(url).map_err(|err| format!("{url:?}: {err}"))?;
                if parsed.scheme() == "file" {
                    let dir = parsed
                        .to_file_path()
                        .map_err(|()| format!("{url:?} is not a file path"))?;
                    std::fs::create_dir_all(&dir)
                        .map_err(|err| format!("{}: {err}", dir.display()))?;
                }
                // The cloud stores read their settings (keys, region, endpoint) from `AWS_*`.
                let settings = std::env::vars()
                    .filter(|(key, _)| key.starts_with("AWS_"))
                    .map(|(key, value)| (key.to_ascii_lowercase(), value));
                let (store, prefix) = object_store::parse_url_opts(&parsed, settings)
                    .map_err(|err| format!("{url:?}: {err}"))?;
                Arc::new(PrefixStore::new(store, prefix))
            }
        };
        Ok(Attachments {
            objects,
            images: Semaphore::new(IMAGES_AT_ONCE),
            sweep_now: Notify::new(),
        })
    }

    /// The names the bytes of `attachment` are kept under: its own, and its thumbnail's if it is
    /// an image the server opened.
    pub fn objects_of(attachment: &tidings_store::Attachment) -> Vec<String> {
        let mut names = vec![object(&attachment.id).to_string()];
        if attachment.image.is_some() {
            names.push(thumbnail_object(&attachment.id).to_string());
        }
        names
    }

    /// The bytes kept under `name`, or `None` if there are none.
    pub async fn read(&self, name: &str) -> Result<Option<Bytes>, object_store::Error> {
        match self.objects.get(&ObjectPath::from(name)).await {
            Ok(found) => Ok(Some(found.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Keeps `bytes` under `name`, replacing what was there.
    pub async fn write(&self, name: &str, bytes: Bytes) -> Result<(), object_store::Error> {
        self.objects
            .put(&ObjectPath::from(name), bytes.into())
            .await
            .map(|_| ())
    }

    /// Asks the sweeper to run soon: a deleted message's attachments are to go.
    pub fn sweep_soon(&self) {
        self.sweep_now.notify_one();
    }
}

/// Deletes the bytes of attachments no one reads again — those of deleted messages, and uploads
/// no message carried within `attachments.unsent_kept_for` — every [`SWEEP_EVERY`] (or the
/// grace period, if shorter) and whenever a message is deleted, until `cancel`. The store forgets
/// them first, so no message can claim one whose bytes are going; bytes left behind by a crash
/// between the two are not looked for.
pub async fn sweep(state: AppState, cancel: CancellationToken) {
    let kept_for = state.config.attachments.unsent_kept_for;
    let every = SWEEP_EVERY.min(kept_for.max(Duration::from_secs(1)));
    loop {
        let unsent_before = state
            .now_ms()
            .saturating_sub(i64::try_from(kept_for.as_millis()).unwrap_or(i64::MAX));
        loop {
            match state
                .store
                .forget_attachments(unsent_before, SWEEP_BATCH)
                .await
            {
                Ok(ids) => {
                    for id in &ids {
                        forget(&state, id).await;
                    }
                    if ids.len() < SWEEP_BATCH as usize {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, "could not sweep attachments");
                    break;
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
            _ = state.attachments.sweep_now.notified() => {}
        }
    }
}

fn object(id: &str) -> ObjectPath {
    ObjectPath::from(id)
}

fn thumbnail_object(id: &str) -> ObjectPath {
    ObjectPath::from(format!("{id}.thumbnail"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name; any directory in it is dropped.
    pub name: String,
}

/// An image opened within the limits: its size, and its thumbnail with the thumbnail's type.
struct Opened {
    format: ImageFormat,
    size: ImageSize,
    thumbnail: Vec<u8>,
}

/// Uploads a file to a room, as the request's body (at most `attachments.max_size` bytes, not
/// compressed in transit). One that says it is an image (`Content-Type: image/…`) must be a PNG,
/// JPEG, GIF or WebP the server can open; it then gets a thumbnail.
#[utoipa::path(
    post, path = "/api/rooms/{id}/attachments", tag = "messages",
    params(("id" = i64, Path, description = "The room's id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = CREATED, description = "Kept", body = Attachment),
        (status = BAD_REQUEST, description = "Empty, not the image it says it is, too big to open, or compressed in transit", body = ErrorBody),
        (status = FORBIDDEN, description = "Not a member of the room", body = ErrorBody),
        (status = NOT_FOUND, description = "No such room", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "Over the size limit or the user's quota", body = ErrorBody),
    ),
)]
pub async fn upload(
    State(state): State<AppState>,
    authed: Authed,
    Path(room): Path<RoomId>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, axum::Json<Attachment>)> {
    let limits = &state.config.attachments;
    ensure_member(&state, room, authed.user.id).await?;
    if headers.contains_key(header::CONTENT_ENCODING) {
        return Err(ApiError::new(
            ErrorCode::Invalid,
            "send the file as it is, not compressed in transit (no Content-Encoding)",
        ));
    }
    let too_large = || {
        ApiError::new(
            ErrorCode::TooLarge,
            format!("a file may be at most {} bytes", limits.max_size),
        )
    };
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > limits.max_size) {
        return Err(too_large());
    }
    let used = state.store.attachment_usage(authed.user.id).await?;
    if used.saturating_add(declared_length.unwrap_or(0)) > limits.quota_per_user {
        return Err(StoreError::QuotaExceeded {
            used,
            quota: limits.quota_per_user,
        }
        .into());
    }
    let max = usize::try_from(limits.max_size).unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(body, max).await.map_err(|err| {
        if std::error::Error::source(&err)
            .is_some_and(|e| e.is::<http_body_util::LengthLimitError>())
        {
            too_large()
        } else {
            ApiError::new(ErrorCode::Invalid, "the upload was cut off")
        }
    })?;
    if bytes.is_empty() {
        return Err(ApiError::new(ErrorCode::Invalid, "the file is empty"));
    }
    let declared_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    // A file that says it is an image must be one. One that does not say (a picker that knew no
    // type) but starts like one is shown as one if it opens; if not, it is kept as a file.
    let opened = if declared_type.starts_with("image/") {
        Some(open_image(&state, bytes.clone()).await?)
    } else if image::guess_format(&bytes).is_ok_and(|f| SHOWN.contains(&f)) {
        open_image(&state, bytes.clone()).await.ok()
    } else {
        None
    };
    let id = crate::auth::new_token();
    let content_type = match &opened {
        Some(image) => image.format.to_mime_type().to_owned(),
        None => plain_content_type(&declared_type),
    };
    let objects = &state.attachments.objects;
    objects
        .put(&object(&id), bytes.clone().into())
        .await
        .map_err(ApiError::internal)?;
    if let Some(image) = &opened {
        let put = objects
            .put(
                &thumbnail_object(&id),
                Bytes::from(image.thumbnail.clone()).into(),
            )
            .await;
        if let Err(err) = put {
            forget(&state, &id).await;
            return Err(ApiError::internal(err));
        }
    }
    let recorded = state
        .store
        .add_attachment(NewAttachment {
            id: id.clone(),
            room_id: room,
            uploader_id: authed.user.id,
            name: file_name(&q.name),
            content_type,
            size: bytes.len() as u64,
            image: opened.as_ref().map(|i| (i.size.width, i.size.height)),
            now: state.now_ms(),
            quota: limits.quota_per_user,
        })
        .await;
    match recorded {
        Ok(attachment) => Ok((
            StatusCode::CREATED,
            axum::Json(crate::wire::attachment(attachment)),
        )),
        Err(err) => {
            forget(&state, &id).await;
            Err(err.into())
        }
    }
}

/// Deletes the bytes kept for attachment `id` (an upload refused, or one forgotten).
async fn forget(state: &AppState, id: &str) {
    for path in [object(id), thumbnail_object(id)] {
        if let Err(err) = state.attachments.objects.delete(&path).await
            && !matches!(err, object_store::Error::NotFound { .. })
        {
            tracing::warn!(%err, id, "could not delete an attachment's bytes");
        }
    }
}

/// Opens an image within the limits, off the async runtime, and makes its thumbnail.
async fn open_image(state: &AppState, bytes: Bytes) -> ApiResult<Opened> {
    let _turn = state
        .attachments
        .images
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(move || decode(&bytes)).await?
}

fn decode(bytes: &[u8]) -> ApiResult<Opened> {
    let not_an_image = || {
        ApiError::new(
            ErrorCode::Invalid,
            "the file says it is an image but is not a PNG, JPEG, GIF or WebP image",
        )
    };
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| not_an_image())?;
    let format = reader.format().ok_or_else(not_an_image)?;
    if !SHOWN.contains(&format) {
        return Err(not_an_image());
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(IMAGE_MAX_SIDE);
    limits.max_image_height = Some(IMAGE_MAX_SIDE);
    limits.max_alloc = Some(IMAGE_MAX_ALLOC);
    let mut reader = reader;
    reader.limits(limits);
    let image = reader.decode().map_err(|err| match err {
        image::ImageError::Limits(_) => ApiError::new(
            ErrorCode::Invalid,
            format!(
                "the image is too big to open: at most {IMAGE_MAX_SIDE} pixels a side and {} MiB \
                 unpacked",
                IMAGE_MAX_ALLOC / (1024 * 1024)
            ),
        ),
        _ => not_an_image(),
    })?;
    let size = ImageSize {
        width: image.width(),
        height: image.height(),
    };
    let small = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE);
    let mut thumbnail = Vec::new();
    // Transparency needs PNG; anything else is smaller as JPEG.
    let encoded = if small.color().has_alpha() {
        small.write_to(&mut Cursor::new(&mut thumbnail), ImageFormat::Png)
    } else {
        small
            .to_rgb8()
            .write_to(&mut Cursor::new(&mut thumbnail), ImageFormat::Jpeg)
    };
    encoded.map_err(ApiError::internal)?;
    Ok(Opened {
        format,
        size,
        thumbnail,
    })
}

/// The name to keep: the last part of what was given (no directory of either kind), without
/// control characters or leading dots, at most [`MAX_NAME_CHARS`] characters; "file" if nothing
/// is left.
pub fn file_name(given: &str) -> String {
    let last = given.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let kept = kept.trim().trim_start_matches('.').trim();
    if kept.is_empty() {
        "file".to_owned()
    } else {
        kept.to_owned()
    }
}

/// A declared type kept as text: `type/subtype` of token characters, else octet-stream.
fn plain_content_type(declared: &str) -> String {
    let essence = declared.split(';').next().unwrap_or_default().trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match essence.split_once('/') {
        Some((kind, sub)) if token(kind) && token(sub) => essence.to_ascii_lowercase(),
        _ => "application/octet-stream".to_owned(),
    }
}

/// The attachment `id` if `user` may read it: it exists, and they are a member of its room.
async fn readable(
    state: &AppState,
    id: &str,
    user: tidings_store::UserId,
) -> ApiResult<tidings_store::Attachment> {
    let attachment = state
        .store
        .attachment(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such attachment"))?;
    ensure_member(state, attachment.room_id, user).await?;
    Ok(attachment)
}

/// Downloads an attachment (members of its room only). An image the server opened is served as
/// itself, inline; anything else as `application/octet-stream`, to be saved.
#[utoipa::path(
    get, path = "/api/attachments/{id}", tag = "messages",
    params(("id" = String, Path, description = "The attachment's id")),
    responses(
        (status = OK, description = "The file", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = FORBIDDEN, description = "Not a member of its room", body = ErrorBody),
        (status = NOT_FOUND, description = "No such attachment", body = ErrorBody),
    ),
)]
pub async fn download(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let attachment = readable(&state, &id, authed.user.id).await?;
    let inline = attachment.image.is_some();
    let content_type = if inline {
        attachment.content_type.as_str()
    } else {
        "application/octet-stream"
    };
    serve(&state, &object(&id), content_type, &attachment.name, inline).await
}

/// An image attachment's thumbnail, at most 320 pixels a side (PNG or JPEG).
#[utoipa::path(
    get, path = "/api/attachments/{id}/thumbnail", tag = "messages",
    params(("id" = String, Path, description = "The attachment's id")),
    responses(
        (status = OK, description = "The thumbnail", body = Vec<u8>, content_type = "image/jpeg"),
        (status = FORBIDDEN, description = "Not a member of its room", body = ErrorBody),
        (status = NOT_FOUND, description = "No such attachment, or not an image", body = ErrorBody),
    ),
)]
pub async fn thumbnail(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let attachment = readable(&state, &id, authed.user.id).await?;
    if attachment.image.is_none() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "not an image: no thumbnail",
        ));
    }
    let path = thumbnail_object(&id);
    let head = state
        .attachments
        .objects
        .get_range(&path, 0..8)
        .await
        .map_err(ApiError::internal)?;
    let content_type = if head.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    };
    serve(&state, &path, content_type, &attachment.name, true).await
}

/// Streams a kept object with the headers that keep a browser from taking it for a page.
async fn serve(
    state: &AppState,
    path: &ObjectPath,
    content_type: &str,
    name: &str,
    inline: bool,
) -> ApiResult<Response> {
    let got = state
        .attachments
        .objects
        .get(path)
        .await
        .map_err(|err| match err {
            object_store::Error::NotFound { .. } => {
                ApiError::new(ErrorCode::NotFound, "the attachment's file is gone")
            }
            other => ApiError::internal(other),
        })?;
    let length = got.meta.size;
    let body = Body::from_stream(got.into_stream().map_err(std::io::Error::other));
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    let value = |v: &str| HeaderValue::from_str(v).map_err(ApiError::internal);
    headers.insert(header::CONTENT_TYPE, value(content_type)?);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::CONTENT_DISPOSITION, value(&disposition)?);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    // An id names the same bytes for ever.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_loses_its_directories_and_control_characters() {
        for (given, kept) in [
            ("report.pdf", "report.pdf"),
            ("../../etc/passwd", "passwd"),
            ("..\\..\\windows\\system.ini", "system.ini"),
            ("/abs/path/", "file"),
            ("..", "file"),
            (".hidden", "hidden"),
            ("new\nline\u{0}.txt", "newline.txt"),
            ("", "file"),
        ] {
            assert_eq!(file_name(given), kept, "{given:?}");
        }
        assert_eq!(file_name(&"é".repeat(300)).chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn a_declared_type_is_kept_only_when_well_formed() {
        assert_eq!(
            plain_content_type("Text/Plain; charset=utf-8"),
            "text/plain"
        );
        assert_eq!(plain_content_type("application/pdf"), "application/pdf");
        for bad in ["", "nonsense", "text/html\r\nx: y", "a/b c", "/x"] {
            assert_eq!(
                plain_content_type(bad),
                "application/octet-stream",
                "{bad:?}"
            );
        }
    }
}
