//! The libselinux file-contexts handle (`selabel_open(SELABEL_CTX_FILE)`), shareable between
//! threads. This is the only module with `unsafe`: the `selinux` crate's handle is neither
//! `Send` nor `Sync` (it holds a raw pointer).
#![allow(unsafe_code)]

use std::ffi::{CString, c_void};
use std::path::Path;
use std::sync::Mutex;

use selinux::label::{Labeler, back_end::File};

/// The handle behind a mutex: every use is serialised.
pub(crate) struct Handle(Mutex<Owned>);

struct Owned(Labeler<File>);

// SAFETY: a selabel handle is a heap object with no affinity to the thread that opened it
// (libselinux keeps no thread-local state for it); `Handle` only ever touches it with its
// mutex held, so it is never used from two threads at once.
unsafe impl Send for Owned {}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("selabel_handle")
    }
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// The raw context (no trailing NUL).
    Label(Vec<u8>),
    /// No label (`ENOENT`: no match or `<<none>>`).
    None,
}

impl Lookup {
    /// The label, if any.
    pub(crate) fn into_label(self) -> Option<Vec<u8>> {
        match self {
            Lookup::Label(l) => Some(l),
            Lookup::None => None,
        }
    }
}

impl Handle {
    /// `selabel_open(SELABEL_CTX_FILE, {SELABEL_OPT_PATH: file_contexts})`: the same files
    /// libostree's `selinux_set_policy_root(root)` + `selabel_open(…, NULL, 0)` loads (the
    /// path's `.homedirs`, `.local`, `.subs_dist` and `.subs` companions included).
    pub(crate) fn open(file_contexts: &Path) -> Result<Self, selinux::errors::Error> {
        let c = CString::new(file_contexts.as_os_str().as_encoded_bytes())
            .map_err(|_| selinux::errors::Error::PathIsInvalid(file_contexts.to_path_buf()))?;
        let opts = [(
            selinux_sys::SELABEL_OPT_PATH as std::ffi::c_int,
            c.as_ptr().cast::<c_void>(),
        )];
        let l = Labeler::<File>::new(&opts, true)?;
        Ok(Handle(Mutex::new(Owned(l))))
    }

    /// `selabel_lookup_raw(path, mode)`.
    pub(crate) fn lookup(&self, path: &str, mode: u32) -> Result<Lookup, selinux::errors::Error> {
        let key =
            CString::new(path).map_err(|_| selinux::errors::Error::PathIsInvalid(path.into()))?;
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match g.0.look_up(&key, mode as std::ffi::c_int) {
            Ok(ctx) => Ok(Lookup::Label(ctx.as_bytes().to_vec())),
            Err(selinux::errors::Error::IO { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(Lookup::None)
            }
            Err(e) => Err(e),
        }
    }
}
