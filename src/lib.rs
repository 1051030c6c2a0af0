//! `plan`: a declarative release-plan compiler and dry-run simulator for staged canary releases.
//!
//! The pipeline reads one way: source text → YAML value → schema check → typed model →
//! checked plan → lowered rules → artifacts or simulation. Each stage is a module here.

pub mod cli;
pub mod sim;
