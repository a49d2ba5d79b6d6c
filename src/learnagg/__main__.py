"""``python -m learnagg``: the same command as ``learnagg``."""

from learnagg.entrypoints.cli import run

if __name__ == "__main__":
    run()
