//! Exporting a commit as ostree tar layers (container-image-format §4).
//!
//! [`ExportPlan::new`] walks the commit once and remembers, for every content object, the paths
//! it appears at; the layer writers then stream objects from the repository in a fixed order,
//! so the same commit and partition always give byte-identical tars.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use ostree_repo::Repo;
use ostree_repo::format::{Checksum, FileMeta, MAX_RECURSION, ObjectName, ObjectType};

use crate::error::{Location, Result, TarError};
use crate::layout::{
    REPO_CONFIG, REPO_CONFIG_PATH, SKELETON_HEAD, SKELETON_TAIL, TarObjectKind, VAR_TMP,
    checkout_path, object_path,
};
use crate::writer::{Owner, TarWriter};

/// How the xattrs of each content object are referenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XattrsStyle {
    /// `.file-xattrs-link` as a regular file holding the `a(ayay)` bytes (current writers).
    /// Accepted by ostree-rs-ext since 0.12 (`process_file_xattrs_link` reads `Regular` entries),
    /// and free of the hardlink-count limit.
    #[default]
    RegularLink,
    /// A `.file-xattrs` blob once per layer plus a `.file-xattrs-link` hardlink to it (the
    /// older writers; what table 4.5 of the spec shows).
    Hardlink,
}

/// Export settings.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ExportOptions {
    /// The xattr reference style.
    pub xattrs_style: XattrsStyle,
}

/// One step of the directory walk.
#[derive(Debug, Clone)]
enum WalkItem {
    /// A dirmeta seen for the first time.
    DirMeta(Checksum),
    /// A dirtree seen for the first time.
    DirTree(Checksum),
    /// A directory entry of the checkout view (commit path, dirmeta).
    Dir(String, Checksum),
    /// A file of the commit (commit path, content checksum).
    File(String, Checksum),
}

/// A commit prepared for export: its objects and the paths of every content object.
pub struct ExportPlan<'r> {
    repo: &'r Repo,
    commit: Checksum,
    commit_bytes: Vec<u8>,
    commitmeta: Option<Vec<u8>>,
    root_meta: FileMeta,
    root_meta_csum: Checksum,
    walk: Vec<WalkItem>,
    paths: BTreeMap<Checksum, Vec<String>>,
    has_var_tmp: bool,
    /// The dirtree of the skipped top-level `sysroot`, if the commit has one.
    sysroot_tree: Option<Checksum>,
    options: ExportOptions,
}

impl std::fmt::Debug for ExportPlan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportPlan")
            .field("commit", &self.commit)
            .field("content_objects", &self.paths.len())
            .finish_non_exhaustive()
    }
}

fn at(what: &str) -> Location {
    Location::layer(&format!("export {what}"))
}

fn repo_err(source: ostree_repo::RepoError) -> TarError {
    TarError::Repo {
        at: at("source"),
        source: Box::new(source),
    }
}

fn io_err(source: std::io::Error) -> TarError {
    TarError::Io {
        at: at("output"),
        source,
    }
}

fn owner_of(m: &FileMeta) -> Owner {
    Owner {
        uid: m.uid,
        gid: m.gid,
        mode: m.mode & 0o7777,
    }
}

impl<'r> ExportPlan<'r> {
    /// Walks `commit` (a checksum) in `repo`. The commit's `sysroot` directory is skipped, as
    /// the reference does: its dirmeta is kept, but not its entry, subtree or content.
    pub fn new(repo: &'r Repo, commit: Checksum) -> Result<Self> {
        Self::with_options(repo, commit, ExportOptions::default())
    }

