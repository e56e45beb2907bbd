//! The one integration test binary: real gateway processes on free loopback ports in front of
//! a recording upstream.

mod harness;

mod foundation;
