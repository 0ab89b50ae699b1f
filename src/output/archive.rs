//! The deliverables zip, streamed from the written files. Entries are dated
//! 1980-01-01 so the same audio always gives the same archive bytes.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::error::StageError;
use crate::plan::Compression;

/// Above this size an entry needs Zip64 fields.
const ZIP32_LIMIT: u64 = 0xFFFF_FFFF;

/// Writes `archive` with `(name in zip, file on disk)` entries, in order.
/// Audio is stored (or deflated if asked); `.json` entries are always
/// deflated.
pub fn write(
    archive: &Path,
    entries: &[(String, &Path)],
    audio: Compression,
) -> Result<(), StageError> {
    let io_err = |e: io::Error| StageError::io(archive, e);
    let zip_err =
        |e: zip::result::ZipError| StageError::Invalid(format!("{}: {e}", archive.display()));
    let file = File::create(archive).map_err(io_err)?;
    let mut zip = ZipWriter::new(BufWriter::new(file));
    for (name, path) in entries {
        let size = std::fs::metadata(path)
            .map_err(|e| StageError::io(*path, e))?
            .len();
        let method = if name.ends_with(".json") || audio == Compression::Deflate {
            CompressionMethod::Deflated
        } else {
            CompressionMethod::Stored
        };
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(DateTime::default())
            .unix_permissions(0o644)
            .large_file(size >= ZIP32_LIMIT);
        zip.start_file(name.as_str(), options).map_err(zip_err)?;
        let mut input = BufReader::new(File::open(path).map_err(|e| StageError::io(*path, e))?);
        io::copy(&mut input, &mut zip).map_err(io_err)?;
    }
    let mut inner = zip.finish().map_err(zip_err)?;
    io::Write::flush(&mut inner).map_err(io_err)?;
    inner
        .into_inner()
        .map_err(|e| io_err(e.into_error()))
        .map(drop)
}
