"""Copies the googleapis protos we import from the googleapis-common-protos wheel.

buf needs them on disk to resolve imports; they are not committed (third_party/ is
ignored) so the copy always matches the pinned wheel.
"""

from __future__ import annotations

import pathlib
import shutil

import google.api
import google.rpc

FILES = {
    google.api: ["annotations.proto", "http.proto", "httpbody.proto", "field_behavior.proto"],
    google.rpc: ["status.proto", "error_details.proto", "code.proto"],
}


def main() -> None:
    root = pathlib.Path(__file__).resolve().parent.parent / "third_party"
    for module, names in FILES.items():
        source = pathlib.Path(next(iter(module.__path__)))
        target = root / "google" / source.name
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(source / name, target / name)


if __name__ == "__main__":
    main()
