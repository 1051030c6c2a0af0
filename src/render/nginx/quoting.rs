//! Writing values into an NGINX config so that NGINX reads back exactly the value, or
//! refusing the value.
//!
//! NGINX reads a config as tokens separated by whitespace and `;`, `{`, `}`; `#` at the
//! start of a token opens a comment. Inside double quotes all of those are plain
//! characters, and `\"` and `\\` stand for `"` and `\`. What quoting cannot neutralise is
//! `$` (NGINX expands variables inside quotes too and has no escape for it), the meaning
//! some directives give a value's first character (`~` a regex, `default` a map keyword),
//! and bytes that make no sense in a header or host name (control characters, non-ASCII).

use std::fmt;

/// The longest value plan writes into a config; NGINX itself refuses tokens longer
/// than its 4 KiB parse buffer.
const MAX_LEN: usize = 1024;

/// Why a value cannot be written into an NGINX config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The value, shortened and with control characters shown escaped.
    pub value: String,
    pub reason: String,
}

impl Refused {
    pub(super) fn new(value: &str, reason: impl Into<String>) -> Refused {
        let shown: String = value
            .chars()
            .take(60)
            .flat_map(char::escape_debug)
            .collect();
        let more = if value.chars().count() > 60 {
            "…"
        } else {
            ""
        };
        Refused {
            value: format!("{shown}{more}"),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.value, self.reason)
    }
}

impl std::error::Error for Refused {}

/// A double-quoted NGINX string that NGINX reads back as exactly `s`: `"` and `\` are
/// escaped; `;`, `{`, `}`, `#`, `'` and spaces are plain inside the quotes. Refused: `$`
/// (NGINX would expand a variable), control characters (newlines, tabs), non-ASCII and
/// values longer than `MAX_LEN` (1024 bytes).
pub fn quote(s: &str) -> Result<String, Refused> {
    if s.len() > MAX_LEN {
        return Err(Refused::new(s, format!("longer than {MAX_LEN} bytes")));
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '$' => return Err(Refused::new(s, "`$` would start an NGINX variable")),
            c if c.is_ascii_control() => {
                return Err(Refused::new(
                    s,
                    "control characters (newlines, tabs) are not allowed",
                ));
            }
            c if !c.is_ascii() => {
                return Err(Refused::new(s, format!("non-ASCII character `{c}`")));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

/// The words `map` reads as its own parameters rather than as a value to match.
const MAP_KEYWORDS: [&str; 4] = ["default", "hostnames", "include", "volatile"];

/// A `map` source value matched literally: quoted, and prefixed with a backslash (which
/// `map` removes) when it is one of `map`'s keywords or starts with `~` (a regex) or `\`.
pub fn map_key(s: &str) -> Result<String, Refused> {
    let special = MAP_KEYWORDS.contains(&s) || s.starts_with('~') || s.starts_with('\\');
    if special {
        quote(&format!("\\{s}"))
    } else {
        quote(s)
    }
}

/// A name NGINX reads bare: an upstream, a variable, a log format. ASCII letters, digits and
/// `_`, starting with a letter or `_`.
pub(crate) fn ident(s: &str) -> Result<String, Refused> {
    let ok = s.len() <= 128
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(s.to_string())
    } else {
        Err(Refused::new(
            s,
            "not an NGINX name (ASCII letters, digits and `_`, starting with a letter)",
        ))
    }
}

/// The variable holding request header `name`: `X-User-Group` → `http_x_user_group`.
/// Header names with `_` are refused: NGINX drops such headers by default.
pub(crate) fn header_var(name: &str) -> Result<String, Refused> {
    let ok = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok {
        return Err(Refused::new(
            name,
            "not a header name NGINX reads (ASCII letters, digits and `-`)",
        ));
    }
    ident(&format!(
        "http_{}",
        name.to_ascii_lowercase().replace('-', "_")
    ))
}

/// The variable holding cookie `name`: `user_id` → `cookie_user_id`.
pub(crate) fn cookie_var(name: &str) -> Result<String, Refused> {
    if name.is_empty() || name.len() > 63 {
        return Err(Refused::new(name, "a cookie name has 1 to 63 characters"));
    }
    ident(&format!("cookie_{name}")).map_err(|_| {
        Refused::new(
            name,
            "not a cookie name NGINX reads (ASCII letters, digits and `_`)",
        )
    })
}

/// An upstream `server` address `host:port`, quoted. The host is a compose service or DNS
/// name: ASCII letters, digits, `.`, `_` and `-`.
pub(crate) fn upstream_server(host: &str, port: u16) -> Result<String, Refused> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.starts_with(|c: char| c.is_ascii_alphanumeric())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok || port == 0 {
        return Err(Refused::new(
            host,
            "not a host name (ASCII letters, digits, `.`, `_`, `-`) with a port from 1 to 65535",
        ));
    }
    quote(&format!("{host}:{port}"))
}

/// An IP address, network or `address:port` as NGINX reads it bare (`10.0.0.0/8`,
/// `[fd00::53]:53`): hex digits, `.`, `:`, `/` and brackets only.
pub(crate) fn address(s: &str) -> Result<String, Refused> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '/' | '[' | ']'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(Refused::new(s, "not an IP address or network"))
    }
}

