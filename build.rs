//! Records the git revision and the compiler version for `cloudconnexa_exporter_build_info`.

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    let revision = std::env::var("CLOUDCONNEXA_BUILD_REVISION")
        .ok()
        .or_else(|| output("git", &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = output(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CLOUDCONNEXA_REVISION={revision}");
    println!("cargo:rustc-env=CLOUDCONNEXA_RUSTC_VERSION={rustc_version}");
    println!("cargo:rerun-if-env-changed=CLOUDCONNEXA_BUILD_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
}