    /// [`ExportPlan::new`] with options.
    pub fn with_options(repo: &'r Repo, commit: Checksum, options: ExportOptions) -> Result<Self> {
        let name = ObjectName::new(commit, ObjectType::Commit);
        let commit_bytes = repo.load_metadata_bytes(&name).map_err(repo_err)?;
        let c = repo.load_commit(&commit).map_err(repo_err)?;
        let cm_name = ObjectName::new(commit, ObjectType::CommitMeta);
        let commitmeta = match repo.load_metadata_bytes(&cm_name) {
            Ok(b) => Some(b),
            Err(ostree_repo::RepoError::ObjectNotFound(_)) => None,
            Err(e) => return Err(repo_err(e)),
        };
        let root_meta = repo.load_dirmeta(&c.root_meta).map_err(repo_err)?;
        let mut plan = ExportPlan {
            repo,
            commit,
            commit_bytes,
            commitmeta,
            root_meta,
            root_meta_csum: c.root_meta,
            walk: Vec::new(),
            paths: BTreeMap::new(),
            has_var_tmp: false,
            sysroot_tree: None,
            options,
        };
        let mut seen_meta = HashSet::new();
        let mut seen_tree = HashSet::new();
        seen_meta.insert(c.root_meta);
        plan.walk_tree(c.root_tree, &mut seen_meta, &mut seen_tree)?;
        Ok(plan)
    }

    /// Lists the walk of `tree` in the order the reference writes it: a dirtree, its files, then
    /// for each subdirectory its dirmeta, its entry and (depth first) its own walk. Iterative; a
    /// dirtree nested deeper than libostree's `OSTREE_MAX_RECURSION` is refused.
    fn walk_tree(
        &mut self,
        tree: Checksum,
        seen_meta: &mut HashSet<Checksum>,
        seen_tree: &mut HashSet<Checksum>,
    ) -> Result<()> {
        /// A dirtree being listed: its subdirectories, the next one, and its path prefix.
        struct Frame {
            dirs: Vec<ostree_repo::format::TreeDir>,
            next: usize,
            prefix: String,
        }
        let mut stack: Vec<Frame> = Vec::new();
        let mut enter = Some((tree, String::new()));
        loop {
            if let Some((tree, prefix)) = enter.take() {
                if stack.len() > MAX_RECURSION {
                    return Err(repo_err(ostree_repo::RepoError::TooDeep {
                        what: format!("dirtree {tree} (at {prefix:?})"),
                        limit: MAX_RECURSION,
                    }));
                }
                let dt = self.repo.load_dirtree(&tree).map_err(repo_err)?;
                if seen_tree.insert(tree) {
                    self.walk.push(WalkItem::DirTree(tree));
                }
                for f in &dt.files {
                    let path = format!("{prefix}{}", f.name);
                    self.paths.entry(f.checksum).or_default().push(path.clone());
                    self.walk.push(WalkItem::File(path, f.checksum));
                }
                stack.push(Frame {
                    dirs: dt.dirs,
                    next: 0,
                    prefix,
                });
            }
            let Some(top) = stack.last_mut() else {
                break;
            };
            let Some(d) = top.dirs.get(top.next).cloned() else {
                stack.pop();
                continue;
            };
            top.next += 1;
            if seen_meta.insert(d.meta) {
                self.walk.push(WalkItem::DirMeta(d.meta));
            }
            if top.prefix.is_empty() && d.name == "sysroot" {
                self.sysroot_tree = Some(d.tree);
                continue;
            }
            let path = format!("{}{}", top.prefix, d.name);
            if path == VAR_TMP {
                self.has_var_tmp = true;
            }
            self.walk.push(WalkItem::Dir(path.clone(), d.meta));
            enter = Some((d.tree, format!("{path}/")));
        }
        Ok(())
    }

    /// The commit being exported.
    pub fn commit(&self) -> Checksum {
        self.commit
    }

    /// Every content object of the commit (outside `sysroot`), sorted.
    pub fn content_objects(&self) -> impl Iterator<Item = &Checksum> {
        self.paths.keys()
    }

    /// Every dirmeta of the walk (the root's included): with the content objects, what a
    /// completeness check must find besides the dirtrees the walk itself loaded.
    pub fn dirmetas(&self) -> impl Iterator<Item = &Checksum> {
        std::iter::once(&self.root_meta_csum).chain(self.walk.iter().filter_map(|i| match i {
            WalkItem::DirMeta(c) => Some(c),
            _ => None,
        }))
    }

    /// The dirtree of the top-level `sysroot` the export skips (not walked).
    pub fn sysroot_tree(&self) -> Option<Checksum> {
        self.sysroot_tree
    }

