//! A corpus of hostile strings for the renderers' injection tests: YAML syntax, YAML 1.1
//! and 1.2 scalars of other types, template and shell syntax, paths, control characters
//! and length. Each renderer's test feeds every value to every string field it emits and
//! checks that `plan validate` refuses it or the consuming format reads it back exactly.

/// Every hostile string, once.
pub(crate) fn corpus() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        " ",
        "a b",
        "a\nb",
        "a\r\nb",
        "a: b",
        "- a",
        "#a",
        "a #b",
        "'",
        "\"",
        "a'b",
        "a\"b",
        "{{ .x }}",
        "${HOME}",
        "$x",
        "`id`",
        "\\",
        "yes",
        "no",
        "on",
        "off",
        "y",
        "true",
        "false",
        "null",
        "~",
        "1",
        "0x1f",
        "0o7",
        "017",
        "1_0",
        "1:10",
        "1e3",
        "1.",
        ".inf",
        "-.inf",
        ".nan",
        "*a",
        "&a",
        "!a",
        "!!str a",
        "%a",
        "@a",
        "|",
        ">",
        "[a]",
        "{a: b}",
        "a\tb",
        "a\u{0}b",
        "é",
        "a,b",
        "a=b",
        "../a",
        "/etc/passwd",
        "a\u{2028}b",
        "a\u{85}b",
        "a:",
        "a:b",
        "--",
        "---",
        "...",
        "<<",
        "=",
        "{{ template \"x\" . }}",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    v.push("a".repeat(300));
    v.push("a".repeat(600));
    v
}
