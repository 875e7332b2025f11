//! A loaded policy: detection as libostree's `ostree_sepolicy_new_at` does it, and lookup as
//! its `ostree_sepolicy_get_label` does.

use std::path::{Path, PathBuf};

use ostree_repo::format::Checksum;
use ostree_repo::{LabelError, Labeler, MtreeEntry, MutableTree};
use sha2::{Digest, Sha256};

use crate::config::parse_config;
use crate::error::{SelinuxError, io};
use crate::extract::{ObjectSource, find, write_dir, write_file};
use crate::fcontext::{Load, Matcher};
use crate::handle::{Handle, Lookup};

/// Which implementation answers label lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LookupBackend {
    /// The native matcher ([`crate::fcontext`]), exact with respect to libselinux 3.4 and
    /// thousands of times faster; a policy it cannot mirror exactly is left to libselinux
    /// (logged), so asking for it never gives a wrong label.
    #[default]
    Native,
    /// libselinux's `selabel_lookup_raw`, through the `selinux` crate.
    Libselinux,
}

/// The lookup implementation of a loaded policy.
#[derive(Debug)]
enum Backend {
    Native(Matcher),
    Libselinux(Handle),
}

impl Backend {
    fn lookup(&self, path: &str, mode: u32) -> Result<Option<Vec<u8>>, LabelError> {
        let err = |source: Box<dyn std::error::Error + Send + Sync>| LabelError {
            path: path.to_string(),
            source,
        };
        match self {
            Backend::Native(m) => m
                .lookup(path.as_bytes(), mode)
                .map(|o| o.map(<[u8]>::to_vec))
                .map_err(|e| err(Box::new(e))),
            Backend::Libselinux(h) => match h.lookup(path, mode) {
                Ok(Lookup::Label(l)) => Ok(Some(l)),
                Ok(Lookup::None) => Ok(None),
                Err(e) => Err(err(Box::new(e))),
            },
        }
    }
}

/// Where ostree trees keep the policy (`/etc` lives in `/usr/etc`).
pub const POLICY_DIR: &str = "usr/etc/selinux";

/// Which path a `/usr/etc/…` entry is labelled as (`ostree commit --selinux-labeling-epoch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LabelingEpoch {
    /// As itself, `/usr/etc/…`: libostree's default, the only behaviour before 2023.7, and what
    /// the reference's `ostree commit --selinux-policy` of derived layers does.
    #[default]
    V0,
    /// As the deployed `/etc/…` (`OSTREE_REPO_COMMIT_MODIFIER_FLAGS_SELINUX_LABEL_V1`).
    V1,
}

/// Identifies the policy files of a tree without reading them: a SHA-256 over the paths and
/// object checksums below [`POLICY_DIR`]. Equal ids, equal policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyId(pub [u8; 32]);

impl std::fmt::Display for PolicyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The [`PolicyId`] of `tree`'s policy directory; `None` when it has none.
pub fn policy_id(
    src: &dyn ObjectSource,
    tree: &mut MutableTree,
) -> Result<Option<PolicyId>, SelinuxError> {
    let Some(MtreeEntry::Dir(mut d)) = find(src, tree, POLICY_DIR)? else {
        return Ok(None);
    };
    let mut h = Sha256::new();
    hash_dir(src, &mut d, "", &mut h, 0)?;
    Ok(Some(PolicyId(h.finalize().into())))
}

