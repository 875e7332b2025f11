//! Writes the seed corpora of the fuzz targets, generated from the project's own fixture
//! builders (nothing binary is checked in): `seeds <dir>` (built with the targets, so one instrumented build serves both) fills
//! `<dir>/<target>/`. The tar seeds are the reference tree of `ostree-repo-format.md` §13
//! committed by our engine (with detached metadata) and exported as a `tar export` stream, a
//! commit layer and a chunk layer; the GVariant seeds are that commit's objects; the OCI seeds
//! are derived layers with whiteouts, opaque directories, hardlinks and replacements.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use ostree_repo::format::gvariant::Value;
use ostree_repo::format::{
    DirTree, MetaDict, ObjectName, ObjectType, Xattrs, archive_header, file_header,
};
use ostree_repo::{CommitSpec, NoProgress, Repo, RepoMode, TreeOptions};
use ostree_tar::ExportPlan;
use test_support::layer::LayerTar;

fn put(dir: &Path, target: &str, name: &str, data: &[u8]) -> Result<()> {
    let d = dir.join(target);
    std::fs::create_dir_all(&d)?;
    std::fs::write(d.join(name), data).with_context(|| format!("seed {target}/{name}"))
}

fn tagged(tag: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(data);
    v
}

fn main() -> Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .context("usage: seeds <output dir>")?;
    let out = Path::new(&out);
    let scratch = tempfile::Builder::new()
        .prefix("ostree-fuzz-seeds-")
        .tempdir_in(ostree_container_fuzz::scratch_base())?;
    let tree = scratch.path().join("tree");
    test_support::tree::reference_tree(&tree)?;
    let repo = Repo::create(&scratch.path().join("repo"), RepoMode::BareUser)?;
    let txn = repo.begin_transaction()?;
    let (root, root_meta) = txn.write_directory(
        &tree,
        &TreeOptions::new(),
        &NoProgress,
        &AtomicBool::new(false),
    )?;
    let mut spec = CommitSpec::new();
    spec.subject = "seed".into();
    spec.timestamp = Some(1_600_000_000);
    spec.metadata.push("version", Value::Str("1".into()));
    let commit = txn.write_commit(root, root_meta, &spec)?;
    let mut detached = MetaDict::default();
    detached.push("sig", Value::Str("abc".into()));
    detached.push("ostree.sign.ed25519", Value::Bytes(vec![7; 64]));
    txn.write_commitmeta(&commit, &detached.to_bytes())?;
    txn.set_ref("seed", Some(commit))?;
    txn.commit()?;

    // tar_import: selector byte 0 = commit layer, 1 = chunk layer.
    let plan = ExportPlan::new(&repo, commit)?;
    let mut export = Vec::new();
    plan.write_export(&mut export)?;
    put(out, "tar_import", "export", &tagged(0, &export))?;
    let all: Vec<_> = plan.content_objects().copied().collect();
    let chunked: HashSet<_> = all.iter().take(3).copied().collect();
    let mut commit_layer = Vec::new();
    plan.write_commit_layer(&mut commit_layer, &chunked)?;
    put(out, "tar_import", "commit-layer", &tagged(0, &commit_layer))?;
    let mut chunk = Vec::new();
    let objs: Vec<_> = chunked.iter().copied().collect();
    plan.write_chunk_layer(&mut chunk, &objs)?;
    put(out, "tar_import", "chunk-layer", &tagged(1, &chunk))?;

    // gvariant_objects: selector byte, see the target.
    let load = |ty, c| repo.load_metadata_bytes(&ObjectName::new(c, ty));
    let g = "gvariant_objects";
    put(
        out,
        g,
        "commit",
        &tagged(0, &load(ObjectType::Commit, commit)?),
    )?;
    let root_bytes = load(ObjectType::DirTree, root)?;
    put(out, g, "dirtree-root", &tagged(1, &root_bytes))?;
    let root_tree = DirTree::parse(&root_bytes)?;
    for d in &root_tree.dirs {
        put(
            out,
            g,
            &format!("dirtree-{}", d.name),
            &tagged(1, &load(ObjectType::DirTree, d.tree)?),
        )?;
        put(
            out,
            g,
            &format!("dirmeta-{}", d.name),
            &tagged(2, &load(ObjectType::DirMeta, d.meta)?),
        )?;
    }
    put(
        out,
        g,
        "dirmeta-root",
        &tagged(2, &load(ObjectType::DirMeta, root_meta)?),
    )?;
    put(out, g, "detached", &tagged(5, &detached.to_bytes()))?;
    for f in &root_tree.files {
        let obj = repo.read_content(&f.checksum)?;
        let target = obj.symlink_target.as_deref();
        put(
            out,
            g,
            &format!("header-{}", f.name),
            &tagged(3, &file_header(&obj.meta, target)),
        )?;
        let archive = archive_header(obj.size, &obj.meta, target);
        put(out, g, &format!("archive-{}", f.name), &tagged(4, &archive))?;
        if !obj.meta.xattrs.is_empty() {
            put(
                out,
                g,
                &format!("xattrs-{}", f.name),
                &tagged(6, &obj.meta.xattrs.to_bytes()),
            )?;
        }
    }
    let x = Xattrs::canonical([(b"user.a".to_vec(), b"1".to_vec())]);
    put(out, g, "xattrs", &tagged(6, &x.to_bytes()))?;
    for (i, (ty, v)) in [
        (
            "(sa{sv}as)",
            Value::Tuple(vec![
                Value::Str("x".into()),
                detached.to_value(),
                Value::Array(
                    ostree_repo::format::gvariant::Type::Str,
                    vec![Value::Str("a".into()), Value::Str("bc".into())],
                ),
            ]),
        ),
        (
            "mv",
            Value::Maybe(
                ostree_repo::format::gvariant::Type::Variant,
                Some(Box::new(Value::Variant(Box::new(Value::U32(5))))),
            ),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut d = tagged(7, ty.as_bytes());
        d.push(0);
        d.extend_from_slice(&v.to_bytes());
        put(out, g, &format!("generic-{i}"), &d)?;
    }

    // image_reference.
    for (i, s) in [
        "ostree-unverified-registry:quay.io/fedora/fedora-coreos:stable",
        "ostree-unverified-image:docker://localhost:5000/x@sha256:0123456789abcdef",
        "ostree-image-signed:oci:/var/tmp/layout:latest",
        "ostree-remote-image:fedora:registry:quay.io/a/b",
        "ostree-remote-registry:fedora:quay.io/a/b:tag",
        "containers-storage:[overlay@/var/lib/containers/storage]sha256:abc",
        "oci-archive:/tmp/x.tar",
        "docker-archive:/tmp/y.tar:img",
        "dir:/srv/img",
        "docker-daemon:busybox:latest",
    ]
    .iter()
    .enumerate()
    {
        put(out, "image_reference", &format!("ref-{i}"), s.as_bytes())?;
    }

    // oci_layer: derived layers against the target's base (usr/bin/{a,b,sh}, usr/lib/x/y,
    // usr/share/doc/z, etc/{hostname,passwd}).
    let o = "oci_layer";
    put(
        out,
        o,
        "whiteouts",
        &LayerTar::new()
            .dir("usr/bin", 0o755, 0, 0)
            .whiteout("usr/bin/.wh.a")
            .whiteout("usr/lib/x/.wh..wh..opq")
            .file("usr/lib/x/new", b"new", 0o644, 0, 0)
            .whiteout("usr/share/.wh.doc")
            .whiteout("etc/.wh.passwd")
            .finish(),
    )?;
    put(
        out,
        o,
        "replace",
        &LayerTar::new()
            .dir("usr/bin/b", 0o700, 0, 0)
            .file("usr/bin/b/inner", b"i", 0o600, 1000, 1000)
            .file("usr/lib/x", b"now a file", 0o644, 0, 0)
            .whiteout("usr/bin/.wh.sh")
            .symlink("usr/bin/sh", "b/inner")
            .finish(),
    )?;
    put(
        out,
        o,
        "links",
        &LayerTar::new()
            .file("usr/share/f", b"data", 0o644, 0, 0)
            .hardlink("usr/share/g", "usr/share/f")
            .file_with_xattrs(
                "usr/share/x",
                b"x",
                &[
                    ("user.k", b"v"),
                    ("security.selinux", b"system_u:object_r:usr_t:s0"),
                ],
            )
            .file("var/lib/state", b"s", 0o644, 0, 0)
            .file("opt/dropped", b"d", 0o644, 0, 0)
            .dir("tmp", 0o1777, 0, 0)
            .file("tmp/dropped", b"d", 0o644, 0, 0)
            .finish(),
    )?;
    eprintln!("seeds written to {}", out.display());
    Ok(())
}
