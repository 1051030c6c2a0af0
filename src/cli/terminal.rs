//! How the command line talks to a terminal: colour when stderr is one (and `NO_COLOR` is
//! not set), and plurals.

use std::io::IsTerminal;

/// Whether stderr is a terminal that wants colour.
pub(super) fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
