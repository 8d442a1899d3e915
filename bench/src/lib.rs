//! rewind-bench: Rewind measured against native execution and against strace and gdb
//! `record full`, every baseline taken in the same run so that ratios hold on a noisy
//! machine. Each section drives the real tools as subprocesses; `report` turns the rows
//! into a table and a JSON document. The binary (`main.rs`) only parses arguments.

#![forbid(unsafe_code)]

pub mod analysis;
pub mod exec;
pub mod floor;
pub mod gdb;
pub mod lab;
pub mod memory;
pub mod overhead;
pub mod record_full;
pub mod report;
pub mod reverse;
pub mod scaling;
pub mod stats;
pub mod suite;
pub mod workload;
