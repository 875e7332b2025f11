//! Splitting a commit's content objects into chunk layers (`docs/chunking.md`).
//!
//! Goals, in order: deterministic (the same commit and layer count always give the same
//! layers), stable (a small change to the tree changes few layers, so clients re-fetch little),
//! balanced (layers of similar size compress and download in parallel).
//!
//! # Algorithm
//!
//! 1. **Components.** Every content object belongs to the component of its *first* path (walk
//!    order). Without content metadata, components are directories: starting at `/`, a
//!    subtree whose bytes exceed the threshold `T` is split into one component per
//!    subdirectory (recursively), its direct files larger than `T` each become a component of
//!    their own, and its remaining direct files form the component `dir/*`; if those exceed
//!    `T` too, they are spread over `k` (a power of two) components `dir/*[i/k]` by a hash of
//!    the file name. `T` is the average bin size `total / bins` rounded **down to a power of
//!    two**, so a small change of the total almost never changes `T` and thereby the split.
//! 2. **Bins.** `bins = max_layers - 1` chunk layers (layer 0 keeps the commit and metadata).
//!    Each component ranks the bins by a rendezvous hash `sha256(id, bin)`. *Large*
//!    components (at least half the average bin) are placed first, largest first, each into
//!    the first bin of its ranking whose large-component load stays within `1.5 ×` the
//!    average (else the least loaded). *Small* components go to the less loaded — counting
//!    large components only — of their two top-ranked bins. Placement thus depends on the
//!    component's id and on the few large components, never on the many small ones: adding,
//!    removing or resizing a small component moves nothing else.
//! 3. Empty bins are dropped (the image has fewer layers); the others keep bin order.
//!
//! Sizes count the payload plus a tar overhead per object ([`OBJECT_OVERHEAD`]).

use std::collections::BTreeMap;

use ostree_repo::format::Checksum;
use sha2::{Digest, Sha256};

/// Bytes of tar headers an object costs besides its payload (object entry, xattrs link,
/// checkout link), so that many tiny files still weigh something.
pub const OBJECT_OVERHEAD: u64 = 1536;

/// Bins may fill to this multiple of the average before components spill to other bins.
const BIN_SLACK: f64 = 1.5;

/// One content object to place.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    /// The object.
    pub checksum: Checksum,
    /// Its first path in the commit.
    pub path: String,
    /// Payload bytes.
    pub size: u64,
}

impl ObjectInfo {
    fn weight(&self) -> u64 {
        self.size.saturating_add(OBJECT_OVERHEAD)
    }
}

/// A group of objects that always travels together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Stable identifier (hashed for placement).
    pub id: String,
    /// Human name, written to `ostree.components`.
    pub name: String,
    /// Weight (payload + overhead).
    pub bytes: u64,
    /// The objects.
    pub objects: Vec<Checksum>,
}

/// One chunk layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// History `created_by`.
    pub name: String,
    /// Sorted component names (the `ostree.components` annotation).
    pub components: Vec<String>,
    /// Objects, sorted.
    pub objects: Vec<Checksum>,
    /// Weight.
    pub bytes: u64,
}

/// The largest power of two `<= n` (1 for 0).
fn pow2_floor(n: u64) -> u64 {
    if n <= 1 {
        1
    } else {
        1u64 << (63 - n.leading_zeros())
    }
}

