"""What a run folder records about where it ran: code version (git sha, dirty flag), software and devices."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

__all__ = ["code_version", "environment"]


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def code_version(repo: str | Path | None = None) -> dict[str, Any]:
    """``{"git_sha", "git_dirty", "git_branch"}`` of the checkout holding this package (None outside git)."""
    repo = Path(repo) if repo is not None else Path(__file__).resolve().parents[2]
    sha = _git(["rev-parse", "HEAD"], repo)
    status = _git(["status", "--porcelain", "--untracked-files=no"], repo)
    return {
        "git_sha": sha,
        "git_dirty": bool(status) if status is not None else None,
        "git_branch": _git(["rev-parse", "--abbrev-ref", "HEAD"], repo),
    }


def environment(world_size: int, device: torch.device, backend: str | None) -> dict[str, Any]:
    """Software versions, devices and the process layout."""
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "argv": sys.argv,
        "world_size": world_size,
        "backend": backend,
        "device": str(device),
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info
