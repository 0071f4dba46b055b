//! Where findings go. [`asff`] renders and validates the AWS Security Finding Format
//! that the JSON-lines output and the Security Hub sink both use.

pub mod asff;
pub mod security_hub;
