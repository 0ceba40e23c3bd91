//! `vtask snapshot save|status`: a backup from `Cluster.SaveSnapshot`
//! written safely to a file, and the check of such a file
//! (`vtask-snapfile`: every byte against the checksum).

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use vtask_proto::v1;
use vtask_snapfile::Summary;

use crate::{Conn, Failure};

/// Checks the whole file and returns its summary; a damaged file or no
/// backup at all is a usage failure (exit 2) that says what is wrong.
pub fn check(file: &Path) -> Result<Summary, Failure> {
    let input = File::open(file).map_err(|e| Failure::Usage(format!("{}: {e}", file.display())))?;
    vtask_snapfile::verify(BufReader::new(input)).map_err(|e| {
        Failure::Usage(format!(
            "{}: checksum BAD or file damaged: {e}",
            file.display()
        ))
    })
}

fn tmp_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Streams a backup into `FILE.tmp`, fsyncs it, checks it whole and against
/// what the node said it sent, then renames it to `FILE` and fsyncs the
/// directory. On any failure `FILE.tmp` is removed and `FILE` is untouched.
pub async fn save(
    conn: &Conn,
    file: &Path,
) -> Result<(Summary, Option<v1::SnapshotInfo>), Failure> {
    let tmp = tmp_path(file);
    let result = save_to(conn, file, &tmp).await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

async fn save_to(
    conn: &Conn,
    file: &Path,
    tmp: &Path,
) -> Result<(Summary, Option<v1::SnapshotInfo>), Failure> {
    let local = |e: std::io::Error| Failure::Usage(format!("{}: {e}", tmp.display()));
    let mut out = std::io::BufWriter::new(File::create(tmp).map_err(local)?);
    let mut stream = conn.save_snapshot().await?;
    let mut info = None;
    loop {
        let chunk = match stream.message().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(status) => {
                return Err(match vtask_proto::convert::status_to_fault(&status) {
                    Some(fault) => Failure::Fault(fault),
                    None => Failure::Unavailable(format!(
                        "the backup stream broke off: {}",
                        status.message()
                    )),
                })
            }
        };
        out.write_all(&chunk.data).map_err(local)?;
        if chunk.info.is_some() {
            info = chunk.info;
        }
    }
    let Some(sent) = info else {
        return Err(Failure::Unavailable(
            "the backup stream ended before its last message".into(),
        ));
    };
    let written = out.into_inner().map_err(|e| local(e.into_error()))?;
    written.sync_all().map_err(local)?;
    drop(written);
    let summary = check(tmp)?;
    let header = &summary.header;
    if header.applied_index != sent.applied_index
        || header.digest.as_deref() != Some(sent.state_digest.as_str())
    {
        return Err(Failure::Unavailable(format!(
            "the file's header (index {}, digest {:?}) is not what the node sent (index {}, digest {})",
            header.applied_index, header.digest, sent.applied_index, sent.state_digest
        )));
    }
    std::fs::rename(tmp, file).map_err(local)?;
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Failure::Usage(format!("{}: {e}", dir.display())))?;
    Ok((summary, Some(sent)))
}
