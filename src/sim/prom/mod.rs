//! Prometheus evaluation semantics (placeholder).
