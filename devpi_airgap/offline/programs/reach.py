"""reach.py URL: print the uuid of the devpi at URL, read from its /+status; fail when this server cannot reach it.

A replica asks this of its primary: before it is set up, to know that it can reach it, and in `fab status`,
to know whether the primary still holds the data the replica follows (the uuid changes with a restore).
"""

import json
import sys
import urllib.request


def main() -> None:
    request = urllib.request.Request(sys.argv[1] + "/+status", headers={"Accept": "application/json"})
    print(json.load(urllib.request.urlopen(request, timeout=10))["result"]["uuid"])


if __name__ == "__main__":
    main()
