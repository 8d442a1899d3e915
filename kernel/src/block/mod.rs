//! Block storage below the filesystems: the `BlockDevice` interface, host files as disk
//! images (`BackingFile`), and UML's copy-on-write overlay format.

pub mod backing;
pub mod cow;
pub mod dev;
pub mod hostfile;
pub mod ubd;
