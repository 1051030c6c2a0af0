//! `plan render` on disk: it replaces or removes only what plan wrote, refuses symbolic
//! links, and a render that is refused or fails (a full disk, a file it cannot replace)
//! leaves every byte, file and folder as it was. Each test compares whole trees before and
//! after, hidden files included.

use crate::support::{plan, temp_dir};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// One entry of a tree, as far as a user can tell it apart.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    File(Vec<u8>),
    Folder,
    Link(PathBuf),
    Other,
}

/// Everything under `dir` (not following links), by relative path.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Node> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        for e in fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).expect("under base").to_path_buf();
            let ft = fs::symlink_metadata(&p).expect("metadata").file_type();
            let node = if ft.is_symlink() {
                Node::Link(fs::read_link(&p).expect("read_link"))
            } else if ft.is_dir() {
                walk(base, &p, out);
                Node::Folder
            } else if ft.is_file() {
                Node::File(fs::read(&p).expect("read"))
            } else {
                Node::Other
            };
            out.insert(rel, node);
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

fn paths(t: &BTreeMap<PathBuf, Node>) -> Vec<String> {
    t.keys().map(|p| p.display().to_string()).collect()
}

/// A folder holding `plans/minimal.yaml`, edited by `edit`, and `plans/lawsker.yaml`: plan
/// runs there, so paths in messages and headers are short and stable.
fn workspace(name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let dir = temp_dir(name);
    fs::create_dir(dir.join("plans")).expect("plans/");
    let minimal = fs::read_to_string(crate::support::root().join("plans/minimal.yaml"))
        .expect("minimal plan");
    fs::write(dir.join("plans/minimal.yaml"), edit(minimal)).expect("write plan");
    fs::copy(
        crate::support::root().join("plans/lawsker.yaml"),
        dir.join("plans/lawsker.yaml"),
    )
    .expect("copy plan");
    dir
}

fn render(ws: &Path, plan_file: &str, out: &str, code: i32) -> String {
    plan()
        .cwd(ws)
        .args(["render", plan_file, "--out", out])
        .timeout(Duration::from_secs(60))
        .expect(code)
        .stderr
}

fn check(ws: &Path, plan_file: &str, out: &str, code: i32) -> String {
    plan()
        .cwd(ws)
        .args(["render", plan_file, "--out", out, "--check"])
        .timeout(Duration::from_secs(60))
        .expect(code)
        .stderr
}

fn same(text: String) -> String {
    text
}

/// The user's files of the issue: a README, a source folder, a git folder, and a config
/// of their own among the generated ones.
fn add_user_files(plan_dir: &Path) {
    fs::write(plan_dir.join("README.md"), "# our notes\n").expect("README");
    fs::create_dir_all(plan_dir.join("src")).expect("src/");
    fs::write(plan_dir.join("src/main.rs"), "fn main() {}\n").expect("main.rs");
    fs::create_dir_all(plan_dir.join(".git/objects")).expect(".git/");
    fs::write(plan_dir.join(".git/HEAD"), "ref: refs/heads/main\n").expect("HEAD");
    fs::write(plan_dir.join("nginx/ours.conf"), "# ours\n").expect("ours.conf");
}

const USER_ENTRIES: [&str; 4] = [
    "out/minimal/.git/: a folder plan did not create",
    "out/minimal/README.md: a file plan did not write",
    "out/minimal/nginx/ours.conf: a file plan did not write",
    "out/minimal/src/: a folder plan did not create",
];