fn hash_dir(
    src: &dyn ObjectSource,
    tree: &mut MutableTree,
    prefix: &str,
    h: &mut Sha256,
    depth: usize,
) -> Result<(), SelinuxError> {
    if depth > ostree_repo::format::MAX_RECURSION {
        return Err(SelinuxError::BadTree(
            "policy directory nested too deep".into(),
        ));
    }
    if let (Some(t), Some(m)) = (tree.stored_tree(), tree.stored_meta()) {
        h.update(format!("{prefix}/\0T{t}{m}\0").as_bytes());
        return Ok(());
    }
    for (name, e) in tree.entries(src)?.clone() {
        let p = format!("{prefix}/{name}");
        match e {
            MtreeEntry::File(c) => h.update(format!("{p}\0F{c}\0").as_bytes()),
            MtreeEntry::Dir(mut d) => {
                h.update(format!("{p}\0D\0").as_bytes());
                hash_dir(src, &mut d, &p, h, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// A loaded SELinux policy.
#[derive(Debug)]
pub struct SePolicy {
    name: String,
    root: PathBuf,
    csum: String,
    backend: Backend,
    epoch: LabelingEpoch,
    id: Option<PolicyId>,
    /// The scratch copy the policy was read from (`from_tree`), kept while it is used.
    _scratch: Option<tempfile::TempDir>,
}

impl SePolicy {
    /// The policy of the root directory `root`, as `ostree_sepolicy_new_at(root)`:
    /// `etc/selinux` if it exists, else `usr/etc/selinux`; its `config` must enable SELinux
    /// (`SELINUX=enforcing|permissive`), else there is no policy (`None`). libselinux must load
    /// `<type>/contexts/files/file_contexts` and give `/` a label, and a binary policy
    /// `<type>/policy/policy.<N>` must exist (libostree checksums the highest `N`).
    ///
    /// Lookups use the native matcher ([`LookupBackend::Native`]); see
    /// [`SePolicy::open_root_with`].
    pub fn open_root(root: &Path) -> Result<Option<SePolicy>, SelinuxError> {
        SePolicy::open_root_with(root, LookupBackend::Native)
    }

    /// [`SePolicy::open_root`] with lookups by `backend`.
    pub fn open_root_with(
        root: &Path,
        backend: LookupBackend,
    ) -> Result<Option<SePolicy>, SelinuxError> {
        let mut dir = root.join("etc/selinux");
        if std::fs::symlink_metadata(&dir).is_err() {
            dir = root.join(POLICY_DIR);
        }
        let config_path = dir.join("config");
        let text = match std::fs::read(&config_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("reading", &config_path)(e)),
        };
        let text = String::from_utf8(text).map_err(|_| SelinuxError::ConfigNotUtf8 {
            path: config_path.clone(),
        })?;
        let cfg = parse_config(&text);
        if !cfg.enabled {
            return Ok(None);
        }
        // libostree: enabled with no SELINUXTYPE= uses a NULL policy root (libselinux's
        // default, the host's): refuse rather than label from the host.
        let Some(name) = cfg.policy_type else {
            return Err(SelinuxError::BadTree(format!(
                "{}: SELINUX is enabled but SELINUXTYPE is missing",
                config_path.display()
            )));
        };
        let proot = dir.join(&name);
        let fc = proot.join("contexts/files/file_contexts");
        let lib_err = |operation: &str| {
            let root = proot.clone();
            let operation = operation.to_string();
            move |source| SelinuxError::Libselinux {
                root,
                operation,
                source,
            }
        };
        let open_lib = || -> Result<Backend, SelinuxError> {
            Handle::open(&fc)
                .map(Backend::Libselinux)
                .map_err(lib_err("selabel_open(SELABEL_CTX_FILE)"))
        };
        let backend = match backend {
            LookupBackend::Libselinux => open_lib()?,
            LookupBackend::Native => match crate::fcontext::load(&fc)? {
                Load::Native(m) => Backend::Native(m),
                Load::Unsupported(why) => {
                    tracing::warn!(
                        policy = %proot.display(),
                        reason = %why,
                        "native file_contexts matcher cannot mirror this policy exactly; using libselinux"
                    );
                    open_lib()?
                }
            },
        };
        // libostree checks that `/` (mode 0755, no type bits) has a label.
        let root_label = match &backend {
            Backend::Libselinux(h) => h
                .lookup("/", 0o755)
                .map_err(lib_err("looking up the context of /"))?
                .into_label(),
            Backend::Native(m) => m.lookup(b"/", 0o755).ok().flatten().map(<[u8]>::to_vec),
        };
        if root_label.is_none() {
            return Err(SelinuxError::NoRootLabel { root: proot });
        }
        let csum = binary_policy_checksum(&proot)?;
        Ok(Some(SePolicy {
            name,
            root: proot,
            csum,
            backend,
            epoch: LabelingEpoch::V0,
            id: None,
            _scratch: None,
        }))
    }

    /// The policy in [`POLICY_DIR`] of a stored tree, as `ostree_sepolicy_new_from_commit`:
    /// the files are written to a scratch directory and opened with [`SePolicy::open_root`].
    pub fn from_tree(
        src: &dyn ObjectSource,
        tree: &mut MutableTree,
    ) -> Result<Option<SePolicy>, SelinuxError> {
        SePolicy::from_tree_with(src, tree, LookupBackend::Native)
    }

    /// [`SePolicy::from_tree`] with lookups by `backend`.
    pub fn from_tree_with(
        src: &dyn ObjectSource,
        tree: &mut MutableTree,
        backend: LookupBackend,
    ) -> Result<Option<SePolicy>, SelinuxError> {
        let Some(id) = policy_id(src, tree)? else {
            return Ok(None);
        };
        let Some(MtreeEntry::Dir(mut pdir)) = find(src, tree, POLICY_DIR)? else {
            return Ok(None);
        };
        let Some(MtreeEntry::File(cfg)) = find(src, &mut pdir, "config")? else {
            return Ok(None);
        };
        let scratch = tempfile::Builder::new()
            .prefix("ostree-commit-sepolicy-")
            .tempdir()
            .map_err(io("creating a scratch directory in", &std::env::temp_dir()))?;
        let dest = scratch.path().join(POLICY_DIR);
        std::fs::create_dir_all(&dest).map_err(io("creating", &dest))?;
        write_file(src, &cfg, &dest.join("config"))?;
        let text = std::fs::read(dest.join("config")).unwrap_or_default();
        if let Some(ty) = parse_config(&String::from_utf8_lossy(&text)).policy_type
            && !ty.is_empty()
            && !ty.contains('/')
            && ty != "."
            && ty != ".."
        {
            for sub in ["contexts/files", "policy"] {
                let rel = format!("{ty}/{sub}");
                if let Some(MtreeEntry::Dir(mut d)) = find(src, &mut pdir, &rel)? {
                    let p = dest.join(&rel);
                    std::fs::create_dir_all(&p).map_err(io("creating", &p))?;
                    write_dir(src, &mut d, &p, 0)?;
                }
            }
        }
        let mut p = SePolicy::open_root_with(scratch.path(), backend)?;
        if let Some(p) = p.as_mut() {
            p.id = Some(id);
            p._scratch = Some(scratch);
        }
        Ok(p)
    }

    /// The policy of `commit`'s tree ([`SePolicy::from_tree`]).
    pub fn from_commit(
        src: &dyn ObjectSource,
        commit: &Checksum,
    ) -> Result<Option<SePolicy>, SelinuxError> {
        let mut t = MutableTree::from_commit(src, commit)?;
        SePolicy::from_tree(src, &mut t)
    }

    /// With `/usr/etc/…` labelled per `epoch`.
    pub fn with_epoch(mut self, epoch: LabelingEpoch) -> Self {
        self.epoch = epoch;
        self
    }

    /// The implementation answering lookups (libselinux when the native matcher could not
    /// mirror the policy).
    pub fn backend(&self) -> LookupBackend {
        match self.backend {
            Backend::Native(_) => LookupBackend::Native,
            Backend::Libselinux(_) => LookupBackend::Libselinux,
        }
    }

    /// The policy type (`SELINUXTYPE`), libostree's `ostree_sepolicy_get_name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 (hex) of the binary policy, libostree's `ostree_sepolicy_get_csum`.
    pub fn csum(&self) -> &str {
        &self.csum
    }

    /// The policy root (`…/selinux/<type>`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The [`PolicyId`] of the tree it was read from ([`SePolicy::from_tree`]).
    pub fn id(&self) -> Option<PolicyId> {
        self.id
    }

    /// The raw context for `path` (absolute) of `mode`, as `ostree_sepolicy_get_label`:
    /// `/proc` is looked up as `/mnt` (libostree's workaround); no match → `None`.
    pub fn lookup(&self, path: &str, mode: u32) -> Result<Option<Vec<u8>>, LabelError> {
        let path = if path == "/proc" { "/mnt" } else { path };
        self.backend.lookup(path, mode)
    }

    /// The path `relpath` is labelled as, per the epoch.
    pub fn path_for_labeling<'a>(&self, relpath: &'a str) -> &'a str {
        if self.epoch == LabelingEpoch::V1
            && (relpath == "/usr/etc" || relpath.starts_with("/usr/etc/"))
        {
            &relpath["/usr".len()..]
        } else {
            relpath
        }
    }
}

impl Labeler for SePolicy {
    fn label(&self, path: &str, mode: u32) -> Result<Option<Vec<u8>>, LabelError> {
        Ok(self
            .lookup(self.path_for_labeling(path), mode)?
            .map(|mut l| {
                l.push(0);
                l
            }))
    }

    fn id(&self) -> String {
        match self.id {
            Some(id) => format!("{id}:{:?}", self.epoch),
            None => format!("{}:{:?}", self.csum, self.epoch),
        }
    }
}

/// libostree's `get_policy_checksum`: SHA-256 of the `policy.<N>` with the highest `N` in
/// `<root>/policy`.
fn binary_policy_checksum(proot: &Path) -> Result<String, SelinuxError> {
    let dir = proot.join("policy");
    let mut best: Option<(u64, PathBuf)> = None;
    let rd = std::fs::read_dir(&dir).map_err(|_| SelinuxError::NoBinaryPolicy {
        root: proot.to_path_buf(),
    })?;
    for e in rd {
        let e = e.map_err(io("listing", &dir))?;
        let Ok(ft) = e.file_type() else { continue };
        if !ft.is_file() {
            continue;
        }
        let name = e.file_name();
        let Some(v) = name
            .to_str()
            .and_then(|n| n.strip_prefix("policy."))
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        if v > 0 && best.as_ref().is_none_or(|(b, _)| v > *b) {
            best = Some((v, e.path()));
        }
    }
    let Some((_, path)) = best else {
        return Err(SelinuxError::NoBinaryPolicy {
            root: proot.to_path_buf(),
        });
    };
    let bytes = std::fs::read(&path).map_err(io("reading", &path))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}
