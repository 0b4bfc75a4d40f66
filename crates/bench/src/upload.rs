//! Uploads: a 25 MiB file sent to `POST /api/rooms/{id}/attachments` over loopback, end to end
//! (the server reads it whole, writes it to its data dir and records it), and an image whose
//! thumbnail the server makes.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tidings_proto::v1::Attachment;
use tokio::time::Instant;

use crate::latency::Summary;
use crate::process::ServerProcess;
use crate::seed::Seeder;

/// One upload may take this long before the run fails.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Bytes of the file uploaded.
    pub bytes: usize,
    /// Uploads measured of each kind.
    pub uploads: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub bytes: usize,
    /// The file: request sent → `201 Created` read.
    pub file: Summary,
    /// Megabytes (10⁶ bytes) a second, at the median time.
    pub file_mb_per_sec: f64,
    /// A 4,000 × 3,000 PNG photo-sized image, opened and thumbnailed by the server.
    pub image_bytes: usize,
    pub image: Summary,
}

/// Who uploads where.
#[derive(Debug)]
pub struct Seeded {
    pub token: String,
    pub room: i64,
}

pub fn seed(template: &std::path::Path, data_dir: &std::path::Path) -> Result<Seeded> {
    let seeder = Seeder::copy(template, data_dir)?;
    let user = seeder.user("uploader")?;
    let token = seeder.session(user, "tidings-bench upload")?;
    let room = seeder.room("uploads", user, &[user])?;
    seeder.finish()?;
    Ok(Seeded { token, room })
}

/// Bytes that do not compress: what a photo or an archive is like.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A PNG of `width` × `height` with smooth gradients, as a screenshot compresses.
fn picture(width: u32, height: u32) -> Result<Vec<u8>> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x / 16) as u8, (y / 12) as u8, ((x + y) / 28) as u8])
    });
    let mut bytes = Vec::new();
    image.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    Ok(bytes)
}

pub async fn run(server: &ServerProcess, seeded: &Seeded, plan: &Plan) -> Result<Outcome> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let url = format!(
        "http://{}/api/rooms/{}/attachments?name=bench.bin",
        server.addr, seeded.room
    );
    let file = bytes::Bytes::from(noise(plan.bytes));
    let photo = bytes::Bytes::from(picture(4000, 3000)?);
    let timed = |body: bytes::Bytes, content_type: &'static str| {
        let client = client.clone();
        let url = url.clone();
        let token = seeded.token.clone();
        async move {
            let started = Instant::now();
            let response = tokio::time::timeout(
                UPLOAD_TIMEOUT,
                client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", content_type)
                    .body(body.clone())
                    .send(),
            )
            .await
            .context("an upload took too long")??;
            let status = response.status();
            let text = response.bytes().await?;
            let micros = started.elapsed().as_micros();
            if !status.is_success() {
                bail!("upload: {status}: {}", String::from_utf8_lossy(&text));
            }
            let attachment: Attachment = serde_json::from_slice(&text)?;
            if attachment.size != body.len() as u64 {
                bail!(
                    "the server kept {} bytes of {}",
                    attachment.size,
                    body.len()
                );
            }
            Ok::<(u64, Attachment), anyhow::Error>((
                u64::try_from(micros).unwrap_or(u64::MAX),
                attachment,
            ))
        }
    };
    let mut file_samples = Vec::new();
    let mut image_samples = Vec::new();
    // One of each first, to warm up.
    for i in 0..=plan.uploads {
        let (micros, _) = timed(file.clone(), "application/octet-stream").await?;
        let (image_micros, attachment) = timed(photo.clone(), "image/png").await?;
        if attachment.image.is_none() {
            bail!("the image was not opened");
        }
        if i > 0 {
            file_samples.push(micros);
            image_samples.push(image_micros);
        }
    }
    let file = Summary::of_samples(&file_samples);
    let outcome = Outcome {
        bytes: plan.bytes,
        file_mb_per_sec: plan.bytes as f64 / 1e6 / (file.p50_ms / 1000.0).max(1e-9),
        file,
        image_bytes: photo.len(),
        image: Summary::of_samples(&image_samples),
    };
    tracing::info!(mb_per_sec = outcome.file_mb_per_sec, "upload");
    Ok(outcome)
}
