//! JSON pointers (RFC 6901), the address every finding carries: one key escaped into a
//! reference token and back, and the text people read for a pointer (`phases[1].traffic`).
//!
//! A leaf module, so that the YAML, schema, check and scenario stages all build and print
//! pointers the same way without importing one another.

/// Escapes one key into a reference token: `~` becomes `~0`, `/` becomes `~1`.
pub(crate) fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The key a reference token stands for: `~1` becomes `/`, then `~0` becomes `~`.
pub(crate) fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Where in a document `pointer` points, for messages: `` `phases[1].traffic` `` (list
/// indices in brackets, keys joined by dots), or `document` (`the plan`) for the document
/// itself.
pub(crate) fn human(pointer: &str, document: &str) -> String {
    if pointer.is_empty() {
        return document.into();
    }
    let mut s = String::new();
    for token in pointer.split('/').skip(1) {
        if token.chars().all(|c| c.is_ascii_digit()) {
            s.push_str(&format!("[{token}]"));
        } else {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(&unescape(token));
        }
    }
    format!("`{s}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_escape_and_unescape() {
        assert_eq!(escape("a/b~c"), "a~1b~0c");
        assert_eq!(unescape("a~1b~0c"), "a/b~c");
        // `~01` is `~1` escaped, not `/`.
        assert_eq!(unescape("~01"), "~1");
    }

    #[test]
    fn pointers_read_as_paths() {
        assert_eq!(human("", "the plan"), "the plan");
        assert_eq!(
            human("/phases/1/traffic", "the plan"),
            "`phases[1].traffic`"
        );
        assert_eq!(human("/metrics/a~1b", "the plan"), "`metrics.a/b`");
    }
}
