"""Assemble ``wasm/dist/``: what the browser worker and the Pyodide tests load, and nothing else.

The output is a static tree that a plain file server can hand to a Web Worker under a strict CSP:

- ``pyodide/``: the Pyodide core files from the pinned npm package;
- ``libsodium/``: libsodium.js's ESM build, its bare import rewritten to a relative path because
  import maps do not reach workers and there is no bundler in this path;
- ``wheels/``: the msgspec wheel for Pyodide and pydicom's pure-Python wheel (each pinned by
  SHA-256 in ``lock.json``), and our pure-Python wheel holding only the packages in
  :data:`BROWSER_PACKAGES`;
- ``boot.mjs``: boots all of the above in a Worker, checking each file's SHA-256 (the web app's
  worker and the test worker both use it);
- ``worker.mjs``: the test and self-test Worker that boots with it and runs Python calls;
- ``manifest.json``: every artifact with its SHA-256 and size, plus the load order.

Run ``python wasm/build.py`` to build (idempotent: unchanged files are not rewritten) or
``python wasm/build.py --check`` to verify that the tree is current without changing anything.
Only the standard library is used, so the build works before any project dependency is installed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

logger = logging.getLogger("securepacs.wasm.build")

WASM_DIR: Final = Path(__file__).resolve().parent
PROJECT_DIR: Final = WASM_DIR.parent
DIST_DIR: Final = WASM_DIR / "dist"
CACHE_DIR: Final = WASM_DIR / ".cache"
NODE_MODULES_DIR: Final = WASM_DIR / "node_modules"
LOCK_FILE: Final = WASM_DIR / "lock.json"
NPM_LOCK_FILE: Final = WASM_DIR / "package-lock.json"
NPM_MANIFEST_FILE: Final = WASM_DIR / "package.json"
# npm ci rebuilds node_modules from scratch, so a stamp inside it dies with it and cannot go stale.
NPM_STAMP_FILE: Final = NODE_MODULES_DIR / ".securepacs-npm-ci.sha256"

# The only import packages that ship to the browser. Server code must never be added here: the
# browser wheel is the zero-knowledge boundary's client side. Subpackages are included with their
# parent; each package's source folder comes from pyproject's [tool.setuptools.package-dir].
BROWSER_PACKAGES: Final[tuple[str, ...]] = ("securepacs.crypto", "securepacs.client")
BROWSER_WHEEL_NAME: Final = "securepacs"

PYODIDE_CORE_FILES: Final[tuple[str, ...]] = (
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
)
# Older Pyodide releases shipped the classic-script loader; copy it too when the package has one.
PYODIDE_OPTIONAL_FILES: Final[tuple[str, ...]] = ("pyodide.asm.js",)

LIBSODIUM_WRAPPERS_ESM: Final = (
    "libsodium-wrappers-sumo/dist/modules-sumo-esm/libsodium-wrappers.mjs"
)
LIBSODIUM_SUMO_ESM: Final = "libsodium-sumo/dist/modules-sumo-esm/libsodium-sumo.mjs"
_BARE_SODIUM_IMPORT: Final = re.compile(r"""(\bfrom\s*|\bimport\s*\(\s*)(["'])libsodium-sumo\2""")

MANIFEST_NAME: Final = "manifest.json"
MANIFEST_FORMAT: Final = 1
# Wheels in a zip are stamped with this time so that the same sources give the same bytes.
_ZIP_EPOCH: Final = (1980, 1, 1, 0, 0, 0)
_SOURCE_SUFFIXES: Final = frozenset({".py", ".pyi", ".typed"})


class BuildError(Exception):
    """The build cannot go on; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """One file of ``wasm/dist``, by its path relative to the dist folder."""

    path: str
    data: bytes

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the artifact's bytes, as recorded in the manifest."""
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True, slots=True)
class PinnedWheel:
    """A wheel from ``lock.json``."""

    name: str
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True, slots=True)
class PyodideAbi:
    """The pip platform tags that select wheels built for the pinned Pyodide."""

    platform: str
    python_version: str
    implementation: str
    abi: str


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_json_object(path: Path) -> dict[str, object]:
    try:
        parsed: object = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BuildError(f"{_shown(path)}: cannot read JSON ({error})") from error
    if not isinstance(parsed, dict):
        raise BuildError(f"{_shown(path)}: expected a JSON object")
    return {str(key): value for key, value in parsed.items()}


