//! `ostree-image-signed:` with skopeo 1.18 (proxy protocol 0.2.6, which applies
//! containers-policy.json at `OpenImage`), for an unsigned image of ours (issue 16, "Container
//! signature policy", first bullet):
//! * an accept-anything policy is refused by our own check, before skopeo runs;
//! * a strict policy (reject everything, or `signedBy` for the `oci` transport) passes our check
//!   and skopeo's proxy refuses the unsigned image at `OpenImage`;
//! * `ostree-unverified-image:` is subject to the same policy: we pass `--insecure-policy` only
//!   when `FetchConfig::insecure_policy` is set (never on our own for `ostree-unverified-*`,
//!   as ostree-ext 0.15.3, whose proxy crate has no such option at all), so skopeo >= 1.13
//!   refuses an unverified image that the policy rejects, and `insecure_policy` lets it through.
//!
//! After every refusal nothing is published: no ref, no commit object, both ostree versions'
//! fsck clean. Policy files live under `/var/tmp`, which the chroot of skopeo 1.18 shares.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ostree_container::fetch::SkopeoCommand;
use ostree_container::policy::PolicyError;
use ostree_container::store::{self, ErrorKind, PullOptions, StoreError};
use ostree_container::unencapsulate::{UnencapsulateOptions, unencapsulate};
use ostree_container::{FetchConfig, FetchReason, OstreeImageReference};
use ostree_repo::format::ObjectType;
use ostree_repo::{Repo, RepoMode};
use test_support::ostree_cli::OstreeCli;

use crate::{d13, fixture, modern, scratch};

const ACCEPT_ANYTHING: &str = r#"{"default": [{"type": "insecureAcceptAnything"}]}"#;
const REJECT: &str = r#"{"default": [{"type": "reject"}]}"#;

/// A skopeo 1.18 wrapper that appends a line to `dir/skopeo-runs` each time it starts.
struct CountingSkopeo {
    script: PathBuf,
    log: PathBuf,
}

impl CountingSkopeo {
    fn new(dir: &Path) -> Self {
        let script = dir.join("skopeo-counting");
        let log = dir.join("skopeo-runs");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho run >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                d13().skopeo_path().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        CountingSkopeo { script, log }
    }

