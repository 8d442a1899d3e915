//! Link umk as a static, non-PIE executable with no C runtime: it brings its own `_start`
//! and talks to the host only through raw system calls (see src/host/).

fn main() {
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=sha1",
    ] {
        println!("cargo:rustc-link-arg-bin=umk={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
