//! One self-contained file for a trace (`rewind pack`): the trace directory's files plus
//! the guest binary, so a developer can replay without the user's paths or disk image.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! 0   magic  "RWPACK\0\x01"                      8 bytes
//! 8   pack format version (u32) = 1
//! 12  entry count (u32)
//! 16  table-of-contents length in bytes (u32)
//! 20  table of contents, per entry:
//!       name length (u16), name (UTF-8), encoding (u8: 0 raw, 1 zstd),
//!       offset (u64, from the start of the file), length (u64),
//!       sha256 of the stored bytes (32)
//! …   sha256 of bytes 0 .. end of the table (32)
//! …   entry data; entries with identical stored bytes share one region
//! ```
//!
//! Entry names are those of the trace directory (`version` or `incomplete`, `header`,
//! `events`, `chaos`, `blobs/HEX`) plus `binary`, the executable the header names. Its
//! stored bytes are zstd-compressed (level 19) and shared with `blobs/SHA256` when the
//! recorder kept the binary as a blob (its initial mapping): that blob is stored as the
//! same stream, a valid blob too, so the binary costs nothing twice.
//! Every entry is checked against its hash when read, and names outside that set are
//! refused, so a pack can only ever produce a trace directory.
//!
//! A pack is hostile input, so its table is checked before anything is allocated or
//! written: the entry count is at most the table's length divided by the smallest row
//! ([`MIN_ROW`] bytes), the rows fill the table exactly, names are unique, every entry
//! lies after the table and inside the file, and no two entries' stored bytes overlap
//! except `binary` with the blob of the same content (the only sharing the writer does).
//! Entries are copied out as streams, and the binary's decompression stops one byte past
//! the size the trace header records (at most [`MAX_BINARY_BYTES`]). So unpacking writes
//! at most the pack's own size plus the header's binary size, and holds 64 KiB buffers.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::blob::BlobHash;
use crate::error::{io, Error, Result};
use crate::header::BinaryId;
use crate::version::{
    BLOBS_DIR, END_FILE, EVENTS_FILE, HEADER_FILE, INCOMPLETE_FILE, VERSION_FILE,
};

/// First bytes of a packed trace.
pub const PACK_MAGIC: [u8; 8] = *b"RWPACK\0\x01";
/// Pack layout version this build writes and reads.
pub const PACK_VERSION: u32 = 1;
/// Name of the guest binary's entry, and of the file it is unpacked to.
pub const BINARY_ENTRY: &str = "binary";

const FRAME_BYTES: usize = 20;
const FRAME_LEN: u64 = FRAME_BYTES as u64;
/// The smallest table row: the shortest allowed name (`end`) and the fixed fields.
pub const MIN_ROW: u64 = 2 + 3 + 1 + 8 + 8 + 32;
/// Largest guest binary a pack may unpack (what a blob may hold).
pub const MAX_BINARY_BYTES: u64 = crate::blob::MAX_BLOB_BYTES;
/// zstd level for the binary: packing is rare and the pack may live in git, so spend the
/// second or two that level 19 takes over level 3 (a fifth smaller on umk's debug info).
const BINARY_ZSTD_LEVEL: i32 = 19;
const RAW: u8 = 0;
const ZSTD: u8 = 1;

/// One table-of-contents row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Name, as a path relative to the trace directory.
    pub name: String,
    /// Whether the stored bytes are zstd-compressed (only `binary`).
    pub compressed: bool,
    /// Byte offset of the stored bytes in the pack.
    pub offset: u64,
    /// Number of stored bytes.
    pub len: u64,
    /// SHA-256 of the stored bytes.
    pub sha256: [u8; 32],
}

/// What `write` produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackStats {
    /// Entries in the table of contents.
    pub entries: u64,
    /// Entries whose bytes were shared with an earlier one.
    pub shared: u64,
    /// Size of the pack file.
    pub bytes: u64,
}

fn allowed_name(name: &str) -> bool {
    match name.strip_prefix("blobs/") {
        Some(hex) => hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => matches!(
            name,
            VERSION_FILE
                | INCOMPLETE_FILE
                | HEADER_FILE
                | EVENTS_FILE
                | END_FILE
                | crate::chaos::CHAOS_FILE
                | BINARY_ENTRY
        ),
    }
}

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The stored bytes of each entry, read one at a time so that memory holds one file
/// (and the compressed binary, made once).
enum Source<'a> {
    File(PathBuf),
    Binary(&'a [u8]),
}

