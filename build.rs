//! Build identity: a digest of everything that decides `plan`'s numbers (its sources, the
//! built-in scenarios, the schemas and the locked dependencies), as `PLAN_SOURCE_DIGEST`.
//! Shards of one run must come from one build of the model (`plan merge` refuses others),
//! and a version number alone does not change with every commit.

use std::path::{Path, PathBuf};

/// The inputs, relative to the package root.
const INPUTS: [&str; 6] = [
    "src",
    "simulations",
    "schemas",
    "Cargo.toml",
    "Cargo.lock",
    "build.rs",
];

fn main() {
    let mut files = Vec::new();
    for input in INPUTS {
        println!("cargo:rerun-if-changed={input}");
        collect(Path::new(input), &mut files);
    }
    files.sort();
    // FNV-1a, 64 bits: stable across toolchains and machines (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for f in &files {
        let name = f.to_string_lossy().replace('\\', "/");
        eat(name.as_bytes());
        eat(&[0]);
        eat(&std::fs::read(f).unwrap_or_default());
        eat(&[0]);
    }
    println!("cargo:rustc-env=PLAN_SOURCE_DIGEST={h:016x}");
}

/// Every file under `path` (or `path` itself).
fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            for e in entries.flatten() {
                collect(&e.path(), out);
            }
        }
        Err(_) if path.is_file() => out.push(path.to_path_buf()),
        Err(_) => {}
    }
}
