//! The one integration-test binary: drives the real `plan` executable through a small
//! builder ([`support`]) and, where installed, the real consumers of its output (nginx,
//! promtool, amtool, docker-compose).

mod support;
mod promtool;
mod validate;
mod nginx;
mod compose;
mod alertmanager;
mod manifest;
mod proof;
mod replay;
mod proptest_plans;
mod simulate;
