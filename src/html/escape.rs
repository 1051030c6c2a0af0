//! The one escaping function of the HTML reports, for text and attribute values alike:
//! every string a report shows (plan, rule, phase and scenario names, descriptions, file
//! paths) goes through [`esc`], so that none can open a tag, close an attribute or a
//! `<svg>`, or start a script.

/// `s` as HTML text or a quoted attribute value: `&`, `<`, `>`, `"` and `'` as entities;
/// control characters (which HTML does not allow) as U+FFFD.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn markup_and_quotes_become_entities() {
        assert_eq!(
            esc(r#"<script>x</script>"'&</svg>"#),
            "&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;&lt;/svg&gt;"
        );
        assert_eq!(esc("a\u{0}b\nc"), "a\u{FFFD}b\nc");
        assert_eq!(esc("灰度发布"), "灰度发布");
    }
}