impl Source<'_> {
    fn bytes(&self) -> Result<Vec<u8>> {
        match self {
            Source::File(p) => fs::read(p).map_err(io("read", p)),
            Source::Binary(b) => Ok(b.to_vec()),
        }
    }
}

/// Packs the trace in `dir`, with the binary at `binary` (which must have the size and
/// SHA-256 the header records), into `out` (written to a temporary name and renamed).
pub fn write(dir: &Path, binary: &Path, out: &Path) -> Result<PackStats> {
    let reader = crate::reader::TraceReader::open(dir)?;
    let want = &reader.header().binary;
    let data = fs::read(binary).map_err(io("read guest binary", binary))?;
    let found = BlobHash::of(&data);
    if found != want.sha256 || data.len() as u64 != want.size {
        return Err(Error::BinaryMismatch {
            path: binary.to_path_buf(),
            expected: want.sha256.hex(),
            found: found.hex(),
        });
    }
    let compressed = zstd::bulk::compress(&data, BINARY_ZSTD_LEVEL)
        .map_err(io("compress guest binary", binary))?;
    drop(data);

    let mut sources: Vec<(String, u8, Source)> = Vec::new();
    for name in [
        VERSION_FILE,
        INCOMPLETE_FILE,
        HEADER_FILE,
        EVENTS_FILE,
        END_FILE,
        crate::chaos::CHAOS_FILE,
    ] {
        let p = dir.join(name);
        if p.is_file() {
            sources.push((name.to_string(), RAW, Source::File(p)));
        }
    }
    let blobs = dir.join(BLOBS_DIR);
    let mut names: Vec<String> = fs::read_dir(&blobs)
        .map_err(io("read directory", &blobs))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| allowed_name(&format!("blobs/{n}")))
        .collect();
    names.sort();
    // The recorder keeps the binary as a blob when it maps it: that blob gets the same
    // (smaller) zstd stream as the binary entry, so the two share one region.
    let binary_blob = want.sha256.hex();
    for n in &names {
        let src = if *n == binary_blob {
            Source::Binary(&compressed)
        } else {
            Source::File(blobs.join(n))
        };
        sources.push((format!("blobs/{n}"), RAW, src));
    }
    sources.push((BINARY_ENTRY.to_string(), ZSTD, Source::Binary(&compressed)));

    // Pass 1: hashes and lengths, to lay out the table.
    let mut entries = Vec::with_capacity(sources.len());
    for (name, enc, src) in &sources {
        let bytes = src.bytes()?;
        entries.push(Entry {
            name: name.clone(),
            compressed: *enc == ZSTD,
            offset: 0,
            len: bytes.len() as u64,
            sha256: sha(&bytes),
        });
    }
    let toc_len: u64 = entries
        .iter()
        .map(|e| 2 + e.name.len() as u64 + 1 + 8 + 8 + 32)
        .sum();
    let mut next = FRAME_LEN + toc_len + 32;
    let mut placed: HashMap<[u8; 32], u64> = HashMap::new();
    let mut write_order = Vec::new();
    let mut shared = 0;
    for (i, e) in entries.iter_mut().enumerate() {
        if let Some(&at) = placed.get(&e.sha256) {
            e.offset = at;
            shared += 1;
        } else {
            e.offset = next;
            placed.insert(e.sha256, next);
            next += e.len;
            write_order.push(i);
        }
    }

    // The frame's fields are u32 and a row's name length u16: a trace whose table does
    // not fit them cannot be packed (a cut field would write a pack that lies).
    let unpackable = |offset: u64, entry: &str, what: String| Error::Pack {
        path: out.to_path_buf(),
        offset,
        entry: entry.to_string(),
        what,
    };
    let count32 = u32::try_from(entries.len()).map_err(|_| {
        unpackable(
            12,
            "frame",
            format!("{} entries, beyond the frame's u32 count", entries.len()),
        )
    })?;
    let toc32 = u32::try_from(toc_len).map_err(|_| {
        unpackable(
            16,
            "table of contents",
            format!("{toc_len} bytes, beyond the frame's u32 length"),
        )
    })?;
    let mut head = Vec::with_capacity(FRAME_BYTES + toc32 as usize + 32);
    head.extend_from_slice(&PACK_MAGIC);
    head.extend_from_slice(&PACK_VERSION.to_le_bytes());
    head.extend_from_slice(&count32.to_le_bytes());
    head.extend_from_slice(&toc32.to_le_bytes());
    for e in &entries {
        let name_len = u16::try_from(e.name.len()).map_err(|_| {
            unpackable(
                head.len() as u64,
                &e.name,
                format!("a {}-byte name, beyond a row's u16 length", e.name.len()),
            )
        })?;
        head.extend_from_slice(&name_len.to_le_bytes());
        head.extend_from_slice(e.name.as_bytes());
        head.push(if e.compressed { ZSTD } else { RAW });
        head.extend_from_slice(&e.offset.to_le_bytes());
        head.extend_from_slice(&e.len.to_le_bytes());
        head.extend_from_slice(&e.sha256);
    }
    let head_sha = sha(&head);
    head.extend_from_slice(&head_sha);

    // Pass 2: the data, checked against pass 1 in case the trace changed meanwhile.
    let tmp = out.with_extension("rwpack-tmp");
    let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(&head).map_err(io("write", &tmp))?;
    for i in write_order {
        let bytes = sources[i].2.bytes()?;
        if sha(&bytes) != entries[i].sha256 {
            let _ = fs::remove_file(&tmp);
            return Err(Error::Usage(
                "a trace file changed while it was being packed",
            ));
        }
        f.write_all(&bytes).map_err(io("write", &tmp))?;
    }
    f.sync_all().map_err(io("sync", &tmp))?;
    drop(f);
    fs::rename(&tmp, out).map_err(io("rename pack to", out))?;
    Ok(PackStats {
        entries: entries.len() as u64,
        shared,
        bytes: next,
    })
}