fn hash64(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

/// Directory components for `objects` with threshold derived from `bins` (step 1 above).
pub fn directory_components(objects: &[ObjectInfo], bins: usize) -> Vec<Component> {
    let total: u64 = objects.iter().map(ObjectInfo::weight).sum();
    let threshold = pow2_floor(total / bins.max(1) as u64);
    let refs: Vec<&ObjectInfo> = objects.iter().collect();
    let mut out = Vec::new();
    split("", refs, threshold, &mut out);
    out
}

fn component(id: String, items: &[&ObjectInfo]) -> Component {
    Component {
        name: id.clone(),
        id,
        bytes: items.iter().map(|o| o.weight()).sum(),
        objects: items.iter().map(|o| o.checksum).collect(),
    }
}

fn split(prefix: &str, items: Vec<&ObjectInfo>, threshold: u64, out: &mut Vec<Component>) {
    let weight: u64 = items.iter().map(|o| o.weight()).sum();
    if weight <= threshold || items.len() == 1 {
        let id = if prefix.is_empty() {
            "/".to_string()
        } else {
            prefix.trim_end_matches('/').to_string()
        };
        out.push(component(id, &items));
        return;
    }
    let mut files: Vec<&ObjectInfo> = Vec::new();
    let mut dirs: BTreeMap<&str, Vec<&ObjectInfo>> = BTreeMap::new();
    for o in items {
        let rest = o.path.get(prefix.len()..).unwrap_or_default();
        match rest.find('/') {
            Some(i) => dirs.entry(&rest[..i]).or_default().push(o),
            None => files.push(o),
        }
    }
    for (d, sub) in dirs {
        split(&format!("{prefix}{d}/"), sub, threshold, out);
    }
    let (big, small): (Vec<&ObjectInfo>, Vec<&ObjectInfo>) =
        files.into_iter().partition(|o| o.weight() > threshold);
    for o in big {
        out.push(component(o.path.clone(), &[o]));
    }
    if small.is_empty() {
        return;
    }
    let fw: u64 = small.iter().map(|o| o.weight()).sum();
    if fw <= threshold {
        out.push(component(format!("{prefix}*"), &small));
        return;
    }
    // Too many direct files: spread them by name hash over a power-of-two number of groups,
    // which (like the threshold) changes only when the directory doubles or halves.
    let k = fw.div_ceil(threshold).next_power_of_two();
    let mut groups: BTreeMap<u64, Vec<&ObjectInfo>> = BTreeMap::new();
    for o in small {
        let name = &o.path[prefix.len().min(o.path.len())..];
        groups
            .entry(hash64(&[name.as_bytes()]) % k)
            .or_default()
            .push(o);
    }
    for (i, g) in groups {
        out.push(component(format!("{prefix}*[{i}/{k}]"), &g));
    }
}

/// The chunk name of the reference: one component's name, `a and b …` for up to five,
/// `N components` beyond.
pub fn chunk_name(components: &[String]) -> String {
    match components.len() {
        0 => "Reserved for new packages".to_string(),
        1..=5 => components.join(" and "),
        n => format!("{n} components"),
    }
}

fn make_chunk(mut comps: Vec<Component>) -> Chunk {
    comps.sort_by(|a, b| a.name.cmp(&b.name));
    let components: Vec<String> = comps.iter().map(|c| c.name.clone()).collect();
    let mut objects: Vec<Checksum> = comps.iter().flat_map(|c| c.objects.clone()).collect();
    objects.sort();
    objects.dedup();
    Chunk {
        name: chunk_name(&components),
        bytes: comps.iter().map(|c| c.bytes).sum(),
        components,
        objects,
    }
}

/// Places components into at most `bins` chunks (step 2 above); empty bins are dropped.
pub fn pack(mut components: Vec<Component>, bins: usize) -> Vec<Chunk> {
    let bins = bins.max(1);
    components.retain(|c| !c.objects.is_empty());
    components.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.id.cmp(&b.id)));
    let total: u64 = components.iter().map(|c| c.bytes).sum();
    let average = total as f64 / bins as f64;
    let capacity = (average * BIN_SLACK).ceil() as u64;
    let large = (average / 2.0) as u64;
    // Loads from large components only: small components look at these, never at each
    // other, so one small component changing cannot move another.
    let mut large_load = vec![0u64; bins];
    let mut members: Vec<Vec<Component>> = vec![Vec::new(); bins];
    for c in components {
        let mut ranking: Vec<(u64, usize)> = (0..bins)
            .map(|b| (hash64(&[c.id.as_bytes(), &(b as u64).to_le_bytes()]), b))
            .collect();
        ranking.sort_by(|a, b| b.cmp(a));
        let chosen = if c.bytes >= large {
            let b = ranking
                .iter()
                .map(|&(_, b)| b)
                .find(|&b| large_load[b].saturating_add(c.bytes) <= capacity)
                .unwrap_or_else(|| {
                    // Everything is full: the least loaded bin, ties by ranking.
                    let mut best = ranking[0].1;
                    for &(_, b) in &ranking {
                        if large_load[b] < large_load[best] {
                            best = b;
                        }
                    }
                    best
                });
            large_load[b] += c.bytes;
            b
        } else {
            // The less loaded of the two highest-ranked bins ("power of two choices").
            let first = ranking[0].1;
            match ranking.get(1) {
                Some(&(_, second)) if large_load[second] < large_load[first] => second,
                _ => first,
            }
        };
        members[chosen].push(c);
    }
    members
        .into_iter()
        .filter(|m| !m.is_empty())
        .map(make_chunk)
        .collect()
}