def _string_field(table: dict[str, object], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise BuildError(f"{where}: '{key}' must be a non-empty string")
    return value


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_DIR))
    except ValueError:
        return str(path)


def load_lock() -> tuple[PyodideAbi, list[PinnedWheel]]:
    """Parse ``wasm/lock.json``."""
    lock = _read_json_object(LOCK_FILE)
    where = _shown(LOCK_FILE)
    abi_table = lock.get("pyodide_abi")
    if not isinstance(abi_table, dict):
        raise BuildError(f"{where}: 'pyodide_abi' must be an object")
    abi_fields = {str(key): value for key, value in abi_table.items()}
    abi = PyodideAbi(
        platform=_string_field(abi_fields, "platform", where),
        python_version=_string_field(abi_fields, "python_version", where),
        implementation=_string_field(abi_fields, "implementation", where),
        abi=_string_field(abi_fields, "abi", where),
    )
    entries = lock.get("wheels")
    if not isinstance(entries, list) or not entries:
        raise BuildError(f"{where}: 'wheels' must be a non-empty list")
    wheels: list[PinnedWheel] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise BuildError(f"{where}: every wheel must be an object")
        fields = {str(key): value for key, value in entry.items()}
        wheel = PinnedWheel(
            name=_string_field(fields, "name", where),
            version=_string_field(fields, "version", where),
            filename=_string_field(fields, "filename", where),
            sha256=_string_field(fields, "sha256", where).lower(),
        )
        if not re.fullmatch(r"[0-9a-f]{64}", wheel.sha256):
            raise BuildError(f"{where}: {wheel.filename} has a malformed sha256")
        wheels.append(wheel)
    return abi, wheels


# --- npm -----------------------------------------------------------------------------------------


def _npm_inputs_digest() -> str:
    digest = hashlib.sha256()
    for path in (NPM_MANIFEST_FILE, NPM_LOCK_FILE):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def node_modules_current() -> bool:
    """Whether ``node_modules`` was installed by ``npm ci`` from the current lock."""
    try:
        return NPM_STAMP_FILE.read_text(encoding="ascii").strip() == _npm_inputs_digest()
    except FileNotFoundError:
        return False


