"""Write `offline.html`, the page `dvc plots show` fills, with Vega inside it.

DVC's own page loads Vega, Vega-Lite and Vega-Embed from a CDN, so without a
network the interactive plots (the training curves) stay blank. This page holds
the three libraries inline instead: each is the minified build published on the
npm registry, at the version pinned below, its tarball checked against the
registry's sha512 integrity before use. `.dvc/config` points `dvc plots show`
at the page (`plots.html_template`). The page has no `{scripts}` placeholder,
so DVC adds no CDN script tags to it. Licences: NOTICE.

Run it (with network) only to change a pinned version:

    python .dvc/plots/build_page.py [--tarballs DIR]

`--tarballs` reads the three `.tgz` files from DIR (for instance made by
`npm pack vega@5.33.1 ...`) instead of downloading them.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import tarfile
import urllib.request
from pathlib import Path

# The majors DVC's renderer writes its specs for (vega 5, vega-lite 5,
# vega-embed 6), at their latest releases.
PACKAGES = (
    ("vega", "5.33.1", "package/build/vega.min.js",
     "sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw=="),
    ("vega-lite", "5.23.0", "package/build/vega-lite.min.js",
     "sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA=="),
    ("vega-embed", "6.29.0", "package/build/vega-embed.min.js",
     "sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q=="),
)

REGISTRY = "https://registry.npmjs.org"

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>bnn-study: DVC plots</title>
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def tarball(name: str, version: str, integrity: str, directory: Path | None) -> bytes:
    file = f"{name}-{version}.tgz"
    if directory is not None:
        data = (directory / file).read_bytes()
    else:
        with urllib.request.urlopen(f"{REGISTRY}/{name}/-/{file}", timeout=60) as response:
            data = response.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != integrity:
        raise SystemExit(f"{file}: integrity {digest} is not the pinned {integrity}")
    return data


def script_block(name: str, version: str, member: str, data: bytes) -> str:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        source = archive.extractfile(member).read().decode("utf-8")
    if "</script" in source.lower() or "{plot_divs}" in source or "{refresh_tag}" in source:
        raise SystemExit(f"{name}: its build cannot be inlined as it is")
    sha256 = hashlib.sha256(source.encode("utf-8")).hexdigest()
    header = f"<!-- {name}@{version} {member.removeprefix('package/')} sha256={sha256} (BSD-3-Clause, see NOTICE) -->"
    return f"    {header}\n    <script>{source}</script>"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarballs", type=Path, help="read the .tgz files from here instead of the registry")
    args = parser.parse_args()
    blocks = [script_block(name, version, member, tarball(name, version, integrity, args.tarballs))
              for name, version, member, integrity in PACKAGES]
    out = Path(__file__).with_name("offline.html")
    out.write_text(PAGE.format(scripts="\n".join(blocks)), encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
