use super::*;
use proptest::prelude::*;

/// Expected outcome of parsing: the normalized display, or the error variant's name.
enum Want {
    Ok(&'static str),
    Err(&'static str),
}

fn variant(e: &ImageRefError) -> &'static str {
    match e {
        ImageRefError::MissingColon { .. } => "MissingColon",
        ImageRefError::UnknownTransport { .. } => "UnknownTransport",
        ImageRefError::MissingDockerSlashes { .. } => "MissingDockerSlashes",
        ImageRefError::EmptyName { .. } => "EmptyName",
        ImageRefError::InvalidScheme { .. } => "InvalidScheme",
        ImageRefError::MissingSecondColon { .. } => "MissingSecondColon",
        ImageRefError::EmptyRemote { .. } => "EmptyRemote",
    }
}

#[test]
fn image_reference_table() {
    use Want::*;
    let cases = [
        ("registry:quay.io/x", Ok("docker://quay.io/x")),
        ("docker://quay.io/x:tag", Ok("docker://quay.io/x:tag")),
        ("registry:localhost:5000/x", Ok("docker://localhost:5000/x")),
        ("oci:/foo/bar:baz:latest", Ok("oci:/foo/bar:baz:latest")),
        ("oci-archive:/a.tar", Ok("oci-archive:/a.tar")),
        ("docker-archive:/a.tar:x:1", Ok("docker-archive:/a.tar:x:1")),
        (
            "containers-storage:sha256:ab",
            Ok("containers-storage:sha256:ab"),
        ),
        ("dir:/d", Ok("dir:/d")),
        (
            "docker-daemon:busybox:latest",
            Ok("docker-daemon:busybox:latest"),
        ),
        ("quay.io/x", Err("MissingColon")),
        ("", Err("MissingColon")),
        ("foo:bar", Err("UnknownTransport")),
        ("docker:foo", Err("MissingDockerSlashes")),
        ("docker:/foo", Err("MissingDockerSlashes")),
        ("registry:", Err("EmptyName")),
        ("docker://", Err("EmptyName")),
        ("oci:", Err("EmptyName")),
    ];
    for (input, want) in cases {
        let got = input.parse::<ImageReference>();
        match (want, got) {
            (Ok(disp), Result::Ok(r)) => assert_eq!(r.to_string(), disp, "{input}"),
            (Err(v), Result::Err(e)) => {
                assert_eq!(variant(&e), v, "{input}: {e}");
                assert!(e.to_string().contains(input), "{e} names {input}");
            }
            (_, got) => panic!("{input}: unexpected {got:?}"),
        }
    }
}

#[test]
fn ostree_reference_table() {
    use Want::*;
    let cases = [
        (
            "ostree-unverified-registry:q/x",
            Ok("ostree-unverified-registry:q/x"),
        ),
        (
            "ostree-unverified-image:registry:q/x",
            Ok("ostree-unverified-registry:q/x"),
        ),
        (
            "ostree-unverified-image:docker://q/x",
            Ok("ostree-unverified-registry:q/x"),
        ),
        (
            "ostree-unverified-image:oci:/d",
            Ok("ostree-unverified-image:oci:/d"),
        ),
        (
            "ostree-image-signed:registry:q/x",
            Ok("ostree-image-signed:docker://q/x"),
        ),
        (
            "ostree-remote-registry:r:q/x",
            Ok("ostree-remote-image:r:docker://q/x"),
        ),
        (
            "ostree-remote-image:r:oci:/d:t",
            Ok("ostree-remote-image:r:oci:/d:t"),
        ),
        ("ostree-unverified-registry:", Err("EmptyName")),
        ("ostree-remote-registry:r:", Err("EmptyName")),
        ("ostree-remote-registry:r", Err("MissingSecondColon")),
        ("ostree-remote-image:r", Err("MissingSecondColon")),
        ("ostree-remote-registry::q/x", Err("EmptyRemote")),
        ("ostree-remote-image:r:foo:x", Err("UnknownTransport")),
        ("ostree-image-signed:docker:x", Err("MissingDockerSlashes")),
        ("ostree-image-signed:x", Err("MissingColon")),
        ("docker://q/x", Err("InvalidScheme")),
        ("ostree-unverified", Err("MissingColon")),
    ];
    for (input, want) in cases {
        let got = input.parse::<OstreeImageReference>();
        match (want, got) {
            (Ok(disp), Result::Ok(r)) => assert_eq!(r.to_string(), disp, "{input}"),
            (Err(v), Result::Err(e)) => assert_eq!(variant(&e), v, "{input}: {e}"),
            (_, got) => panic!("{input}: unexpected {got:?}"),
        }
    }
    let r: OstreeImageReference = "ostree-remote-registry:fedora:quay.io/f:1".parse().unwrap();
    assert_eq!(r.sigverify, SignatureSource::OstreeRemote("fedora".into()));
    assert_eq!(r.imgref.transport, Transport::Registry);
    assert_eq!(r.imgref.name, "quay.io/f:1");
}

#[test]
fn skopeo_string() {
    let cases = [
        ("containers-storage:sha256:abcd", "containers-storage:abcd"),
        (
            "containers-storage:[overlay@/g+/r]sha256:abcd",
            "containers-storage:[overlay@/g+/r]abcd",
        ),
        (
            "containers-storage:quay.io/x",
            "containers-storage:quay.io/x",
        ),
        ("registry:quay.io/x", "docker://quay.io/x"),
        ("oci:/d:sha256:x", "oci:/d:sha256:x"),
    ];
    for (input, want) in cases {
        let r: ImageReference = input.parse().unwrap();
        assert_eq!(r.to_skopeo_string(), want);
    }
}

/// Found by the `image_reference` fuzz target: stripping `sha256:` from an empty image ID gave
/// skopeo an empty name (`containers-storage:`, or a bare `[store]`), which is no reference.
#[test]
fn skopeo_string_of_an_empty_image_id_is_a_reference() {
    for input in [
        "containers-storage:sha256:",
        "containers-storage:[overlay@/g+/r]sha256:",
    ] {
        let r: ImageReference = input.parse().unwrap();
        let s = r.to_skopeo_string();
        assert_eq!(s, input);
        let back: ImageReference = s.parse().unwrap();
        assert_eq!(back, r);
    }
}

fn arb_imgref() -> impl Strategy<Value = ImageReference> {
    (
        proptest::sample::select(Transport::ALL.to_vec()),
        "[a-zA-Z0-9/._:@\\[\\]+-]{1,40}",
    )
        .prop_map(|(transport, name)| ImageReference { transport, name })
}

fn arb_sig() -> impl Strategy<Value = SignatureSource> {
    prop_oneof![
        Just(SignatureSource::ContainerPolicy),
        Just(SignatureSource::ContainerPolicyAllowInsecure),
        "[a-zA-Z0-9._-]{1,12}".prop_map(SignatureSource::OstreeRemote),
    ]
}

proptest! {
    #[test]
    fn imgref_roundtrip(r in arb_imgref()) {
        let s = r.to_string();
        prop_assert_eq!(s.parse::<ImageReference>(), Ok(r));
    }

    #[test]
    fn ostree_roundtrip(sigverify in arb_sig(), imgref in arb_imgref()) {
        let r = OstreeImageReference { sigverify, imgref };
        let s = r.to_string();
        prop_assert_eq!(s.parse::<OstreeImageReference>(), Ok(r));
    }

    /// `registry:` and `docker://` parse to the same value; display normalizes to `docker://`.
    #[test]
    fn registry_asymmetry(name in "[a-z0-9/.:@-]{1,30}") {
        let a: ImageReference = format!("registry:{name}").parse().unwrap();
        let b: ImageReference = format!("docker://{name}").parse().unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.to_string(), format!("docker://{name}"));
    }

    #[test]
    fn parse_never_panics(s in ".{0,60}") {
        let _ = s.parse::<ImageReference>();
        let _ = s.parse::<OstreeImageReference>();
    }
}
