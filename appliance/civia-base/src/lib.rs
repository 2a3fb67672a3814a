//! The small foundations every Civia crate shares, written once.
//!
//! Owns: crash-safe file replacement ([`fs::write_atomic`], [`fs::sync_dir`]), a file pinned
//! at a consistent length for a reader that outlives the moment ([`fs::PinnedFile`]), UTC calendar
//! arithmetic and the two date formats the box writes ([`time`]: `YYYY-MM-DD` and RFC 3339
//! with milliseconds), and the SHA-256 hex digest used for model weights, audit digests,
//! bundle contents and stored token hashes ([`hash::sha256_hex`]), the free space of a file
//! system ([`fs::disk_space`]), and a child's loss of privileges before it runs another
//! program ([`process`]).
//!
//! Must never: depend on another Civia crate, do I/O beyond the one file operation asked
//! for, log, or read the clock anywhere but [`time::now_unix`].
//!
//! Why hand-written: the date code is Howard Hinnant's public-domain `civil_from_days` /
//! `days_from_civil` (a dozen lines, exhaustively tested below); a date crate would add a
//! dependency for two formats. Hashing and hex come from `sha2` and `hex`.

pub mod fs;
pub mod hash;
pub mod process;
pub mod time;