/// Whether `path` is a file that starts with the pack magic.
pub fn is_pack(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == PACK_MAGIC)
}

/// Refuses overlapping stored regions, except `binary` and one blob with the very same
/// bytes: a table that points many rows at one region would make unpacking write far
/// more than the pack holds.
fn check_regions(entries: &[Entry], err: &dyn Fn(u64, &str, String) -> Error) -> Result<()> {
    let mut by_offset: Vec<&Entry> = entries.iter().filter(|e| e.len > 0).collect();
    // `binary` sorts before `blobs/…` at the same place, so a third row on the binary's
    // region meets a blob, not the binary, and is refused.
    by_offset.sort_by(|a, b| (a.offset, a.len, &a.name).cmp(&(b.offset, b.len, &b.name)));
    for pair in by_offset.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.offset + a.len <= b.offset {
            continue;
        }
        let same = a.offset == b.offset && a.len == b.len && a.sha256 == b.sha256;
        let binary_and_blob = [a, b].iter().any(|e| e.name == BINARY_ENTRY)
            && [a, b].iter().any(|e| e.name.starts_with("blobs/"));
        if !(same && binary_and_blob) {
            return Err(err(
                b.offset,
                &b.name,
                format!(
                    "its stored bytes overlap those of `{}` (only the binary and its own blob \
                     may share)",
                    a.name
                ),
            ));
        }
    }
    Ok(())
}

/// An opened pack whose table of contents has been checked.
#[derive(Debug)]
pub struct Pack {
    path: PathBuf,
    file: File,
    entries: Vec<Entry>,
}

