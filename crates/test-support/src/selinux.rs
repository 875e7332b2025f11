//! A real SELinux policy for labelling tests: Debian's `selinux-policy-default`, installed by
//! `scripts/selinux-root.sh` into a scratch root of its own (its install scripts generate
//! `file_contexts`; the host and the Debian 13 chroot are left alone).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The setup script (`scripts/selinux-root.sh` of this workspace).
pub fn setup_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/selinux-root.sh")
}

/// The root's `/etc/selinux` (config + the `default` policy), built on first use.
///
/// Panics with the script's output if it cannot be built: a labelling test without its policy
/// fails, never passes silently.
pub fn policy_etc_selinux() -> &'static Path {
    static P: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = P.get_or_init(|| {
        let script = setup_script();
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed with {}:\n{}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let p = crate::modern::cache_dir().join("selinux-root/etc/selinux");
        if !p.join("default/contexts/files/file_contexts").is_file() {
            return Err(format!("{} has no default policy", p.display()));
        }
        Ok(p)
    });
    match r {
        Ok(p) => p,
        Err(e) => panic!("the SELinux policy root could not be set up: {e}"),
    }
}

/// Copies the policy into `tree/usr/etc/selinux` (where ostree trees keep it).
pub fn install_policy(tree: &Path) {
    let dest = tree.join("usr/etc");
    std::fs::create_dir_all(&dest).unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(policy_etc_selinux())
        .arg(&dest)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a of the policy failed");
}