    /// The commit paths of a content object.
    pub fn paths_of(&self, c: &Checksum) -> Option<&[String]> {
        self.paths.get(c).map(Vec::as_slice)
    }

    fn skeleton<W: Write>(&self, w: &mut TarWriter<W>, with_root: bool) -> Result<()> {
        if with_root {
            w.dir("./", owner_of(&self.root_meta)).map_err(io_err)?;
        }
        let d = Owner::root(0o755);
        for p in SKELETON_HEAD {
            w.dir(p, d).map_err(io_err)?;
        }
        for i in 0..=255u8 {
            w.dir(&format!("sysroot/ostree/repo/objects/{i:02x}"), d)
                .map_err(io_err)?;
        }
        for p in SKELETON_TAIL {
            w.dir(p, d).map_err(io_err)?;
        }
        w.file_bytes(REPO_CONFIG_PATH, Owner::root(0o644), REPO_CONFIG)
            .map_err(io_err)
    }

    fn metadata_entry<W: Write>(
        &self,
        w: &mut TarWriter<W>,
        c: &Checksum,
        ty: ObjectType,
        kind: TarObjectKind,
    ) -> Result<()> {
        let bytes = self
            .repo
            .load_metadata_bytes(&ObjectName::new(*c, ty))
            .map_err(repo_err)?;
        w.file_bytes(&object_path(c, kind), Owner::root(0o644), &bytes)
            .map_err(io_err)
    }

    /// Emits commit, commitmeta and root dirmeta, then the walk (dirtrees, dirmetas, directory
    /// entries, and, if `files_inline`, each file as it is met).
    fn commit_part<W: Write>(
        &self,
        w: &mut TarWriter<W>,
        files_inline: bool,
        st: &mut LayerState,
    ) -> Result<()> {
        self.skeleton(w, true)?;
        w.file_bytes(
            &object_path(&self.commit, TarObjectKind::Commit),
            Owner::root(0o644),
            &self.commit_bytes,
        )
        .map_err(io_err)?;
        if let Some(cm) = &self.commitmeta {
            w.file_bytes(
                &object_path(&self.commit, TarObjectKind::CommitMeta),
                Owner::root(0o644),
                cm,
            )
            .map_err(io_err)?;
        }
        self.metadata_entry(
            w,
            &self.root_meta_csum,
            ObjectType::DirMeta,
            TarObjectKind::DirMeta,
        )?;
        for item in &self.walk {
            match item {
                WalkItem::DirMeta(c) => {
                    self.metadata_entry(w, c, ObjectType::DirMeta, TarObjectKind::DirMeta)?
                }
                WalkItem::DirTree(c) => {
                    self.metadata_entry(w, c, ObjectType::DirTree, TarObjectKind::DirTree)?
                }
                WalkItem::Dir(path, meta) => {
                    let m = self.repo.load_dirmeta(meta).map_err(repo_err)?;
                    w.dir(&checkout_path(path), owner_of(&m)).map_err(io_err)?;
                }
                WalkItem::File(path, c) if files_inline => {
                    self.content(w, c, std::slice::from_ref(path), st)?;
                }
                WalkItem::File(..) => {}
            }
        }
        if !self.has_var_tmp {
            w.dir(VAR_TMP, Owner::root(0o1777)).map_err(io_err)?;
        }
        Ok(())
    }

