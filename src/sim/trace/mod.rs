//! A recorded trace: the samples of named, labelled series over time, read from a CSV file
//! ([`csv`]) or from the JSON a Prometheus query returns ([`promjson`]), and the metric
//! values the plan's rules read from it at each evaluation ([`inputs`]).
//!
//! Both readers produce the same [`Trace`]: one [`Series`] per distinct name and label set,
//! its samples sorted by time (absolute milliseconds since the Unix epoch), staleness
//! markers included. Labels with an empty value are dropped, as Prometheus does (an empty
//! label is the same as no label). Series are ordered as Prometheus orders a sorted select
//! (by name, then label set), which fixes the order in which sums add up.
//!
//! Every error names the line and column of the offending text. The limits on a trace
//! (series, samples, time span) are enforced by the [`Builder`] both readers share, as
//! rows arrive.
//!
//! [`Builder`]: builder::Builder

mod builder;
pub(crate) mod csv;
pub(crate) mod inputs;
pub(crate) mod promjson;
pub mod time;

pub(crate) use crate::prom::Series;
pub(crate) use builder::{TOO_LARGE_HINT, Trace, TraceError};

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    PromJson,
}

impl Format {
    /// JSON when the first non-blank character opens an object or array, else CSV.
    pub(crate) fn detect(text: &str) -> Format {
        match text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .chars()
            .next()
        {
            Some('{') | Some('[') => Format::PromJson,
            _ => Format::Csv,
        }
    }
}

/// Reads a trace in either format (detected from the text).
pub fn parse(text: &str) -> Result<Trace, TraceError> {
    match Format::detect(text) {
        Format::Csv => csv::parse(text),
        Format::PromJson => promjson::parse(text),
    }
}
