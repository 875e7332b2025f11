//! Property tests: decoders never panic on arbitrary bytes, and every value we can build
//! round-trips byte for byte (errors are fine, panics are bugs).

use ostree_format::gvariant::{Type, Value, from_bytes, from_bytes_normal};
use ostree_format::*;
use proptest::prelude::*;

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<u8>().prop_map(Value::Byte),
        any::<u32>().prop_map(Value::U32),
        any::<u64>().prop_map(Value::U64),
        any::<i16>().prop_map(Value::I16),
        "[a-z\u{e9}\u{4e2d}]{0,300}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Bytes),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            inner.clone().prop_map(|v| Value::Variant(Box::new(v))),
            // homogeneous arrays: repeat one element shape
            (inner.clone(), 0usize..20).prop_map(|(v, n)| Value::Array(v.type_(), vec![v; n])),
            proptest::collection::vec(("[a-z.]{1,20}", inner), 0..6)
                .prop_map(|kv| MetaDict(kv).to_value()),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn values_round_trip(v in value()) {
        let ty = v.type_();
        let bytes = v.to_bytes();
        let back = from_bytes_normal(&ty, &bytes).unwrap();
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600), sig in "[ybuts]{0,3}|a\\{sv\\}|\\(a\\(say\\)a\\(sayay\\)\\)|\\(uuua\\(ayay\\)\\)|v|mv|aav") {
        let _ = Commit::parse(&data);
        let _ = DirTree::parse(&data);
        let _ = FileMeta::parse_dirmeta(&data);
        let _ = MetaDict::parse(&data);
        let _ = parse_archive_header(&data);
        let _ = Xattrs::from_bytes(&data);
        if let Ok(t) = Type::parse(&sig) {
            let _ = from_bytes(&t, &data);
        }
    }

    #[test]
    fn mutated_objects_never_panic(flip in 0usize..400, byte in any::<u8>(), cut in 0usize..400) {
        let cs = Checksum::digest(b"x");
        let mut md = MetaDict::default();
        md.push("version", Value::Str("1".into()));
        let commit = Commit { metadata: md, parent: Some(cs), related: vec![], subject: "s".into(), body: "b".into(), timestamp: 5, root_tree: cs, root_meta: cs }.to_bytes();
        let tree = DirTree { files: vec![TreeFile { name: "a".into(), checksum: cs }], dirs: vec![TreeDir { name: "d".into(), tree: cs, meta: cs }] }.to_bytes();
        for orig in [commit, tree] {
            let mut m = orig.clone();
            let i = flip % m.len();
            m[i] ^= byte | 1;
            let _ = Commit::parse(&m);
            let _ = DirTree::parse(&m);
            let t = &orig[..cut.min(orig.len())];
            let _ = Commit::parse(t);
            let _ = DirTree::parse(t);
        }
    }
}
