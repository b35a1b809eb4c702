#!/usr/bin/env python3
"""Cuts a full Debian root filesystem (an mmdebstrap tarball) down to what the services need
at run time, as a new tarball: the files of the packages in runtime-packages.txt and of the
packages they depend on, plus the files their maintainer scripts generated (the CA bundle,
the dynamic linker's cache, /etc/localtime). No shell, no dpkg, no apt, no coreutils: nothing
that runs in the image but the services. Works on tarballs only, so it needs no root.

usage: slim-rootfs.py FULL.tar OUT.tar PACKAGES.txt

A trimmed /var/lib/dpkg/status lists exactly the packages whose files are kept, so image
scanners (trivy, grype) still see which Debian packages and versions the image carries.
"""
import io
import posixpath
import sys
import tarfile

# Packages whose files are kept but whose dependencies are not followed: theirs serve only
# their maintainer scripts (ca-certificates -> openssl, debconf -> perl; tzdata -> debconf;
# base-files -> awk), which ran when mmdebstrap installed them.
NO_FOLLOW = {"ca-certificates", "tzdata", "base-files"}
# Never shipped even if something depends on them: they exist to run programs or scripts.
DENY = {"dpkg", "apt", "debconf", "perl-base", "bash", "dash", "coreutils", "debianutils",
        "openssl", "libc-bin", "mawk", "sed", "grep", "findutils", "tar", "util-linux"}
# Files generated at install time (owned by no package) that the libraries read at run time.
GENERATED = ["etc/ssl/certs", "etc/ld.so.cache", "etc/localtime", "etc/timezone",
             "etc/ssl/openssl.cnf", "usr/lib/ssl"]
# Parts of packages nobody reads in a container (the copyright files stay: licences), and
# their programs (update-ca-certificates, a shell script that could not run here anyway).
DROP_PREFIXES = ("usr/bin/", "usr/sbin/", "usr/share/man/", "usr/share/info/",
                 "usr/share/lintian/", "usr/share/bug/", "usr/share/locale/",
                 "usr/share/doc-base/")

PASSWD = ("root:x:0:0:root:/root:/usr/sbin/nologin\n"
          "chat:x:65532:65532:chat platform services:/nonexistent:/usr/sbin/nologin\n")
GROUP = "root:x:0:\nchat:x:65532:\n"
NSSWITCH = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nservices: files\n"


def read_packages(path):
    with open(path, encoding="utf-8") as f:
        return [line.split("#", 1)[0].strip() for line in f if line.split("#", 1)[0].strip()]


def parse_status(text):
    """Returns {package: (fields, stanza text)} for the installed packages."""
    pkgs = {}
    for stanza in text.strip().split("\n\n"):
        fields, key = {}, None
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields.get("Status", "").endswith(" installed"):
            pkgs[fields["Package"]] = (fields, stanza)
    return pkgs


def depends(fields):
    """The package names of Depends and Pre-Depends, as lists of alternatives."""
    out = []
    for field in ("Pre-Depends", "Depends"):
        for rel in filter(None, (r.strip() for r in fields.get(field, "").split(","))):
            alts = []
            for alt in rel.split("|"):
                name = alt.strip().split(" ", 1)[0].split("(", 1)[0].split(":", 1)[0]
                alts.append(name)
            out.append(alts)
    return out


def closure(wanted, pkgs):
    provides = {}
    for name, (fields, _) in pkgs.items():
        for p in filter(None, (x.strip().split(" ", 1)[0] for x in
                               fields.get("Provides", "").split(","))):
            provides.setdefault(p, name)
    keep, todo = set(), list(wanted)
    while todo:
        name = todo.pop()
        if name in keep or name in DENY:
            continue
        if name not in pkgs:
            sys.exit(f"slim-rootfs: package {name} is not installed in the full root filesystem")
        keep.add(name)
        if name in NO_FOLLOW:
            continue
        for alts in depends(pkgs[name][0]):
            chosen = next((a for a in alts if a in pkgs), None) or \
                next((provides[a] for a in alts if a in provides), None)
            if chosen is None:
                sys.exit(f"slim-rootfs: {name} depends on {'|'.join(alts)}, not installed")
            if chosen in DENY:
                print(f"slim-rootfs: not shipping {chosen} (needed by {name} only to run "
                      "scripts)", file=sys.stderr)
            todo.append(chosen)
    return keep


