//! The NGINX artifacts: one drop-in for `conf.d/` (http context) per step of the plan.
//!
//! `nginx/<phase>.conf` splits traffic between the compose services `<service>` (stable) and
//! `<service>-canary`: a request goes to the canary when the force header says `canary`,
//! else when the stable side is not forced and its group header names a group the phase
//! targets, else when its sticky key (cookie, header or client address; the client address
//! when the cookie or header is missing) hashes into the phase's share. The group and force
//! headers count only from the plan's `trusted_networks` (a `geo` block): from anywhere else
//! they are ignored, so a client cannot pick the canary by sending them. `nginx/rollback.conf`
//! sends everything to the stable service running the old version, `nginx/promotion.conf`
//! everything to the stable service running the new one; neither names the canary service,
//! which is stopped then.
//!
//! Services are reached through `proxy_pass http://$<prefix>_backend`, a variable, so NGINX
//! looks their names up through `resolver` (Docker's embedded DNS by default) when requests
//! need them and again every 10 s: a restarted or rescheduled container's new address is used
//! without a reload, and `nginx -t` does not need the services to be up. (A name in an
//! `upstream` block is resolved once, at load time, in open-source NGINX before 1.27.3,
//! which would answer 502 until the next reload.) The price is that connections to the
//! services are not kept alive between requests.
//!
//! Every variable and log format carries the prefix `plan_<name>` (dashes become
//! underscores, which NGINX variable names need), so several plans' drop-ins can coexist.
//! NGINX's default variables and map hashes hold names of at most 46 characters, which the
//! schema's caps on plan names (32) and group names (40) respect: the longest variable is
//! `plan_<name>_version`. Every response carries `X-Release-Track` and `X-Release-Version`,
//! and the access log records both.
//!
//! No injection: the schema constrains every value, and this module quotes or checks each
//! one again for the place it goes ([`quote`], [`map_key`], [`ident`], ...). The template
//! can print nothing else: its formatter refuses any string not produced by those functions.

use super::artifact::{Artifact, header};
use super::step::Step;
use crate::check::CheckedPlan;
use crate::model::{Share, Sticky};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value, context};
use std::fmt;

const TEMPLATE: &str = include_str!("nginx.conf.j2");

/// Where every access log line goes (the official image links it to stdout).
const ACCESS_LOG: &str = "/var/log/nginx/access.log";

/// The longest value this module writes into a config; NGINX itself refuses tokens longer
/// than its 4 KiB parse buffer.
pub const MAX_LEN: usize = 1024;

/// Renders `nginx/<step>.conf` for every step of `plan`, in step order.
pub fn render(plan: &CheckedPlan) -> Vec<Artifact> {
    Step::all(plan)
        .into_iter()
        .map(|step| Artifact {
            path: format!("nginx/{}.conf", step.name(plan)),
            contents: render_step(plan, step).unwrap_or_else(|e| refused_file(plan, step, &e)),
        })
        .collect()
}