    /// One content object (first time in the layer: xattrs reference and object) and the
    /// checkout entries for `paths`.
    fn content<W: Write>(
        &self,
        w: &mut TarWriter<W>,
        c: &Checksum,
        paths: &[String],
        st: &mut LayerState,
    ) -> Result<()> {
        let obj_path = object_path(c, TarObjectKind::File);
        let (owner, empty_regular) = if let Some(known) = st.written.get(c) {
            *known
        } else {
            let mut obj = self.repo.read_content(c).map_err(repo_err)?;
            let xattrs = obj.meta.xattrs.to_bytes();
            let link_path = object_path(c, TarObjectKind::FileXattrsLink);
            match self.options.xattrs_style {
                XattrsStyle::RegularLink => w
                    .file_bytes(&link_path, Owner::root(0o644), &xattrs)
                    .map_err(io_err)?,
                XattrsStyle::Hardlink => {
                    let xc = Checksum::digest(&xattrs);
                    let blob = object_path(&xc, TarObjectKind::FileXattrs);
                    if st.xattrs_blobs.insert(xc) {
                        w.file_bytes(&blob, Owner::root(0o644), &xattrs)
                            .map_err(io_err)?;
                    }
                    w.hardlink(&link_path, &blob, Owner::root(0o644))
                        .map_err(io_err)?;
                }
            }
            let owner = owner_of(&obj.meta);
            if let Some(target) = &obj.symlink_target {
                w.symlink(&obj_path, target, owner).map_err(io_err)?;
            } else if let Some(r) = obj.reader.as_mut() {
                w.file_stream(&obj_path, owner, obj.size, r.as_mut())
                    .map_err(io_err)?;
            } else {
                return Err(repo_err(ostree_repo::RepoError::InvalidArgument(format!(
                    "content object {c} has neither payload nor target"
                ))));
            }
            let empty = obj.symlink_target.is_none() && obj.size == 0;
            st.written.insert(*c, (owner, empty));
            (owner, empty)
        };
        for p in paths {
            let cp = checkout_path(p);
            if empty_regular {
                w.file_bytes(&cp, owner, &[]).map_err(io_err)?;
            } else {
                w.hardlink(&cp, &obj_path, owner).map_err(io_err)?;
            }
        }
        Ok(())
    }

    /// The `tar export` stream (spec §4.3, last paragraph): every object in one layer, each
    /// directory's files right after its dirtree.
    pub fn write_export(&self, out: &mut dyn Write) -> Result<()> {
        let mut w = TarWriter::new(out);
        let mut st = LayerState::default();
        self.commit_part(&mut w, true, &mut st)?;
        w.finish().map_err(io_err)?;
        Ok(())
    }

    /// The commit layer of an encapsulated image (spec §4.3 items 1–6): the directory walk,
    /// `var/tmp`, then every content object not in `chunked`, in checksum order.
    pub fn write_commit_layer(
        &self,
        out: &mut dyn Write,
        chunked: &HashSet<Checksum>,
    ) -> Result<()> {
        let mut w = TarWriter::new(out);
        let mut st = LayerState::default();
        self.commit_part(&mut w, false, &mut st)?;
        for (c, paths) in &self.paths {
            if !chunked.contains(c) {
                self.content(&mut w, c, paths, &mut st)?;
            }
        }
        w.finish().map_err(io_err)?;
        Ok(())
    }

    /// A chunk layer holding `objects` (any order; written sorted, duplicates once): skeleton
    /// without `./`, then each object with its checkout entries. Every object must belong to
    /// the commit.
    pub fn write_chunk_layer(&self, out: &mut dyn Write, objects: &[Checksum]) -> Result<()> {
        let mut sorted: Vec<Checksum> = objects.to_vec();
        sorted.sort();
        sorted.dedup();
        if let Some(c) = sorted.iter().find(|c| !self.paths.contains_key(c)) {
            return Err(TarError::InvalidArgument(format!(
                "content object {c} is not part of commit {}",
                self.commit
            )));
        }
        let mut w = TarWriter::new(out);
        let mut st = LayerState::default();
        self.skeleton(&mut w, false)?;
        for c in &sorted {
            let paths = self.paths.get(c).map(Vec::as_slice).unwrap_or_default();
            self.content(&mut w, c, paths, &mut st)?;
        }
        w.finish().map_err(io_err)?;
        Ok(())
    }
}

/// What a layer already contains.
#[derive(Default)]
struct LayerState {
    written: std::collections::HashMap<Checksum, (Owner, bool)>,
    xattrs_blobs: HashSet<Checksum>,
}

/// Exports `rev` from `repo` as one `tar export` stream; returns the commit checksum.
pub fn export_commit(repo: &Repo, rev: &str, out: &mut dyn Write) -> Result<Checksum> {
    let commit = repo.resolve_rev(rev).map_err(repo_err)?;
    ExportPlan::new(repo, commit)?.write_export(out)?;
    Ok(commit)
}
