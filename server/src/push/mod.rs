//! Delivery of queued pushes to the platforms' providers (APNs, FCM): the outbound side of
//! `crate::domain::push`. Work in progress (issue 25): the signed tokens and the payloads.

pub mod jwt;
pub mod payload;
