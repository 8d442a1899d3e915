//! One module per `rewind` subcommand.

pub mod demo;
pub mod umk;
pub mod dump;
pub mod record;
