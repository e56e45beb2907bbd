//! Portcullis: an authorization gateway for Umbraco CMS, built on pingora.
//!
//! `ls src` reads as the path of one request: `proxy` (pingora glue) → `gate` (the pipeline):
//! `request` (what is it?) → `authn` (who is calling?) → `store` (what may they do?) → `authz`
//! (decide) → `audit` (record); `app` wires it all, `admin` serves operators; `umbraco` is
//! the gateway's own client of Umbraco's Management API (its API-user token, session checks);
//! `mirror` keeps the store in step with Umbraco (full sync, webhooks).

pub mod admin;
pub mod app;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod cli;
pub mod config;
pub mod dev;
pub mod gate;
pub mod mirror;
pub mod proxy;
pub mod request;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod umbraco;