impl Pack {
    /// Opens `path` and checks the frame, the table's hash, and that every entry lies
    /// inside the file.
    pub fn open(path: &Path) -> Result<Pack> {
        let mut file = File::open(path).map_err(io("open", path))?;
        let size = file.metadata().map_err(io("stat", path))?.len();
        let err = |offset: u64, entry: &str, what: String| Error::Pack {
            path: path.to_path_buf(),
            offset,
            entry: entry.to_string(),
            what,
        };
        let mut frame = [0u8; FRAME_BYTES];
        if size < FRAME_LEN {
            return Err(err(
                0,
                "frame",
                format!(
                    "file is {size} bytes, shorter than the {FRAME_LEN}-byte frame (truncated)"
                ),
            ));
        }
        file.read_exact(&mut frame).map_err(io("read", path))?;
        if frame[..8] != PACK_MAGIC {
            return Err(err(0, "frame", format!("bad magic {:02x?}", &frame[..8])));
        }
        let word =
            |o: usize| u32::from_le_bytes([frame[o], frame[o + 1], frame[o + 2], frame[o + 3]]);
        if word(8) != PACK_VERSION {
            return Err(err(
                8,
                "frame",
                format!(
                    "pack version {} (this rewind reads {PACK_VERSION})",
                    word(8)
                ),
            ));
        }
        let count = u64::from(word(12));
        let toc_len = u64::from(word(16));
        if count * MIN_ROW > toc_len {
            return Err(err(
                12,
                "table of contents",
                format!(
                    "{count} entries cannot fit in a {toc_len}-byte table (a row takes at least \
                     {MIN_ROW} bytes)"
                ),
            ));
        }
        if FRAME_LEN + toc_len + 32 > size {
            return Err(err(
                FRAME_LEN,
                "table of contents",
                format!(
                    "{toc_len} bytes of table and its hash do not fit in the {size}-byte file \
                     (truncated)"
                ),
            ));
        }
        // A u32 from the frame; on a host whose usize is narrower it cannot be read.
        let toc_bytes = usize::try_from(toc_len).map_err(|_| {
            err(
                16,
                "table of contents",
                format!("{toc_len} bytes of table do not fit in this host's memory"),
            )
        })?;
        let mut toc = vec![0u8; toc_bytes + 32];
        file.read_exact(&mut toc).map_err(io("read", path))?;
        let (body, stored_sha) = toc.split_at(toc_bytes);
        let mut hasher = Sha256::new();
        hasher.update(frame);
        hasher.update(body);
        let computed: [u8; 32] = hasher.finalize().into();
        if computed[..] != *stored_sha {
            return Err(err(
                FRAME_LEN,
                "table of contents",
                "sha256 mismatch (the pack was modified or damaged)".into(),
            ));
        }
        // Bounded by the table's length, checked above; only a capacity hint.
        let mut entries = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        let mut names = HashSet::new();
        let data_start = FRAME_LEN + toc_len + 32;
        let mut p = 0usize;
        let short = |p: usize| {
            err(
                FRAME_LEN + p as u64,
                "table of contents",
                "a row runs past the end of the table".into(),
            )
        };
        for _ in 0..count {
            let row_at = p;
            let name_len = body
                .get(p..p + 2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
                .ok_or_else(|| short(row_at))?;
            p += 2;
            let rest = body
                .get(p..p + name_len + 1 + 8 + 8 + 32)
                .ok_or_else(|| short(row_at))?;
            let name = std::str::from_utf8(&rest[..name_len])
                .map_err(|_| {
                    err(
                        FRAME_LEN + p as u64,
                        "table of contents",
                        "entry name is not UTF-8".into(),
                    )
                })?
                .to_string();
            if !allowed_name(&name) {
                return Err(err(
                    FRAME_LEN + p as u64,
                    &name,
                    "not a trace file name; refusing to unpack it".into(),
                ));
            }
            if !names.insert(name.clone()) {
                return Err(err(
                    FRAME_LEN + p as u64,
                    &name,
                    "a second entry of that name".into(),
                ));
            }
            let r = &rest[name_len..];
            let u64_at = |o: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&r[o..o + 8]);
                u64::from_le_bytes(b)
            };
            let compressed = match r[0] {
                RAW => false,
                ZSTD => true,
                e => {
                    return Err(err(
                        FRAME_LEN + (p + name_len) as u64,
                        &name,
                        format!("unknown encoding {e}"),
                    ))
                }
            };
            let mut sha256 = [0u8; 32];
            sha256.copy_from_slice(&r[17..49]);
            let entry = Entry {
                name,
                compressed,
                offset: u64_at(1),
                len: u64_at(9),
                sha256,
            };
            let inside = matches!(entry.offset.checked_add(entry.len), Some(end) if end <= size);
            if entry.offset < data_start && entry.len > 0 {
                return Err(err(
                    entry.offset,
                    &entry.name,
                    format!(
                        "its bytes at byte offset {} lie inside the frame or the table (which \
                         ends at {data_start})",
                        entry.offset
                    ),
                ));
            }
            if !inside {
                return Err(err(
                    entry.offset,
                    &entry.name,
                    format!(
                        "{} bytes at byte offset {} run past the end of the {size}-byte file \
                         (truncated)",
                        entry.len, entry.offset
                    ),
                ));
            }
            p += name_len + 1 + 8 + 8 + 32;
            entries.push(entry);
        }
        if p as u64 != toc_len {
            return Err(err(
                FRAME_LEN + p as u64,
                "table of contents",
                format!("{} stray bytes after the {count} rows", toc_len - p as u64),
            ));
        }
        check_regions(&entries, &err)?;
        file.seek(SeekFrom::Start(0)).map_err(io("seek", path))?;
        Ok(Pack {
            path: path.to_path_buf(),
            file,
            entries,
        })
    }

    /// The table of contents.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn err(&self, offset: u64, entry: &str, what: String) -> Error {
        Error::Pack {
            path: self.path.clone(),
            offset,
            entry: entry.to_string(),
            what,
        }
    }

    /// Streams the stored bytes of `entry` into `sink` (when given), checking their
    /// length and hash against the table.
    fn stream_stored(&mut self, entry: &Entry, mut sink: Option<&mut dyn Write>) -> Result<()> {
        self.file
            .seek(SeekFrom::Start(entry.offset))
            .map_err(io("seek", &self.path))?;
        let mut src = (&self.file).take(entry.len);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io("read", &self.path)(e)),
            };
            hasher.update(&buf[..n]);
            if let Some(w) = sink.as_mut() {
                w.write_all(&buf[..n])
                    .map_err(io("write unpacked entry", &self.path))?;
            }
            got += n as u64;
        }
        if got != entry.len {
            return Err(self.err(
                entry.offset,
                &entry.name,
                format!("{got} of its {} bytes could be read (truncated)", entry.len),
            ));
        }
        if <[u8; 32]>::from(hasher.finalize()) != entry.sha256 {
            return Err(self.err(
                entry.offset,
                &entry.name,
                format!(
                    "sha256 of its {} bytes does not match the table (the pack was modified or \
                     damaged)",
                    entry.len
                ),
            ));
        }
        Ok(())
    }

    /// Writes the stored bytes of a raw entry to `dest`, checked against the table.
    fn unpack_raw(&mut self, entry: &Entry, dest: &Path) -> Result<()> {
        let mut f = File::create_new(dest).map_err(io("create", dest))?;
        self.stream_stored(entry, Some(&mut f))?;
        f.flush().map_err(io("write", dest))
    }

    /// Decompresses the `binary` entry into `dest`, stopping one byte past `want.size`,
    /// and checks its size and SHA-256 against the header's.
    fn unpack_binary(&mut self, entry: &Entry, want: &BinaryId, dest: &Path) -> Result<()> {
        // First the stored bytes against the table, without keeping them…
        self.stream_stored(entry, None)?;
        // …then the decompressed stream, capped by the size the header records.
        self.file
            .seek(SeekFrom::Start(entry.offset))
            .map_err(io("seek", &self.path))?;
        let decoder = zstd::stream::read::Decoder::new((&self.file).take(entry.len))
            .map_err(io("decompress binary from", &self.path))?;
        let mut capped = decoder.take(want.size + 1);
        let mut out = File::create_new(dest).map_err(io("create", dest))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        loop {
            let n = match capped.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(self.err(
                        entry.offset,
                        &entry.name,
                        format!("not a valid zstd stream: {e}"),
                    ))
                }
            };
            got += n as u64;
            if got > want.size {
                return Err(self.err(
                    entry.offset,
                    &entry.name,
                    format!(
                        "decompresses to more than the {} bytes the trace header records",
                        want.size
                    ),
                ));
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io("write", dest))?;
        }
        let found = BlobHash(hasher.finalize().into());
        if got != want.size || found != want.sha256 {
            return Err(self.err(
                entry.offset,
                &entry.name,
                format!(
                    "binary has {got} bytes and sha256 {found}, the trace header records {} \
                     bytes and {}",
                    want.size, want.sha256
                ),
            ));
        }
        out.flush().map_err(io("write", dest))
    }

    /// Writes every entry into `dir`, which must not exist or be empty (an existing trace
    /// is never overwritten): the trace files, and the binary as `dir/binary`, executable,
    /// checked against the header's size and SHA-256. On failure, what was written is
    /// removed again.
    pub fn unpack(&mut self, dir: &Path) -> Result<()> {
        let created = if dir.exists() {
            let mut entries = fs::read_dir(dir).map_err(io("read directory", dir))?;
            if entries.next().is_some() {
                return Err(Error::Io {
                    op: "unpack into",
                    path: dir.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "directory is not empty (refusing to overwrite what is there)",
                    ),
                });
            }
            false
        } else {
            true
        };
        let result = self.unpack_into(dir);
        if result.is_err() {
            if created {
                let _ = fs::remove_dir_all(dir);
            } else if let Ok(rd) = fs::read_dir(dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    let _ = if p.is_dir() {
                        fs::remove_dir_all(&p)
                    } else {
                        fs::remove_file(&p)
                    };
                }
            }
        }
        result
    }

    fn unpack_into(&mut self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir.join(BLOBS_DIR)).map_err(io("create directory", dir))?;
        let entries = self.entries.clone();
        let mut binary = None;
        for e in &entries {
            if e.name == BINARY_ENTRY {
                binary = Some(e);
                continue;
            }
            self.unpack_raw(e, &dir.join(&e.name))?;
        }
        let Some(binary) = binary else {
            return Err(self.err(
                FRAME_LEN,
                BINARY_ENTRY,
                "the pack holds no guest binary".into(),
            ));
        };
        let reader = crate::reader::TraceReader::open(dir)?;
        let want = reader.header().binary.clone();
        if want.size > MAX_BINARY_BYTES {
            return Err(self.err(
                binary.offset,
                BINARY_ENTRY,
                format!(
                    "the trace header records a {}-byte binary, more than a pack may hold \
                     ({MAX_BINARY_BYTES})",
                    want.size
                ),
            ));
        }
        // The one region the writer shares is the binary's with its own blob.
        let own_blob = format!("{BLOBS_DIR}/{}", want.sha256.hex());
        if let Some(other) = entries
            .iter()
            .find(|e| e.name != BINARY_ENTRY && e.len > 0 && e.offset == binary.offset)
        {
            if other.name != own_blob {
                return Err(self.err(
                    binary.offset,
                    &other.name,
                    "shares the binary's stored bytes but is not the binary's own blob".into(),
                ));
            }
        }
        self.unpack_binary(binary, &want, &dir.join(BINARY_ENTRY))?;
        set_executable(&dir.join(BINARY_ENTRY))
    }
}

fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).map_err(io("chmod", path))
}

/// Directories of live [`Unpacked`] traces, so that a signal handler can remove them
/// before the process exits (a `Drop` does not run then).
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    // A panic while holding the lock leaves a list that is still right.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the directory of every live [`Unpacked`] trace. For a handler of SIGINT and
/// SIGTERM that is about to exit the process.
pub fn remove_unpacked_dirs() {
    for dir in live().drain(..) {
        let _ = fs::remove_dir_all(&dir);
    }
}

/// A private directory (mode 0700, unpredictable name, under the temp dir) removed when
/// dropped, or by [`remove_unpacked_dirs`]: where `open` unpacks a packed trace.
#[derive(Debug)]
pub struct Unpacked {
    dir: tempfile::TempDir,
}

impl Unpacked {
    /// Unpacks `pack` into a fresh private directory under the system temp dir.
    pub fn new(pack: &Path) -> Result<Unpacked> {
        let tmp = std::env::temp_dir();
        // Only this user may enter it: the guest binary and the trace are unpacked there.
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
        let dir = tempfile::Builder::new()
            .prefix("rewind-unpacked-")
            .permissions(private)
            .tempdir_in(&tmp)
            .map_err(io("create a private directory in", &tmp))?;
        live().push(dir.path().to_path_buf());
        let me = Unpacked { dir };
        Pack::open(pack)?.unpack(me.dir())?;
        Ok(me)
    }

    /// The unpacked trace directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Unpacked {
    fn drop(&mut self) {
        live().retain(|d| d != self.dir.path());
        // The TempDir removes the directory when dropped after this.
    }
}