/// A `server_name`: `_`, a host name, or `*.` and a host name; quoted. A leading `~` (a
/// regex) or `.`, and `$` (`$hostname`), mean something else to NGINX and are refused.
pub(crate) fn server_name(s: &str) -> Result<String, Refused> {
    let rest = s.strip_prefix("*.").unwrap_or(s);
    let ok = s == "_"
        || (!rest.is_empty()
            && s.len() <= 253
            && rest.starts_with(|c: char| c.is_ascii_alphanumeric())
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')));
    if ok {
        quote(s)
    } else {
        Err(Refused::new(
            s,
            "not a server name (`_`, `host.example.com` or `*.example.com`)",
        ))
    }
}

/// A piece of a string NGINX expands: literal text, or a variable (by name, without `$`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// A quoted string with variables (`split_clients`' key, `log_format`): text quoted as by
/// [`quote`], variables written `${name}` after checking the name.
pub(crate) fn expand(pieces: &[Piece]) -> Result<String, Refused> {
    let mut out = String::from("\"");
    for piece in pieces {
        match piece {
            Piece::Text(t) => {
                let q = quote(t)?;
                out.push_str(&q[1..q.len() - 1]);
            }
            Piece::Var(v) => {
                out.push_str("${");
                out.push_str(&ident(v)?);
                out.push('}');
            }
        }
    }
    out.push('"');
    if out.len() > MAX_LEN * 2 {
        return Err(Refused::new(&out, "too long for one NGINX token"));
    }
    Ok(out)
}

/// Text for the rest of a `#` comment line: control characters (a newline would end the
/// comment) are shown escaped instead.
pub(crate) fn comment(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let e: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            e
        })
        .collect()
}

