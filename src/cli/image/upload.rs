//! `quantix image upload FILE --pool P`: streams a file to the host at `--endpoint` with
//! `ImageService.UploadImage` (a header, 1 MiB chunks, then the sha256 computed here), with a
//! progress bar on stderr when it is a terminal. The host compares the checksum with its own.

use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::AsyncReadExt;

use crate::cli::CliError;
use crate::proto::v1::upload_image_request::Part;
use crate::proto::v1::*;

const CHUNK: usize = 1 << 20;

/// The messages of an upload of `path`, produced as the file is read.
pub async fn stream(
    path: &Path,
    header: UploadImageHeader,
    bar: indicatif::ProgressBar,
) -> Result<tokio_stream::wrappers::ReceiverStream<UploadImageRequest>, CliError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let shown = path.display().to_string();
    tokio::spawn(async move {
        let msg = |part| UploadImageRequest { part: Some(part) };
        if tx.send(msg(Part::Header(header))).await.is_err() {
            return;
        }
        let mut hasher = Sha256::new();
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    // Ending without the checksum makes the host refuse the upload.
                    bar.abandon_with_message(format!("cannot read {shown}: {e}"));
                    return;
                }
            };
            if n == 0 {
                break;
            }
            buf.truncate(n);
            hasher.update(&buf);
            bar.inc(n as u64);
            if tx.send(msg(Part::Chunk(buf))).await.is_err() {
                return;
            }
        }
        let _ = tx
            .send(msg(Part::Sha256(hex::encode(hasher.finalize()))))
            .await;
    });
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}
