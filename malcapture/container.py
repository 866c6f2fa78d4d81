"""Is malcapture running inside a container? Then the advice names the container's fixes."""

from __future__ import annotations

from pathlib import Path

MARKERS = (".dockerenv", "run/.containerenv")  # Docker's, Podman's
CGROUP_WORDS = ("docker", "kubepods", "containerd", "libpod", "lxc")
MOUNT_WORDS = ("/docker/containers/", "/containers/storage/")  # /etc/hostname and friends, cgroup v2 too


def detected(root: Path = Path("/")) -> bool:
    if any((root / marker).exists() for marker in MARKERS):
        return True
    return _mentions(root / "proc/1/cgroup", CGROUP_WORDS) or _mentions(root / "proc/self/mountinfo", MOUNT_WORDS)


def _mentions(path: Path, words: tuple[str, ...]) -> bool:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return False
    return any(word in text for word in words)


def fixes(port: int | None) -> str:
    """The container's ways on: a terminal to paste at, and, where a server of malcapture's can take the
    redirect (`port`: one that is free), that port published."""
    terminal = (
        "In a container: start it with a terminal (`docker run -it …`, `docker exec -it CONTAINER malcapture`, "
        "or `docker compose run --rm SERVICE malcapture`)"
    )
    if port is None:
        return terminal + ", so that you can paste the redirected address."
    return (
        f"{terminal}, or register http://localhost:{port}/ in the app, publish that port (`-p {port}:{port}`) "
        f"and pass `--redirect-uri http://localhost:{port}/ --bind 0.0.0.0`, so that the browser's redirect "
        "reaches malcapture."
    )