class Tree:
    """The members of the full tarball by normalised path, with symlinked directories
    (the merged /usr: lib -> usr/lib) resolved the way the kernel would."""

    def __init__(self, tar):
        self.tar = tar
        self.members = {}
        for m in tar.getmembers():
            name = m.name[2:] if m.name.startswith("./") else m.name.lstrip("/")
            name = posixpath.normpath(name or ".")
            if name != ".":
                self.members[name] = m

    def resolve_parent(self, path, depth=0):
        """PATH with every directory above its last component resolved through symlinks."""
        parts = path.split("/")
        cur = ""
        for part in parts[:-1]:
            cur = posixpath.join(cur, part) if cur else part
            m = self.members.get(cur)
            if m is not None and m.issym() and depth < 16:
                target = m.linkname
                base = "" if target.startswith("/") else posixpath.dirname(cur)
                cur = posixpath.normpath(posixpath.join(base, target.lstrip("/")))
                cur = self.resolve_parent(cur + "/x", depth + 1)[:-2]
        return posixpath.join(cur, parts[-1]) if cur else parts[-1]

    def subtree(self, path):
        prefix = path + "/"
        return [n for n in self.members if n == path or n.startswith(prefix)]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[1])
    full_path, out_path, packages_path = sys.argv[1:]
    wanted = read_packages(packages_path)
    with tarfile.open(full_path) as full:
        tree = Tree(full)
        status = full.extractfile(tree.members["var/lib/dpkg/status"]).read().decode()
        pkgs = parse_status(status)
        keep = closure(wanted, pkgs)
        names = set()
        for pkg in sorted(keep):
            arch = pkgs[pkg][0].get("Architecture", "all")
            listing = tree.members.get(f"var/lib/dpkg/info/{pkg}:{arch}.list") or \
                tree.members.get(f"var/lib/dpkg/info/{pkg}.list")
            if listing is None:
                sys.exit(f"slim-rootfs: no file list for {pkg}")
            for line in full.extractfile(listing).read().decode().splitlines():
                path = line.strip().lstrip("/")
                if not path or path == ".":
                    continue
                path = tree.resolve_parent(path)
                if path.startswith(DROP_PREFIXES) or (
                        path.startswith("usr/share/doc/") and "/copyright" not in path and
                        path.count("/") > 3):
                    continue
                if path in tree.members:
                    names.add(path)
        for path in GENERATED:
            names.update(tree.subtree(path))
        written = {"etc/passwd", "etc/group", "etc/nsswitch.conf", "var/lib/dpkg/status",
                   "tmp", "var/tmp"}
        names -= written
        names.update(("etc", "var/lib/dpkg"))
        # Every parent directory, and the merged-/usr links at the top.
        for name in list(names):
            parent = posixpath.dirname(name)
            while parent:
                names.add(parent)
                parent = posixpath.dirname(parent)
        for top in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
            if top in tree.members and tree.members[top].issym():
                names.add(top)

        mtime = tree.members["var/lib/dpkg/status"].mtime
        with tarfile.open(out_path, "w", format=tarfile.PAX_FORMAT) as out:
            for name in sorted(names):
                m = tree.members.get(name)
                if m is None:
                    info = tarfile.TarInfo(name)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
                    out.addfile(info)
                    continue
                info = tarfile.TarInfo(name)
                info.mode, info.mtime, info.uid, info.gid = m.mode, m.mtime, m.uid, m.gid
                info.uname, info.gname = m.uname, m.gname
                if m.isdir():
                    info.type = tarfile.DIRTYPE
                    out.addfile(info)
                elif m.issym():
                    info.type, info.linkname = tarfile.SYMTYPE, m.linkname
                    out.addfile(info)
                elif m.isfile() or m.islnk():  # hard links become plain copies
                    data = full.extractfile(m).read()
                    info.type, info.size = tarfile.REGTYPE, len(data)
                    out.addfile(info, io.BytesIO(data))
                else:
                    continue  # device nodes and fifos: the runtime provides /dev
            kept_status = "\n\n".join(pkgs[p][1] for p in sorted(keep)) + "\n"
            for name, text, mode in (
                    ("etc/passwd", PASSWD, 0o644), ("etc/group", GROUP, 0o644),
                    ("etc/nsswitch.conf", NSSWITCH, 0o644),
                    ("var/lib/dpkg/status", kept_status, 0o644)):
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), mode, mtime
                out.addfile(info, io.BytesIO(data))
            for d in ("tmp", "var/tmp"):
                info = tarfile.TarInfo(d)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o1777, mtime
                out.addfile(info)
    print("slim-rootfs: packages: " + " ".join(sorted(keep)))


if __name__ == "__main__":
    main()