    /// How many times skopeo was started so far.
    fn runs(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn fetch(&self, policy: &Path) -> FetchConfig {
        let mut c = modern();
        c.skopeo = Some(SkopeoCommand::new(&self.script));
        c.signature_policy = Some(policy.to_path_buf());
        c
    }
}

fn write_policy(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn signed_ref() -> String {
    format!(
        "ostree-image-signed:oci:{}:latest",
        fixture().single.display()
    )
}

fn unverified_ref() -> String {
    format!(
        "ostree-unverified-image:oci:{}:latest",
        fixture().single.display()
    )
}

fn oref(s: &str) -> OstreeImageReference {
    s.parse().unwrap()
}

fn try_unencapsulate(repo: &Repo, image: &str, fetch: FetchConfig) -> Result<(), StoreError> {
    let mut o = UnencapsulateOptions::new();
    o.fetch = fetch;
    o.write_ref = Some("imported".into());
    unencapsulate(repo, &oref(image), o).map(|_| ())
}

/// A store pull without retries (a retried refusal would only repeat it; see
/// [`a_policy_refusal_is_retried_by_store_pulls`]).
fn try_pull(repo: &Repo, image: &str, fetch: FetchConfig) -> Result<(), StoreError> {
    let mut o = PullOptions::new();
    o.fetch = fetch;
    o.network_retries = 0;
    store::pull_blocking(repo, &oref(image), o).map(|_| ())
}

/// Nothing was published: no ref, no commit object, fsck clean for ostree 2022.7 and 2025.2.
fn assert_nothing_published(repo: &Repo, what: &str) {
    assert!(repo.list_refs().unwrap().is_empty(), "{what}: refs");
    assert!(
        repo.list_objects(ObjectType::Commit).unwrap().is_empty(),
        "{what}: commit objects"
    );
    OstreeCli::new()
        .unwrap()
        .fsck(repo.path())
        .unwrap()
        .check()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    d13()
        .ostree()
        .fsck(repo.path())
        .unwrap()
        .check()
        .unwrap_or_else(|e| panic!("ostree 2025.2, {what}: {e}"));
}

type Attempt = fn(&Repo, &str, FetchConfig) -> Result<(), StoreError>;
const BOTH: [(&str, Attempt); 2] = [("unencapsulate", try_unencapsulate), ("pull", try_pull)];

#[test]
fn accept_anything_policy_is_refused_before_skopeo_runs() {
    let d = scratch();
    let skopeo = CountingSkopeo::new(d.path());
    let anything = write_policy(d.path(), "anything.json", ACCEPT_ANYTHING);
    // A strict default does not help when the image's transport accepts anything.
    let oci_anything = write_policy(
        d.path(),
        "oci-anything.json",
        r#"{"default": [{"type": "reject"}], "transports": {"oci": {"": [{"type": "insecureAcceptAnything"}]}}}"#,
    );
    let cases = [
        (&anything, "default"),
        (&oci_anything, "transports.oci.\"\""),
    ];
    for (i, (policy, scope)) in cases.into_iter().enumerate() {
        for (name, attempt) in BOTH {
            let what = format!("{name} with {}", policy.display());
            let repo =
                Repo::create(&d.path().join(format!("{name}-{i}")), RepoMode::BareUser).unwrap();
            let e = attempt(&repo, &signed_ref(), skopeo.fetch(policy)).unwrap_err();
            match &e {
                StoreError::Policy {
                    source: PolicyError::AcceptsAnything { path, scope: found },
                    ..
                } => {
                    assert_eq!(path, policy, "{what}");
                    assert_eq!(found, scope, "{what}");
                }
                other => panic!("{what}: not refused by our check: {other:?}"),
            }
            assert_eq!(e.kind(), ErrorKind::Usage, "{what}");
            let msg = ostree_errors::chain(&e);
            assert!(msg.contains("ostree-image-signed"), "{what}: {msg}");
            assert_nothing_published(&repo, &what);
        }
    }
    assert_eq!(skopeo.runs(), 0, "skopeo never started");
}

/// The proxy's refusal at `OpenImage`: a fetch error, unclassified by us (`Proxy`), with
/// skopeo's reason in the message.
pub(crate) fn assert_proxy_refusal(e: &StoreError, reason: &str, what: &str) {
    match e {
        StoreError::Fetch(f) => assert_eq!(f.reason(), FetchReason::Proxy, "{what}: {f:?}"),
        other => panic!("{what}: not refused by the proxy: {other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Proxy, "{what}");
    let msg = ostree_errors::chain(&e);
    assert!(msg.contains(reason), "{what}: {msg}");
}

#[test]
fn strict_policy_is_enforced_by_the_proxy_at_open_image() {
    let d = scratch();
    let skopeo = CountingSkopeo::new(d.path());
    let reject = write_policy(d.path(), "reject.json", REJECT);
    // The default accepts anything, but the oci transport requires a GPG signature.
    let signed_by = write_policy(
        d.path(),
        "signed-by.json",
        &format!(
            r#"{{"default": [{{"type": "insecureAcceptAnything"}}], "transports": {{"oci": {{"": [{{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "{}"}}]}}}}}}"#,
            d.path().join("no-such-key.gpg").display()
        ),
    );
    let cases = [
        (&reject, "is rejected by policy"),
        (
            &signed_by,
            "A signature was required, but no signature exists",
        ),
    ];
    let mut runs = 0;
    for (i, (policy, reason)) in cases.into_iter().enumerate() {
        for (name, attempt) in BOTH {
            let what = format!("{name} with {}", policy.display());
            let repo =
                Repo::create(&d.path().join(format!("{name}-{i}")), RepoMode::BareUser).unwrap();
            let e = attempt(&repo, &signed_ref(), skopeo.fetch(policy)).unwrap_err();
            eprintln!("{what}: {e}");
            assert_proxy_refusal(&e, reason, &what);
            assert_nothing_published(&repo, &what);
            runs += 1;
            assert_eq!(skopeo.runs(), runs, "{what}: skopeo ran once");
        }
    }
}

#[test]
fn unverified_image_is_subject_to_the_policy_unless_insecure_policy() {
    let f = fixture();
    let d = scratch();
    let skopeo = CountingSkopeo::new(d.path());
    let reject = write_policy(d.path(), "reject.json", REJECT);
    for (name, attempt) in BOTH {
        let what = format!("{name} of {} with {}", unverified_ref(), reject.display());
        let repo = Repo::create(&d.path().join(name), RepoMode::BareUser).unwrap();
        let e = attempt(&repo, &unverified_ref(), skopeo.fetch(&reject)).unwrap_err();
        eprintln!("{what}: {e}");
        assert_proxy_refusal(&e, "is rejected by policy", &what);
        assert_nothing_published(&repo, &what);
    }
    // With insecure_policy (`--insecure-policy`) the same policy is skipped.
    let repo = Repo::create(&d.path().join("insecure"), RepoMode::BareUser).unwrap();
    let mut fetch = skopeo.fetch(&reject);
    fetch.insecure_policy = true;
    let mut o = UnencapsulateOptions::new();
    o.fetch = fetch;
    o.write_ref = Some("imported".into());
    let import = unencapsulate(&repo, &oref(&unverified_ref()), o).unwrap();
    assert_eq!(import.ostree_commit, f.commit);
    // ostree-image-signed: with insecure_policy: `--insecure-policy` would make skopeo skip the
    // very policy the signed reference relies on, so it is refused before skopeo runs.
    let repo = Repo::create(&d.path().join("signed-insecure"), RepoMode::BareUser).unwrap();
    let mut fetch = skopeo.fetch(&reject);
    fetch.insecure_policy = true;
    let before = skopeo.runs();
    let r = try_unencapsulate(&repo, &signed_ref(), fetch);
    match &r {
        Err(
            e @ ostree_container::StoreError::Policy {
                source: ostree_container::policy::PolicyError::Disabled,
                ..
            },
        ) => assert_eq!(e.kind(), ErrorKind::Usage),
        other => panic!("signed + insecure policy must be refused: {other:?}"),
    }
    assert_eq!(skopeo.runs(), before, "skopeo never started");
    assert_nothing_published(&repo, "signed+insecure");
}

/// A store pull does not retry the proxy's policy refusal: an unclassified skopeo error at
/// OpenImage is not retried (only during a layer transfer).
#[test]
fn a_policy_refusal_is_not_retried_by_store_pulls() {
    let d = scratch();
    let skopeo = CountingSkopeo::new(d.path());
    let reject = write_policy(d.path(), "reject.json", REJECT);
    let repo = Repo::create(&d.path().join("repo"), RepoMode::BareUser).unwrap();
    let mut o = PullOptions::new();
    o.fetch = skopeo.fetch(&reject);
    o.network_retries = 2;
    o.retry_backoff = std::time::Duration::from_millis(10);
    let e = store::pull_blocking(&repo, &oref(&signed_ref()), o).unwrap_err();
    assert_proxy_refusal(&e, "is rejected by policy", "pull");
    assert_nothing_published(&repo, "pull");
    assert_eq!(skopeo.runs(), 1, "not retried");
}
