//! `plan`: a declarative release-plan compiler and dry-run simulator for staged canary releases.
//!
//! The pipeline reads one way: source text → YAML value → schema check → typed model →
//! checked plan → lowered rules → artifacts or simulation. Each stage is a module here.

pub mod check;
pub mod cli;
pub mod diagnostic;
mod html;
mod input;
pub mod limits;
pub mod lower;
pub mod model;
pub mod pipeline;
mod pointer;
pub mod prom;
pub mod promql;
pub(crate) mod release;
pub mod render;
mod schema;
pub mod sim;
pub mod source;
mod suggest;
pub mod syntax;