/// Renders one step, or says which value could not be written safely.
pub fn render_step(plan: &CheckedPlan, step: Step) -> Result<String, Refused> {
    let prefix = ident(&format!("plan_{}", plan.name.replace('-', "_")))?;
    let service = &plan.service;
    let split = matches!(step, Step::Phase(_));
    let stable_version = match step {
        Step::Promotion => &plan.release.to,
        _ => &plan.release.from,
    };
    let mut ctx = context! {
        header => safe(comment_block(&header(plan, "#"))),
        about => about(plan, step).iter().map(|l| safe(comment(l))).collect::<Vec<_>>(),
        prefix => safe(prefix.clone()),
        stable_server => safe(upstream_server(&service.name, service.port)?),
        stable_version => safe(quote(stable_version)?),
        split => split,
        listen => plan.routing.listen,
        server_name => safe(server_name(&plan.routing.server_name)?),
        resolver => safe(address(&plan.routing.resolver.to_string())?),
        access_log => safe(quote(ACCESS_LOG)?),
        log_format => safe(log_format(plan, step, &prefix)?),
        track => safe(quote("stable")?),
    };
    if let Step::Phase(i) = step {
        let phase = &plan.phases[i];
        let user_var = match &plan.routing.sticky {
            Sticky::Cookie(name) => Some(cookie_var(name)?),
            Sticky::Header(name) => Some(header_var(name)?),
            Sticky::ClientAddress(_) => None,
        };
        let key_var = match user_var {
            Some(_) => format!("{prefix}_user"),
            None => "remote_addr".to_string(),
        };
        let groups: Vec<Value> = phase
            .groups
            .iter()
            .map(|&g| map_key(&plan.groups[g].name).map(safe))
            .collect::<Result<_, _>>()?;
        let group_source = match &plan.routing.group_header {
            Some(h) if !groups.is_empty() => Some(header_var(h)?),
            _ => None,
        };
        let force_source = plan
            .routing
            .force_header
            .as_deref()
            .map(header_var)
            .transpose()?;
        // The chain of maps, each falling back to the one before; the last one is `_track`.
        let track = format!("{prefix}_track");
        let grouped = format!("{prefix}_grouped");
        let split_var = match (&group_source, &force_source) {
            (None, None) => track.clone(),
            _ => format!("{prefix}_split"),
        };
        let trusted: Vec<Value> = if group_source.is_some() || force_source.is_some() {
            plan.routing
                .trusted_networks
                .iter()
                .map(|n| address(&n.to_string()).map(safe))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let group_map = group_source.map(|source| {
            let target = if force_source.is_some() {
                &grouped
            } else {
                &track
            };
            context! {
                source => safe(source),
                target => safe(target.clone()),
                groups => groups,
                fallback => safe(split_var.clone()),
            }
        });
        let force_map = force_source.map(|source| {
            let fallback = if group_map.is_some() {
                &grouped
            } else {
                &split_var
            };
            context! {
                source => safe(source),
                target => safe(track.clone()),
                fallback => safe(fallback.clone()),
            }
        });
        ctx = context! {
            canary_server => safe(upstream_server(&format!("{}-canary", service.name), service.port)?),
            canary_version => safe(quote(&plan.release.to)?),
            user_var => user_var.map(safe),
            split_key => safe(expand(&[Piece::Text(&format!("{}:", plan.name)), Piece::Var(&key_var)])?),
            split_var => safe(split_var.clone()),
            canary_percent => percent(phase.traffic).map(safe),
            trusted => trusted,
            group_map => group_map,
            force_map => force_map,
            ..ctx
        };
    }
    environment()
        .get_template("nginx.conf")
        .and_then(|t| t.render(ctx))
        .map_err(|e| Refused::new("the NGINX template", e.to_string()))
}

/// The template environment, with the template compiled once: strict about undefined
/// values, and printing nothing but the values this module marked safe (numbers aside).
fn environment() -> &'static Environment<'static> {
    static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = new_environment();
        // The template is part of the binary; a syntax error in it fails every render test.
        let _ = env.add_template("nginx.conf", TEMPLATE);
        env
    })
}

fn new_environment() -> Environment<'static> {
    let mut env = Environment::empty();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_formatter(|out, _state, value| {
        if value.is_safe() || value.is_number() {
            write!(out, "{value}").map_err(Error::from)
        } else {
            Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("`{value}` reached the NGINX template without being quoted"),
            ))
        }
    });
    env
}

fn safe(s: String) -> Value {
    Value::from_safe_string(s)
}

/// What the file does, for the people reading it (one comment line each).
fn about(plan: &CheckedPlan, step: Step) -> Vec<String> {
    let (from, to) = (&plan.release.from, &plan.release.to);
    let service = &plan.service.name;
    match step {
        Step::Phase(i) => {
            let phase = &plan.phases[i];
            let key = match &plan.routing.sticky {
                Sticky::Cookie(c) => format!("the cookie `{c}`, else the client address"),
                Sticky::Header(h) => format!("the header `{h}`, else the client address"),
                Sticky::ClientAddress(_) => "the client address".to_string(),
            };
            let mut v = vec![
                format!(
                    "Plan `{}`, phase `{}` ({} of {}): {} of users go to the canary {to} (`{service}-canary`),",
                    plan.name,
                    phase.name,
                    i + 1,
                    plan.phases.len(),
                    phase.traffic
                ),
                format!("the others stay on {from} (`{service}`). Users are told apart by {key}."),
            ];
            let mut headers = false;
            if let (Some(h), false) = (&plan.routing.group_header, phase.groups.is_empty()) {
                let names: Vec<&str> = phase
                    .groups
                    .iter()
                    .map(|&g| plan.groups[g].name.as_str())
                    .collect();
                v.push(format!("`{h}: {}` goes to the canary.", names.join("|")));
                headers = true;
            }
            if let Some(h) = &plan.routing.force_header {
                v.push(format!(
                    "`{h}: canary` or `{h}: stable` pins a request to that version."
                ));
                headers = true;
            }
            if headers {
                let networks: Vec<String> = plan
                    .routing
                    .trusted_networks
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                v.push(format!(
                    "These headers count only from {}; other clients' are ignored.",
                    networks.join(", ")
                ));
            }
            v
        }
        Step::Rollback => vec![
            format!(
                "Plan `{}`, rollback: every request goes to the stable version {from} (`{service}`);",
                plan.name
            ),
            format!("the canary {to} (`{service}-canary`) is not used."),
        ],
        Step::Promotion => vec![format!(
            "Plan `{}`, promotion: every request goes to the new version {to}, now run by `{service}`.",
            plan.name
        )],
    }
}

