//! The derived-layer importer and whiteout handling: the input is an uncompressed OCI layer,
//! imported with `import_oci_layer` (the store's path rules: `etc` → `usr/etc`, other top
//! levels dropped, whiteouts kept as files) into a transaction on a tmpfs repository that holds
//! one fixed base commit, then merged onto that base with the store's `write_merge_commit`
//! (whiteout, opaque-whiteout and replacement semantics). The transaction is aborted, so every
//! iteration sees the same store.
//!
//! Properties: no panic; a layer that imports also merges; in the merged tree no name is a
//! whiteout, every non-whiteout entry of the layer is there (same content object for files,
//! a directory for directories), and every base entry is there unchanged unless the layer
//! replaced it, whited it out, or made its directory opaque. The layer commit is deterministic
//! (importing the layer twice gives the same commit).
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use ostree_container::store::merge::{
    MergeMeta, OPAQUE_WHITEOUT, WHITEOUT_PREFIX, write_merge_commit,
};
use ostree_container_fuzz::Scratch;
use ostree_repo::format::Checksum;
use ostree_repo::{MtreeEntry, MutableTree, RepoMode, Transaction};
use ostree_tar::{OciLayerOptions, import_oci_layer};
use test_support::layer::LayerTar;

struct Base {
    scratch: Scratch,
    commit: Checksum,
}

/// A small base image: what the seeds' whiteouts and replacements aim at.
fn base_layer() -> Vec<u8> {
    LayerTar::new()
        .dir("usr", 0o755, 0, 0)
        .dir("usr/bin", 0o755, 0, 0)
        .file("usr/bin/a", b"a", 0o755, 0, 0)
        .file("usr/bin/b", b"b", 0o755, 0, 0)
        .symlink("usr/bin/sh", "a")
        .dir("usr/lib/x", 0o700, 0, 0)
        .file("usr/lib/x/y", b"y", 0o644, 0, 0)
        .dir("usr/share/doc", 0o755, 0, 0)
        .file("usr/share/doc/z", b"z", 0o644, 0, 0)
        .file("etc/hostname", b"", 0o644, 0, 0)
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644, 0, 0)
        .finish()
}

static BASE: LazyLock<Base> = LazyLock::new(|| {
    let scratch = Scratch::new("oci", RepoMode::BareUser);
    let txn = scratch.repo.begin_transaction().expect("begin transaction");
    let out = import_oci_layer(
        &txn,
        &base_layer()[..],
        "base",
        &OciLayerOptions::new(),
        None,
    )
    .expect("base layer");
    txn.set_ref("base", Some(out.commit)).expect("ref");
    txn.commit().expect("publish the base");
    Base {
        commit: out.commit,
        scratch,
    }
});

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}/{name}")
    }
}

fn entries(txn: &Transaction<'_>, t: &mut MutableTree) -> BTreeMap<String, MtreeEntry> {
    t.entries(txn).expect("load a directory").clone()
}

/// Checks the merged directory `merged` at `path` against the layer's and the base's.
fn check(
    txn: &Transaction<'_>,
    layer: &mut MutableTree,
    base: Option<&mut MutableTree>,
    merged: &mut MutableTree,
    path: &str,
) {
    let l = entries(txn, layer);
    let b = match base {
        Some(b) => entries(txn, b),
        None => BTreeMap::new(),
    };
    let m = entries(txn, merged);
    let opaque = l.contains_key(OPAQUE_WHITEOUT);
    let injected = |n: &str| path == "usr/etc" && (n == "hostname" || n == "resolv.conf");
    for name in m.keys() {
        assert!(
            !name.starts_with(WHITEOUT_PREFIX),
            "whiteout {path}/{name} in the merged tree"
        );
    }
    for (name, le) in &l {
        if name.starts_with(WHITEOUT_PREFIX) {
            continue;
        }
        let p = join(path, name);
        match (le, m.get(name)) {
            (MtreeEntry::File(c), Some(MtreeEntry::File(mc))) => {
                assert_eq!(c, mc, "{p}: merged file is not the layer's");
            }
            (MtreeEntry::Dir(ld), Some(MtreeEntry::Dir(md))) => {
                let hidden = opaque || l.contains_key(&format!("{WHITEOUT_PREFIX}{name}"));
                let mut bd = match b.get(name) {
                    Some(MtreeEntry::Dir(bd)) if !hidden => Some(bd.clone()),
                    _ => None,
                };
                check(txn, &mut ld.clone(), bd.as_mut(), &mut md.clone(), &p);
            }
            (MtreeEntry::File(_), None) if injected(name) => {}
            (_, got) => panic!(
                "{p}: layer entry missing or of another kind in the merge: {}",
                got.is_some()
            ),
        }
    }
    for (name, be) in &b {
        let hidden = opaque || l.contains_key(&format!("{WHITEOUT_PREFIX}{name}"));
        let p = join(path, name);
        if l.contains_key(name) {
            continue;
        }
        match (be, m.get(name)) {
            _ if hidden => assert!(!m.contains_key(name), "{p}: whited out but still merged"),
            (MtreeEntry::File(c), Some(MtreeEntry::File(mc))) => {
                assert_eq!(c, mc, "{p}: base file changed")
            }
            (MtreeEntry::Dir(_), Some(MtreeEntry::Dir(_))) => {}
            (MtreeEntry::File(_), None) if injected(name) => {}
            _ => panic!("{p}: base entry lost or changed kind"),
        }
    }
    for name in m.keys() {
        let from_base =
            b.contains_key(name) && !opaque && !l.contains_key(&format!("{WHITEOUT_PREFIX}{name}"));
        assert!(
            l.contains_key(name) || from_base,
            "{path}/{name}: in the merge but in neither layer nor base"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let base = &*BASE;
    let txn = base
        .scratch
        .repo
        .begin_transaction()
        .expect("begin transaction");
    let opts = OciLayerOptions::new();
    let Ok(out) = import_oci_layer(&txn, data, "sha256:fuzz", &opts, None) else {
        return;
    };
    let again = import_oci_layer(&txn, data, "sha256:fuzz", &opts, None)
        .expect("a layer that imported once imports again");
    assert_eq!(
        again.commit, out.commit,
        "layer commit is not deterministic"
    );
    let meta = MergeMeta {
        manifest_digest: "sha256:00".into(),
        manifest_json: "{}".into(),
        config_json: "{}".into(),
        filtered: BTreeMap::from([("sha256:fuzz".into(), out.filtered.clone())]),
        timestamp: 0,
    };
    let merged = write_merge_commit(&txn, Some(base.commit), &[out.commit], &meta, None)
        .expect("an imported layer merges");
    let mut l = MutableTree::from_commit(&txn, &out.commit).expect("layer tree");
    let mut b = MutableTree::from_commit(&txn, &base.commit).expect("base tree");
    let mut m = MutableTree::from_commit(&txn, &merged).expect("merged tree");
    check(&txn, &mut l, Some(&mut b), &mut m, "");
});
