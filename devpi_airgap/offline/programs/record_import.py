"""record_import.py PATH ENTRY_JSON: add one imported bundle (or recall) to a record kept by bundle_id, replacing the file whole."""

import json
import os
import sys


def main() -> None:
    path, entry = sys.argv[1], json.loads(sys.argv[2])
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        data = []
    data = [d for d in data if d["bundle_id"] != entry["bundle_id"]] + [entry]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps(data, indent=1))
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
