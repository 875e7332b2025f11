//! The difference between two manifests, printed as the reference prints it before an update
//! (`Total new layers` / `Removed layers` / `Added layers`) and by `container compare`.

use std::collections::HashSet;

use containers_image_proxy::oci_spec::image::{Descriptor, ImageManifest};

/// Layers of `to` not in `from` and the reverse, by blob digest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManifestDiff {
    /// Layers of the new manifest.
    pub total: usize,
    /// Their compressed size.
    pub total_size: u64,
    /// Layers only in the old manifest.
    pub removed: Vec<Descriptor>,
    /// Their size.
    pub removed_size: u64,
    /// Layers only in the new manifest.
    pub added: Vec<Descriptor>,
    /// Their size.
    pub added_size: u64,
}

impl ManifestDiff {
    /// Compares `from` (old) with `to` (new).
    pub fn new(from: &ImageManifest, to: &ImageManifest) -> Self {
        let digests = |m: &ImageManifest| -> HashSet<String> {
            m.layers().iter().map(|l| l.digest().to_string()).collect()
        };
        let (old, new) = (digests(from), digests(to));
        let removed: Vec<Descriptor> = from
            .layers()
            .iter()
            .filter(|l| !new.contains(&l.digest().to_string()))
            .cloned()
            .collect();
        let added: Vec<Descriptor> = to
            .layers()
            .iter()
            .filter(|l| !old.contains(&l.digest().to_string()))
            .cloned()
            .collect();
        let size = |v: &[Descriptor]| v.iter().map(Descriptor::size).sum();
        ManifestDiff {
            total: to.layers().len(),
            total_size: size(to.layers()),
            removed_size: size(&removed),
            removed,
            added_size: size(&added),
            added,
        }
    }

    /// The three lines the reference prints.
    pub fn lines(&self) -> [String; 3] {
        [
            format!(
                "Total new layers: {:<4}  Size: {}",
                self.total,
                format_size(self.total_size)
            ),
            format!(
                "Removed layers:   {:<4}  Size: {}",
                self.removed.len(),
                format_size(self.removed_size)
            ),
            format!(
                "Added layers:     {:<4}  Size: {}",
                self.added.len(),
                format_size(self.added_size)
            ),
        ]
    }
}

/// Sizes as GLib's `g_format_size` writes them (decimal units, one decimal), which the
/// reference uses for its layer and diff lines.
pub fn format_size(n: u64) -> String {
    format_size_with(n, " ")
}

/// GLib's `g_format_size_full(size, G_FORMAT_SIZE_DEFAULT)`: SI units, one decimal, `space`
/// before the unit (GLib writes U+00A0; `ostree prune` output shows what the locale makes of it).
pub fn format_size_with(size: u64, space: &str) -> String {
    if size < 1000 {
        return if size == 1 {
            "1 byte".to_string()
        } else {
            format!("{size} bytes")
        };
    }
    let units = ["kB", "MB", "GB", "TB", "PB", "EB"];
    let mut factor = 1000u64;
    let mut i = 0;
    while i + 1 < units.len() && size / factor >= 1000 {
        factor *= 1000;
        i += 1;
    }
    format!("{:.1}{space}{}", size as f64 / factor as f64, units[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(layers: &[(&str, u64)]) -> ImageManifest {
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .map(|(d, s)| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{}", d.repeat(64 / d.len())), "size": s}))
            .collect();
        serde_json::from_value(serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", "c".repeat(64)), "size": 1},
            "layers": layers})).unwrap()
    }

    #[test]
    fn diff_and_lines() {
        let a = manifest(&[("a", 1000), ("b", 2_500_000), ("c", 10)]);
        let b = manifest(&[("a", 1000), ("d", 3_000_000), ("e", 1)]);
        let d = ManifestDiff::new(&a, &b);
        assert_eq!((d.total, d.removed.len(), d.added.len()), (3, 2, 2));
        assert_eq!(d.removed_size, 2_500_010);
        assert_eq!(
            d.lines(),
            [
                "Total new layers: 3     Size: 3.0 MB",
                "Removed layers:   2     Size: 2.5 MB",
                "Added layers:     2     Size: 3.0 MB",
            ]
        );
        assert_eq!(format_size(999), "999 bytes");
        assert_eq!(format_size(1), "1 byte");
        assert_eq!(format_size(1500), "1.5 kB");
    }
}
