//! Herald: the webhook system of an applicant-tracking service.
//!
//! Changes to applications are written with their events in one transaction (`store`); the
//! dispatcher reads the events and calls each subscribed endpoint. `api` serves the REST and
//! admin APIs over the `domain` types. See ARCHITECTURE.md for the map.

pub mod api;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod http;
pub mod ids;
pub mod listen;
pub mod metrics;
pub mod notify;
pub mod server;
pub mod store;
pub mod support;
pub mod ui;

pub use server::run;