/// The access log line: the usual combined format, then the plan, step, track and version.
fn log_format(plan: &CheckedPlan, step: Step, prefix: &str) -> Result<String, Refused> {
    use Piece::{Text, Var};
    let track = format!("{prefix}_track");
    let version = format!("{prefix}_version");
    let combined = [
        Var("remote_addr"),
        Text(" - "),
        Var("remote_user"),
        Text(" ["),
        Var("time_local"),
        Text("] \""),
        Var("request"),
        Text("\" "),
        Var("status"),
        Text(" "),
        Var("body_bytes_sent"),
        Text(" \""),
        Var("http_referer"),
        Text("\" \""),
        Var("http_user_agent"),
        Text("\""),
    ];
    let tail = format!(" plan={} step={} track=", plan.name, step.name(plan));
    let mut pieces = combined.to_vec();
    pieces.extend([
        Text(&tail),
        Var(&track),
        Text(" version="),
        Var(&version),
        Text(" upstream="),
        Var("upstream_addr"),
        Text(" request_time="),
        Var("request_time"),
    ]);
    expand(&pieces)
}

/// `5%`, `12.5%`, `0.05%` for `split_clients`; None for 0%, which NGINX refuses there.
fn percent(share: Share) -> Option<String> {
    let h = share.hundredths();
    match (h / 100, h % 100) {
        (0, 0) => None,
        (whole, 0) => Some(format!("{whole}%")),
        (whole, frac) if frac % 10 == 0 => Some(format!("{whole}.{}%", frac / 10)),
        (whole, frac) => Some(format!("{whole}.{frac:02}%")),
    }
}

/// A file NGINX refuses to load, written in place of one that could not be rendered safely:
/// `nginx -t` fails on it, so a reload keeps the running configuration.
fn refused_file(plan: &CheckedPlan, step: Step, why: &Refused) -> String {
    format!(
        "{}# plan could not render `{}` safely: {}\n# This file is invalid on purpose, so that NGINX keeps its running configuration.\nplan_render_refused;\n",
        comment_block(&header(plan, "#")),
        comment(step.name(plan)),
        comment(&why.to_string()),
    )
}

// ---------------------------------------------------------------------------------------
// Quoting. NGINX reads a config as tokens separated by whitespace and `;`, `{`, `}`; `#` at
// the start of a token opens a comment. Inside double quotes all of those are plain
// characters, and `\"` and `\\` stand for `"` and `\`. What quoting cannot neutralise is `$`
// (NGINX expands variables inside quotes too and has no escape for it), the meaning some
// directives give a value's first character (`~` a regex, `default` a map keyword), and bytes
// that make no sense in a header or host name (control characters, non-ASCII).

/// Why a value cannot be written into an NGINX config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The value, shortened and with control characters shown escaped.
    pub value: String,
    pub reason: String,
}

impl Refused {
    fn new(value: &str, reason: impl Into<String>) -> Refused {
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
/// values longer than [`MAX_LEN`].
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
pub fn ident(s: &str) -> Result<String, Refused> {
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
pub fn header_var(name: &str) -> Result<String, Refused> {
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
pub fn cookie_var(name: &str) -> Result<String, Refused> {
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
pub fn upstream_server(host: &str, port: u16) -> Result<String, Refused> {
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
pub fn address(s: &str) -> Result<String, Refused> {
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
pub fn server_name(s: &str) -> Result<String, Refused> {
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
pub enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// A quoted string with variables (`split_clients`' key, `log_format`): text quoted as by
/// [`quote`], variables written `${name}` after checking the name.
pub fn expand(pieces: &[Piece]) -> Result<String, Refused> {
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
pub fn comment(s: &str) -> String {
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
fn comment_block(text: &str) -> String {
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

    #[test]
    fn percents_for_split_clients() {
        let p = |h| percent(Share::from_hundredths(h).unwrap());
        assert_eq!(p(0), None);
        assert_eq!(p(1).as_deref(), Some("0.01%"));
        assert_eq!(p(500).as_deref(), Some("5%"));
        assert_eq!(p(1250).as_deref(), Some("12.5%"));
        assert_eq!(p(1234).as_deref(), Some("12.34%"));
        assert_eq!(p(10_000).as_deref(), Some("100%"));
    }
}
