"""without_recalled.py DATAINDEX STAGE FILENAMES_JSON: take recalled files out of a devpi-export before it is imported.

A backup made before a recall still holds the recalled files; imported as it
is, it would put them back on the index. Prints the names it took out, one a
line, and replaces the file whole.
"""

import json
import os
import sys


def main() -> None:
    path, stage, recalled = sys.argv[1], sys.argv[2], set(json.loads(sys.argv[3]))
    with open(path) as f:
        data = json.load(f)
    index = data.get("indexes", {}).get(stage)
    if not index:
        return
    kept, left_out = [], []
    for entry in index.get("files", []):
        name = entry.get("relpath", "").rsplit("/", 1)[-1]
        if entry.get("type") == "releasefile" and name in recalled:
            left_out.append(name)
        else:
            kept.append(entry)
    if not left_out:
        return
    index["files"] = kept
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)
    print("\n".join(left_out))


if __name__ == "__main__":
    main()
