//! The build script of every Lambda function (each names it as `build`):
//! links the function as a position-dependent executable.
//!
//! A position-independent executable (rustc's default on Linux) carries a
//! dynamic relocation for every pointer in its data (vtables, string tables:
//! 0.6 MiB in `library-api`) that the loader applies at each cold start;
//! Amazon Linux 2023's glibc (2.34) cannot take them packed (DT_RELR needs
//! 2.36). Linked with `-no-pie`, they are resolved at link time. The code
//! stays position-independent (`-C relocation-model=static` cannot be used:
//! `crc-fast`, under the S3 client, also builds a shared library), and the
//! flag reaches the functions' binaries only, whoever builds them (cargo,
//! `sam build` through cargo-lambda). `scripts/build-lambdas.sh` checks it.

fn main() {
    println!("cargo::rerun-if-changed=../build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
