//! Device drivers: the kernel's side of each host-backed device (the management console
//! on a host socket, …). Host contact itself stays in `host/`.

pub mod console;
pub mod mconsole;
