//! The merge commit, composed from trees (container-image-format §8.2): the base commit's root,
//! then each derived layer's tree applied in order with whiteout semantics. Only directories the
//! layers touch are loaded and rewritten; content objects are referenced by checksum, never read
//! (except the two builder-injected files below, whose size decides whether they go).

use std::collections::{BTreeMap, BTreeSet};

use ostree_repo::format::gvariant::{Type, Value};
use ostree_repo::format::{Checksum, MetaDict};
use ostree_repo::{
    CommitSpec, MtreeEntry, MutableTree, RepoError, Transaction, TreeSource, default_dirmeta,
};

use super::state::{
    IMPORTER_VERSION, META_CONFIG, META_IMPORTER_VERSION, META_MANIFEST, META_MANIFEST_DIGEST,
    META_TAR_FILTERED,
};

/// Hides all lower content of its directory.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
/// `.wh.<name>` deletes `<name>` from the lower layers.
pub const WHITEOUT_PREFIX: &str = ".wh.";

/// Builders inject these as empty files (buildah#4242); the reference drops them if empty.
const INJECTED_EMPTY: [&str; 2] = ["hostname", "resolv.conf"];

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Applies one layer's tree onto `target`, as a container runtime stacks layers: whiteouts in a
/// directory act on the lower content only (opaque first, then `.wh.<name>`), then the layer's
/// entries replace or merge into what is there; a directory's metadata comes from the upper
/// layer unless the layer only created it implicitly (listed in `autocreated`, or the root).
pub fn apply_layer(
    src: &dyn TreeSource,
    target: &mut MutableTree,
    layer: &mut MutableTree,
    autocreated: &BTreeSet<String>,
) -> Result<(), RepoError> {
    apply_dir(src, target, layer, "", autocreated)
}

fn apply_dir(
    src: &dyn TreeSource,
    target: &mut MutableTree,
    layer: &mut MutableTree,
    prefix: &str,
    autocreated: &BTreeSet<String>,
) -> Result<(), RepoError> {
    let entries = layer.entries(src)?.clone();
    if entries.contains_key(OPAQUE_WHITEOUT) {
        target.clear();
    }
    for name in entries.keys() {
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX)
            && name != OPAQUE_WHITEOUT
        {
            target.remove(src, hidden)?;
        }
    }
    for (name, entry) in entries {
        if name.starts_with(WHITEOUT_PREFIX) {
            continue;
        }
        match entry {
            MtreeEntry::File(c) => {
                target.insert(src, name, MtreeEntry::File(c))?;
            }
            MtreeEntry::Dir(mut sub) => {
                let path = join(prefix, &name);
                let implicit = autocreated.contains(&path);
                if let Some(existing) = target.dir_mut(src, &name)? {
                    if !implicit {
                        existing.copy_meta_from(&sub);
                    }
                    apply_dir(src, existing, &mut sub, &path, autocreated)?;
                } else {
                    let mut fresh = MutableTree::new(default_dirmeta());
                    fresh.copy_meta_from(&sub);
                    apply_dir(src, &mut fresh, &mut sub, &path, autocreated)?;
                    target.insert(src, name, MtreeEntry::Dir(fresh))?;
                }
            }
        }
    }
    Ok(())
}

/// What the merge commit records besides its tree.
#[derive(Debug, Clone)]
pub struct MergeMeta {
    /// `ostree.manifest-digest`.
    pub manifest_digest: String,
    /// `ostree.manifest`, canonical JSON.
    pub manifest_json: String,
    /// `ostree.container.image-config`, canonical JSON.
    pub config_json: String,
    /// Per derived layer digest, the entries its path rules dropped per top-level name.
    pub filtered: BTreeMap<String, BTreeMap<String, u32>>,
    /// Seconds since the epoch.
    pub timestamp: u64,
}

fn filtered_value(f: &BTreeMap<String, BTreeMap<String, u32>>) -> Result<Value, RepoError> {
    let ty = |s: &str| Type::parse(s).map_err(|e| RepoError::InvalidArgument(e.to_string()));
    let inner_ty = ty("{su}")?;
    let outer_ty = ty("{sa{su}}")?;
    let entries = f
        .iter()
        .map(|(digest, counts)| {
            let inner = counts
                .iter()
                .map(|(k, n)| {
                    Value::DictEntry(Box::new(Value::Str(k.clone())), Box::new(Value::U32(*n)))
                })
                .collect();
            Value::DictEntry(
                Box::new(Value::Str(digest.clone())),
                Box::new(Value::Array(inner_ty.clone(), inner)),
            )
        })
        .collect();
    Ok(Value::Array(outer_ty, entries))
}

