//! Records the git revision and the compiler version for `cloudconnexa_exporter_build_info`.

use std::path::Path;
use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Asks Cargo to rebuild when the revision changes: `HEAD` moves on a checkout, and the ref it
/// points to moves on a commit (a packed ref moves `packed-refs` instead).
fn watch_revision() {
    let Some(git_dir) = output("git", &["rev-parse", "--git-dir"]) else {
        return;
    };
    let git_dir = Path::new(&git_dir);
    println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
    if let Some(reference) = output("git", &["symbolic-ref", "-q", "HEAD"]) {
        // In a worktree the ref lives in the common folder, not the worktree's own.
        let common = output("git", &["rev-parse", "--git-common-dir"])
            .map_or_else(|| git_dir.to_path_buf(), Into::into);
        // A path that does not exist would make Cargo rerun this script on every build.
        for path in [common.join(&reference), common.join("packed-refs")] {
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
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
    watch_revision();
}