/// A block of `#` comment lines ending in a newline; any line not starting with `#` (say, a
/// file name with a newline in it) is commented out too.
pub(super) fn comment_block(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = comment(l);
            if l.starts_with('#') {
                format!("{l}\n")
            } else {
                format!("# {l}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How NGINX reads a double-quoted token back (ngx_conf_read_token): `\"`, `\'` and `\\`
    /// lose their backslash; the token ends at the first unescaped `"`.
    fn nginx_unquote(token: &str) -> String {
        let inner = token
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .expect("a quoted token");
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '"' {
                panic!("unescaped quote inside {token}");
            }
            if c == '\\' {
                match chars.next() {
                    Some(n @ ('"' | '\'' | '\\')) => out.push(n),
                    Some(n) => {
                        out.push('\\');
                        out.push(n);
                    }
                    None => panic!("dangling backslash in {token}"),
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn quote_escapes_what_quotes_can_neutralise() {
        assert_eq!(quote("v1.1.0").unwrap(), "\"v1.1.0\"");
        assert_eq!(quote("").unwrap(), "\"\"");
        assert_eq!(quote(r#"a"b"#).unwrap(), r#""a\"b""#);
        assert_eq!(quote(r"a\b").unwrap(), r#""a\\b""#);
        assert_eq!(quote(r#"\""#).unwrap(), r#""\\\"""#);
        for s in [
            "a;b",
            "a { b }",
            "}",
            "{",
            "# not a comment",
            "a b",
            "it's",
            r#"x"; return 200 "pwned"#,
            r"trailing\",
            r#"";}server{listen 81;#"#,
        ] {
            let q = quote(s).unwrap();
            assert_eq!(nginx_unquote(&q), s, "{s} → {q}");
        }
    }

    #[test]
    fn quote_refuses_what_quotes_cannot_neutralise() {
        for s in [
            "$remote_addr",
            "a${b}",
            "line\nbreak",
            "cr\rhere",
            "tab\there",
            "nul\0",
            "del\u{7f}",
            "café",
            "灰度",
            "zero\u{200b}width",
        ] {
            let e = quote(s).unwrap_err();
            assert!(!e.reason.is_empty(), "{s}");
            assert!(!e.value.contains('\n'), "the refusal is one line: {e}");
        }
        let long = "a".repeat(MAX_LEN + 1);
        assert!(quote(&long).is_err());
        let e = quote(&long).unwrap_err();
        assert!(e.value.len() < 100, "a refusal shows a shortened value");
        assert!(quote(&"a".repeat(MAX_LEN)).is_ok());
    }

    #[test]
    fn map_keys_never_read_as_keywords_or_regexes() {
        assert_eq!(map_key("beta_users").unwrap(), "\"beta_users\"");
        for k in ["default", "hostnames", "include", "volatile", "~.*", r"\x"] {
            let q = map_key(k).unwrap();
            let read = nginx_unquote(&q);
            assert_eq!(read, format!("\\{k}"), "map strips this backslash: {q}");
        }
        assert!(map_key("$x").is_err());
        assert!(map_key("a\nb").is_err());
    }

    #[test]
    fn names_are_checked_not_quoted() {
        assert_eq!(ident("plan_lawsker").unwrap(), "plan_lawsker");
        for bad in ["", "plan-x", "1plan", "a b", "a;b", "a$b", "a{", "ä", "a\n"] {
            assert!(ident(bad).is_err(), "{bad:?}");
        }
        assert_eq!(header_var("X-User-Group").unwrap(), "http_x_user_group");
        assert_eq!(header_var("X-Canary").unwrap(), "http_x_canary");
        for bad in [
            "",
            "X_Under",
            "X-Ü",
            "X-A;",
            "X-A B",
            "-X",
            "X\n",
            &"X".repeat(64),
        ] {
            assert!(header_var(bad).is_err(), "{bad:?}");
        }
        assert_eq!(cookie_var("lawsker_uid").unwrap(), "cookie_lawsker_uid");
        for bad in ["", "a-b", "a;b", "a=b", "a b", "é", &"c".repeat(64)] {
            assert!(cookie_var(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hosts_and_server_names() {
        assert_eq!(
            upstream_server("backend", 8000).unwrap(),
            "\"backend:8000\""
        );
        assert_eq!(
            upstream_server("backend-canary", 1).unwrap(),
            "\"backend-canary:1\""
        );
        for bad in [
            "",
            "unix:/tmp/s",
            "a b",
            "a;b",
            "a}",
            "-x",
            "a$b",
            "ä",
            "a\nb",
        ] {
            assert!(upstream_server(bad, 80).is_err(), "{bad:?}");
        }
        assert!(upstream_server("backend", 0).is_err());
        for ok in ["_", "api.example.com", "*.example.com", "localhost"] {
            assert_eq!(nginx_unquote(&server_name(ok).unwrap()), ok);
        }
        for bad in [
            "",
            "~^regex$",
            ".example.com",
            "$hostname",
            "a b",
            "a;b",
            "*",
            "*.",
            "ex*.com",
            "a{b",
            "é.com",
        ] {
            assert!(server_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expanded_strings_quote_text_and_check_variables() {
        let s = expand(&[Piece::Text("lawsker:"), Piece::Var("plan_lawsker_user")]).unwrap();
        assert_eq!(s, "\"lawsker:${plan_lawsker_user}\"");
        let s = expand(&[Piece::Text("\"x\" "), Piece::Var("status")]).unwrap();
        assert_eq!(s, r#""\"x\" ${status}""#);
        assert!(expand(&[Piece::Text("$x")]).is_err());
        assert!(expand(&[Piece::Var("a}b")]).is_err());
        assert!(expand(&[Piece::Var("")]).is_err());
    }

    #[test]
    fn comments_stay_on_their_line() {
        assert_eq!(comment("a\nplan_evil;"), "a\\nplan_evil;");
        assert_eq!(comment("灰度 ok"), "灰度 ok");
        assert_eq!(
            comment_block("# from a\nb; do not edit\n"),
            "# from a\n# b; do not edit\n"
        );
    }

    /// Every hostile value is either refused or comes back from NGINX's reading unchanged,
    /// in each quoting context.
    #[test]
    fn hostile_corpus() {
        let long = "x".repeat(5000);
        let corpus = [
            "\"",
            "\"\"",
            "';'",
            ";",
            "{",
            "}",
            "$",
            "${x}",
            "#",
            "# c",
            "\n",
            "\r\n",
            "\\",
            "\\\"",
            " ",
            "\t",
            "a b",
            "é",
            "\u{202e}",
            "\u{0}",
            &long,
            "default",
            "~",
            "include",
            "x\"; } server { listen 1; location / { return 200; } #",
        ];
        let all = corpus
            .iter()
            .map(|s| s.to_string())
            .chain(crate::render::hostile::corpus());
        for owned in all {
            let s = owned.as_str();
            match quote(s) {
                Ok(q) => assert_eq!(nginx_unquote(&q), s),
                Err(e) => assert!(!e.reason.is_empty()),
            }
            match map_key(s) {
                Ok(q) => {
                    let read = nginx_unquote(&q);
                    let matched = read.strip_prefix('\\').unwrap_or(&read);
                    assert_eq!(matched, s);
                    assert!(!MAP_KEYWORDS.contains(&read.as_str()) && !read.starts_with('~'));
                }
                Err(e) => assert!(!e.reason.is_empty()),
            }
            for checked in [
                ident(s).is_ok(),
                header_var(s).is_ok(),
                cookie_var(s).is_ok(),
                upstream_server(s, 80).is_ok(),
                server_name(s).is_ok(),
            ] {
                // Names are refused unless they are plain words.
                if checked {
                    assert!(
                        s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-.*".contains(c))
                    );
                }
            }
            assert!(!comment(s).contains(['\n', '\r']));
        }
    }
}
