//! One module per `rewind` subcommand.

pub mod analyze;
pub mod corpus;
pub mod demo;
pub mod dump;
pub mod gdb;
pub mod interactive;
pub mod pack;
pub mod record;
pub mod replay;
pub mod umk;
