//! Integration tests: each starts the real server on a loopback port and speaks HTTP to it.

mod db;
mod helpers;

mod accounts;
mod bad_input;
mod cli;
mod compat;
mod connections;
mod controls;
mod dashboard;
mod delivery;
mod deploy;
mod dispatcher;
mod durability;
mod email;
mod endpoint_ops;
mod endpoints;
mod events;
mod filters;
mod full_disk;
mod idempotency;
mod isolation;
mod migrations;
mod nodes;
mod operational;
mod operations;
mod paging;
mod property;
mod receiver;
mod receiving;
mod recruiting;
mod schemas;
mod smtp;
mod stats;
mod versions;
