//! The one integration-test binary: drives the real `plan` executable through a small
//! builder ([`support`]) and, where installed, the real consumers of its output (nginx,
//! promtool, amtool, docker-compose).

mod alertmanager;
mod compose;
mod limits_input;
mod manifest;
mod nginx;
mod promtool;
mod proof;
mod proptest_plans;
mod replay;
mod simulate;
mod support;
mod validate;
