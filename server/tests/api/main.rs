//! Black-box tests: the real server on port 0 with a fresh database, driven over HTTP with reqwest.

mod auth;
mod classes;
mod durability;
mod faults;
mod helpers;
mod history;
mod limits;
mod migration;
mod rtm;
