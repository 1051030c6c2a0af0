//! Markdown for the runbook: user text escaped ([`md`]) or put in code spans ([`code`]),
//! headings with explicit anchors, and fenced blocks of commands.

use crate::check::{CheckedPlan, Group};
use crate::render::commands::{self, Command};
use crate::render::step::Step;
use crate::render::text::group_rule_text;
use std::fmt::{self, Write};

/// Escapes text for inline Markdown (CommonMark and GitHub's extensions): every character
/// that could start emphasis, code, a link, HTML, an entity, a table cell, strikethrough or
/// math is backslash-escaped, and line breaks become spaces. Only for text after a line's
/// start (list items, headings, table cells), where `#`, `-`, `+` or `1.` start nothing.
pub(super) fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A code span holding `s` verbatim: the fence is longer than any backtick run inside.
/// Not for table cells (a `|` would split the cell; tables use [`md`]).
pub(super) fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A fenced shell block of commands, each preceded by its description as a comment.
pub(super) fn commands_block(out: &mut String, cmds: &[Command]) -> fmt::Result {
    let longest = cmds
        .iter()
        .flat_map(|c| {
            c.run
                .split(|ch| ch != '`')
                .chain(c.description.split(|ch| ch != '`'))
        })
        .map(str::len)
        .max()
        .unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    writeln!(out, "{fence}sh")?;
    for c in cmds {
        writeln!(out, "# {}", c.description.replace(['\n', '\r'], " "))?;
        writeln!(out, "{}", c.run)?;
    }
    writeln!(out, "{fence}")?;
    writeln!(out)
}

pub(super) fn heading(out: &mut String, level: usize, id: &str, text: &str) -> fmt::Result {
    writeln!(out, "{} <a id=\"{id}\"></a>{text}", "#".repeat(level))?;
    writeln!(out)
}

/// The files `step` applies, as a comma-separated list of code spans.
pub(super) fn applied_files(p: &CheckedPlan, step: Step) -> String {
    commands::artifacts(p, step)
        .iter()
        .map(|a| code(a))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One user group as a list item: its name, its share of requests when stated, its rule.
pub(super) fn group_item(out: &mut String, g: &Group) -> fmt::Result {
    let share = g
        .share
        .map(|s| format!(" (about {s} of requests)"))
        .unwrap_or_default();
    writeln!(
        out,
        "- **{}**{share}: {}",
        md(&g.name),
        group_rule_text(g, code)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escaping() {
        assert_eq!(md("a_b *c* <x>|y"), r"a\_b \*c\* \<x\>\|y");
        assert_eq!(
            md("#chan (x) [l](u) $m$ &amp; ~s~"),
            r"#chan (x) \[l\](u) \$m\$ \&amp; \~s\~"
        );
        assert_eq!(md("line\nbreak"), "line break");
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a"), "`` `a ``");
    }
}