/// A commit as the transaction sees it (staged or published).
pub(crate) fn load_commit(
    txn: &Transaction<'_>,
    commit: &Checksum,
) -> Result<ostree_repo::format::Commit, RepoError> {
    let name =
        ostree_repo::format::ObjectName::new(*commit, ostree_repo::format::ObjectType::Commit);
    ostree_repo::format::Commit::parse(&txn.load_metadata_bytes(&name)?).map_err(|source| {
        RepoError::InvalidObject {
            object: name,
            source,
        }
    })
}

/// The layer commit's implicitly created directories (see `ostree_tar::AUTOCREATED_DIRS_KEY`).
fn autocreated_dirs(
    txn: &Transaction<'_>,
    layer_commit: &Checksum,
) -> Result<BTreeSet<String>, RepoError> {
    let c = load_commit(txn, layer_commit)?;
    let mut out = BTreeSet::new();
    if let Some(Value::Array(_, items)) = c.metadata.get(ostree_tar::AUTOCREATED_DIRS_KEY) {
        for i in items {
            if let Value::Str(s) = i {
                out.insert(s.clone());
            }
        }
    }
    Ok(out)
}

/// Changes the composed tree before it is written (the SELinux relabel).
pub type TreeHook<'a> = &'a dyn Fn(&Transaction<'_>, &mut MutableTree) -> Result<(), RepoError>;

/// Composes and writes the merge commit: parent = `base` (if any), tree = base root with every
/// layer commit of `layers` applied in order, then `hook` (if any). Deterministic: same inputs,
/// same checksum.
pub fn write_merge_commit(
    txn: &Transaction<'_>,
    base: Option<Checksum>,
    layers: &[Checksum],
    meta: &MergeMeta,
    hook: Option<TreeHook<'_>>,
) -> Result<Checksum, RepoError> {
    let mut root = match base {
        Some(b) => MutableTree::from_commit(txn, &b)?,
        None => MutableTree::new(default_dirmeta()),
    };
    for (i, layer) in layers.iter().enumerate() {
        let mut autocreated = autocreated_dirs(txn, layer)?;
        let mut tree = MutableTree::from_commit(txn, layer)?;
        // The root's metadata comes from a layer only when nothing is below it.
        if base.is_some() || i > 0 {
            autocreated.insert(String::new());
        } else {
            root.copy_meta_from(&tree);
        }
        apply_layer(txn, &mut root, &mut tree, &autocreated)?;
    }
    if !layers.is_empty() {
        drop_injected_empty_files(txn, &mut root)?;
    }
    if let Some(h) = hook {
        h(txn, &mut root)?;
    }
    let (tree, dirmeta) = root.write(txn)?;
    let mut md = MetaDict::default();
    md.push(META_CONFIG, Value::Str(meta.config_json.clone()));
    md.push(META_IMPORTER_VERSION, Value::Str(IMPORTER_VERSION.into()));
    md.push(META_MANIFEST, Value::Str(meta.manifest_json.clone()));
    md.push(
        META_MANIFEST_DIGEST,
        Value::Str(meta.manifest_digest.clone()),
    );
    md.push(META_TAR_FILTERED, filtered_value(&meta.filtered)?);
    let mut spec = CommitSpec::new();
    spec.parent = base;
    spec.timestamp = Some(meta.timestamp);
    spec.metadata = md;
    txn.write_commit(tree, dirmeta, &spec)
}

fn drop_injected_empty_files(
    txn: &Transaction<'_>,
    root: &mut MutableTree,
) -> Result<(), RepoError> {
    let Some(usr) = root.dir_mut(txn, "usr")? else {
        return Ok(());
    };
    let Some(etc) = usr.dir_mut(txn, "etc")? else {
        return Ok(());
    };
    for name in INJECTED_EMPTY {
        if let Some(MtreeEntry::File(c)) = etc.entries(txn)?.get(name) {
            let obj = txn.read_content(c)?;
            if obj.meta.is_regular() && obj.size == 0 {
                etc.remove(txn, name)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ostree_repo::format::{FileMeta, ObjectName, S_IFDIR};

    /// Every tree here is built in memory, so nothing is ever loaded.
    struct NoObjects;
    impl TreeSource for NoObjects {
        fn load_metadata(&self, name: &ObjectName) -> Result<Vec<u8>, RepoError> {
            Err(RepoError::ObjectNotFound(*name))
        }
    }

    fn c(n: u8) -> Checksum {
        Checksum([n; 32])
    }

    fn dir(mode: u32, entries: Vec<(&str, MtreeEntry)>) -> MutableTree {
        let mut t = MutableTree::new(FileMeta {
            uid: 0,
            gid: 0,
            mode: S_IFDIR | mode,
            xattrs: Default::default(),
        });
        for (k, v) in entries {
            t.insert(&NoObjects, k.into(), v).unwrap();
        }
        t
    }

    fn f(n: u8) -> MtreeEntry {
        MtreeEntry::File(c(n))
    }

    fn d(mode: u32, entries: Vec<(&str, MtreeEntry)>) -> MtreeEntry {
        MtreeEntry::Dir(dir(mode, entries))
    }

    /// The tree as sorted `path kind` lines.
    fn listing(t: &mut MutableTree, prefix: &str, out: &mut Vec<String>) {
        let entries = t.entries(&NoObjects).unwrap().clone();
        for (name, e) in entries {
            let p = join(prefix, &name);
            match e {
                MtreeEntry::File(c) => out.push(format!("{p} f{}", c.0[0])),
                MtreeEntry::Dir(mut sub) => {
                    let m = sub.meta(&NoObjects).unwrap().mode & 0o7777;
                    out.push(format!("{p}/ {m:o}"));
                    listing(&mut sub, &p, out);
                }
            }
        }
    }

    fn merged(mut base: MutableTree, layers: Vec<MutableTree>) -> Vec<String> {
        for mut l in layers {
            apply_layer(&NoObjects, &mut base, &mut l, &BTreeSet::new()).unwrap();
        }
        let mut out = Vec::new();
        listing(&mut base, "", &mut out);
        out
    }

    #[test]
    fn whiteouts_opaque_and_replacement() {
        let base = dir(
            0o755,
            vec![
                ("a", f(1)),
                ("keep", f(2)),
                ("gone", d(0o755, vec![("x", f(3))])),
                ("opq", d(0o755, vec![("old", f(4))])),
                ("fileToDir", f(5)),
                ("dirToFile", d(0o755, vec![("y", f(6))])),
                ("meta", d(0o755, vec![("z", f(7))])),
            ],
        );
        let layer = dir(
            0o755,
            vec![
                (".wh.a", f(0)),
                (".wh.gone", f(0)),
                (".wh.missing", f(0)),
                (
                    "opq",
                    d(0o755, vec![(OPAQUE_WHITEOUT, f(0)), ("new", f(8))]),
                ),
                ("fileToDir", d(0o700, vec![("inner", f(9))])),
                ("dirToFile", f(10)),
                ("meta", d(0o1777, vec![])),
                (
                    "deep",
                    d(
                        0o755,
                        vec![("er", d(0o750, vec![(".wh.nothing", f(0)), ("q", f(11))]))],
                    ),
                ),
            ],
        );
        assert_eq!(
            merged(base, vec![layer]),
            [
                "deep/ 755",
                "deep/er/ 750",
                "deep/er/q f11",
                "dirToFile f10",
                "fileToDir/ 700",
                "fileToDir/inner f9",
                "keep f2",
                "meta/ 1777",
                "meta/z f7",
                "opq/ 755",
                "opq/new f8",
            ]
        );
    }

    #[test]
    fn later_layers_delete_what_earlier_ones_added() {
        let base = dir(
            0o755,
            vec![("usr", d(0o755, vec![("bin", d(0o755, vec![]))]))],
        );
        let l1 = dir(
            0o755,
            vec![(
                "usr",
                d(
                    0o755,
                    vec![("bin", d(0o755, vec![("tool", f(1)), ("tmp", f(2))]))],
                ),
            )],
        );
        let l2 = dir(
            0o755,
            vec![(
                "usr",
                d(0o755, vec![("bin", d(0o755, vec![(".wh.tmp", f(0))]))]),
            )],
        );
        // A whiteout and a file of the same name in one layer: the whiteout hides only the
        // lower file, the layer's own file stays.
        let l3 = dir(
            0o755,
            vec![(
                "usr",
                d(
                    0o755,
                    vec![("bin", d(0o755, vec![(".wh.tool", f(0)), ("tool", f(3))]))],
                ),
            )],
        );
        assert_eq!(
            merged(base, vec![l1, l2, l3]),
            ["usr/ 755", "usr/bin/ 755", "usr/bin/tool f3"]
        );
    }

    #[test]
    fn implicit_directories_keep_the_lower_metadata() {
        let mut base = dir(0o755, vec![("usr", d(0o700, vec![("a", f(1))]))]);
        let mut layer = dir(0o755, vec![("usr", d(0o755, vec![("b", f(2))]))]);
        let auto: BTreeSet<String> = ["usr".to_string()].into();
        apply_layer(&NoObjects, &mut base, &mut layer, &auto).unwrap();
        let mut out = Vec::new();
        listing(&mut base, "", &mut out);
        assert_eq!(out, ["usr/ 700", "usr/a f1", "usr/b f2"]);
    }

    #[test]
    fn opaque_at_the_root_hides_the_lower_layers() {
        let base = dir(0o755, vec![("usr", d(0o755, vec![("a", f(1))]))]);
        let layer = dir(
            0o755,
            vec![(OPAQUE_WHITEOUT, f(0)), ("opt", d(0o755, vec![]))],
        );
        assert_eq!(merged(base, vec![layer]), ["opt/ 755"]);
    }
}