/// Components given explicitly (content metadata): one chunk each, in the given order, when
/// there are no more than `bins`; packed otherwise.
pub fn chunks_for_components(components: Vec<Component>, bins: usize) -> Vec<Chunk> {
    let nonempty: Vec<Component> = components
        .into_iter()
        .filter(|c| !c.objects.is_empty())
        .collect();
    if nonempty.len() <= bins {
        nonempty.into_iter().map(|c| make_chunk(vec![c])).collect()
    } else {
        pack(nonempty, bins)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(i: u32, path: &str, size: u64) -> ObjectInfo {
        ObjectInfo {
            checksum: Checksum::digest(&i.to_le_bytes()),
            path: path.to_string(),
            size,
        }
    }

    #[test]
    fn pow2() {
        assert_eq!(pow2_floor(0), 1);
        assert_eq!(pow2_floor(1000), 512);
        assert_eq!(pow2_floor(1024), 1024);
    }

    #[test]
    fn splits_big_dirs_and_files() {
        let mut objs = Vec::new();
        for i in 0..100 {
            objs.push(obj(i, &format!("usr/lib/a/f{i}"), 10_000));
        }
        for i in 100..110 {
            objs.push(obj(i, &format!("usr/share/f{i}"), 1000));
        }
        objs.push(obj(999, "usr/big", 5_000_000));
        let comps = directory_components(&objs, 4);
        let ids: Vec<&str> = comps.iter().map(|c| c.id.as_str()).collect();
        assert!(ids.contains(&"usr/big"), "{ids:?}");
        assert!(ids.contains(&"usr/share"), "{ids:?}");
        let n: usize = comps.iter().map(|c| c.objects.len()).sum();
        assert_eq!(n, objs.len());
        let chunks = pack(comps, 4);
        assert!(chunks.len() <= 4);
        let n: usize = chunks.iter().map(|c| c.objects.len()).sum();
        assert_eq!(n, objs.len());
    }

    #[test]
    fn deterministic() {
        let objs: Vec<ObjectInfo> = (0..500)
            .map(|i| {
                obj(
                    i,
                    &format!("d{}/e{}/f{i}", i % 7, i % 13),
                    u64::from(i) * 37,
                )
            })
            .collect();
        let a = pack(directory_components(&objs, 16), 16);
        let b = pack(directory_components(&objs, 16), 16);
        assert_eq!(a, b);
    }

    #[test]
    fn names() {
        assert_eq!(chunk_name(&["a".into()]), "a");
        assert_eq!(chunk_name(&["a".into(), "b".into()]), "a and b");
        let many: Vec<String> = (0..6).map(|i| i.to_string()).collect();
        assert_eq!(chunk_name(&many), "6 components");
    }
}
