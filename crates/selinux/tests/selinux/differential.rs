//! The native file_contexts matcher against libselinux itself (`selabel_lookup_raw`, the
//! library libostree uses): same policy files, same paths, same modes, identical answers.

use std::path::Path;

use ostree_selinux::{LookupBackend, SePolicy};

/// Every file type a spec can name, and "any" (0).
const MODES: [u32; 8] = [
    0, 0o100644, 0o040755, 0o120777, 0o020600, 0o060600, 0o140755, 0o010644,
];

/// Both backends on the policy under `root`; the native one must really be native.
fn both(root: &Path) -> (SePolicy, SePolicy) {
    let n = SePolicy::open_root_with(root, LookupBackend::Native)
        .unwrap()
        .unwrap();
    let l = SePolicy::open_root_with(root, LookupBackend::Libselinux)
        .unwrap()
        .unwrap();
    assert_eq!(l.backend(), LookupBackend::Libselinux);
    (n, l)
}

/// Compares every (path, mode) in `cases` (on two threads, libselinux being slow); returns the
/// number compared. Panics listing the first mismatches.
fn compare(root: &Path, cases: &[(String, u32)]) -> usize {
    let half = cases.len() / 2;
    let (a, b) = cases.split_at(half);
    let run = |part: &[(String, u32)]| {
        let (n, l) = both(root);
        let mut bad = Vec::new();
        for (p, m) in part {
            let ours = n.lookup(p, *m).map_err(|e| e.to_string());
            let theirs = l.lookup(p, *m).map_err(|e| e.to_string());
            let same = match (&ours, &theirs) {
                (Ok(x), Ok(y)) => x == y,
                (Err(_), Err(_)) => true,
                _ => false,
            };
            if !same && bad.len() < 20 {
                bad.push(format!(
                    "{p:?} mode {m:o}: native {ours:?} libselinux {theirs:?}"
                ));
            }
        }
        bad
    };
    let (ba, bb) = std::thread::scope(|s| {
        let ha = s.spawn(|| run(a));
        let hb = s.spawn(|| run(b));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    let bad: Vec<String> = ba.into_iter().chain(bb).collect();
    assert!(bad.is_empty(), "mismatches:\n{}", bad.join("\n"));
    cases.len()
}

/// A crude sample path for a spec regex: the first alternative, optional parts dropped,
/// classes and wildcards replaced by a typical byte. Often (not always) a match.
fn sample(re: &str, fill: &str) -> String {
    let mut out = String::new();
    let b = re.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() => {
                out.push(b[i + 1] as char);
                i += 1;
            }
            b'[' => {
                let mut j = i + 1;
                if b.get(j) == Some(&b'^') {
                    out.push_str(fill);
                } else if let Some(&c) = b.get(j) {
                    out.push(c as char);
                }
                j += 1;
                while j < b.len() && b[j] != b']' {
                    j += 1;
                }
                i = j;
            }
            b'.' if b.get(i + 1) == Some(&b'*') => {
                out.push_str(fill);
                i += 1;
            }
            b'.' => out.push('x'),
            b'(' | b')' | b'?' | b'*' | b'+' | b'^' | b'$' => {}
            b'|' => {
                // Skip the other alternatives of this group.
                let mut depth = 0i32;
                while i < b.len() {
                    match b[i] {
                        b'(' => depth += 1,
                        b')' if depth == 0 => break,
                        b')' => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                }
                continue;
            }
            c => out.push(c as char),
        }
        i += 1;
    }
    out
}

/// Paths derived from every spec of the policy's text files, plus hand-picked awkward ones.
fn tricky_paths(files_dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for f in ["file_contexts", "file_contexts.homedirs"] {
        let text = std::fs::read_to_string(files_dir.join(f)).unwrap();
        for l in text.lines() {
            let Some(re) = l.split_whitespace().next() else {
                continue;
            };
            if re.starts_with('#') {
                continue;
            }
            let s = sample(re, "abc");
            v.push(s.clone());
            v.push(sample(re, "a/b"));
            v.push(format!("{s}/"));
            v.push(format!("{s}/child"));
            v.push(format!("{s}.d/x"));
            if let Some(pos) = s.rfind('/')
                && pos > 0
            {
                v.push(s[..pos].to_string());
            }
        }
    }
    let subs = std::fs::read_to_string(files_dir.join("file_contexts.subs_dist")).unwrap();
    for l in subs.lines() {
        let mut w = l.split_whitespace();
        if let (Some(a), Some(_)) = (w.next(), w.next())
            && !a.starts_with('#')
        {
            for tail in [
                "",
                "/",
                "/x",
                "/ld-linux.so.2",
                "/systemd/system/a.service",
                "x",
            ] {
                v.push(format!("{a}{tail}"));
            }
        }
    }
    for p in [
        "/",
        "//",
        "///usr//bin//",
        "/usr/bin/",
        "/usr",
        "/proc",
        "/proc/1",
        "/sys/fs",
        "/home/u/.ssh/authorized_keys",
        "/root/.bashrc",
        "/home",
        "/home/user",
        "/tmp/x",
        "/var/run/x.pid",
        "/run/lock/x",
        "/lib64/ld-linux-x86-64.so.2",
        "/usr/lib64/libc.so.6",
        "/usr/bin/\n",
        "/etc/passwd\n",
        "/etc/passwd\nx",
        "/etc/a b",
        "/etc/[x]",
        "/etc/(x)",
        "/etc/x*y",
        "/etc/x+y",
        "/etc/x?y",
        "/etc/x|y",
        "/etc/x\\y",
        "/etc/x$",
        "/etc/^x",
        "/etc/x{1}",
        "/etc/caf\u{e9}",
        "/usr/share/\u{1F600}/x",
        "relative/path",
        "x",
        "/lost+found",
        "/lost+found/x",
        "/.journal",
        "/vmlinuz-6.1",
        "/initrd.img-6.1",
    ] {
        v.push(p.to_string());
    }
    let deep: String = (0..60).map(|i| format!("/d{i}")).collect();
    v.push(format!("/usr/lib{deep}/libx.so.1"));
    v.push(format!("/var/lib{deep}"));
    v.sort();
    v.dedup();
    v
}

/// The bench's 30,000-file tree shape: (path, mode) of every file and directory.
fn tree_paths(files: usize) -> Vec<(String, u32)> {
    let tops = [
        "usr/bin",
        "usr/lib/x",
        "usr/share/doc",
        "usr/etc/app",
        "var/lib/app",
        "usr/libexec/y",
        "etc/systemd/system",
        "usr/lib/systemd/system",
        "var/log/app",
        "opt/vendor/bin",
        "home/user/.config",
        "usr/lib64/python3/site-packages",
    ];
    let mut v = Vec::with_capacity(files + files / 50);
    let mut dirs = std::collections::BTreeSet::new();
    for i in 0..files {
        let top = tops[i % tops.len()];
        let d = format!("/{top}/d{}", i / 100);
        let name = match i % 7 {
            0 => format!("lib{i}.so.1"),
            1 => format!("f{i}.conf"),
            2 => format!("f{i}.log"),
            3 => format!("f{i}.service"),
            4 => format!("f{i}.py"),
            _ => format!("f{i}"),
        };
        let mode = if i % 13 == 0 { 0o120777 } else { 0o100644 };
        v.push((format!("{d}/{name}"), mode));
        let mut p = String::new();
        for c in d.split('/').filter(|c| !c.is_empty()) {
            p.push('/');
            p.push_str(c);
            dirs.insert(p.clone());
        }
    }
    v.extend(dirs.into_iter().map(|d| (d, 0o040755)));
    v
}

#[test]
fn debian_policy_native_equals_libselinux() {
    let dir = test_support::scratch("oc-selinux-diff-");
    let root = super::policy_tree(dir.path());
    let files_dir = root.join("usr/etc/selinux/default/contexts/files");
    let native = SePolicy::open_root(&root).unwrap().unwrap();
    assert_eq!(
        native.backend(),
        LookupBackend::Native,
        "the native matcher must mirror Debian's policy without falling back"
    );
    let mut cases = tree_paths(30_000);
    let tree = cases.len();
    for p in tricky_paths(&files_dir) {
        for m in MODES {
            cases.push((p.clone(), m));
        }
    }
    let n = compare(&root, &cases);
    eprintln!(
        "compared {n} (path, mode) pairs: {tree} from the 30,000-file tree, {} tricky",
        n - tree
    );
}

/// The same policy as a stored tree gives it (every mtime 0, so libselinux reads the `.bin`s).
#[test]
fn debian_policy_from_a_commit_native_equals_libselinux() {
    use ostree_repo::{CommitSpec, NoProgress, TreeOptions};
    let dir = test_support::scratch("oc-selinux-diffc-");
    let src = super::policy_tree(dir.path());
    let repo = super::init_repo(dir.path(), "bare-user");
    let no = std::sync::atomic::AtomicBool::new(false);
    let c = repo
        .commit_directory(
            &src,
            None,
            &TreeOptions::new(),
            &CommitSpec::new(),
            &NoProgress,
            &no,
        )
        .unwrap();
    let n = SePolicy::from_tree_with(
        &repo,
        &mut ostree_repo::MutableTree::from_commit(&repo, &c).unwrap(),
        LookupBackend::Native,
    )
    .unwrap()
    .unwrap();
    assert_eq!(n.backend(), LookupBackend::Native);
    let l = SePolicy::from_tree_with(
        &repo,
        &mut ostree_repo::MutableTree::from_commit(&repo, &c).unwrap(),
        LookupBackend::Libselinux,
    )
    .unwrap()
    .unwrap();
    let fc = n.root().join("contexts/files/file_contexts.bin");
    assert_eq!(
        std::fs::metadata(&fc).unwrap().modified().unwrap(),
        std::time::UNIX_EPOCH
    );
    let mut count = 0;
    for (p, m) in tree_paths(3_000) {
        assert_eq!(
            n.lookup(&p, m).unwrap(),
            l.lookup(&p, m).unwrap(),
            "{p} {m:o}"
        );
        count += 1;
    }
    assert!(count > 3_000);
}

/// A stale `.bin` (the text changed, the `.bin` did not, equal mtimes): libselinux reads the
/// `.bin`, so the native matcher must step aside, and the answers still agree.
#[test]
fn stale_bin_falls_back_to_libselinux() {
    let dir = test_support::scratch("oc-selinux-stale-");
    let root = super::policy_tree(dir.path());
    let fc = root.join("usr/etc/selinux/default/contexts/files/file_contexts");
    let mut text = std::fs::read(&fc).unwrap();
    text.extend_from_slice(b"/usr/share/special(/.*)?\tsystem_u:object_r:bin_t:s0\n");
    std::fs::write(&fc, &text).unwrap();
    let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    for f in [fc.clone(), fc.with_extension("bin")] {
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    let n = SePolicy::open_root(&root).unwrap().unwrap();
    assert_eq!(n.backend(), LookupBackend::Libselinux);
    let l = SePolicy::open_root_with(&root, LookupBackend::Libselinux)
        .unwrap()
        .unwrap();
    let p = "/usr/share/special/x";
    assert_eq!(
        n.lookup(p, 0o100644).unwrap(),
        l.lookup(p, 0o100644).unwrap()
    );
    // With the text newer, libselinux reads the text, and so does the native matcher.
    std::fs::File::options()
        .write(true)
        .open(&fc)
        .unwrap()
        .set_modified(t + std::time::Duration::from_secs(10))
        .unwrap();
    let (n, l) = both(&root);
    assert_eq!(n.backend(), LookupBackend::Native);
    assert_eq!(
        n.lookup(p, 0o100644).unwrap().as_deref(),
        Some(&b"system_u:object_r:bin_t:s0"[..])
    );
    assert_eq!(
        n.lookup(p, 0o100644).unwrap(),
        l.lookup(p, 0o100644).unwrap()
    );
}

/// A small policy exercising each rule, compared with libselinux on the same files.
const HAND_FC: &str = "\
# ordering: the last matching spec wins
/.*\t\t\tsystem_u:object_r:default_t:s0
/\t\t-d\tsystem_u:object_r:root_t:s0
/srv(/.*)?\t\tsystem_u:object_r:srv_t:s0
/srv/www(/.*)?\t\tsystem_u:object_r:www_t:s0
/srv/www/cgi.*\t\tsystem_u:object_r:cgi_t:s0
# an exact path beats regexes that come after it in the file
/srv/www/index\\.html\t--\tsystem_u:object_r:index_t:s0
/srv/www/index.*\t\tsystem_u:object_r:later_regex_t:s0
# every file type
/dev/t[^/]*\t-c\tsystem_u:object_r:chr_t:s0
/dev/t[^/]*\t-b\tsystem_u:object_r:blk_t:s0
/dev/t[^/]*\t-s\tsystem_u:object_r:sock_t:s0
/dev/t[^/]*\t-p\tsystem_u:object_r:fifo_t:s0
/dev/t[^/]*\t-l\tsystem_u:object_r:lnk_t:s0
/dev/t[^/]*\t-d\tsystem_u:object_r:dir_t:s0
/dev/t[^/]*\t--\tsystem_u:object_r:file_t:s0
# duplicates: the later one wins
/dup\tsystem_u:object_r:dup1_t:s0
/dup\tsystem_u:object_r:dup2_t:s0
/dupm\t--\tsystem_u:object_r:dupm1_t:s0
/dupm\tsystem_u:object_r:dupm2_t:s0
# <<none>>
/srv/www/none(/.*)?\t<<none>>
/proc(/.*)?\t<<none>>
# top-level alternation (libselinux anchors ^R$ without a group)
/alt/a|/alt/b\tsystem_u:object_r:alt_t:s0
# a trailing $, classes, counted repeats, lazy quantifiers
/end/x$\tsystem_u:object_r:end_t:s0
/cls/[[:digit:]]{2,3}[a-c-]?\tsystem_u:object_r:cls_t:s0
/lazy/a+?b*?\tsystem_u:object_r:lazy_t:s0
/esc/a\\+b\\[c\\]\tsystem_u:object_r:esc_t:s0
/ws/\\s\\d\\w\\S\\D\\W\tsystem_u:object_r:ws_t:s0
# a stem with an escaped byte never matches (libselinux compares it raw)
/st\\-em/x\tsystem_u:object_r:stem_t:s0
/usr/lib(64)?/lib[^/]*\\.so(\\.[0-9]+)*\t--\tsystem_u:object_r:lib_t:s0
/opt/o/x\t-l\tsystem_u:object_r:olink_t:s0
";

fn write_policy(dir: &Path, fc: &str, extra: &[(&str, &str)]) -> std::path::PathBuf {
    let p = dir.join("usr/etc/selinux");
    let files = p.join("t/contexts/files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(p.join("t/policy")).unwrap();
    std::fs::write(p.join("config"), "SELINUX=enforcing\nSELINUXTYPE=t\n").unwrap();
    std::fs::write(p.join("t/policy/policy.33"), b"not a real policy").unwrap();
    std::fs::write(files.join("file_contexts"), fc).unwrap();
    for (name, text) in extra {
        std::fs::write(files.join(name), text).unwrap();
    }
    dir.to_path_buf()
}

#[test]
fn hand_written_policy_native_equals_libselinux() {
    let dir = test_support::scratch("oc-selinux-hand-");
    let root = write_policy(
        dir.path(),
        HAND_FC,
        &[
            (
                "file_contexts.homedirs",
                "/home/[^/]+/\\.ssh(/.*)?\tsystem_u:object_r:ssh_home_t:s0\n/srv/www/cgi-bin\tsystem_u:object_r:homedirs_exact_t:s0\n",
            ),
            (
                "file_contexts.local",
                "/srv/www/local.*\tsystem_u:object_r:local_t:s0\n/srv/www/cgi-bin\tsystem_u:object_r:local_exact_t:s0\n",
            ),
            (
                "file_contexts.subs_dist",
                "# aliases\n/web /srv/www\n/web /srv\n/rootalias /\n/lib64 /usr/lib\n  \n",
            ),
            ("file_contexts.subs", "/mine /web\n/l /srv/www/local\n"),
        ],
    );
    let n = SePolicy::open_root(&root).unwrap().unwrap();
    assert_eq!(n.backend(), LookupBackend::Native);
    let paths = [
        "/",
        "/x",
        "/srv",
        "/srv/",
        "/srv/www",
        "/srv/www/a",
        "/srv/www/cgi-bin",
        "/srv/www/cgi-x",
        "/srv/www/index.html",
        "/srv/www/indexXhtml",
        "/srv/www/index.htm",
        "/srv/www/none",
        "/srv/www/none/x",
        "/proc",
        "/proc/1",
        "/dev/tty",
        "/dev/t",
        "/dev/tx/y",
        "/dup",
        "/dupm",
        "/alt/a",
        "/alt/a/zzz",
        "/zzz/alt/b",
        "/alt/zzz/alt/b",
        "/alt/b",
        "/alt/c",
        "/end/x",
        "/end/x\n",
        "/end/xy",
        "/cls/12",
        "/cls/123c",
        "/cls/1234",
        "/cls/12-",
        "/lazy/aab",
        "/lazy/b",
        "/esc/a+b[c]",
        "/esc/aab[c]",
        "/ws/ 1a!x!",
        "/ws/x1a!x!",
        "/st-em/x",
        "/st\\-em/x",
        "/usr/lib/libc.so.6",
        "/usr/lib64/libc.so",
        "/lib64/libz.so.1",
        "/usr/lib/libc.so.x",
        "/opt/o/x",
        "/web",
        "/web/",
        "/web/a",
        "/web/cgi-bin",
        "/webx/a",
        "/mine/index.html",
        "/rootalias",
        "/rootalias/srv/www/a",
        "/l/z",
        "/l",
        "/home/u/.ssh/k",
        "/home/u/.sshx",
        "/srv/www/local/x",
        "//srv//www//a//",
        "/srv/www/index.html/",
        "/srv\n",
        "relative",
    ];
    let mut cases = Vec::new();
    for p in paths {
        for m in MODES {
            cases.push((p.to_string(), m));
        }
    }
    compare(&root, &cases);
    // Spot checks of the rules themselves (both backends agree, so these pin libselinux).
    let l = |p: &str, m: u32| {
        n.lookup(p, m)
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    };
    assert_eq!(
        l("/srv/www/index.html", 0o100644).unwrap(),
        "system_u:object_r:index_t:s0"
    );
    assert_eq!(l("/dup", 0).unwrap(), "system_u:object_r:dup2_t:s0");
    assert_eq!(
        l("/dupm", 0o100644).unwrap(),
        "system_u:object_r:dupm2_t:s0"
    );
    assert_eq!(l("/srv/www/none/x", 0), None);
    assert_eq!(
        l("/alt/zzz/alt/b", 0).unwrap(),
        "system_u:object_r:alt_t:s0"
    );
    assert_eq!(
        l("/zzz/alt/b", 0).unwrap(),
        "system_u:object_r:default_t:s0"
    );
    assert_eq!(l("/web/a", 0).unwrap(), "system_u:object_r:srv_t:s0");
    assert_eq!(
        l("/srv/www/cgi-bin", 0).unwrap(),
        "system_u:object_r:local_exact_t:s0"
    );
    assert_eq!(
        l("/dev/tty", 0o020600).unwrap(),
        "system_u:object_r:chr_t:s0"
    );
}

/// A regex the native matcher cannot mirror (a back-reference, a look-ahead) leaves the whole
/// policy to libselinux; answers are libselinux's.
#[test]
fn unsupported_regex_falls_back_to_libselinux() {
    for bad in ["/b/(a)\\1", "/b/x(?=y)y", "/b/a{,2}"] {
        let dir = test_support::scratch("oc-selinux-unsup-");
        let fc = format!("/.*\tsystem_u:object_r:default_t:s0\n{bad}\tsystem_u:object_r:b_t:s0\n");
        let root = write_policy(dir.path(), &fc, &[]);
        let (n, _) = both(&root);
        assert_eq!(n.backend(), LookupBackend::Libselinux, "{bad}");
        let cases: Vec<(String, u32)> = ["/b/aa", "/b/xy", "/b/a", "/b/a{,2}", "/c"]
            .iter()
            .map(|p| (p.to_string(), 0o100644))
            .collect();
        compare(&root, &cases);
    }
}

/// A malformed line in the only copy of a spec file: a typed error naming file and line,
/// as libselinux refuses the policy.
#[test]
fn malformed_lines_are_typed_errors() {
    for (fc, line) in [
        ("/.* system_u:object_r:default_t:s0\n/x\n", 2),
        ("/ -d system_u:object_r:root_t:s0\n/x -q ctx\n", 2),
        ("/\u{e9} ctx\n/ system_u:object_r:root_t:s0\n", 1),
    ] {
        let dir = test_support::scratch("oc-selinux-bad-");
        let root = write_policy(dir.path(), fc, &[]);
        match SePolicy::open_root(&root) {
            Err(ostree_selinux::SelinuxError::FileContexts(e)) => {
                assert_eq!(e.line, line, "{fc:?}");
                assert!(e.path.ends_with("contexts/files/file_contexts"));
            }
            other => panic!("{fc:?}: {other:?}"),
        }
        assert!(
            SePolicy::open_root_with(&root, LookupBackend::Libselinux).is_err(),
            "libselinux accepts {fc:?}"
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 96, ..Default::default() })]

    /// A damaged hand-written policy (bytes cut or replaced: NULs, non-ASCII, stray meta
    /// characters): libselinux and the native backend (with its fallback) both refuse it, or
    /// both open it and give the same answers.
    #[test]
    fn damaged_policy_native_equals_libselinux(
        cuts in proptest::collection::vec((0usize..HAND_FC.len(), proptest::prelude::any::<u8>()), 1..6),
        path in "/[a-z/.+]{0,16}",
    ) {
        let mut fc = HAND_FC.as_bytes().to_vec();
        for (at, b) in cuts {
            let at = at.min(fc.len().saturating_sub(1));
            if b % 5 == 0 {
                fc.truncate(at);
            } else if at < fc.len() {
                fc[at] = b;
            }
        }
        let dir = test_support::scratch("oc-selinux-dmg-");
        let p = dir.path().join("usr/etc/selinux");
        std::fs::create_dir_all(p.join("t/contexts/files")).unwrap();
        std::fs::create_dir_all(p.join("t/policy")).unwrap();
        std::fs::write(p.join("config"), "SELINUX=enforcing\nSELINUXTYPE=t\n").unwrap();
        std::fs::write(p.join("t/policy/policy.33"), b"x").unwrap();
        std::fs::write(p.join("t/contexts/files/file_contexts"), &fc).unwrap();
        let n = SePolicy::open_root(dir.path());
        let l = SePolicy::open_root_with(dir.path(), LookupBackend::Libselinux);
        match (n, l) {
            (Ok(Some(n)), Ok(Some(l))) => {
                for q in [path.as_str(), "/", "/srv/www/index.html", "/dev/tty", "/alt/b", "/end/x"] {
                    for m in MODES {
                        let a = n.lookup(q, m).map_err(|e| e.to_string());
                        let b = l.lookup(q, m).map_err(|e| e.to_string());
                        proptest::prop_assert!(
                            a.is_err() == b.is_err() && (a.is_err() || a == b),
                            "{q:?} {m:o}: native {a:?} libselinux {b:?}\n{}",
                            String::from_utf8_lossy(&fc)
                        );
                    }
                }
            }
            (n, l) => proptest::prop_assert!(
                n.is_err() && l.is_err(),
                "native {:?} libselinux {:?}\n{}",
                n.map(|p| p.map(|p| p.backend())),
                l.map(|p| p.map(|p| p.backend())),
                String::from_utf8_lossy(&fc)
            ),
        }
    }
}
