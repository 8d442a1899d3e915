//! One module per `rewind` subcommand.

pub mod demo;
pub mod dump;
pub mod record;
pub mod umk;
