//! Image reference parsing: plain `transport:name` references and the ostree forms
//! (`ostree-unverified-registry:`, `ostree-remote-image:<remote>:`, …).
//!
//! Properties: no panic; a parsed reference displays as a string that parses back to an equal
//! value, whose display is the same string (display is a normal form); the skopeo string of a
//! parsed reference is itself a valid plain reference of the same transport; an ostree
//! reference whose image part is a plain reference contains that reference's value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ostree_container::{ImageReference, OstreeImageReference, SignatureSource};

fn check_plain(s: &str) -> Option<ImageReference> {
    let r: ImageReference = s.parse().ok()?;
    let shown = r.to_string();
    let back: ImageReference = shown.parse().expect("a displayed reference parses");
    assert_eq!(back, r, "{s:?} → {shown:?} parsed to another reference");
    assert_eq!(back.to_string(), shown, "display is not a normal form");
    let skopeo = r.to_skopeo_string();
    let sk: ImageReference = skopeo.parse().expect("the skopeo string parses");
    assert_eq!(
        sk.transport, r.transport,
        "skopeo string changed the transport"
    );
    Some(r)
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    check_plain(s);
    if let Ok(r) = s.parse::<OstreeImageReference>() {
        let shown = r.to_string();
        let back: OstreeImageReference = shown.parse().expect("a displayed reference parses");
        assert_eq!(back, r, "{s:?} → {shown:?} parsed to another reference");
        assert_eq!(back.to_string(), shown, "display is not a normal form");
        let plain = check_plain(&r.imgref.to_string()).expect("the image part is a reference");
        assert_eq!(plain, r.imgref);
        if let SignatureSource::OstreeRemote(remote) = &r.sigverify {
            assert!(
                !remote.is_empty() && !remote.contains(':'),
                "remote {remote:?}"
            );
        }
    }
});
