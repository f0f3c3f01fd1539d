//! End-to-end tests of `leancloud-migrate`: real servers on port 0 with fresh databases, the real binary.

mod console;
mod export;
mod files;
mod helpers;
mod roundtrip;
