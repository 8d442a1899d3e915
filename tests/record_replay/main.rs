//! Recordings made in-process by the recorder and replayed in-process by the replayer:
//! tampered traces and a changed binary are refused, killed programs and `#!` scripts
//! replay, every kind of recording replays identically, and memory mapped write-only is
//! restored. These tests were replayer/tests/; they live in the root package because
//! they record, and the replayer does not depend on the recorder. One test binary, so
//! that the modules cost one link.

mod common;

mod buffered;
mod checks;
mod cpuid;
mod filestore;
mod killed;
mod launch;
mod processes;
mod programs;
mod ptraced;
mod uml_helpers;
mod write_only;
