//! File-system safety for the data directory that holds the private key ring.
//!
//! The file store keeps signing keys on local disk, so a careless write or a loose directory is
//! a key leak or a key substitution, not just a bug. Two threats shape this module:
//!
//! - A predictable temporary name (`ring.json.tmp`) lets anyone who can write to the directory
//!   plant a symlink there and have our next write land wherever it points, or pre-create the
//!   file with their own permissions and read the keys back out. A crash mid-write must also
//!   never leave a half-written ring, and a rename that is not yet on disk can undo a rotation
//!   after a power loss.
//! - A directory that someone else owns, or that group or others can write, lets them swap
//!   `ring.json` for a ring of their choosing, or replace the directory with a symlink to one
//!   they control, whatever mode our own files have. Refusing such a directory at startup is
//!   cheaper than reasoning about every later race.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use tempfile::NamedTempFile;

/// Replaces `path` with `bytes` so that readers see either the old file or the new one, never
/// a mix, and so that the replacement survives a crash once this returns `Ok`.
///
/// The temporary file gets a random name ([`temp_file`]) and is created exclusively without
/// following symlinks, so nothing planted in the directory beforehand can redirect or pre-empt
/// the write; a leftover from an older scheme (`ring.json.tmp`) is simply ignored. `mode`
/// applies from the moment the file exists (the umask can only narrow it), so the secret is
/// never briefly world-readable. A symlink at `path` itself is replaced, not written through,
/// because `rename` acts on the directory entry. tempfile's `persist` does the rename, and on
/// any failure before it the temporary file is removed when it drops.
pub(crate) fn write_private_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut tmp = temp_file(path, mode)?;
    tmp.write_all(bytes)?;
    // Data must be on disk before the rename publishes it, or a crash can leave an empty ring.
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|failed| failed.error)?;
    // The rename is only durable once the directory entry is on disk. The temporary file no
    // longer exists by now, so there is nothing left to clean up if this fails.
    File::open(parent_dir(path))?.sync_all()
}

/// Refuses a data directory that another local user could tamper with.
///
/// The directory holds private signing keys: whoever can replace its entries can substitute
/// the ring, and whoever controls a symlink in its place controls where the keys go. Only the
/// final path component is checked; the directory's ancestors are the operator's to secure.
/// Each refusal says what is wrong and how to fix it, because the operator reads it at startup.
pub(crate) fn check_private_dir(dir: &Path) -> io::Result<()> {
    let shown = dir.display();
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Err(refuse(format!(
            "data directory {shown} is a symlink; it holds private keys, so point the \
             configuration at the real directory instead"
        )));
    }
    if !meta.is_dir() {
        return Err(refuse(format!(
            "data directory {shown} is not a directory; remove it or choose another path"
        )));
    }
    // SAFETY: geteuid has no preconditions, touches no memory we own and cannot fail.
    #[allow(unsafe_code)]
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(refuse(format!(
            "data directory {shown} is owned by uid {}, not by you (uid {me}); it holds \
             private keys, so run as its owner or `chown {me} {shown}`",
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(refuse(format!(
            "data directory {shown} is writable by group or others (mode {:03o}); it holds \
             private keys, so `chmod 700 {shown}`",
            mode & 0o777
        )));
    }
    Ok(())
}

/// Opens a fresh file that nobody else can have prepared: `O_EXCL` fails if anything (file or
/// symlink) already has the name, and `O_NOFOLLOW` guarantees a symlink is never followed even
/// where `O_EXCL` semantics are weak. `O_CLOEXEC` keeps the key file out of child processes.
fn create_exclusive(tmp: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(mode)
        .open(tmp)
}

/// The temporary file must share `path`'s directory, since rename is only atomic within one
/// file system. A bare file name has the empty path as parent, which means the current
/// directory.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A fresh file beside `path` (rename is only atomic within one file system), made by
/// [`create_exclusive`], named `.NAME.<22 random letters and digits>.tmp`: the dot keeps it out
/// of listings and globs on `*.json`. tempfile draws the name from a fast, not a cryptographic,
/// generator: a name guessed in advance only makes the exclusive create fail, and tempfile then
/// tries another (reseeded from the system's randomness after three failures).
fn temp_file(path: &Path, mode: u32) -> io::Result<NamedTempFile> {
    let Some(name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        ));
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .rand_bytes(22)
        .make_in(parent_dir(path), |tmp| create_exclusive(tmp, mode))
}

