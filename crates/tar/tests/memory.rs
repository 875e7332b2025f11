//! Issue 15 item 10: the memory an import can be made to hold is bounded in total, whatever
//! the number of layers imported at once. Each hostile class is imported from a file (so that
//! the input itself is not in memory) and the process's peak RSS is measured around it.
//!
//! Each class runs in a child process of its own (this test binary again, with the class in
//! its environment), whose peak RSS (`VmHWM`) is then the import's and nothing else's.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use ostree_repo::format::{
    Checksum, Commit, DirTree, FileMeta, S_IFDIR, TreeDir, TreeFile, Xattrs,
};
use ostree_repo::{Repo, RepoMode};
use ostree_tar::ImportSession;
use ostree_tar::layout::{TarObjectKind, object_path};

/// The ceiling the issue sets for the worst case.
const CEILING_KIB: u64 = 256 * 1024;

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

fn append(b: &mut tar::Builder<impl Write>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, data).unwrap();
}

/// A chunk layer of `n` distinct xattr sets of about 1 MB each (`.file-xattrs` entries).
fn write_xattr_layer(path: &Path, tag: u8, n: usize) {
    let mut b = tar::Builder::new(BufWriter::new(File::create(path).unwrap()));
    for i in 0..n {
        let mut v = vec![tag; 1_000_000];
        v[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let bytes = Xattrs::canonical([(b"user.big".to_vec(), v)]).to_bytes();
        let c = Checksum::digest(&bytes);
        append(&mut b, &object_path(&c, TarObjectKind::FileXattrs), &bytes);
    }
    b.into_inner().unwrap().flush().unwrap();
}

/// A commit layer whose root holds `dirs` directories of `files` phantom files each: about
/// 45 bytes of dirtree per file name millions of objects the layer never carries.
fn write_phantom_commit_layer(path: &Path, dirs: usize, files: usize) {
    let meta = FileMeta {
        uid: 0,
        gid: 0,
        mode: S_IFDIR | 0o755,
        xattrs: Xattrs::new(),
    }
    .to_dirmeta_bytes();
    let meta_c = Checksum::digest(&meta);
    let mut subtrees = Vec::new();
    for d in 0..dirs {
        let dt = DirTree {
            files: (0..files)
                .map(|i| TreeFile {
                    name: format!("f{i:07}"),
                    checksum: Checksum::digest(format!("{d}/{i}").as_bytes()),
                })
                .collect(),
            dirs: Vec::new(),
        };
        subtrees.push(dt.to_bytes());
    }
    let root = DirTree {
        files: Vec::new(),
        dirs: subtrees
            .iter()
            .enumerate()
            .map(|(d, t)| TreeDir {
                name: format!("d{d:03}"),
                tree: Checksum::digest(t),
                meta: meta_c,
            })
            .collect(),
    }
    .to_bytes();
    let commit = Commit {
        metadata: Default::default(),
        parent: None,
        related: Vec::new(),
        subject: "phantoms".into(),
        body: String::new(),
        timestamp: 0,
        root_tree: Checksum::digest(&root),
        root_meta: meta_c,
    }
    .to_bytes();
    let mut b = tar::Builder::new(BufWriter::new(File::create(path).unwrap()));
    let c = Checksum::digest(&commit);
    append(&mut b, &object_path(&c, TarObjectKind::Commit), &commit);
    append(
        &mut b,
        &object_path(&Checksum::digest(&root), TarObjectKind::DirTree),
        &root,
    );
    append(&mut b, &object_path(&meta_c, TarObjectKind::DirMeta), &meta);
    for t in &subtrees {
        append(
            &mut b,
            &object_path(&Checksum::digest(t), TarObjectKind::DirTree),
            t,
        );
    }
    b.into_inner().unwrap().flush().unwrap();
}

fn open(p: &Path) -> BufReader<File> {
    BufReader::new(File::open(p).unwrap())
}

/// Set in the child process that imports one class (its value: the class).
const CLASS_ENV: &str = "OSTREE_TAR_MEMORY_CLASS";
/// The directory holding the generated layers, for the child.
const DIR_ENV: &str = "OSTREE_TAR_MEMORY_DIR";
const TEST_NAME: &str = "peak_rss_of_each_hostile_class_stays_under_256_mib";

/// Imports `class` from the files in `dir` into a fresh repository; the error it ends with.
fn import_class(class: &str, dir: &Path) -> ostree_tar::TarError {
    let repo = Repo::create(&dir.join(format!("repo-{class}")), RepoMode::BareUser).unwrap();
    let txn = repo.begin_transaction().unwrap();
    let s = ImportSession::new(&txn);
    let e = match class {
        "xattrs" => {
            let results: Vec<_> = std::thread::scope(|scope| {
                let hs: Vec<_> = (0..4)
                    .map(|i| {
                        let s = &s;
                        let p = dir.join(format!("xattrs-{i}.tar"));
                        scope.spawn(move || {
                            s.import_chunk_layer(open(&p), Some(&format!("sha256:{i}")))
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            results
                .into_iter()
                .find_map(Result::err)
                .expect("320 MB of xattr sets were all cached")
        }
        "phantom" => s
            .import_commit_layer(open(&dir.join("phantom.tar")), Some("sha256:phantom"))
            .and_then(|_| s.finish())
            .expect_err("a commit naming phantom objects was imported"),
        other => panic!("unknown class {other}"),
    };
    txn.abort();
    assert!(repo.list_refs().unwrap().is_empty());
    e
}

/// Runs this test again in a child process for `class` alone; its error kind, message and
/// peak RSS.
fn run_child(class: &str, dir: &Path) -> (String, String, u64) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CLASS_ENV, class)
        .env(DIR_ENV, dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child for {class} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |k: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("{k} missing in: {stdout}"))
            .to_string()
    };
    let peak = field("PEAK_KIB=").parse().unwrap();
    (field("KIND="), field("MESSAGE="), peak)
}

#[test]
fn peak_rss_of_each_hostile_class_stays_under_256_mib() {
    if let Some(class) = std::env::var_os(CLASS_ENV) {
        let dir = std::path::PathBuf::from(std::env::var_os(DIR_ENV).unwrap());
        let e = import_class(&class.to_string_lossy(), &dir);
        println!("\nKIND={:?}", e.kind());
        println!("MESSAGE={}", ostree_errors::chain(&e).replace('\n', " "));
        println!("PEAK_KIB={}", peak_kib());
        return;
    }
    let d = test_support::scratch("ostree-tar-memory-");
    // Class 1: xattr sets. Four chunk layers at once (four cores' worth), 80 MB of distinct
    // sets each: 320 MB in all, which a per-layer cap would have let through.
    for i in 0..4u8 {
        write_xattr_layer(&d.path().join(format!("xattrs-{i}.tar")), i + 1, 80);
    }
    // Class 2: the objects a commit's dirtrees name. 10 dirtrees of 200,000 phantom files
    // (9 MB each, under the 10 MiB object limit): 2 million referenced objects, past the budget.
    write_phantom_commit_layer(&d.path().join("phantom.tar"), 10, 200_000);

    let mut peaks = Vec::new();
    for (class, words) in [("xattrs", "xattr sets"), ("phantom", "objects")] {
        let (kind, msg, peak) = run_child(class, d.path());
        assert_eq!(kind, "TooLarge", "{class}: {msg}");
        assert!(msg.contains(words), "{class}: {msg}");
        peaks.push((class, peak));
    }
    eprintln!(
        "peak RSS: {} (ceiling {} MiB)",
        peaks
            .iter()
            .map(|(c, p)| format!("{c} {} MiB", p / 1024))
            .collect::<Vec<_>>()
            .join(", "),
        CEILING_KIB / 1024
    );
    for (class, peak) in peaks {
        assert!(peak < CEILING_KIB, "{class}: peak RSS {peak} KiB");
    }
}
