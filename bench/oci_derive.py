#!/usr/bin/env python3
"""Derived-image fixtures for the benchmarks and interop scripts (no dependencies but python3).

  oci_derive.py layer TREE OUT --touch N [--seed S] [--name NAME]
      Writes OUT (a gzip OCI layer, deterministic) and OUT.json (digest, diff_id, size, counts)
      for a container-build-like layer over the base tree TREE (the directory the base commit was
      made from): of the N touched paths, 70% are existing regular files under usr/ rewritten
      (same mode and owner, new content), 20% new files (next to existing ones and in new
      directories under usr/share/, plus a file under etc/ and a symlink), 10% deleted with
      `.wh.<name>` whiteouts (files, and in addition one whole directory when N >= 100). Directory entries
      carry the base's metadata (0755 root:root): no directory mode changes, so trees merged by
      ostree-ext 0.15.3 (which keeps the base's directory metadata) compare equal to ours.

  oci_derive.py append LAYOUT SRC_TAG DST_TAG [--label K=V]... [LAYER...]
      Adds the image DST_TAG to the OCI layout LAYOUT: SRC_TAG's image plus the given layers (made
      by `layer`, blobs copied in), a new config (diff_ids, history, labels) and manifest; an
      existing DST_TAG is replaced. With no layers and a --label, the same layers under a new
      config: an image whose layers are all present, whose pull is the merge step alone.

  oci_derive.py describe OUT.json
      One line about a layer made by `layer`.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import sys
import tarfile

MTIME = 1600000000
REF_NAME = "org.opencontainers.image.ref.name"


def base_files(tree):
    """Regular files and directories under TREE/usr, relative, sorted."""
    files, dirs = [], []
    for root, dnames, fnames in os.walk(os.path.join(tree, "usr")):
        dnames.sort()
        rel = os.path.relpath(root, tree)
        dirs.append(rel)
        for f in sorted(fnames):
            p = os.path.join(root, f)
            if os.path.isfile(p) and not os.path.islink(p):
                files.append(os.path.join(rel, f))
    return files, dirs


def dir_info(name):
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    ti.mtime = MTIME
    return ti


def cmd_layer(a):
    rng = random.Random(a.seed)
    files, dirs = base_files(a.tree)
    n = a.touch
    n_del = max(1, n // 10)
    n_add = max(1, n // 5)
    n_mod = max(1, n - n_del - n_add)
    dir_wh = None
    if n >= 100:
        # One whole directory removed counts its files against the deletion budget.
        leaf = [d for d in dirs if d.count("/") == 4]
        dir_wh = rng.choice(leaf)
        gone = [f for f in files if f.startswith(dir_wh + "/")]
        files = [f for f in files if not f.startswith(dir_wh + "/")]
    picked = rng.sample(files, n_mod + n_del)
    mods, dels = sorted(picked[:n_mod]), sorted(picked[n_mod:])
    entries = {}  # path -> (TarInfo, bytes or None); written sorted, parents first

    def add_parents(path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in entries:
                entries[d] = (dir_info(d), None)

    for f in mods:
        st = os.lstat(os.path.join(a.tree, f))
        with open(os.path.join(a.tree, f), "rb") as fh:
            data = b"# rewritten by derived layer %s\n" % a.name.encode() + fh.read()
        ti = tarfile.TarInfo(f)
        ti.mode, ti.uid, ti.gid, ti.mtime, ti.size = st.st_mode & 0o7777, st.st_uid, st.st_gid, MTIME, len(data)
        add_parents(f)
        entries[f] = (ti, data)
    for f in dels:
        d, b = os.path.split(f)
        w = f"{d}/.wh.{b}"
        ti = tarfile.TarInfo(w)
        ti.mode, ti.mtime = 0o644, MTIME
        add_parents(w)
        entries[w] = (ti, b"")
    if dir_wh:
        d, b = os.path.split(dir_wh)
        w = f"{d}/.wh.{b}"
        ti = tarfile.TarInfo(w)
        ti.mode, ti.mtime = 0o644, MTIME
        add_parents(w)
        entries[w] = (ti, b"")
    existing = [os.path.dirname(f) for f in files]
    for i in range(n_add):
        if i % 2 == 0:
            p = f"{rng.choice(existing)}/{a.name}-{i:06}.txt"
        else:
            p = f"usr/share/{a.name}/d{i // 40:03}/{a.name}-{i:06}.conf"
        if i == 1:
            p = f"etc/{a.name}.conf"  # remapped to usr/etc/ by both implementations
        body = (f"# added by {a.name} {i}\n".encode()) * rng.randint(1, 200)
        ti = tarfile.TarInfo(p)
        ti.mode, ti.mtime, ti.size = (0o755 if i % 7 == 3 else 0o644), MTIME, len(body)
        add_parents(p)
        entries[p] = (ti, body)
    link = f"usr/share/{a.name}/current"
    ti = tarfile.TarInfo(link)
    ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, "d000", 0o777, MTIME
    add_parents(link)
    entries[link] = (ti, None)

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for p in sorted(entries):
            ti, data = entries[p]
            ti.uname = ti.gname = ""
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    raw = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", compresslevel=6, mtime=0, filename="") as g:
        g.write(raw)
    gz = gz.getvalue()
    with open(a.out, "wb") as fh:
        fh.write(gz)
    meta = {
        "digest": "sha256:" + hashlib.sha256(gz).hexdigest(),
        "diff_id": "sha256:" + hashlib.sha256(raw).hexdigest(),
        "size": len(gz),
        "name": a.name,
        "touched": len(mods) + len(dels) + (len(gone) if dir_wh else 0) + n_add + 1,
        "modified": len(mods),
        "deleted_files": len(dels),
        "deleted_dir": dir_wh,
        "deleted_dir_files": len(gone) if dir_wh else 0,
        "added": n_add + 1,
        "entries": len(entries),
    }
    with open(a.out + ".json", "w") as fh:
        json.dump(meta, fh, indent=1)
    print(json.dumps(meta))


def blob_path(layout, digest):
    return os.path.join(layout, "blobs", *digest.split(":", 1))


def put_blob(layout, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    p = blob_path(layout, digest)
    if not os.path.exists(p):
        with open(p + ".tmp", "wb") as fh:
            fh.write(data)
        os.rename(p + ".tmp", p)
    return digest, len(data)


def canon(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def cmd_append(a):
    idx_path = os.path.join(a.layout, "index.json")
    idx = json.load(open(idx_path))
    mans = idx["manifests"]
    src = [m for m in mans if m.get("annotations", {}).get(REF_NAME) == a.src_tag]
    if not src and len(mans) == 1:
        src = mans
    if not src:
        sys.exit(f"{a.layout}: no image tagged {a.src_tag}")
    man = json.load(open(blob_path(a.layout, src[0]["digest"])))
    cfg = json.load(open(blob_path(a.layout, man["config"]["digest"])))
    cfg.setdefault("history", [])
    for lf in a.layers:
        meta = json.load(open(lf + ".json"))
        dst = blob_path(a.layout, meta["digest"])
        if not os.path.exists(dst):
            shutil.copyfile(lf, dst + ".tmp")
            os.rename(dst + ".tmp", dst)
        man["layers"].append({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": meta["digest"],
            "size": meta["size"],
        })
        cfg["rootfs"]["diff_ids"].append(meta["diff_id"])
        cfg["history"].append({
            "created": "2021-01-01T00:00:00Z",
            "created_by": f"RUN bench derived layer {meta['name']} ({meta['touched']} paths)",
        })
    labels = cfg.setdefault("config", {}).setdefault("Labels", {}) or {}
    cfg["config"]["Labels"] = labels
    for kv in a.label:
        k, _, v = kv.partition("=")
        labels[k] = v
    cdigest, csize = put_blob(a.layout, canon(cfg))
    man["config"] = {"mediaType": man["config"].get("mediaType", "application/vnd.oci.image.config.v1+json"),
                     "digest": cdigest, "size": csize}
    mdigest, msize = put_blob(a.layout, canon(man))
    idx["manifests"] = [m for m in mans if m.get("annotations", {}).get(REF_NAME) != a.dst_tag]
    idx["manifests"].append({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": mdigest,
        "size": msize,
        "annotations": {REF_NAME: a.dst_tag},
    })
    with open(idx_path + ".tmp", "w") as fh:
        fh.write(canon(idx).decode())
    os.rename(idx_path + ".tmp", idx_path)
    print(mdigest)


def cmd_describe(a):
    m = json.load(open(a.log))
    print(f"{m['name']}: {m['touched']} paths touched ({m['modified']} rewritten, {m['added']} added, "
          f"{m['deleted_files']} files and a {m['deleted_dir_files']}-file directory whited out), "
          f"{m['entries']} tar entries, {m['size'] / 1e6:.1f} MB gzip")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    l = sub.add_parser("layer")
    l.add_argument("tree")
    l.add_argument("out")
    l.add_argument("--touch", type=int, required=True)
    l.add_argument("--seed", type=int, default=1)
    l.add_argument("--name", default="derived")
    ap = sub.add_parser("append")
    ap.add_argument("layout")
    ap.add_argument("src_tag")
    ap.add_argument("dst_tag")
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("layers", nargs="*")
    d = sub.add_parser("describe")
    d.add_argument("log")
    a = p.parse_args()
    {"layer": cmd_layer, "append": cmd_append, "describe": cmd_describe}[a.cmd](a)


if __name__ == "__main__":
    main()