def ensure_node_modules() -> None:
    """Run ``npm ci`` when ``node_modules`` is missing or was installed from another lock."""
    if node_modules_current():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm is not on PATH; install Node.js 20 (with npm) first")
    logger.info("node_modules is missing or stale: running npm ci")
    # --ignore-scripts: none of the pinned packages needs an install script, and refusing them
    # keeps a compromised dependency from running code at install time.
    command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"]
    completed = subprocess.run(
        command, cwd=WASM_DIR, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    if completed.returncode != 0:
        output = completed.stdout.decode("utf-8", "replace")
        raise BuildError(f"npm ci failed (exit {completed.returncode}):\n{output}")
    NPM_STAMP_FILE.write_text(_npm_inputs_digest() + "\n", encoding="ascii")


def _npm_package_version(package: str) -> str:
    manifest = _read_json_object(NODE_MODULES_DIR / package / "package.json")
    return _string_field(manifest, "version", f"node_modules/{package}/package.json")


# --- pinned wheels -------------------------------------------------------------------------------


def _cached_wheel_path(wheel: PinnedWheel) -> Path:
    return CACHE_DIR / "wheels" / wheel.filename


def cached_wheel(wheel: PinnedWheel) -> Path | None:
    """The cached copy of ``wheel`` if it is present and matches its pinned SHA-256."""
    path = _cached_wheel_path(wheel)
    if path.is_file() and _sha256_file(path) == wheel.sha256:
        return path
    return None


def fetch_wheel(wheel: PinnedWheel, abi: PyodideAbi) -> Path:
    """Return the cached wheel, downloading it with pip first if needed; verify its SHA-256."""
    cached = cached_wheel(wheel)
    if cached is not None:
        return cached
    target = _cached_wheel_path(wheel)
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s with pip", wheel.filename)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as scratch:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            abi.platform,
            "--python-version",
            abi.python_version,
            "--implementation",
            abi.implementation,
            "--abi",
            abi.abi,
            "--dest",
            scratch,
            f"{wheel.name}=={wheel.version}",
        ]
        completed = subprocess.run(
            command, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        if completed.returncode != 0:
            output = completed.stdout.decode("utf-8", "replace")
            raise BuildError(f"pip download of {wheel.filename} failed:\n{output}")
        downloaded = Path(scratch) / wheel.filename
        if not downloaded.is_file():
            found = ", ".join(sorted(path.name for path in Path(scratch).iterdir())) or "nothing"
            raise BuildError(
                f"pip did not produce {wheel.filename} (it produced: {found}); "
                "the platform tags in wasm/lock.json may not match the pinned wheel"
            )
        actual = _sha256_file(downloaded)
        if actual != wheel.sha256:
            raise BuildError(
                f"SHA-256 mismatch for {wheel.filename}: downloaded {actual}, "
                f"wasm/lock.json pins {wheel.sha256}. The package index served different bytes "
                "for a pinned artifact; do not update the pin unless the change is intended "
                "and has been reviewed."
            )
        downloaded.replace(target)
    return target


# --- the browser wheel ---------------------------------------------------------------------------


def _project_metadata() -> tuple[str, str, list[str], dict[str, Path]]:
    """Name, version, requirements and package folders from pyproject.toml."""
    pyproject_path = PROJECT_DIR / "pyproject.toml"
    with pyproject_path.open("rb") as stream:
        pyproject = tomllib.load(stream)
    project = pyproject.get("project", {})
    version = project.get("version")
    if not isinstance(version, str):
        raise BuildError("pyproject.toml: [project].version must be a string")
    summary = project.get("description", "")
    requirements = [
        requirement
        for requirement in project.get("dependencies", [])
        if isinstance(requirement, str)
    ]
    package_dir = pyproject.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    folders = {str(package): PROJECT_DIR / str(folder) for package, folder in package_dir.items()}
    return str(summary), version, requirements, folders


def _package_files(folder: Path) -> list[Path]:
    """The files of a package and its subpackages, sorted.

    Folders that are not packages (client/web with its node_modules, __pycache__) are not
    entered.
    """
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if (here / d / "__init__.py").is_file())
        found.extend(here / name for name in files)
    return sorted(found)


def _package_sources(folders: dict[str, Path]) -> list[tuple[str, Path]]:
    """Every source file of :data:`BROWSER_PACKAGES` as (archive path, file)."""
    sources: list[tuple[str, Path]] = []
    for package in BROWSER_PACKAGES:
        folder = folders.get(package)
        if folder is None:
            raise BuildError(f"pyproject.toml maps no folder for {package}")
        if not (folder / "__init__.py").is_file():
            raise BuildError(f"{_shown(folder)} is not a Python package")
        prefix = package.replace(".", "/")
        for path in _package_files(folder):
            if path.suffix not in _SOURCE_SUFFIXES:
                continue
            sources.append((f"{prefix}/{path.relative_to(folder).as_posix()}", path))
    allowed = tuple(package.replace(".", "/") + "/" for package in BROWSER_PACKAGES)
    for archive_path, _ in sources:
        # A second guard besides the constant: nothing outside the listed packages may ship.
        if not archive_path.startswith(allowed):
            raise BuildError(f"refusing to put {archive_path} into the browser wheel")
    return sources


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def _zip_entry(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data, compresslevel=9)


