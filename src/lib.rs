//! Portcullis: an authorization gateway for Umbraco CMS, built on pingora.
//!
//! `ls src` reads as the path of one request: `request` (what is it?) → `authn` (who is
//! calling?) → `store` (what may they do?) → `authz` (decide) → `audit` (record), glued to
//! pingora by `proxy` and wired by `app`.

pub mod admin;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod config;
pub mod proxy;
pub mod request;
pub mod store;
