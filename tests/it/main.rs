//! The one integration test binary: real gateway processes on free loopback ports in front of
//! a recording upstream or the fake Umbraco (`fake_umbraco`), plus Postgres-backed sink tests.

mod fake_umbraco;
mod harness;
mod raw;

mod admin;
mod admin_audit;
mod admin_keys;
mod admin_overrides;
mod api_user_replay;
mod api_user_token;
mod audit;
mod cli;
mod cli_keys;
mod cli_overrides;
mod dashboards;
mod dev_banner;
mod edge_body;
mod edge_conn;
mod edge_framing;
mod edge_headers;
mod edge_request;
mod edge_site;
mod foundation;
mod lifecycle;
mod mirror;
mod mirror_bench;
mod mirror_file;
mod mirror_move_bench;
mod mirror_public_access;
mod mirror_race;
mod mirror_report;
mod mirror_schedule;
mod mirror_webhook;
mod pipeline;
mod pipeline_delivery;
mod pipeline_fidelity;
mod pipeline_item_path;
mod pipeline_pg;
mod pipeline_routes;
mod store_faults;
mod umbraco_callers;
mod umbraco_revocation;
mod upstream_credential;
mod user_routes;
mod version_routes;
