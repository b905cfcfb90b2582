//! Validation of bucket names and object keys.
//!
//! Object keys never become file-system paths (blobs are stored under
//! `<tenant>/<blob uuid>`), so no key can escape the tenant's area by construction. Keys are still
//! held to strict rules, so that what is stored is also safe for S3 backends, listings, URLs and
//! any tool that maps keys to paths later: no `.`/`..` segments, no leading `/`, no empty
//! segment, no control characters (NUL included), no backslash, at most 1024 bytes.

pub const MAX_KEY_BYTES: usize = 1024;

/// Why a key or name was refused (shown to the client).
pub fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("the object key is empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return Err("the object key is longer than 1024 bytes");
    }
    if key.chars().any(|c| c.is_control()) {
        return Err("the object key contains control characters");
    }
    // U+10FFFF (a noncharacter) is reserved: listings use it as the upper bound of a prefix.
    if key.contains('\u{10FFFF}') {
        return Err("the object key contains U+10FFFF");
    }
    if key.contains('\\') {
        return Err("the object key contains a backslash");
    }
    if key.starts_with('/') {
        return Err("the object key is an absolute path");
    }
    let segments: Vec<&str> = key.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        if *seg == "." || *seg == ".." {
            return Err("the object key contains a '.' or '..' segment");
        }
        // A trailing '/' ("folder/") is allowed; an empty segment elsewhere is not.
        if seg.is_empty() && i + 1 != segments.len() {
            return Err("the object key contains an empty segment");
        }
    }
    Ok(())
}

/// Bucket names: 3–63 characters of `a-z 0-9 - .`, starting and ending with a letter or digit.
pub fn check_bucket(name: &str) -> Result<(), &'static str> {
    let ok_len = (3..=63).contains(&name.len());
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let ends = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok_len
        && ok_chars
        && ends(name.bytes().next())
        && ends(name.bytes().last())
        && !name.contains("..")
    {
        Ok(())
    } else {
        Err(
            "bucket names are 3-63 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or digit",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["a", "a/b/c.txt", "dir/", "ünïcode/ключ", "a..b", ".hidden"] {
            assert!(check_key(ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(1025);
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "..",
            "a//b",
            "a\0b",
            "a\nb",
            "a\\b",
            long.as_str(),
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn buckets() {
        for ok in ["abc", "my-bucket.1", "0aa"] {
            assert!(check_bucket(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "Abc", "-abc", "abc-", "a..b", "a_b", "a/b"] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
    }
}
