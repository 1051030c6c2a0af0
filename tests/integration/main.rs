//! The one integration-test binary: drives the real `plan` executable through a small
//! builder ([`support`]) and, where installed, the real consumers of its output (nginx,
//! promtool, amtool, alertmanager, docker-compose).

mod alertmanager;
mod alertmanager_live;
mod architecture;
mod baseline;
mod compare;
mod compose;
mod dns;
mod drill;
mod drill_release;
mod drill_stack;
mod golden;
mod html_report;
mod instants;
mod limits_input;
mod limits_simulate;
mod manifest;
mod min_requests;
mod nginx;
mod promtool;
mod proof;
mod proof_custom;
mod proof_support;
mod proptest_plans;
mod realism;
mod release;
mod release_serve;
mod render_output;
mod replay;
mod rules_edges;
mod scenarios;
mod shard;
mod silent;
mod simulate;
mod snapshots;
mod support;
mod tune;
mod validate;
