//! The bearer token `plan release serve` requires: read once at start from the plan's
//! `token_file` (the file Alertmanager's `credentials_file` reads too), and compared with
//! what a request presents in constant time, so how long a refusal takes says nothing about
//! how much of a guess was right.
//!
//! The service refuses to start on a token file that is missing, empty, too short to be a
//! secret, or readable by every user of the host: a rollback endpoint anyone on the machine
//! can trigger is not protected by a token.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Fewer bytes than this is a password, not a token.
const MIN_LEN: usize = 16;

/// More than this is not a token file.
const MAX_LEN: u64 = 4096;

/// A secret: never printed (its `Debug` says how long it is, nothing more).
pub(crate) struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({} bytes)", self.0.len())
    }
}

impl Token {
    /// Whether `given` (the `Authorization` header's value) presents this token as
    /// `Bearer <token>`, in time that depends on the token's length only.
    pub(crate) fn accepts(&self, given: Option<&str>) -> bool {
        let presented = given
            .and_then(|g| {
                let (scheme, rest) = g.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
            })
            .unwrap_or("");
        equal(&self.0, presented.as_bytes())
    }
}

/// Reads the token at `path`: the file's content with surrounding white space trimmed (as
/// Alertmanager reads `credentials_file`).
pub(crate) fn read(path: &Path) -> Result<Token, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| {
        format!("{shown}: cannot read the token file ({e}); write a random token into it (`head -c 32 /dev/urandom | base64 > {shown}; chmod 600 {shown}`)")
    })?;
    if !meta.is_file() || meta.len() > MAX_LEN {
        return Err(format!("{shown}: not a token file"));
    }
    let mode = meta.permissions().mode();
    if mode & 0o004 != 0 {
        return Err(format!(
            "{shown}: every user of this host can read the token (mode {:o}); `chmod o-r {shown}` (Alertmanager's user needs to read it: use a group)",
            mode & 0o777
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    let token = bytes.trim_ascii();
    if token.is_empty() {
        return Err(format!(
            "{shown}: the token file is empty; write a random token into it"
        ));
    }
    if token.len() < MIN_LEN {
        return Err(format!(
            "{shown}: a token of {} bytes is too short to guard a rollback; use at least {MIN_LEN} random bytes",
            token.len()
        ));
    }
    Ok(Token(token.to_vec()))
}

/// `secret == given`, looking at every byte of `secret` whatever `given` is: no early exit
/// on the first difference or on a length mismatch.
pub(crate) fn equal(secret: &[u8], given: &[u8]) -> bool {
    let mut diff = u8::from(secret.len() != given.len());
    for (i, s) in secret.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(!*s);
        diff |= std::hint::black_box(s ^ g);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_compares_every_byte_and_the_length() {
        assert!(equal(b"secret-token", b"secret-token"));
        assert!(!equal(b"secret-token", b"secret-tokeN"));
        assert!(!equal(b"secret-token", b"Secret-token"));
        assert!(!equal(b"secret-token", b"secret-toke"));
        assert!(!equal(b"secret-token", b"secret-token-and-more"));
        assert!(!equal(b"secret-token", b""));
        assert!(!equal(b"", b"x"));
        // A prefix of the secret padded with what the loop substitutes is still wrong.
        assert!(!equal(b"ab", b"a"));
    }

    #[test]
    fn the_header_must_say_bearer_and_the_token() {
        let t = Token(b"0123456789abcdef".to_vec());
        assert!(t.accepts(Some("Bearer 0123456789abcdef")));
        assert!(t.accepts(Some("bearer  0123456789abcdef ")));
        assert!(!t.accepts(Some("Basic 0123456789abcdef")));
        assert!(!t.accepts(Some("0123456789abcdef")));
        assert!(!t.accepts(Some("Bearer 0123456789abcdeF")));
        assert!(!t.accepts(None));
        assert_eq!(format!("{t:?}"), "Token(16 bytes)");
    }

    #[test]
    fn token_files_that_guard_nothing_are_refused() {
        let dir = std::env::temp_dir().join(format!("plan-token-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        let set = |text: &str, mode: u32| {
            std::fs::write(&f, text).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        assert!(
            read(&dir.join("missing"))
                .unwrap_err()
                .contains("cannot read")
        );
        set("\n", 0o600);
        assert!(read(&f).unwrap_err().contains("empty"));
        set("short\n", 0o600);
        assert!(read(&f).unwrap_err().contains("too short"));
        set("0123456789abcdef0123\n", 0o644);
        assert!(read(&f).unwrap_err().contains("every user"));
        set("0123456789abcdef0123\n", 0o640);
        let t = read(&f).unwrap();
        assert!(t.accepts(Some("Bearer 0123456789abcdef0123")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
