"""Serve MathJax from the book itself, not from a CDN.

The package is fetched once from the npm registry (checked against the
registry's integrity hash) into a cache, ``_build/.vendor-cache`` or
``$EOSLAB_VENDOR_CACHE``, and copied into ``<html>/_vendor/`` when the site
is built. ``_config.yml`` points Sphinx (``mathjax_path``) at that copy. The
folder is not ``_static``: Jupyter Book would load every ``.js`` file there on
every page. (The pages render no live widgets, so they need neither require.js
nor the Jupyter widget manager: see ``nb_mime_priority_overrides`` in
``_config.yml``.)

Fill the cache ahead of an offline build with ``python _ext/vendor_assets.py``.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
#: folder under _vendor -> (npm package, version, paths inside the package to keep)
PACKAGES = {
    "mathjax": ("mathjax", "3.2.2", ("es5/",)),
}


def cache_dir(root: Path) -> Path:
    return Path(os.environ.get("EOSLAB_VENDOR_CACHE", root / "_build" / ".vendor-cache"))


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (fixed https URLs)
        return response.read()


def ensure(root: Path) -> Path:
    """Download and unpack every package not yet in the cache; return the cache's ``_vendor`` folder."""
    target = cache_dir(root) / "_vendor"
    for folder, (name, version, keep) in PACKAGES.items():
        done = target / folder / ".complete"
        if done.is_file() and done.read_text() == version:
            continue
        meta = json.loads(_fetch(f"{REGISTRY}/{name}/{version}"))
        blob = _fetch(meta["dist"]["tarball"])
        algorithm, _, expected = meta["dist"]["integrity"].partition("-")
        actual = base64.b64encode(hashlib.new(algorithm, blob).digest()).decode()
        if actual != expected:
            raise RuntimeError(f"{name}@{version}: the download does not match the registry's {algorithm} hash")
        shutil.rmtree(target / folder, ignore_errors=True)
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as archive:
            for member in archive.getmembers():
                inner = member.name.split("/", 1)[1] if "/" in member.name else ""
                wanted = any(inner == k or (k.endswith("/") and inner.startswith(k)) for k in keep)
                if member.isfile() and wanted and not inner.endswith(".map"):  # source maps: 20 MB nobody loads
                    path = target / folder / inner
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(archive.extractfile(member).read())
        done.write_text(version)
    return target


def _copy_into_site(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    source = ensure(Path(app.srcdir))
    out = Path(app.outdir)
    for folder in PACKAGES:  # only these: the cache may hold packages an older build used
        shutil.copytree(source / folder, out / "_vendor" / folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".complete"))


def _check_early(app):
    try:
        ensure(Path(app.srcdir))
    except OSError as error:  # no network and no cache
        raise RuntimeError(
            f"cannot fetch MathJax from {REGISTRY} ({error}); "
            "run `python _ext/vendor_assets.py` once with network access, or set EOSLAB_VENDOR_CACHE "
            "to a folder that holds it") from error


def setup(app):
    app.connect("builder-inited", _check_early)
    app.connect("build-finished", _copy_into_site)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    print(ensure(Path(__file__).resolve().parent.parent))
