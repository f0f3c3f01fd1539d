//! Black-box tests: the real server on port 0 with a fresh database, driven over HTTP with reqwest.

mod auth;
mod batch;
mod class_permissions;
mod classes;
mod console;
mod conv_admin;
mod conv_settings;
mod durability;
mod faults;
mod files;
mod hardening;
mod helpers;
mod history;
mod hooks;
mod instances;
mod limits;
mod migration;
mod notify;
mod patches;
mod postgres_tls;
mod presence;
mod realtime;
mod receipts;
mod roles;
mod rtm;
mod users;