#[test]
fn files_plan_did_not_write_stop_render_and_stay() {
    let ws = workspace("user-files", same);
    render(&ws, "plans/minimal.yaml", "out", 0);
    add_user_files(&ws.join("out/minimal"));
    let before = tree(&ws);
    let err = render(&ws, "plans/minimal.yaml", "out", 2);
    for e in USER_ENTRIES {
        assert!(err.contains(e), "names `{e}`:\n{err}");
    }
    assert!(err.contains("--delete-foreign"), "says what to do:\n{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(tree(&ws), before, "nothing changed");

    // Even when the plan changed and its files would be rewritten.
    let ws2 = workspace("user-files-changed", |p| {
        p.replace("to: v1.1.0", "to: v1.2.0")
    });
    fs::rename(ws.join("out"), ws2.join("out")).expect("move out");
    let before = tree(&ws2);
    render(&ws2, "plans/minimal.yaml", "out", 2);
    assert_eq!(tree(&ws2), before, "nothing changed");
}

#[test]
fn check_names_the_files_plan_did_not_write_as_render_does() {
    let ws = workspace("check-user-files", same);
    render(&ws, "plans/minimal.yaml", "out", 0);
    check(&ws, "plans/minimal.yaml", "out", 0);
    add_user_files(&ws.join("out/minimal"));
    let before = tree(&ws);
    let err = check(&ws, "plans/minimal.yaml", "out", 1);
    for e in USER_ENTRIES {
        assert!(err.contains(e), "names `{e}`:\n{err}");
    }
    assert!(
        err.contains("4 entries plan did not write, which `plan render` would stop on"),
        "{err}"
    );
    assert!(!err.contains("out of date"), "nothing else differs:\n{err}");
    assert_eq!(tree(&ws), before, "--check writes nothing");
}

#[test]
fn delete_foreign_deletes_them_and_names_them() {
    let ws = workspace("delete-foreign", same);
    render(&ws, "plans/minimal.yaml", "out", 0);
    let rendered = tree(&ws);
    add_user_files(&ws.join("out/minimal"));
    std::os::unix::fs::symlink("/etc", ws.join("out/minimal/etc")).expect("symlink");
    let err = plan()
        .cwd(&ws)
        .args([
            "render",
            "plans/minimal.yaml",
            "--out",
            "out",
            "--delete-foreign",
        ])
        .expect(0)
        .stderr;
    for e in USER_ENTRIES {
        assert!(err.contains(&format!("deleted {e}")), "names `{e}`:\n{err}");
    }
    assert!(
        err.contains("deleted out/minimal/etc: a symbolic link"),
        "{err}"
    );
    assert_eq!(tree(&ws), rendered, "exactly the render is left");
    assert!(Path::new("/etc/hostname").exists() || Path::new("/etc/passwd").exists());

    let usage = plan()
        .cwd(&ws)
        .args(["render", "plans/minimal.yaml", "--out", "out"])
        .args(["--check", "--delete-foreign"])
        .expect(2);
    assert!(
        usage.stderr.contains("cannot be used with"),
        "{}",
        usage.stderr
    );
}

#[test]
fn a_generated_file_keeps_being_plans_while_it_carries_the_mark() {
    let ws = workspace("edited", same);
    render(&ws, "plans/minimal.yaml", "out", 0);
    let rendered = tree(&ws);
    let conf = ws.join("out/minimal/nginx/canary.conf");
    let original = fs::read_to_string(&conf).expect("conf");

    // Edited below its first line: plan's, replaced.
    fs::write(&conf, format!("{original}\n# a person's change\n")).expect("edit");
    check(&ws, "plans/minimal.yaml", "out", 1);
    let err = render(&ws, "plans/minimal.yaml", "out", 0);
    assert!(err.contains("(1 changed)"), "{err}");
    assert_eq!(tree(&ws), rendered);

    // Its first line gone: not plan's any more, kept.
    let body = original.split_once('\n').expect("lines").1;
    fs::write(&conf, body).expect("edit");
    let before = tree(&ws);
    let err = render(&ws, "plans/minimal.yaml", "out", 2);
    assert!(
        err.contains("out/minimal/nginx/canary.conf: a file plan did not write"),
        "{err}"
    );
    assert_eq!(tree(&ws), before);
    let err = check(&ws, "plans/minimal.yaml", "out", 1);
    assert!(
        err.contains("out/minimal/nginx/canary.conf: a file plan did not write"),
        "{err}"
    );
}

#[test]
fn files_plan_wrote_that_the_plan_no_longer_produces_are_removed() {
    let ws = workspace("stale", same);
    render(&ws, "plans/minimal.yaml", "out", 0);
    // A folder an older layout wrote, holding only plan's files.
    let plan_dir = ws.join("out/minimal");
    fs::create_dir(plan_dir.join("old")).expect("old/");
    fs::copy(
        plan_dir.join("nginx/full.conf"),
        plan_dir.join("old/x.conf"),
    )
    .expect("copy");
    // A temporary file a killed render left.
    fs::copy(
        plan_dir.join("manifest.json"),
        plan_dir.join(".plan-7-0.tmp"),
    )
    .expect("copy");

    let renamed = workspace("stale-renamed", |p| {
        p.replace("name: canary", "name: early")
    });
    fs::rename(ws.join("out"), renamed.join("out")).expect("move out");
    let err = check(&renamed, "plans/minimal.yaml", "out", 1);
    for gone in [
        "out/minimal/.plan-7-0.tmp: no longer produced by the plan",
        "out/minimal/old: no longer produced by the plan",
        "out/minimal/nginx/canary.conf: no longer produced by the plan",
        "out/minimal/nginx/early.conf: missing",
    ] {
        assert!(err.contains(gone), "`{gone}`:\n{err}");
    }
    assert!(
        !err.contains("old/x.conf"),
        "a stale folder is named once:\n{err}"
    );
    render(&renamed, "plans/minimal.yaml", "out", 0);
    let fresh = temp_dir("stale-fresh");
    plan()
        .cwd(&renamed)
        .args(["render", "plans/minimal.yaml", "--out"])
        .arg(&fresh)
        .expect(0);
    assert_eq!(
        tree(&renamed.join("out")),
        tree(&fresh),
        "exactly the new render is left"
    );
}

#[test]
fn the_checked_in_outputs_are_recognised_as_plans() {
    // generated/ was written by earlier versions of plan; a new release of each plan
    // rewrites every file of it without asking.
    let ws = workspace("checked-in", |p| p.replace("v1.1.0", "v1.2.0"));
    fs::create_dir(ws.join("generated")).expect("generated/");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(crate::support::root().join("generated/minimal"))
        .arg(ws.join("generated"))
        .status()
        .expect("cp");
    assert!(copied.success());
    let err = render(&ws, "plans/minimal.yaml", "generated", 0);
    assert!(!err.contains("(0 changed)"), "{err}");
    check(&ws, "plans/minimal.yaml", "generated", 0);
}

#[test]
fn an_out_that_is_a_symbolic_link_is_refused() {
    let ws = workspace("out-link", same);
    fs::create_dir(ws.join("real")).expect("real/");
    std::os::unix::fs::symlink("real", ws.join("out")).expect("symlink");
    let before = tree(&ws);
    for out in ["out", "out/", "out/."] {
        let err = render(&ws, "plans/minimal.yaml", out, 2);
        assert!(
            err.contains("out: the output folder is a symbolic link"),
            "{out}: {err}"
        );
        assert!(err.contains("nothing was changed"), "{err}");
        let err = check(&ws, "plans/minimal.yaml", out, 2);
        assert!(err.contains("symbolic link"), "{out}: {err}");
        assert_eq!(tree(&ws), before, "{out}");
    }
}

#[test]
fn an_out_that_is_not_a_folder_is_refused() {
    let ws = workspace("out-file", same);
    fs::write(ws.join("file"), "x").expect("file");
    let before = tree(&ws);
    for out in ["file", "file/below/out"] {
        let err = render(&ws, "plans/minimal.yaml", out, 2);
        assert!(
            err.contains("file: exists and is not a folder"),
            "{out}: {err}"
        );
        let err = check(&ws, "plans/minimal.yaml", out, 2);
        assert!(
            err.contains("file: exists and is not a folder"),
            "{out}: {err}"
        );
    }
    assert_eq!(tree(&ws), before);
}

#[test]
fn symbolic_links_above_out_are_followed() {
    let ws = workspace("ancestor-link", same);
    fs::create_dir(ws.join("real")).expect("real/");
    std::os::unix::fs::symlink("real", ws.join("link")).expect("symlink");
    render(&ws, "plans/minimal.yaml", "link/out", 0);
    assert!(ws.join("real/out/minimal/manifest.json").is_file());
    check(&ws, "plans/minimal.yaml", "link/out", 0);
}

#[test]
fn a_symbolic_link_inside_the_plans_folder_is_refused_before_anything_is_written() {
    let ws = workspace("inner-link", same);
    let outside = ws.join("outside");
    fs::create_dir(&outside).expect("outside/");
    fs::write(outside.join("canary.rules.yml"), "keep me\n").expect("outside file");
    let plan_dir = ws.join("out/minimal");
    fs::create_dir_all(&plan_dir).expect("plan dir");
    // A folder link where plan writes a folder, and a file link where it writes a file.
    std::os::unix::fs::symlink("../../outside", plan_dir.join("prometheus")).expect("link");
    std::os::unix::fs::symlink("../outside/canary.rules.yml", plan_dir.join("RUNBOOK.md"))
        .expect("link");
    let before = tree(&ws);
    let err = render(&ws, "plans/minimal.yaml", "out", 2);
    assert!(
        err.contains("out/minimal/prometheus: a symbolic link"),
        "{err}"
    );
    assert!(
        err.contains("out/minimal/RUNBOOK.md: a symbolic link"),
        "{err}"
    );
    assert_eq!(
        tree(&ws),
        before,
        "no folders, no files, the outside untouched"
    );
    let err = check(&ws, "plans/minimal.yaml", "out", 1);
    assert!(
        err.contains("out/minimal/RUNBOOK.md: a symbolic link"),
        "{err}"
    );
    assert!(
        err.contains("out/minimal/nginx/canary.conf: missing"),
        "{err}"
    );
    assert_eq!(tree(&ws), before);
}

#[test]
fn fifos_in_the_plans_folder_do_not_hang_render_or_check() {
    let ws = workspace("fifo", same);
    render(&ws, "plans/minimal.yaml", "out", 0);
    for f in ["out/minimal/manifest.json", "out/minimal/notes"] {
        let p = ws.join(f);
        let _ = fs::remove_file(&p);
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    }
    let err = render(&ws, "plans/minimal.yaml", "out", 2);
    assert!(
        err.contains("out/minimal/manifest.json: a file plan did not write"),
        "{err}"
    );
    assert!(
        err.contains("out/minimal/notes: a file plan did not write"),
        "{err}"
    );
    let err = check(&ws, "plans/minimal.yaml", "out", 1);
    assert!(err.contains("out/minimal/notes"), "{err}");
}

/// A file size limit between the largest of lawsker's rendered files and the next largest,
/// with the largest's path: a render under it writes every other file (and creates every
/// folder) and fails on that one, as on a full disk. Measured, so it follows the renderer.
/// Phases `alpha` and `gamma` render files of the same size (names of one length, the
/// same gates' actions): `gamma` is renamed `gamma3` in the workspace's plan, so that its
/// files are the largest alone.
fn limit_failing_one_file(ws: &Path) -> (u64, String) {
    let plan_file = ws.join("plans/lawsker.yaml");
    let text = fs::read_to_string(&plan_file).expect("plan");
    assert!(text.contains("name: gamma "), "lawsker has a phase `gamma`");
    fs::write(&plan_file, text.replace("name: gamma ", "name: gamma3")).expect("edit plan");
    let scratch = ws.join("scratch");
    render(ws, "plans/lawsker.yaml", "scratch", 0);
    let mut sizes: Vec<(u64, String)> = tree(&scratch.join("lawsker"))
        .into_iter()
        .filter_map(|(rel, node)| match node {
            Node::File(bytes) => Some((bytes.len() as u64, rel.to_string_lossy().into_owned())),
            _ => None,
        })
        .collect();
    fs::remove_dir_all(&scratch).expect("remove scratch");
    sizes.sort();
    let (largest, path) = sizes.pop().expect("files");
    let (second, _) = sizes.pop().expect("two files");
    assert!(second < largest, "two files share the largest size");
    ((second + largest) / 2, path)
}

/// Renders lawsker under a file size limit: files up to `limit` bytes are written, the
/// first larger one fails as on a full disk.
fn render_limited(ws: &Path, out: &str, limit: u64) -> String {
    plan()
        .cwd(ws)
        .args(["render", "plans/lawsker.yaml", "--out", out])
        .file_size_limit(limit)
        .timeout(Duration::from_secs(60))
        .expect(2)
        .stderr
}

#[test]
fn a_write_that_fails_midway_leaves_no_file_and_no_folder() {
    let ws = workspace("fsize-fresh", same);
    let (limit, largest) = limit_failing_one_file(&ws);
    let before = tree(&ws);
    let err = render_limited(&ws, "new/deeper/out", limit);
    assert!(
        err.contains(&format!(
            "new/deeper/out/lawsker/{largest}: cannot write the new file: File too large"
        )),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(err.contains("free some space"), "{err}");
    assert_eq!(tree(&ws), before, "not even new/ is left");
}

#[test]
fn a_write_that_fails_midway_leaves_the_previous_render() {
    let ws = workspace("fsize-update", same);
    let (limit, largest) = limit_failing_one_file(&ws);
    render(&ws, "plans/lawsker.yaml", "out", 0);
    let plan_file = ws.join("plans/lawsker.yaml");
    let text = fs::read_to_string(&plan_file).expect("plan");
    // A new version, and phase `alpha` renamed: its files are moved aside before the
    // write fails, and must be put back.
    let edited = text
        .replace("v1.1.0", "v1.2.0")
        .replace("name: alpha", "name: first");
    fs::write(&plan_file, edited).expect("edit plan");
    let before = tree(&ws);
    let err = render_limited(&ws, "out", limit);
    let failed = largest.rsplit('/').next().expect("a file name");
    assert!(err.contains(failed), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(tree(&ws), before);
}

/// Mounts `what` on `at` (`mount` arguments), or says why the test is skipped.
struct Mount(PathBuf);

impl Mount {
    fn new(args: &[&str], at: &Path) -> Option<Mount> {
        let out = Command::new("mount").args(args).arg(at).output();
        match out {
            Ok(o) if o.status.success() => Some(Mount(at.to_path_buf())),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount ({}); run as root to test a full disk",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount ({e}); run as root to test a full disk");
                None
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn free_bytes(dir: &Path) -> u64 {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a valid path and a zeroed statvfs for the kernel to fill.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0, "statvfs");
    s.f_bavail * s.f_frsize
}

#[test]
fn a_full_disk_changes_nothing() {
    let ws = workspace("full-disk", same);
    let disk = ws.join("disk");
    fs::create_dir(&disk).expect("disk/");
    let Some(_mount) = Mount::new(&["-t", "tmpfs", "-o", "size=256k", "tmpfs"], &disk) else {
        return;
    };
    // Fresh: lawsker does not fit at all.
    let err = render(&ws, "plans/lawsker.yaml", "disk/out", 2);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(
        paths(&tree(&disk)),
        Vec::<String>::new(),
        "the disk is empty"
    );

    // An update: minimal fits, then the disk is nearly full and the new version does not.
    render(&ws, "plans/minimal.yaml", "disk/out", 0);
    let free = free_bytes(&disk);
    fs::write(disk.join("filler"), vec![b'x'; (free - 16 * 1024) as usize]).expect("filler");
    let plan_file = ws.join("plans/minimal.yaml");
    let text = fs::read_to_string(&plan_file).expect("plan");
    fs::write(&plan_file, text.replace("v1.1.0", "v1.2.0")).expect("edit plan");
    let before = tree(&ws);
    let err = render(&ws, "plans/minimal.yaml", "disk/out", 2);
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(tree(&ws), before);
}

#[test]
fn a_failure_midway_puts_back_what_was_done() {
    // A file mounted over another cannot be renamed or replaced: render fails after it has
    // moved other files aside, or renamed the other new files into place.
    let ws = workspace("undo", same);
    render(&ws, "plans/minimal.yaml", "out", 0);
    let plan_dir = ws.join("out/minimal");
    let marked = ws.join("marked.conf");
    fs::copy(plan_dir.join("nginx/full.conf"), &marked).expect("copy");
    // Two stale files; the second cannot be removed.
    fs::copy(&marked, plan_dir.join("nginx/a-stale.conf")).expect("copy");
    fs::copy(&marked, plan_dir.join("nginx/b-stale.conf")).expect("copy");
    let Some(m) = Mount::new(
        &["--bind", marked.to_str().expect("utf-8")],
        &plan_dir.join("nginx/b-stale.conf"),
    ) else {
        return;
    };
    let before = tree(&ws);
    let err = render(&ws, "plans/minimal.yaml", "out", 2);
    assert!(
        err.contains("out/minimal/nginx/b-stale.conf: cannot remove"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(tree(&ws), before);
    drop(m);
    fs::remove_file(plan_dir.join("nginx/b-stale.conf")).expect("rm");

    // A new version whose every file changes; the last one cannot be replaced, after the
    // others have been renamed into place.
    let plan_file = ws.join("plans/minimal.yaml");
    let text = fs::read_to_string(&plan_file).expect("plan");
    fs::write(&plan_file, text.replace("v1.1.0", "v1.2.0")).expect("edit plan");
    let last = plan_dir.join("prometheus/full.test.yml");
    let Some(_m) = Mount::new(&["--bind", marked.to_str().expect("utf-8")], &last) else {
        return;
    };
    let before = tree(&ws);
    let err = render(&ws, "plans/minimal.yaml", "out", 2);
    assert!(
        err.contains("out/minimal/prometheus/full.test.yml: cannot move the new file into place"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(tree(&ws), before);
}
