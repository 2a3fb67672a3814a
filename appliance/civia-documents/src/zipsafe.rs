//! Bounded reading of ZIP containers (DOCX, ODT): entry count and inflated sizes are checked
//! against the limits, and inflation goes through a `take()` limiter so a lying header cannot
//! make us inflate more than the limit.

use std::io::{Cursor, Read};

use zip::result::ZipError;
use zip::ZipArchive;

use crate::error::{Error, Hazard};
use crate::{Format, Limits};

pub(crate) type Archive<'a> = ZipArchive<Cursor<&'a [u8]>>;

/// Opens the archive and checks the number of entries.
pub(crate) fn open<'a>(
    bytes: &'a [u8],
    format: Format,
    limits: &Limits,
) -> Result<Archive<'a>, Error> {
    let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| zip_error(format, "", e))?;
    if archive.len() > limits.max_zip_entries {
        return Err(Error::Hostile {
            format,
            hazard: Hazard::TooManyEntries {
                count: archive.len(),
                max: limits.max_zip_entries,
            },
        });
    }
    Ok(archive)
}

/// Reads one entry, or `None` when the archive has no entry of that name.
pub(crate) fn read_entry(
    archive: &mut Archive<'_>,
    name: &str,
    format: Format,
    limits: &Limits,
) -> Result<Option<Vec<u8>>, Error> {
    let max = limits.max_uncompressed_bytes;
    let too_large = || Error::Hostile {
        format,
        hazard: Hazard::EntryTooLarge {
            entry: name.to_owned(),
            max,
        },
    };
    let file = match archive.by_name(name) {
        Ok(file) => file,
        Err(ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(zip_error(format, name, e)),
    };
    if file.encrypted() {
        return Err(Error::Encrypted { format });
    }
    if file.size() > max {
        return Err(too_large());
    }
    let mut out = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| Error::Corrupt {
            format,
            reason: format!("cannot inflate entry {name:?}: {e}"),
        })?;
    if out.len() as u64 > max {
        return Err(too_large());
    }
    Ok(Some(out))
}

/// Reads a required UTF-8 XML entry.
pub(crate) fn read_xml(
    archive: &mut Archive<'_>,
    name: &str,
    format: Format,
    limits: &Limits,
) -> Result<String, Error> {
    let bytes = read_entry(archive, name, format, limits)?.ok_or_else(|| Error::Corrupt {
        format,
        reason: format!("missing entry {name:?}"),
    })?;
    let bytes = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .map(<[u8]>::to_vec)
        .unwrap_or(bytes);
    String::from_utf8(bytes).map_err(|e| Error::Corrupt {
        format,
        reason: format!("entry {name:?} is not UTF-8: {e}"),
    })
}

fn zip_error(format: Format, name: &str, e: ZipError) -> Error {
    match e {
        ZipError::UnsupportedArchive(msg) if msg == ZipError::PASSWORD_REQUIRED => {
            Error::Encrypted { format }
        }
        e => Error::Corrupt {
            format,
            reason: if name.is_empty() {
                format!("invalid ZIP container: {e}")
            } else {
                format!("invalid ZIP entry {name:?}: {e}")
            },
        },
    }
}
