//! The GVariant decoders of every ostree object type. The first input byte picks the decoder,
//! the rest is the serialised object.
//!
//! Properties: no panic; whatever a strict (normal-form) decoder accepts re-encodes to exactly
//! the input bytes and decodes again to an equal value; the generic decoder's result (for an
//! object type, or for a type string taken from the input) re-encodes to bytes that decode to an
//! equal value and are in normal form; `validate_metadata` agrees with the typed parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ostree_repo::format::gvariant::{Type, from_bytes, from_bytes_normal};
use ostree_repo::format::{
    Commit, DirTree, FileMeta, MetaDict, ObjectType, Xattrs, archive_header, archive_header_type,
    commit_type, dirmeta_type, dirtree_type, file_header_type, parse_archive_header,
    validate_metadata,
};

/// Equal, or equal but for NaN doubles (`Value` compares floats with `==`).
fn same<T: std::fmt::Debug + PartialEq>(a: &T, b: &T) -> bool {
    a == b || format!("{a:?}") == format!("{b:?}")
}

/// Generic decode → encode → decode: equal values, and the re-encoding is normal form.
fn generic(ty: &Type, data: &[u8]) {
    if let Ok(v) = from_bytes(ty, data) {
        assert_eq!(v.type_(), *ty, "decoded value has another type");
        let enc = v.to_bytes();
        let again = from_bytes_normal(ty, &enc).expect("our encoding is normal form");
        assert!(
            same(&again, &v),
            "decode(encode(v)) != v for {ty}: {again:?} vs {v:?}"
        );
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    match selector % 8 {
        0 => {
            generic(&commit_type(), data);
            let parsed = Commit::parse(data);
            assert_eq!(
                parsed.is_ok(),
                validate_metadata(ObjectType::Commit, data).is_ok()
            );
            if let Ok(c) = parsed {
                assert_eq!(c.to_bytes(), data, "commit re-encodes differently");
                assert!(Commit::parse(&c.to_bytes()).is_ok_and(|x| same(&x, &c)));
            }
        }
        1 => {
            generic(&dirtree_type(), data);
            let parsed = DirTree::parse(data);
            assert_eq!(
                parsed.is_ok(),
                validate_metadata(ObjectType::DirTree, data).is_ok()
            );
            if let Ok(t) = parsed {
                assert_eq!(t.to_bytes(), data, "dirtree re-encodes differently");
                assert!(DirTree::parse(&t.to_bytes()).is_ok_and(|x| same(&x, &t)));
            }
        }
        2 => {
            generic(&dirmeta_type(), data);
            let parsed = FileMeta::parse_dirmeta(data);
            assert_eq!(
                parsed.is_ok(),
                validate_metadata(ObjectType::DirMeta, data).is_ok()
            );
            if let Ok(m) = parsed {
                assert_eq!(m.to_dirmeta_bytes(), data, "dirmeta re-encodes differently");
                assert!(FileMeta::parse_dirmeta(&m.to_dirmeta_bytes()).is_ok_and(|x| x == m));
            }
            // The bare-user `user.ostreemeta` decoder (no directory rules).
            if let Ok(m) = FileMeta::from_dirmeta_bytes(data) {
                assert_eq!(
                    m.to_dirmeta_bytes(),
                    data,
                    "ostreemeta re-encodes differently"
                );
            }
        }
        3 => {
            // Content file header `(uuuusa(ayay))`: only written by us, decoded generically.
            generic(&file_header_type(), data);
        }
        4 => {
            generic(&archive_header_type(), data);
            if let Ok(h) = parse_archive_header(data) {
                let enc = archive_header(h.size, &h.meta, h.symlink_target.as_deref());
                let again = parse_archive_header(&enc).expect("our archive header parses");
                assert!(same(&again, &h), "archive header decode(encode(h)) != h");
            }
        }
        5 => {
            generic(&Type::parse("a{sv}").expect("a{sv}"), data);
            let parsed = MetaDict::parse(data);
            assert_eq!(
                parsed.is_ok(),
                validate_metadata(ObjectType::CommitMeta, data).is_ok()
            );
            if let Ok(m) = parsed {
                assert_eq!(
                    m.to_bytes(),
                    data,
                    "detached metadata re-encodes differently"
                );
                assert!(MetaDict::parse(&m.to_bytes()).is_ok_and(|x| same(&x, &m)));
            }
        }
        6 => {
            if let Ok(x) = Xattrs::from_bytes(data) {
                assert_eq!(x.to_bytes(), data, "xattrs re-encode differently");
            }
        }
        _ => {
            // A type string, a NUL, then data: the codec for every type, not only ostree's.
            let Some(nul) = data.iter().position(|&b| b == 0) else {
                return;
            };
            let Ok(s) = std::str::from_utf8(&data[..nul]) else {
                return;
            };
            if let Ok(ty) = Type::parse(s) {
                assert_eq!(
                    Type::parse(&ty.to_string()).ok().as_ref(),
                    Some(&ty),
                    "type string round trip"
                );
                generic(&ty, &data[nul + 1..]);
            }
        }
    }
});
