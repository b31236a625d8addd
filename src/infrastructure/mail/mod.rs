//! Mailer adapters: SMTP for real deployments, and a log-and-keep mailer for development and
//! tests.

mod log;
mod smtp;

pub use log::LogMailer;
pub use smtp::SmtpMailer;
