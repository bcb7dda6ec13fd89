"""Copy the third-party .proto files our contract imports out of installed packages.

googleapis-common-protos ships the sources next to its generated modules, so protoc and buf
can resolve `google/api/...` and `google/type/...` without a network or a vendored copy.
"""

import shutil
import sys
from pathlib import Path

import google.api


def main() -> None:
    dest = Path(sys.argv[1])
    root = Path(next(iter(google.api.__path__))).parent.parent
    for rel in sys.argv[2:]:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, target)


if __name__ == "__main__":
    main()