fn refuse(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn private_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    fn assert_refused(result: io::Result<()>, dir: &Path, needle: &str) {
        let err = result.expect_err("the directory should have been refused");
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        let message = err.to_string();
        assert!(message.contains(&dir.display().to_string()), "{message}");
        assert!(message.contains(needle), "{message}");
    }

    #[test]
    fn writes_content_with_the_requested_mode_and_leaves_no_temporary_file() {
        let dir = private_dir();
        let path = dir.path().join("ring.json");
        write_private_atomic(&path, b"{\"keys\":[]}", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"keys\":[]}");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(entries(dir.path()), ["ring.json"]);
    }

    #[test]
    fn replaces_an_existing_file_whatever_its_old_mode() {
        let dir = private_dir();
        let path = dir.path().join("ring.json");
        std::fs::write(&path, b"old and longer than the new content").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn ignores_a_stray_temporary_file_from_the_old_fixed_name() {
        let dir = private_dir();
        let path = dir.path().join("ring.json");
        let stray = dir.path().join("ring.json.tmp");
        std::fs::write(&stray, b"stale").unwrap();
        write_private_atomic(&path, b"fresh", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"fresh");
        assert_eq!(std::fs::read(&stray).unwrap(), b"stale");
        assert_eq!(entries(dir.path()), ["ring.json", "ring.json.tmp"]);
    }

    #[test]
    fn removes_the_temporary_file_when_the_rename_fails() {
        let dir = private_dir();
        // A file cannot be renamed over a directory, so the write fails after the temporary
        // file exists.
        let path = dir.path().join("ring.json");
        std::fs::DirBuilder::new().create(&path).unwrap();
        assert!(write_private_atomic(&path, b"keys", 0o600).is_err());
        assert_eq!(entries(dir.path()), ["ring.json"]);
    }

    #[test]
    fn replaces_a_symlink_at_the_target_instead_of_writing_through_it() {
        let dir = private_dir();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        let path = dir.path().join("ring.json");
        symlink(&victim, &path).unwrap();
        write_private_atomic(&path, b"keys", 0o600).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(std::fs::read(&path).unwrap(), b"keys");
    }

    #[test]
    fn temporary_name_is_hidden_random_and_beside_the_target() {
        let dir = private_dir();
        let path = dir.path().join("ring.json");
        let (a, b) = (
            temp_file(&path, 0o600).unwrap(),
            temp_file(&path, 0o600).unwrap(),
        );
        assert_ne!(a.path(), b.path());
        assert_eq!(a.path().parent(), Some(dir.path()));
        assert_eq!(mode_of(a.path()), 0o600);
        let name = a.path().file_name().unwrap().to_str().unwrap();
        let random = name
            .strip_prefix(".ring.json.")
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .unwrap_or_else(|| panic!("unexpected temporary name {name}"));
        // 22 letters and digits: about 131 bits of names.
        assert_eq!(random.len(), 22);
        assert!(
            random.bytes().all(|c| c.is_ascii_alphanumeric()),
            "{random}"
        );
        // A bare file name lives in the current directory.
        let cwd = std::env::current_dir().unwrap();
        let bare = temp_file(Path::new(".chat-auth-fsutil-test"), 0o600).unwrap();
        assert_eq!(bare.path().parent(), Some(cwd.as_path()));
        assert_eq!(
            temp_file(Path::new("/"), 0o600).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn create_exclusive_refuses_an_existing_file() {
        let dir = private_dir();
        let tmp = dir.path().join(".ring.json.x.tmp");
        std::fs::write(&tmp, b"planted").unwrap();
        let err = create_exclusive(&tmp, 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert_eq!(std::fs::read(&tmp).unwrap(), b"planted");
    }

    #[test]
    fn create_exclusive_never_follows_a_symlink() {
        let dir = private_dir();
        let tmp = dir.path().join(".ring.json.x.tmp");
        // Dangling: following it would create the target.
        let dangling = dir.path().join("created-through-symlink");
        symlink(&dangling, &tmp).unwrap();
        assert!(create_exclusive(&tmp, 0o600).is_err());
        assert!(!dangling.exists());
        // Existing: following it would let us write into someone else's file.
        let existing = dir.path().join("existing");
        std::fs::write(&existing, b"untouched").unwrap();
        let tmp2 = dir.path().join(".ring.json.y.tmp");
        symlink(&existing, &tmp2).unwrap();
        assert!(create_exclusive(&tmp2, 0o600).is_err());
        assert_eq!(std::fs::read(&existing).unwrap(), b"untouched");
    }

    #[test]
    fn create_exclusive_applies_the_mode_at_creation() {
        let dir = private_dir();
        let tmp = dir.path().join(".ring.json.z.tmp");
        create_exclusive(&tmp, 0o600).unwrap();
        assert_eq!(mode_of(&tmp), 0o600);
    }

    #[test]
    fn accepts_a_fresh_private_directory() {
        let dir = private_dir();
        check_private_dir(dir.path()).unwrap();
    }

    #[test]
    fn refuses_a_directory_anyone_can_write() {
        let dir = private_dir();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_refused(check_private_dir(dir.path()), dir.path(), "chmod 700");
    }

    #[test]
    fn refuses_a_directory_the_group_can_write() {
        let dir = private_dir();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o770)).unwrap();
        assert_refused(check_private_dir(dir.path()), dir.path(), "mode 770");
    }

    #[test]
    fn refuses_a_symlink_to_a_directory() {
        let dir = private_dir();
        let real = dir.path().join("real");
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(&real)
            .unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = dir.path().join("link");
        symlink(&real, &link).unwrap();
        check_private_dir(&real).unwrap();
        assert_refused(check_private_dir(&link), &link, "symlink");
    }

    #[test]
    fn refuses_a_regular_file() {
        let dir = private_dir();
        let file = dir.path().join("ring.json");
        std::fs::write(&file, b"").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_refused(check_private_dir(&file), &file, "not a directory");
    }
}