def build_browser_wheel() -> Artifact:
    """A reproducible pure-Python wheel with only :data:`BROWSER_PACKAGES`."""
    summary, version, requirements, folders = _project_metadata()
    sources = _package_sources(folders)
    # Environment markers keep PyNaCl out of Pyodide; keep them so installers agree.
    metadata_lines = [
        "Metadata-Version: 2.1",
        f"Name: {BROWSER_WHEEL_NAME}",
        f"Version: {version}",
        f"Summary: {summary} (browser subset: {', '.join(BROWSER_PACKAGES)})",
        *(f"Requires-Dist: {requirement}" for requirement in requirements),
    ]
    wheel_lines = [
        "Wheel-Version: 1.0",
        "Generator: securepacs wasm/build.py",
        "Root-Is-Purelib: true",
        "Tag: py3-none-any",
    ]
    dist_info = f"{BROWSER_WHEEL_NAME}-{version}.dist-info"
    entries = [(archive_path, path.read_bytes()) for archive_path, path in sources]
    entries.append((f"{dist_info}/METADATA", ("\n".join(metadata_lines) + "\n").encode()))
    entries.append((f"{dist_info}/WHEEL", ("\n".join(wheel_lines) + "\n").encode()))
    record_name = f"{dist_info}/RECORD"
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    entries.append((record_name, (record + f"{record_name},,\n").encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            _zip_entry(archive, name, data)
    filename = f"{BROWSER_WHEEL_NAME}-{version}-py3-none-any.whl"
    return Artifact(f"wheels/{filename}", buffer.getvalue())


# --- assembling the tree -------------------------------------------------------------------------


def _check_abi_matches_pyodide(abi: PyodideAbi) -> None:
    lock = _read_json_object(NODE_MODULES_DIR / "pyodide" / "pyodide-lock.json")
    info = lock.get("info")
    if not isinstance(info, dict):
        raise BuildError("node_modules/pyodide/pyodide-lock.json has no 'info' object")
    abi_version = str(info.get("abi_version", ""))
    python = str(info.get("python", ""))
    if abi.platform != f"pyemscripten_{abi_version}_wasm32":
        raise BuildError(
            f"wasm/lock.json selects wheels for {abi.platform}, but the pinned Pyodide needs "
            f"pyemscripten_{abi_version}_wasm32: update the wheel pins together with Pyodide"
        )
    if not python.startswith(abi.python_version + "."):
        raise BuildError(
            f"wasm/lock.json selects wheels for Python {abi.python_version}, "
            f"but the pinned Pyodide runs Python {python}"
        )


def _libsodium_artifacts() -> list[Artifact]:
    wrappers = (NODE_MODULES_DIR / LIBSODIUM_WRAPPERS_ESM).read_text(encoding="utf-8")
    rewritten, count = _BARE_SODIUM_IMPORT.subn(r"\1\2./libsodium-sumo.mjs\2", wrappers)
    if count != 1:
        raise BuildError(
            f"expected exactly one import of 'libsodium-sumo' in {LIBSODIUM_WRAPPERS_ESM}, "
            f"found {count}: the pinned libsodium.js changed shape, review the rewrite"
        )
    sumo = (NODE_MODULES_DIR / LIBSODIUM_SUMO_ESM).read_bytes()
    return [
        Artifact("libsodium/libsodium-wrappers.mjs", rewritten.encode("utf-8")),
        Artifact("libsodium/libsodium-sumo.mjs", sumo),
    ]


def _pyodide_artifacts() -> list[Artifact]:
    package = NODE_MODULES_DIR / "pyodide"
    artifacts: list[Artifact] = []
    for name in PYODIDE_CORE_FILES:
        path = package / name
        if not path.is_file():
            raise BuildError(f"node_modules/pyodide/{name} is missing; is the package complete?")
        artifacts.append(Artifact(f"pyodide/{name}", path.read_bytes()))
    artifacts.extend(
        Artifact(f"pyodide/{name}", (package / name).read_bytes())
        for name in PYODIDE_OPTIONAL_FILES
        if (package / name).is_file()
    )
    return artifacts


def _worker_artifacts() -> list[Artifact]:
    # The boot code travels with the runtime, so every host loads the same worker and entry.
    return [
        Artifact("boot.mjs", (WASM_DIR / "boot.mjs").read_bytes()),
        Artifact("worker.mjs", (WASM_DIR / "worker.mjs").read_bytes()),
        Artifact("call.py", (WASM_DIR / "call.py").read_bytes()),
    ]


def _manifest(artifacts: list[Artifact], wheel_paths: list[str]) -> Artifact:
    manifest = {
        "format": MANIFEST_FORMAT,
        "pyodide": {"version": _npm_package_version("pyodide"), "index": "pyodide/"},
        "libsodium": {
            "version": _npm_package_version("libsodium-wrappers-sumo"),
            "module": "libsodium/libsodium-wrappers.mjs",
        },
        "packages": list(BROWSER_PACKAGES),
        # Load order: dependencies first, our own wheel last.
        "wheels": wheel_paths,
        "artifacts": [
            {"path": artifact.path, "sha256": artifact.sha256, "size": len(artifact.data)}
            for artifact in sorted(artifacts, key=lambda artifact: artifact.path)
        ],
    }
    text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
    return Artifact(MANIFEST_NAME, text.encode("utf-8"))


def planned_artifacts(pinned_wheels: list[Path]) -> list[Artifact]:
    """Everything ``wasm/dist`` must contain, manifest last."""
    artifacts = [*_pyodide_artifacts(), *_libsodium_artifacts(), *_worker_artifacts()]
    wheel_artifacts = [Artifact(f"wheels/{path.name}", path.read_bytes()) for path in pinned_wheels]
    wheel_artifacts.append(build_browser_wheel())
    artifacts.extend(wheel_artifacts)
    artifacts.append(_manifest(artifacts, [artifact.path for artifact in wheel_artifacts]))
    return artifacts


def _current(artifact: Artifact) -> bool:
    target = DIST_DIR / artifact.path
    try:
        if target.stat().st_size != len(artifact.data):
            return False
    except FileNotFoundError:
        return False
    return _sha256_file(target) == artifact.sha256


def _strays(artifacts: list[Artifact]) -> list[Path]:
    expected = {DIST_DIR / artifact.path for artifact in artifacts}
    if not DIST_DIR.is_dir():
        return []
    return sorted(path for path in DIST_DIR.rglob("*") if path.is_file() and path not in expected)


def write_tree(artifacts: list[Artifact]) -> int:
    """Write changed artifacts atomically, remove strays; return the number of files written."""
    written = 0
    for artifact in artifacts:
        if _current(artifact):
            continue
        target = DIST_DIR / artifact.path
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename, so that a reader (or an interrupted build) never sees half a file.
        scratch = target.with_name(f".{target.name}.partial")
        scratch.write_bytes(artifact.data)
        scratch.replace(target)
        written += 1
    for stray in _strays(artifacts):
        logger.info("removing stale %s", _shown(stray))
        stray.unlink()
    for folder in sorted(DIST_DIR.rglob("*"), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return written


def build() -> int:
    """Bring ``wasm/dist`` up to date; return the number of files written."""
    ensure_node_modules()
    abi, wheels = load_lock()
    _check_abi_matches_pyodide(abi)
    pinned = [fetch_wheel(wheel, abi) for wheel in wheels]
    return write_tree(planned_artifacts(pinned))


def check() -> list[str]:
    """Reasons why ``wasm/dist`` is not current; empty when it is. Changes nothing."""
    if not node_modules_current():
        return ["wasm/node_modules is missing or was not installed from the current lock"]
    abi, wheels = load_lock()
    _check_abi_matches_pyodide(abi)
    pinned: list[Path] = []
    for wheel in wheels:
        cached = cached_wheel(wheel)
        if cached is None:
            return [f"{wheel.filename} is not in wasm/.cache or does not match its pin"]
        pinned.append(cached)
    artifacts = planned_artifacts(pinned)
    problems = [
        f"{artifact.path} is missing or out of date"
        for artifact in artifacts
        if not _current(artifact)
    ]
    problems.extend(f"{_shown(stray)} is not part of the build" for stray in _strays(artifacts))
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if wasm/dist is not current, without changing anything",
    )
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="wasm/build.py: %(message)s")
    started = time.perf_counter()
    try:
        if options.check:
            problems = check()
            for problem in problems:
                logger.error("%s", problem)
            if problems:
                logger.error("wasm/dist is stale: run python wasm/build.py")
                return 1
            logger.info("wasm/dist is current")
            return 0
        written = build()
    except BuildError as error:
        logger.error("%s", error)
        return 1
    logger.info(
        "wasm/dist is current (%d file(s) written, %.2f s)", written, time.perf_counter() - started
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
